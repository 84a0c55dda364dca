-- Workflows (issue 26): jobs that wait for other jobs of their owner. See src/jobs/sql/workflows.ts.

-- What a dependent does when a parent fails for good (or is cancelled): it is cancelled, and so
-- are its own dependents through such edges (`cancel`), or it runs anyway and sees the failure
-- (`continue`).
CREATE TYPE dependency_failure AS ENUM ('cancel', 'continue');

-- A graph submitted at once. Its steps are jobs; their names are the workflow's own.
CREATE TABLE workflow (
  id uuid PRIMARY KEY,
  owner text NOT NULL DEFAULT '',
  on_parent_failure dependency_failure NOT NULL DEFAULT 'cancel',
  created_at timestamptz(6) NOT NULL DEFAULT now()
);

CREATE TABLE workflow_step (
  workflow_id uuid NOT NULL REFERENCES workflow (id) ON DELETE CASCADE ON UPDATE CASCADE,
  name text NOT NULL,
  job_id uuid NOT NULL,
  PRIMARY KEY (workflow_id, name)
);
CREATE UNIQUE INDEX workflow_step_job_key ON workflow_step (job_id);

-- One row per edge. No foreign keys to job: a key referencing job would put PostgreSQL's
-- referential triggers on every update and delete of every job, dependencies or none.
-- parent_name: the parent's step name within a workflow, else its job id; the key of the
-- parent's result in the child's context.
CREATE TABLE job_dependency (
  parent_id uuid NOT NULL,
  child_id uuid NOT NULL,
  parent_name text NOT NULL,
  on_failure dependency_failure NOT NULL DEFAULT 'cancel',
  PRIMARY KEY (parent_id, child_id)
);
CREATE INDEX job_dependency_child_idx ON job_dependency (child_id);

-- has_dependents: set when a dependent is added, never cleared. The statements that finish a job
-- look for dependents only where it is true, so a job without any costs them one boolean test.
-- parents_left: how many of a waiting job's parents have not yet finished; null for jobs that
-- never waited. Both are constants with no index: adding them rewrites nothing, and an update
-- that does not touch them stays HOT as before.
ALTER TABLE job
  ADD COLUMN has_dependents boolean NOT NULL DEFAULT false,
  ADD COLUMN parents_left integer;

-- Settles the dependents of `parents`, jobs that have just finished, in the statement that
-- finished them (it is called from that statement's CTE; a VOLATILE function's queries see the
-- calling statement's changes, and each takes a fresh snapshot). Returns how many jobs changed.
-- STRICT: called with NULL (no finished job had dependents), it is not run at all.
--
-- - A completed parent counts down each dependent's parents_left; the dependent whose count
--   reaches 0 becomes pending.
-- - A failed or cancelled parent cancels its dependents through `cancel` edges, and theirs, the
--   whole closure, as long as they are waiting; through `continue` edges it counts down like a
--   completion, as the cancelled steps do through theirs.
--
-- Exactly once, with two workers completing a child's last two parents at once: each statement
-- updates the child's row, so the second waits for the first to commit, and READ COMMITTED then
-- re-evaluates its UPDATE on the row as the first left it (parents_left already one lower): only
-- one of them sees 0, and a count can never be taken twice from a stale copy. A dependent added
-- while its parent finishes: the submission locks the parent's row (has_dependents = true) and
-- reads its status after the lock; the finishing statement waits for that lock, and the queries
-- here, which run after it, see the new edge (fresh snapshot).
--
-- Deadlocks: a batch completes many parents; their children's rows are locked first here, all
-- at once, in id order, so two statements that share children wait for each other instead of
-- crossing. The set locked is a superset of what is written below.
CREATE FUNCTION job_settle_dependents(parents uuid[]) RETURNS integer
LANGUAGE plpgsql VOLATILE STRICT AS $$
DECLARE
  completed uuid[];
  failed uuid[];
  doomed uuid[];
  cancelled uuid[];
  changed text[];
  released text[];
BEGIN
  SELECT coalesce(array_agg(id) FILTER (WHERE status IN ('completed', 'retrieved')), '{}'),
         coalesce(array_agg(id) FILTER (WHERE status IN ('failed', 'cancelled')), '{}')
    INTO completed, failed
    FROM job WHERE id = ANY (parents) AND has_dependents;
  IF cardinality(completed) + cardinality(failed) = 0 THEN
    RETURN 0;
  END IF;

  WITH RECURSIVE closure(id) AS (
    SELECT d.child_id FROM job_dependency d WHERE d.parent_id = ANY (failed) AND d.on_failure = 'cancel'
    UNION
    SELECT d.child_id FROM job_dependency d JOIN closure ON d.parent_id = closure.id WHERE d.on_failure = 'cancel'
  )
  SELECT coalesce(array_agg(id), '{}') INTO doomed FROM closure;

  PERFORM 1 FROM job
  WHERE id IN (
    SELECT unnest(doomed)
    UNION
    SELECT d.child_id FROM job_dependency d
    WHERE d.parent_id = ANY (completed)
       OR (d.on_failure = 'continue' AND (d.parent_id = ANY (failed) OR d.parent_id = ANY (doomed))))
  ORDER BY id
  FOR UPDATE;

  WITH done AS (
    UPDATE job SET status = 'cancelled', completed_on = now(), last_updated = now(), version = job.version + 1,
                   last_error = 'cancelled: a job it depends on failed or was cancelled'
    WHERE job.id = ANY (doomed) AND job.status = 'waiting'
    RETURNING job.id, job.status, job.version
  )
  SELECT coalesce(array_agg(id), '{}'), coalesce(array_agg(id::text || ':' || status::text || ':' || version::text), '{}')
    INTO cancelled, changed FROM done;

  WITH counts AS (
    SELECT d.child_id, count(*)::int AS n FROM job_dependency d
    WHERE d.parent_id = ANY (completed)
       OR (d.on_failure = 'continue' AND (d.parent_id = ANY (failed) OR d.parent_id = ANY (cancelled)))
    GROUP BY d.child_id
  ),
  counted AS (
    UPDATE job SET
      parents_left = job.parents_left - counts.n,
      status = CASE WHEN job.parents_left - counts.n <= 0 THEN 'pending' ELSE job.status END,
      last_updated = CASE WHEN job.parents_left - counts.n <= 0 THEN now() ELSE job.last_updated END,
      version = job.version + CASE WHEN job.parents_left - counts.n <= 0 THEN 1 ELSE 0 END
    FROM counts
    WHERE job.id = counts.child_id AND job.status = 'waiting'
    RETURNING job.id, job.status, job.version
  )
  SELECT coalesce(array_agg(id::text || ':' || status::text || ':' || version::text) FILTER (WHERE status = 'pending'), '{}')
    INTO released FROM counted;

  RETURN job_announce(changed || released);
END
$$;
