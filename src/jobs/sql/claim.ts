/** Claiming: taking due jobs, and stale ones back from workers presumed dead. */
import type { Queryable, Statement } from '../../db/database.ts';
import type { JobStatus } from '../../generated/prisma/client.ts';
import { announce, commitWithoutFlushWait, settleDependents } from './ctes.ts';
import { ALL_KINDS } from './kind-pause.ts';
import { epochMs } from './rows.ts';

export interface ClaimedJob {
  id: string;
  kind: string;
  /** As the kind's input schema made it at submission. */
  input: unknown;
  attempt: number;
  maxAttempts: number;
  /** When the job was added, in ms since the epoch: a number is far cheaper to read than a timestamp. */
  createdAtMs: number;
  /** The W3C trace context of the request that added the job; null when tracing was off then. */
  traceparent: string | null;
}

/** A row of `claimed`, as a claim statement returns it. */
export type ClaimedRow = ClaimedJob & { status: JobStatus; lastError: string | null };

/** A stale job the claim failed because its last attempt had timed out. */
export interface TimedOutJob {
  id: string;
  kind: string;
  attempt: number;
  lastError: string;
}

/**
 * The CTE `claimed`: the jobs of `ids` (an array expression of locked ids) made wip for worker
 * $1, or failed when they are stale on their last attempt ($4 is the default timeout, for the
 * message). Every claim statement shares it, so a job is claimed the same way by each.
 * A job failed here settles its dependents (workflows) in the same statement: each claim
 * statement joins `settleDependents('claimed', ...)`, one boolean test per claimed row.
 */
export function claimedCte(ids: string): string {
  return `claimed AS (
    UPDATE job SET
      status = CASE WHEN job.status = 'wip' AND job.attempt >= job.max_attempts
                    THEN 'failed' ELSE 'wip' END::job_status,
      attempt = CASE WHEN job.status = 'wip' AND job.attempt >= job.max_attempts
                     THEN job.attempt ELSE job.attempt + 1 END,
      last_error = CASE WHEN job.status = 'wip' AND job.attempt >= job.max_attempts
                        THEN 'timed out: no heartbeat for ' || coalesce(job.timeout_seconds, $4) || ' s on its last attempt'
                        ELSE job.last_error END,
      completed_on = CASE WHEN job.status = 'wip' AND job.attempt >= job.max_attempts
                          THEN now() END,
      locked_by = CASE WHEN job.status = 'wip' AND job.attempt >= job.max_attempts
                       THEN NULL ELSE $1 END,
      last_updated = now(),
      version = job.version + 1
    WHERE job.id = ANY (${ids})
    RETURNING job.id, job.kind, job.input, job.attempt, job.max_attempts AS "maxAttempts", job.status,
              job.version, job.priority, job.run_at, job.last_error AS "lastError",
              ${epochMs('job.created_at')} AS "createdAtMs", job.traceparent, job.has_dependents
  )`;
}

/*
 * Claiming. Two candidate sets, each read through its own partial index and locked with
 * FOR UPDATE SKIP LOCKED, so concurrent workers take disjoint rows without waiting on each other.
 * The indexes name `queue_state` and `heartbeat_at`, columns PostgreSQL derives from the status
 * (see the cheaper_job migration), so the conditions here must name them too:
 * - `stale`: wip jobs whose heartbeat is older than their kind's timeout (`timeout_seconds`, or
 *   $4 when the kind has none); their worker is presumed dead. They go first, being the oldest
 *   work in the queue. $3, the shortest timeout of any kind, bounds the index scan: without it a
 *   claim would walk every wip job, healthy ones included, to find none stale.
 * - `due`: pending jobs whose run_at has passed, by priority, then age. Its LIMIT is what the
 *   stale set left over. (FOR UPDATE is not allowed inside a UNION, hence two CTEs.)
 * Both take only the kinds this worker runs ($5), less the paused ones: during a rolling deploy
 * an older worker leaves a new kind's jobs to the workers that know it, instead of failing them.
 * `runnable` reads `job_kind_pause` once per claim (an InitPlan: one index probe per kind of $5
 * while the table is empty), so a pause holds for every process from its commit on; a claim
 * that started before it may still take the kind's jobs, which then run as running jobs do.
 * A paused kind's stale jobs wait for the resume too: a job is not restarted while paused.
 * The scan steps over the rows of other kinds, so a backlog of a kind no worker runs (or a
 * paused one, or a limited one) costs every claim a little.
 * The test is written `array_position(...) IS NOT NULL`, not `kind = ANY(...)`: on a table not
 * analysed yet (a bulk enqueue, autovacuum behind), the planner took `= ANY` to match almost no
 * row, and read every pending job through a bitmap scan and sorted them, instead of walking the
 * claim index and stopping at the LIMIT: 71 ms against 2 ms for a claim of 500 among 20,000.
 * A stale job that has used its last attempt is failed here instead of being run again: a job
 * that kills its worker every time must not cycle forever.
 * The UPDATE finds the locked rows by an array of their ids, through the primary key. Written as
 * `id IN (SELECT ...)`, the planner cannot know how many rows the CTEs yield (their LIMIT is a
 * subquery) and hash-joined them against a sequential scan of the whole table: every claim read
 * every job, done ones included (EXPLAIN ANALYZE, 20,000 jobs, a claim of 500: 76 ms → 25 ms).
 */
const claimJobs: Statement = {
  name: 'jobs_claim',
  text: `
  WITH runnable AS MATERIALIZED (
    SELECT ARRAY(SELECT k FROM unnest($5::text[]) AS k
                 WHERE NOT EXISTS (SELECT FROM job_kind_pause AS p WHERE p.kind IN (k, '${ALL_KINDS}'))) AS kinds
  ),
  stale AS (
    SELECT id FROM job
    WHERE queue_state = 2 AND heartbeat_at < now() - make_interval(secs => $3)
      AND heartbeat_at < now() - make_interval(secs => coalesce(timeout_seconds, $4))
      AND array_position((SELECT kinds FROM runnable), kind) IS NOT NULL
    ORDER BY heartbeat_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
  ),
  due AS (
    SELECT id FROM job
    WHERE queue_state = 1 AND run_at <= now() AND array_position((SELECT kinds FROM runnable), kind) IS NOT NULL
    ORDER BY priority DESC, run_at, id
    LIMIT $2 - (SELECT count(*) FROM stale)
    FOR UPDATE SKIP LOCKED
  ),
  ${claimedCte('ARRAY(SELECT id FROM stale UNION ALL SELECT id FROM due)')},
  ${announce('claimed')},
  ${settleDependents('claimed', { condition: "status = 'failed'" })},
  ${commitWithoutFlushWait}
  SELECT id, kind, input, attempt, "maxAttempts", "createdAtMs", traceparent, status, "lastError"
  FROM claimed, announced, settled, flush_not_awaited
  ORDER BY priority DESC, run_at, id`,
};

export interface ClaimResult {
  /** Jobs now `wip` and held by this worker, in the order they should start. */
  claimed: ClaimedJob[];
  /** Stale jobs on their last attempt, failed by this claim instead of run again. */
  timedOut: TimedOutJob[];
}

/** What a worker may claim, and when the stale rule takes a job back: see `claimJobs`. */
export interface ClaimScope {
  /** The kinds the worker runs, less those with limits (claim-limited.ts claims those). */
  kinds: readonly string[];
  /** The stale timeout of jobs whose kind sets none (JOB_TIMEOUT_SECONDS). */
  defaultTimeoutSeconds: number;
  /** The shortest timeout of any kind this worker runs, and at most the default. */
  shortestTimeoutSeconds: number;
}

/**
 * Claims up to `limit` jobs for `workerId`. The stale jobs it failed come back apart, as
 * `timedOut`: the worker counts and logs each (tests claim by hand through test/helpers/claim.ts).
 */
export async function claimBatchStatement(
  db: Queryable,
  workerId: string,
  limit: number,
  scope: ClaimScope,
): Promise<ClaimResult> {
  const rows = await db.query<ClaimedRow>(claimJobs, [
    workerId,
    limit,
    scope.shortestTimeoutSeconds,
    scope.defaultTimeoutSeconds,
    scope.kinds,
  ]);
  return toClaimResult(rows);
}

/** A claim's rows, split into the jobs it took and the stale ones it failed. */
export function toClaimResult(rows: readonly ClaimedRow[]): ClaimResult {
  const result: ClaimResult = { claimed: [], timedOut: [] };
  for (const { status, lastError, ...job } of rows) {
    if (status === 'wip') result.claimed.push(job);
    else result.timedOut.push({ id: job.id, kind: job.kind, attempt: job.attempt, lastError: lastError ?? 'timed out' });
  }
  return result;
}
