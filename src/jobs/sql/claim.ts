/** Claiming: taking due jobs, and stale ones back from workers presumed dead. */
import type { Queryable, Statement } from '../../db/database.ts';
import type { JobStatus } from '../../generated/prisma/client.ts';
import { announce, commitWithoutFlushWait } from './ctes.ts';
import { epochMs } from './rows.ts';

export interface ClaimedJob {
  id: string;
  kind: string;
  num1: string;
  num2: string;
  attempt: number;
  maxAttempts: number;
  /** When the job was added, in ms since the epoch: a number is far cheaper to read than a timestamp. */
  createdAtMs: number;
}

/** A stale job the claim failed because its last attempt had timed out. */
export interface TimedOutJob {
  id: string;
  kind: string;
  attempt: number;
}

/*
 * Claiming. Two candidate sets, each read through its own partial index and locked with
 * FOR UPDATE SKIP LOCKED, so concurrent workers take disjoint rows without waiting on each other:
 * - `stale`: wip jobs whose heartbeat is older than the timeout; their worker is presumed dead.
 *   They go first, being the oldest work in the queue.
 * - `due`: pending jobs whose run_at has passed, by priority, then age. Its LIMIT is what the
 *   stale set left over. (FOR UPDATE is not allowed inside a UNION, hence two CTEs.)
 * A stale job that has used its last attempt is failed here instead of being run again: a job
 * that kills its worker every time must not cycle forever.
 */
const claimJobs: Statement = {
  name: 'jobs_claim',
  text: `
  WITH stale AS (
    SELECT id FROM job
    WHERE status = 'wip' AND last_updated < now() - make_interval(secs => $3)
    ORDER BY last_updated
    LIMIT $2
    FOR UPDATE SKIP LOCKED
  ),
  due AS (
    SELECT id FROM job
    WHERE status = 'pending' AND run_at <= now()
    ORDER BY priority DESC, run_at, id
    LIMIT $2 - (SELECT count(*) FROM stale)
    FOR UPDATE SKIP LOCKED
  ),
  claimed AS (
    UPDATE job SET
      status = CASE WHEN job.status = 'wip' AND job.attempt >= job.max_attempts
                    THEN 'failed' ELSE 'wip' END::job_status,
      attempt = CASE WHEN job.status = 'wip' AND job.attempt >= job.max_attempts
                     THEN job.attempt ELSE job.attempt + 1 END,
      last_error = CASE WHEN job.status = 'wip' AND job.attempt >= job.max_attempts
                        THEN 'timed out: no heartbeat for ' || $3 || ' s on its last attempt'
                        ELSE job.last_error END,
      completed_on = CASE WHEN job.status = 'wip' AND job.attempt >= job.max_attempts
                          THEN now() END,
      locked_by = CASE WHEN job.status = 'wip' AND job.attempt >= job.max_attempts
                       THEN NULL ELSE $1 END,
      last_updated = now(),
      version = job.version + 1
    WHERE job.id IN (SELECT id FROM stale UNION ALL SELECT id FROM due)
    RETURNING job.id, job.kind, job.num1::text AS num1, job.num2::text AS num2, job.attempt,
              job.max_attempts AS "maxAttempts", job.status, job.version, job.priority, job.run_at,
              ${epochMs('job.created_at')} AS "createdAtMs"
  ),
  ${announce('claimed')},
  ${commitWithoutFlushWait}
  SELECT id, kind, num1, num2, attempt, "maxAttempts", "createdAtMs", status
  FROM claimed, announced, flush_not_awaited
  ORDER BY priority DESC, run_at, id`,
};

export interface ClaimResult {
  /** Jobs now `wip` and held by this worker, in the order they should start. */
  claimed: ClaimedJob[];
  /** Stale jobs on their last attempt, failed by this claim instead of run again. */
  timedOut: TimedOutJob[];
}

/**
 * Claims up to `limit` jobs for `workerId`. The stale jobs it failed come back apart, as
 * `timedOut`: the worker counts and logs each (tests claim by hand through test/helpers/claim.ts).
 */
export async function claimBatchStatement(
  db: Queryable,
  workerId: string,
  limit: number,
  timeoutSeconds: number,
): Promise<ClaimResult> {
  const rows = await db.query<ClaimedJob & { status: JobStatus }>(claimJobs, [workerId, limit, timeoutSeconds]);
  const result: ClaimResult = { claimed: [], timedOut: [] };
  for (const { status, ...job } of rows) {
    if (status === 'wip') result.claimed.push(job);
    else result.timedOut.push({ id: job.id, kind: job.kind, attempt: job.attempt });
  }
  return result;
}
