/** Retention: deleting finished jobs once they are old enough. */
import type { Queryable, Statement } from '../../db/database.ts';
import type { JobStatus } from '../../generated/prisma/client.ts';
import { uuidv7Floor } from '../ids.ts';

/*
 * Retention. A job can only have changed after it was created, so every job whose last change is
 * older than the cutoff was also created before it: the id bound lets the primary key's scan start
 * at the oldest job and stop at the cutoff, and the status and `last_updated` decide among those.
 * Small batches with SKIP LOCKED keep each delete short and out of the workers' way.
 *
 * A deletion is announced like any change, as `id:deleted:version+1`, so that a subscriber still
 * waiting on the job (a `completed` one nobody retrieved) hears that it is gone instead of
 * waiting forever.
 *
 * A job's failed attempts (job_attempt_error) go with it. Only a job with a last_error can have
 * any (a failure and a stale takeover each set it, and nothing clears it), so a job that never
 * failed probes nothing.
 *
 * A job that was a workflow's step, or waited for others, takes its rows of job_dependency (as the
 * child) and workflow_step with it, and a workflow goes with its last step. Only such jobs
 * (parents_left is set for them alone) probe those tables.
 */
const pruneJobs: Statement = {
  name: 'jobs_prune',
  text: `
  WITH doomed AS (
    SELECT id FROM job
    WHERE status = ANY($1::job_status[]) AND id < $2::uuid AND last_updated < $3
    LIMIT $4
    FOR UPDATE SKIP LOCKED
  ),
  deleted AS (
    DELETE FROM job USING doomed WHERE job.id = doomed.id
    RETURNING job.id, job.version, job.parents_left, job.last_error
  ),
  history AS (
    DELETE FROM job_attempt_error e USING deleted WHERE deleted.last_error IS NOT NULL AND e.job_id = deleted.id
  ),
  edges AS (
    DELETE FROM job_dependency d USING deleted WHERE deleted.parents_left IS NOT NULL AND d.child_id = deleted.id
  ),
  steps AS (
    DELETE FROM workflow_step s USING deleted WHERE deleted.parents_left IS NOT NULL AND s.job_id = deleted.id
    RETURNING s.workflow_id
  ),
  flows AS (
    DELETE FROM workflow w
    WHERE w.id IN (SELECT workflow_id FROM steps)
      AND NOT EXISTS (SELECT 1 FROM workflow_step s
                      WHERE s.workflow_id = w.id AND NOT EXISTS (SELECT 1 FROM deleted WHERE deleted.id = s.job_id))
  ),
  announced AS (
    SELECT job_announce(array_agg(id::text || ':deleted:' || (version + 1)::text)) AS count FROM deleted
  )
  SELECT deleted.id FROM deleted, announced`,
};

/** Deletes up to `limit` jobs in `statuses` whose last change is older than `before`. */
export async function pruneJobsStatement(
  db: Queryable,
  statuses: readonly JobStatus[],
  before: Date,
  limit: number,
): Promise<number> {
  const rows = await db.query<{ id: string }>(pruneJobs, [statuses, uuidv7Floor(before), before, limit]);
  return rows.length;
}
