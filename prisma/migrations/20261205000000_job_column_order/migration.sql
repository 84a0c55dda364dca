-- A cheaper job, part two (issue 25; bench/cost.ts measures it): the job's columns in the order
-- of how often they change.
--
-- Every write of a job logs its new row version. When the new version lands on the old one's
-- page, PostgreSQL logs only the bytes between the longest common prefix and the longest common
-- suffix of the two versions (heapam.c, log_heap_update). The columns were in the order they were
-- added, so a claim, which changes the status (column 3 of the old order) and the heartbeat
-- (column 26), logged nearly the whole row: the input, the owner, the keys and the timestamps
-- that never change after the insert. Now:
--   1. what never changes after the insert (and what changes only on rare paths: a dependent
--      added later, a workflow's parents settling, a retry's new run_at and error);
--   2. what a claim, a completion or a retrieve changes, in an order that keeps each one's range
--      short: a claim changes attempt .. last_updated, a completion result .. last_updated, a
--      retrieve status .. retrieved_at, a heartbeat heartbeat_at .. last_updated;
--   3. progress last: a job that reports none has a null there, and one that does keeps it as
--      common suffix through its completion.
-- The fillfactor goes from 70 to 50: a claim takes the jobs of a page together, in one transaction,
-- so every one of them needs room for its new version on that page at once; at 70 about 60 % of
-- a claim's versions went to another page, logged whole and with a row lock first, at 50 about
-- 14 %. A full-page image after a checkpoint leaves out a page's free space, so the emptier
-- pages cost no more there (BENCHMARKS.md, "A cheaper job, part two").
--
-- PostgreSQL cannot move a column, so the table is rebuilt: once, under an exclusive lock, in time
-- proportional to the jobs kept (the pruner's retention bounds them). The script is one
-- transaction whoever applies it: the service's migrator runs the pending migrations in one, and
-- `prisma migrate deploy` sends each script as one multi-statement query, which PostgreSQL runs as
-- one (a failure part-way leaves the old table as it was).

CREATE TABLE job_reordered (
    id uuid NOT NULL,
    created_at timestamp(6) with time zone DEFAULT CURRENT_TIMESTAMP NOT NULL,
    concurrency_order bigint,
    max_attempts integer NOT NULL,
    priority integer DEFAULT 0 NOT NULL,
    timeout_seconds integer,
    kind text NOT NULL,
    owner text DEFAULT ''::text NOT NULL,
    input jsonb NOT NULL,
    idempotency_key text,
    unique_key text,
    concurrency_key text,
    traceparent text,
    has_dependents boolean DEFAULT false NOT NULL,
    parents_left integer,
    run_at timestamp(6) with time zone DEFAULT CURRENT_TIMESTAMP NOT NULL,
    last_error text,
    attempt integer DEFAULT 0 NOT NULL,
    locked_by text,
    result jsonb,
    completed_on timestamp(6) with time zone,
    queue_state smallint GENERATED ALWAYS AS (
      CASE status WHEN 'pending' THEN 1 WHEN 'wip' THEN 2 WHEN 'failed' THEN 3 WHEN 'cancelled' THEN 4 END) STORED,
    heartbeat_at timestamp(6) with time zone GENERATED ALWAYS AS (CASE WHEN status = 'wip' THEN last_updated END) STORED,
    status job_status DEFAULT 'pending'::job_status NOT NULL,
    version integer DEFAULT 1 NOT NULL,
    last_updated timestamp(6) with time zone DEFAULT CURRENT_TIMESTAMP NOT NULL,
    retrieved_at timestamp(6) with time zone,
    progress jsonb
) WITH (fillfactor = 50);

LOCK TABLE job IN ACCESS EXCLUSIVE MODE;

-- What an operator set on the table goes to the new one: its storage settings (README, "Vacuum",
-- tells them to tune autovacuum per table) but the fillfactor, which is this migration's, and
-- the privileges granted to other roles.
DO $$
DECLARE
  settings text;
  privilege record;
BEGIN
  SELECT string_agg(setting, ', ') INTO settings
  FROM (SELECT unnest(reloptions) AS setting FROM pg_class WHERE oid = 'job'::regclass
        UNION ALL
        SELECT 'toast.' || unnest(toast.reloptions) FROM pg_class AS heap JOIN pg_class AS toast ON toast.oid = heap.reltoastrelid
        WHERE heap.oid = 'job'::regclass) AS carried
  WHERE setting NOT LIKE 'fillfactor=%';
  IF settings IS NOT NULL THEN
    EXECUTE format('ALTER TABLE job_reordered SET (%s)', settings);
  END IF;
  FOR privilege IN
    SELECT acl.privilege_type, acl.grantee, acl.is_grantable
    FROM pg_class, aclexplode(relacl) AS acl
    WHERE pg_class.oid = 'job'::regclass AND acl.grantee <> pg_class.relowner
  LOOP
    EXECUTE format('GRANT %s ON job_reordered TO %s%s', privilege.privilege_type,
                   CASE WHEN privilege.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(privilege.grantee)) END,
                   CASE WHEN privilege.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
  END LOOP;
END $$;

INSERT INTO job_reordered (
    id, created_at, concurrency_order, max_attempts, priority, timeout_seconds, kind, owner, input,
    idempotency_key, unique_key, concurrency_key, traceparent, has_dependents, parents_left, run_at,
    last_error, attempt, locked_by, result, completed_on, status, version, last_updated,
    retrieved_at, progress)
SELECT
    id, created_at, concurrency_order, max_attempts, priority, timeout_seconds, kind, owner, input,
    idempotency_key, unique_key, concurrency_key, traceparent, has_dependents, parents_left, run_at,
    last_error, attempt, locked_by, result, completed_on, status, version, last_updated,
    retrieved_at, progress
FROM job;

DROP TABLE job;
ALTER TABLE job_reordered RENAME TO job;

ALTER TABLE job ADD CONSTRAINT job_pkey PRIMARY KEY (id);
CREATE INDEX job_concurrency_key_all_idx ON job (concurrency_key, id) WHERE (concurrency_key IS NOT NULL);
CREATE INDEX job_concurrency_key_idx ON job (kind, concurrency_key, queue_state, concurrency_order) WHERE ((concurrency_order IS NOT NULL) AND (queue_state = ANY (ARRAY[1, 2])));
CREATE INDEX job_failed_or_cancelled_idx ON job (queue_state, id) WHERE (queue_state = ANY (ARRAY[3, 4]));
CREATE INDEX job_kind_idx ON job (kind, id) WHERE ((queue_state IS NULL) OR (queue_state > 2));
CREATE UNIQUE INDEX job_owner_idempotency_key_key ON job (owner, idempotency_key) WHERE (idempotency_key IS NOT NULL);
CREATE INDEX job_owner_idx ON job (owner, id) WHERE ((owner <> ''::text) AND ((queue_state IS NULL) OR (queue_state > 2)));
CREATE INDEX job_pending_claim_idx ON job (owner, priority DESC, run_at, id) WHERE (queue_state = 1);
CREATE UNIQUE INDEX job_unique_key_active_key ON job (owner, kind, unique_key) WHERE ((unique_key IS NOT NULL) AND (queue_state = ANY (ARRAY[1, 2])));
CREATE INDEX job_unique_key_idx ON job (unique_key, id) WHERE (unique_key IS NOT NULL);
CREATE INDEX job_wip_stale_idx ON job (heartbeat_at) WHERE (queue_state = 2);
