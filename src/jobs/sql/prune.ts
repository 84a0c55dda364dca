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
    RETURNING job.id, job.version
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
