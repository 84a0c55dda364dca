-- A cheaper job (issue 25, bench/cost.ts). Every transition of a job writes a new row version.
-- Packed pages (fillfactor 100) have no room for it, so it went to another page, and PostgreSQL
-- logged a row lock first to mark the old version while it let go of the page: about 0.6 of
-- those per claim and 0.3 per completion. Room on each page keeps most new versions beside the
-- old ones. Applies to pages written from now on; existing pages keep their layout.
ALTER TABLE job SET (fillfactor = 70);

-- The index over (status, id) took an entry at each of a job's four writes. Listing by status
-- walks the primary key newest first instead; only the statuses a listing would otherwise
-- search the whole table for keep an index, and they take entries only when a job fails or is
-- cancelled.
DROP INDEX job_status_id_idx;
CREATE INDEX job_failed_or_cancelled_idx ON job (status, id) WHERE status IN ('failed', 'cancelled');
