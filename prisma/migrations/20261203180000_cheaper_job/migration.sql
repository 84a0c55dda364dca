-- A cheaper job (issue 25; bench/cost.ts measures it). Every write of a job makes a new row
-- version. Two things made each one dearer than it need be.

-- 1. Packed pages (fillfactor 100) had no room for the new version, so it went to another page,
--    and PostgreSQL first logged a row lock to mark the old version while it let go of the page:
--    about 0.6 of those per claim and 0.3 per completion. Room on each page keeps most new
--    versions beside the old ones.
ALTER TABLE job SET (fillfactor = 70);

-- 2. An update is HOT (a new version on the same page and no index entry at all) only when no
--    column that an index names, in its key or its condition, changes. Every index named
--    `status` or `last_updated`, and every transition changes both. The queue's indexes now name
--    two columns derived from them instead, which PostgreSQL computes at every write:
--    - queue_state: 1 pending, 2 wip, 3 failed, 4 cancelled, null otherwise. completed → retrieved
--      leaves it null, so a retrieve is HOT;
--    - heartbeat_at: last_updated while wip, null otherwise; a retrieve, which sets last_updated,
--      leaves it null.
--    The columns are written by PostgreSQL alone (GENERATED ALWAYS): no statement can let them
--    disagree with the status. Adding them rewrites the table, once, under an exclusive lock.
ALTER TABLE job
  ADD COLUMN queue_state smallint GENERATED ALWAYS AS (
    CASE status WHEN 'pending' THEN 1 WHEN 'wip' THEN 2 WHEN 'failed' THEN 3 WHEN 'cancelled' THEN 4 END) STORED,
  ADD COLUMN heartbeat_at timestamptz(6) GENERATED ALWAYS AS (CASE WHEN status = 'wip' THEN last_updated END) STORED;

DROP INDEX job_pending_claim_idx;
DROP INDEX job_wip_stale_idx;
CREATE INDEX job_pending_claim_idx ON job (priority DESC, run_at, id) WHERE queue_state = 1;
CREATE INDEX job_wip_stale_idx ON job (heartbeat_at) WHERE queue_state = 2;

-- 3. The index over (status, id) took an entry at each of a job's four writes. Listing by status
--    walks the primary key newest first instead; only the statuses for which that walk could read
--    the whole table keep an index, and it takes entries only when a job fails or is cancelled.
DROP INDEX job_status_id_idx;
CREATE INDEX job_failed_or_cancelled_idx ON job (queue_state, id) WHERE queue_state IN (3, 4);
