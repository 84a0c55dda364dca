import type { Queryable } from '../../src/db/database.ts';
import { claimBatchStatement } from '../../src/jobs/sql/claim.ts';
import type { ClaimedJob } from '../../src/jobs/sql/claimed.ts';

/** Every kind a test makes. */
const TEST_KINDS = ['add', 'greet', 'echo', 'doomed'];

/**
 * A claim taken by hand in a test: the jobs it took, without the stale ones it failed. It stays
 * out of src/ because a caller there must not drop those: the worker counts and logs each
 * timed-out job its claim failed (claimBatchStatement's `timedOut`).
 */
export async function claimJobsStatement(
  db: Queryable,
  workerId: string,
  limit: number,
  timeout: number | { defaultSeconds: number; shortestSeconds: number },
): Promise<ClaimedJob[]> {
  const { defaultSeconds, shortestSeconds } = typeof timeout === 'number' ? { defaultSeconds: timeout, shortestSeconds: timeout } : timeout;
  const scope = { kinds: TEST_KINDS, defaultTimeoutSeconds: defaultSeconds, shortestTimeoutSeconds: shortestSeconds };
  return (await claimBatchStatement(db, workerId, limit, scope)).claimed;
}
