/**
 * Claiming the jobs of a kind with a concurrency limit: at most N of them wip at once, across
 * every worker process. Kinds without one never come here (see `jobs_claim` in claim.ts).
 */
import type { Database, Statement } from '../../db/database.ts';
import { type ClaimedRow, claimedCte, type ClaimResult, toClaimResult } from './claim.ts';
import { announce, commitWithoutFlushWait } from './ctes.ts';
import { ALL_KINDS } from './kind-pause.ts';

/** One limited kind, as a worker claims it. */
export interface LimitedKindScope {
  kind: string;
  /** At most this many of its jobs wip at once, across all workers. */
  concurrency: number;
  /** Its jobs' stale timeout: the kind's, else the default; at most the default. */
  timeoutSeconds: number;
  /** The stale timeout of jobs that carry none (JOB_TIMEOUT_SECONDS). */
  defaultTimeoutSeconds: number;
}

export interface LimitedClaimResult extends ClaimResult {
  /**
   * The kind's jobs that were wip before this claim, by any worker: when the claim took fewer
   * than asked, a slot frees when one of these (or one it took) leaves wip, and the worker claims
   * again on hearing that.
   */
  holders: string[];
}

/*
 * Serialising the claims of one kind. The limit is a count of the kind's wip jobs, and two claims
 * that counted at once would each take the free slots. So each claim of a limited kind runs in a
 * transaction that first takes the kind's advisory lock (transaction-scoped: released at COMMIT,
 * after the claim is visible), then claims in a second statement. The second statement matters:
 * in READ COMMITTED each statement reads a snapshot taken when it starts, so a claim that waited
 * for the lock inside one statement would still count as of before the previous holder's commit,
 * and take its slots again. Counting in a statement that starts after the lock is granted sees
 * every claim of the kind that held it before.
 * Completions are not serialised: one that commits while a claim counts makes the count too high
 * (never too low), and its NOTIFY wakes the worker to claim again (see `holders`).
 * Claims of different kinds do not wait for each other (the lock's second key is the kind's hash;
 * two kinds with one hash would only wait for each other). A kind's claims are one short
 * transaction each, so the lock is held for a millisecond or two.
 */
const lockKind: Statement = {
  name: 'jobs_claim_limited_lock',
  text: `SELECT pg_advisory_xact_lock(hashtext('job_kind_concurrency'), hashtext($1)) AS locked`,
};

/*
 * The claim proper, after the lock. As `jobs_claim`, but for one kind ($5):
 * - `running`: the kind's wip jobs, through the stale rule's partial index on wip jobs; there are
 *   at most as many as all workers' slots and queues hold.
 * - `stale`: its wip jobs whose worker is presumed dead. Taking one over leaves the count as it
 *   is, so they need no free slot.
 * - `due`: up to the free slots, $6 less the running count, and what `stale` left of $2.
 * A paused kind claims nothing, its stale jobs included (see claim.ts).
 * The final SELECT always yields a row, whose `holders` lists `running`; a row without a claimed
 * job has a NULL id.
 */
const claimLimitedJobs: Statement = {
  name: 'jobs_claim_limited',
  text: `
  WITH runnable AS MATERIALIZED (
    SELECT NOT EXISTS (SELECT FROM job_kind_pause AS p WHERE p.kind IN ($5, '${ALL_KINDS}')) AS yes
  ),
  running AS MATERIALIZED (
    SELECT ARRAY(SELECT id::text FROM job WHERE status = 'wip' AND kind = $5) AS ids
  ),
  stale AS (
    SELECT id FROM job
    WHERE status = 'wip' AND kind = $5 AND (SELECT yes FROM runnable)
      AND last_updated < now() - make_interval(secs => $3)
      AND last_updated < now() - make_interval(secs => coalesce(timeout_seconds, $4))
    ORDER BY last_updated
    LIMIT $2
    FOR UPDATE SKIP LOCKED
  ),
  due AS (
    SELECT id FROM job
    WHERE status = 'pending' AND run_at <= now() AND kind = $5 AND (SELECT yes FROM runnable)
    ORDER BY priority DESC, run_at, id
    LIMIT greatest(0, least($2 - (SELECT count(*) FROM stale), $6 - (SELECT cardinality(ids) FROM running)))
    FOR UPDATE SKIP LOCKED
  ),
  ${claimedCte('ARRAY(SELECT id FROM stale UNION ALL SELECT id FROM due)')},
  ${announce('claimed')},
  ${commitWithoutFlushWait}
  SELECT running.ids AS holders, claimed.id, claimed.kind, claimed.input, claimed.attempt, claimed."maxAttempts",
         claimed."createdAtMs", claimed.traceparent, claimed.status, claimed."lastError"
  FROM running CROSS JOIN announced CROSS JOIN flush_not_awaited LEFT JOIN claimed ON true
  ORDER BY claimed.priority DESC, claimed.run_at, claimed.id`,
};

/** Claims up to `limit` jobs of one limited kind for `workerId`, within its concurrency. */
export async function claimLimitedStatement(
  db: Database,
  workerId: string,
  limit: number,
  scope: LimitedKindScope,
): Promise<LimitedClaimResult> {
  const rows = await db.transaction(async (tx) => {
    await tx.query(lockKind, [scope.kind]);
    return tx.query<ClaimedRow & { holders: string[] }>(claimLimitedJobs, [
      workerId,
      limit,
      scope.timeoutSeconds,
      scope.defaultTimeoutSeconds,
      scope.kind,
      scope.concurrency,
    ]);
  });
  const holders = rows[0]?.holders ?? [];
  return { ...toClaimResult(rows.filter((row) => row.id !== null).map(({ holders: _, ...row }) => row)), holders };
}
