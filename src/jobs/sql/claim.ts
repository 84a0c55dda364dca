/** Claiming: taking due jobs, and stale ones back from workers presumed dead. */
import type { Queryable, Statement } from '../../db/database.ts';
import { type ClaimedRow, claimedCte, type ClaimResult, lostAttemptsCte, STALE_COLUMNS, toClaimResult } from './claimed.ts';
import { announce, commitWithoutFlushWait, settleDependents } from './ctes.ts';
import { ALL_KINDS } from './kind-pause.ts';

/*
 * Claiming. Stale jobs first, then due ones shared fairly between owners, each set read through
 * its own partial index and locked with FOR UPDATE SKIP LOCKED, so concurrent workers take
 * disjoint rows without waiting on each other. The indexes name `queue_state` and
 * `heartbeat_at`, columns PostgreSQL derives from the status (see the cheaper_job migration), so
 * the conditions here must name them too:
 * - `stale`: wip jobs whose heartbeat is older than their kind's timeout (`timeout_seconds`, or
 *   $4 when the kind has none); their worker is presumed dead. They go first, being the oldest
 *   work in the queue, whoever owns them. $3, the shortest timeout of any kind, bounds the index
 *   scan: without it a claim would walk every wip job, healthy ones included, to find none stale.
 * - `owners`: whose turn it is. Owners are known here by their hash (`owner_hash`, see the
 *   owner_hash migration), which keeps the claim index's entries narrow with API keys; two owners
 *   whose hashes meet take their turns as one. $6 is the owner whose turn came last in this
 *   worker's previous claim; the owners with pending jobs (due or not) after it, then those before
 *   it, are found by a loose index scan of the claim index (owner_hash, priority DESC, run_at,
 *   id), one probe per owner whatever its backlog, and $6 itself comes last, unprobed: at most
 *   MAX_OWNERS, and at most the batch. $6 is not probed because a probe must step over the dead
 *   entries at the head of an owner's range (its jobs claimed since the last vacuum), which
 *   `fair` steps over again: with one owner, the walk is two probes that find no other owner and
 *   step over nothing. An owner of $6 with nothing pending gets a share it cannot fill, and
 *   `rest` hands it to the others.
 * - `shares`: what `stale` left of $2, split evenly over those owners; the first ones in the walk
 *   take one more each when it does not divide (the cursor moves past the last of them, so the
 *   extra job goes round).
 * - `fair`: each owner's share of its due jobs, in its own claim order (priority, then age): so
 *   one owner's backlog of 100,000 does not hold another's single job, and priority is honoured
 *   within an owner, not across owners. The scan locks as it walks, skipping rows other workers
 *   hold, so concurrent claims each fill their shares instead of dividing one candidate list. The
 *   inner LIMIT (MAX_SHARE) is a constant for the planner's sake: under a LIMIT it cannot know (the
 *   share) it costs a tenth of the owner's backlog, once per owner it expects (up to 32), and
 *   past 100,000 in all PostgreSQL compiled the statement with JIT: 45 ms a claim instead of 7.
 * - `rest`: what the shares left unfilled, because an owner had fewer due jobs than its share (or
 *   more than MAX_SHARE were asked of one), taken from the others: a claim that takes fewer than
 *   asked makes the claim loop sleep until a wake-up, which must not happen while work is due.
 *   It walks the claim index in owner order, past the rows `fair` took (an array test per row),
 *   and only when some owner filled its share: else no owner has more to give, as at the end of a
 *   drain, and the walk would only re-read what `fair` read. Its array test makes it cost about a
 *   millisecond or two for a claim of 500 that one owner's trickle left mostly to another.
 * With one owner, `owners` costs two probes and `fair` is the single walk the claim always was:
 * choosing 500 among 100,000 pending took 0.55-0.77 ms against 0.35-0.50 before (generic plans,
 * medians of 54 runs), in a claim of 7-25 ms in all, and a drain of 50,000 in claims of 500 took
 * the same time per claim within the noise (README, "Fair share").
 * Every set takes only the kinds this worker runs ($5), less the paused ones: during a rolling
 * deploy an older worker leaves a new kind's jobs to the workers that know it, instead of failing
 * them. `runnable` reads `job_kind_pause` once per claim (an InitPlan: one index probe per kind of
 * $5 while the table is empty), so a pause holds for every process from its commit on; a claim
 * that started before it may still take the kind's jobs, which then run as running jobs do.
 * A paused kind's stale jobs wait for the resume too: a job is not restarted while paused.
 * The scans step over the rows of other kinds, so a backlog of a kind no worker runs (or a
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
 * Each row carries `ownerCursor`, the last owner that took an extra job (or the walk's last): the
 * worker passes it back as $6.
 */
/** At most this many owners share one claim; the cursor brings the others' turn in later claims. */
const MAX_OWNERS = 32;
/**
 * At most this many jobs of one owner in `fair` (see above); `rest` takes any more. Above the
 * default claim (500) with room to spare, since `rest`'s array test grows with both; the planner
 * costs `fair` at about 75 per owner it expects for it, whatever the backlog.
 */
const MAX_SHARE = 5000;
/**
 * Whose turn came last: $6, the hash of that owner, or the open service's one owner ('') at a
 * worker's first claim, so that a service without API keys has no owner but its own in the walk.
 */
const TURN_AFTER = "coalesce($6::int, hashtext(''))";

const claimJobs: Statement = {
  name: 'jobs_claim',
  text: `
  WITH runnable AS MATERIALIZED (
    SELECT ARRAY(SELECT k FROM unnest($5::text[]) AS k
                 WHERE NOT EXISTS (SELECT FROM job_kind_pause AS p WHERE p.kind IN (k, '${ALL_KINDS}'))) AS kinds
  ),
  stale AS (
    SELECT ${STALE_COLUMNS} FROM job
    WHERE queue_state = 2 AND heartbeat_at < now() - make_interval(secs => $3)
      AND heartbeat_at < now() - make_interval(secs => coalesce(timeout_seconds, $4))
      AND array_position((SELECT kinds FROM runnable), kind) IS NOT NULL
    ORDER BY heartbeat_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
  ),
  wanted AS MATERIALIZED (SELECT $2 - (SELECT count(*) FROM stale)::int AS n),
  owners AS MATERIALIZED (
    SELECT owner_hash, row_number() OVER () AS pos, count(*) OVER () AS owners FROM (
      SELECT owner_hash FROM (
        (WITH RECURSIVE after (owner_hash) AS (
           SELECT min(owner_hash) FROM job WHERE queue_state = 1 AND owner_hash > ${TURN_AFTER}
           UNION ALL
           SELECT (SELECT min(owner_hash) FROM job WHERE queue_state = 1 AND owner_hash > after.owner_hash)
           FROM after WHERE after.owner_hash IS NOT NULL)
         SELECT owner_hash FROM after WHERE owner_hash IS NOT NULL)
        UNION ALL
        (WITH RECURSIVE before (owner_hash) AS (
           SELECT min(owner_hash) FROM job WHERE queue_state = 1 AND owner_hash < ${TURN_AFTER}
           UNION ALL
           SELECT (SELECT min(owner_hash) FROM job
                   WHERE queue_state = 1 AND owner_hash > before.owner_hash AND owner_hash < ${TURN_AFTER})
           FROM before WHERE before.owner_hash IS NOT NULL)
         SELECT owner_hash FROM before WHERE owner_hash IS NOT NULL)
        UNION ALL
        SELECT ${TURN_AFTER}) AS turns
      LIMIT least($2, ${MAX_OWNERS})) AS bounded
  ),
  shares AS MATERIALIZED (
    SELECT owner_hash, pos, least(wanted.n / owners + (pos <= wanted.n % owners)::int, ${MAX_SHARE}) AS share,
           pos = coalesce(nullif(wanted.n % owners, 0), owners) AS last_turn
    FROM owners, wanted
  ),
  fair AS MATERIALIZED (
    SELECT picked.id, shares.pos
    FROM shares CROSS JOIN LATERAL (
      SELECT id FROM (
        SELECT id FROM job
        WHERE owner_hash = shares.owner_hash AND queue_state = 1 AND run_at <= now()
          AND array_position((SELECT kinds FROM runnable), kind) IS NOT NULL
        ORDER BY priority DESC, run_at, id
        LIMIT ${MAX_SHARE}
        FOR UPDATE SKIP LOCKED) AS locked
      LIMIT shares.share) AS picked
  ),
  rest AS (
    SELECT id FROM job
    WHERE queue_state = 1 AND run_at <= now() AND array_position((SELECT kinds FROM runnable), kind) IS NOT NULL
      AND id <> ALL (ARRAY(SELECT id FROM fair))
      AND EXISTS (SELECT FROM (SELECT pos, count(*) AS taken FROM fair GROUP BY pos) AS taken
                  JOIN shares USING (pos) WHERE taken.taken = shares.share)
    ORDER BY owner_hash, priority DESC, run_at, id
    LIMIT (SELECT n FROM wanted) - (SELECT count(*) FROM fair)
    FOR UPDATE SKIP LOCKED
  ),
  ${claimedCte('ARRAY(SELECT id FROM stale UNION ALL SELECT id FROM fair UNION ALL SELECT id FROM rest)')},
  ${lostAttemptsCte},
  ${announce('claimed')},
  ${settleDependents('claimed', { condition: "status = 'failed'" })},
  ${commitWithoutFlushWait}
  SELECT id, kind, input, attempt, "maxAttempts", "createdAtMs", traceparent, status, "lastError",
         (SELECT owner_hash::text FROM shares WHERE last_turn) AS "ownerCursor"
  FROM claimed, announced, settled, flush_not_awaited
  ORDER BY priority DESC, run_at, id`,
};

/** A claim of unlimited kinds: its jobs, and where the next claim's turn among owners begins. */
export interface FairClaimResult extends ClaimResult {
  /** The owner whose turn came last (its hash): pass it to the next claim. Unchanged when nothing was claimed. */
  ownerCursor: OwnerCursor;
}

/** Where a claim's turn among owners begins: the hash of the owner whose turn came last, as text. */
export type OwnerCursor = string | null;

/** The cursor of a worker's first claim: owners are served from the first in the claim index. */
export const FIRST_OWNER_CURSOR: OwnerCursor = null;

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
 * Claims up to `limit` jobs for `workerId`, owners taking turns from after `ownerCursor` (the
 * previous claim's `ownerCursor`). The stale jobs it failed come back apart, as `timedOut`: the
 * worker counts and logs each (tests claim by hand through test/helpers/claim.ts).
 */
export async function claimBatchStatement(
  db: Queryable,
  workerId: string,
  limit: number,
  scope: ClaimScope,
  ownerCursor: OwnerCursor = FIRST_OWNER_CURSOR,
): Promise<FairClaimResult> {
  const rows = await db.query<ClaimedRow & { ownerCursor: OwnerCursor }>(claimJobs, [
    workerId,
    limit,
    scope.shortestTimeoutSeconds,
    scope.defaultTimeoutSeconds,
    scope.kinds,
    ownerCursor,
  ]);
  const next = rows[0]?.ownerCursor ?? ownerCursor;
  return { ...toClaimResult(rows.map(({ ownerCursor: _, ...row }) => row)), ownerCursor: next };
}
