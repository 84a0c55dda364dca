import type { Queryable } from '../../src/db/database.ts';
import { type ClaimedJob, claimBatchStatement } from '../../src/jobs/sql/claim.ts';

/**
 * A claim taken by hand in a test: the jobs it took, without the stale ones it failed. It stays
 * out of src/ because a caller there must not drop those: the worker counts and logs each
 * timed-out job its claim failed (claimBatchStatement's `timedOut`).
 */
export async function claimJobsStatement(
  db: Queryable,
  workerId: string,
  limit: number,
  timeoutSeconds: number,
): Promise<ClaimedJob[]> {
  return (await claimBatchStatement(db, workerId, limit, timeoutSeconds)).claimed;
}
