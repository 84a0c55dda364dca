/**
 * Claiming the jobs of a kind with limits: at most N of them wip at once, at most M of one
 * concurrency key, and at most R starts per interval (of the kind, or of each key), across every
 * worker process. Kinds without limits never come here (see `jobs_claim` in claim.ts).
 */
import type { Database, Statement } from '../../db/database.ts';
import { type ClaimedRow, claimedCte, type ClaimResult, lostAttemptsCte, STALE_COLUMNS, toClaimResult } from './claimed.ts';
import { announce, commitWithoutFlushWait, settleDependents } from './ctes.ts';
import { ALL_KINDS } from './kind-pause.ts';

/** One limited kind, as a worker claims it. */
export interface LimitedKindScope {
  kind: string;
  /** At most this many of its jobs wip at once, across all workers; null for no limit. */
  concurrency: number | null;
  /** At most this many of its jobs of one concurrency key wip at once; null for no such limit. */
  concurrencyPerKey: number | null;
  /** At most `limit` starts per `intervalMs`, of the kind or (perKey) of each key; null for no limit. */
  rateLimit: { limit: number; intervalMs: number; perKey: boolean } | null;
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
  /**
   * With a rate limit: in how many ms a start leaves a full bucket's window, when the claim took
   * fewer than asked (jobs may be waiting for it); the worker claims again then. Null otherwise.
   */
  rateDueInMs: number | null;
}

/*
 * Serialising the claims of one kind. A limit is a count of the kind's wip jobs, and two claims
 * that counted at once would each take the free slots. So each claim of a limited kind runs in a
 * transaction that first takes the kind's advisory lock (transaction-scoped: released at COMMIT,
 * after the claim is visible), then claims in a second statement. The second statement matters:
 * in READ COMMITTED each statement reads a snapshot taken when it starts, so a claim that waited
 * for the lock inside one statement would still count as of before the previous holder's commit,
 * and take its slots again. Counting in a statement that starts after the lock is granted sees
 * every claim of the kind that held it before.
 * The per-key limit needs the lock as much: without it, a job of a key whose submission committed
 * late (two requests adding jobs of one key at once) could be claimed next to the key's running
 * job by a claim whose snapshot did not yet show that job wip.
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
 *   is, so they need no free slot (but a start: see the rate limit below).
 * - `due`: up to the free slots, $6 less the running count (no bound when $6 is NULL), and what
 *   `stale` left of $2, from the candidates, by priority then age:
 * - `candidates`: for a kind whose jobs take keys ($8: a per-key running limit $7, or a per-key
 *   rate limit), the heads of its keys (`key_heads`), and its jobs without a key in submission
 *   order, through the key index; otherwise its due jobs in claim order (a job's key is ignored).
 * - `key_heads`: each key with pending jobs, found by a loose index scan of the key index (one
 *   probe per key, in `keys`), gives its first pending jobs in submission order
 *   (`concurrency_order`), as many as $7 less its wip jobs (and as its bucket has tokens, below),
 *   and of those the ones that are due.
 *   So a key's jobs start in submission order, at most $7 at once, and a job that waits (a retry
 *   in its backoff, a later `runAt`) holds the jobs behind it: with $7 = 1, a key is a strict
 *   sequence. Jobs of other keys, and jobs without a key, are not held.
 * Costs. `key_heads` costs three index probes per key it visits, whatever the key's depth, and
 * stops once it has $2 heads: the walk reads the keys in key order and PostgreSQL computes a
 * recursive CTE only as far as it is read. So when more keys are ready than a claim takes, it
 * takes the first in key order; the others' heads are taken by the next claims, as the first keys
 * turn busy. Without that bound every claim walked every waiting key: with a key per job, a drain
 * of 5,000 cost PostgreSQL 1.2 ms a job (bench/drain.ts, `ours-keyed`). Keys that are busy yield
 * no head and are walked past, so a claim still visits every busy key before its $2 heads. Jobs without a key of such a kind
 * are taken in submission order, their priority honoured only among the batch taken. A kind with
 * only a global limit walks the pending jobs of every kind in the claim index's order, owner by
 * owner (the claim index has no kind column; one that had would cost every job of every kind an
 * entry), stepping over those ahead of its own: a backlog of another kind ahead slows each of its
 * claims. Limited kinds do not share fairly between owners (see claim.ts): their candidates come
 * in owner order, their priority honoured among the candidates. Kinds
 * without limits never pay any of it.
 *
 * Rate limits ($9 starts per $10 ms; per key when $11) are a sliding window: `job_rate_start`
 * holds a row per start still within the interval, in buckets by key ('' for the kind, and for
 * jobs without a key when per key). A bucket's tokens are $9 less its rows of the last interval
 * (counted up to $9, through the primary key). The window is read on `clock`, the clock after the
 * lock was granted: the claims of a kind are serialised, so their times grow in the order they
 * count, and a claim that takes k <= tokens jobs at time t leaves every interval that holds t at
 * most $9 starts (each such interval ends after t, so its earlier starts are within (t − I, t]).
 * `now()`, the transaction's start, would not do: a claim that waited for the lock would record
 * starts earlier than those it counted after.
 * - Kind-wide, the tokens bound `due` as $6 does; per key, they bound each key's heads in
 *   `key_heads`, and the jobs without a key.
 * - `stale`: a job taken over starts again, so it takes a token too: at most the kind's tokens,
 *   or per key one job a claim, of a key with a token; and `due` takes nothing in a claim that
 *   took one over (its rows are not counted yet), and says "claim again at once" (0 ms).
 * - `started` writes a row per job made wip (not per job failed for its timeout); `expired`
 *   deletes the kind's rows that left the window (the expiry index), so the table holds at most
 *   $9 rows per bucket that started a job within the interval.
 * - `rate_due`: when the claim took fewer than $2, in how many ms the first full bucket frees a
 *   token (its oldest start in the window, plus the interval): the worker claims again then,
 *   without polling. A full bucket with nothing pending costs one empty claim, once per interval
 *   at most. It reads the kind's rows of the last interval: per key, every key's.
 * Limits of the window: it trusts the database server's clock (a step back lets starts through
 *   early); and the claim commits without waiting for its WAL flush (commitWithoutFlushWait), so a
 *   database crash may lose the starts of its last moments with the claims that made them, while
 *   a worker may already have run those jobs: after such a crash one interval may hold more.
 * A paused kind claims nothing, its stale jobs included (see claim.ts).
 * The final SELECT always yields a row; one of its rows (whichever) lists `running` in
 * `holders`, and `rate_due`; the others have NULL there: the driver parses a text[] per row, and every row carrying
 * the list made a claim of 500 among 5,000 running parse 2.5 million ids (bench/drain.ts,
 * `ours-keyed`: two thirds of the worker's CPU). A row without a claimed job has a NULL id.
 */
const bucketTokens = (key: string) => `($9 - (SELECT count(*) FROM (
    SELECT FROM job_rate_start AS r WHERE r.kind = $5 AND r.key = ${key} AND r.started_at > (SELECT since FROM clock)
    LIMIT $9) AS counted))`;

const claimLimitedJobs: Statement = {
  name: 'jobs_claim_limited',
  text: `
  WITH runnable AS MATERIALIZED (
    SELECT NOT EXISTS (SELECT FROM job_kind_pause AS p WHERE p.kind IN ($5, '${ALL_KINDS}')) AS yes
  ),
  running AS MATERIALIZED (
    SELECT ARRAY(SELECT id::text FROM job WHERE queue_state = 2 AND kind = $5) AS ids
  ),
  clock AS MATERIALIZED (
    SELECT t, t - $10::int * interval '1 millisecond' AS since FROM (SELECT clock_timestamp() AS t) AS now
  ),
  kind_tokens AS MATERIALIZED (
    SELECT CASE WHEN $9::int IS NOT NULL AND NOT $11 THEN ${bucketTokens(`''`)} END AS n
  ),
  stale AS (
    SELECT ${STALE_COLUMNS} FROM job
    WHERE queue_state = 2 AND kind = $5 AND (SELECT yes FROM runnable)
      AND heartbeat_at < now() - make_interval(secs => $3)
      AND heartbeat_at < now() - make_interval(secs => coalesce(timeout_seconds, $4))
      AND (NOT $11 OR ${bucketTokens(`coalesce(concurrency_key, '')`)} > 0)
    ORDER BY heartbeat_at
    LIMIT greatest(0, least($2, coalesce((SELECT n FROM kind_tokens), $2), CASE WHEN $11 THEN 1 ELSE $2 END))
    FOR UPDATE SKIP LOCKED
  ),
  key_heads AS MATERIALIZED (
    WITH RECURSIVE keys (key) AS (
      SELECT min(concurrency_key) FROM job
      WHERE kind = $5 AND concurrency_order IS NOT NULL AND concurrency_key IS NOT NULL AND queue_state = 1
        AND $8
      UNION ALL
      SELECT (SELECT min(concurrency_key) FROM job
              WHERE kind = $5 AND concurrency_order IS NOT NULL AND concurrency_key > keys.key AND queue_state = 1)
      FROM keys WHERE keys.key IS NOT NULL
    )
    SELECT head.id
    FROM keys CROSS JOIN LATERAL (
      SELECT id, run_at FROM job
      WHERE kind = $5 AND concurrency_order IS NOT NULL AND concurrency_key = keys.key AND queue_state = 1
      ORDER BY concurrency_order
      LIMIT greatest(0, least(
        CASE WHEN $7::int IS NULL THEN $2 ELSE $7 - (SELECT count(*) FROM (
          SELECT FROM job AS running_of_key
          WHERE running_of_key.kind = $5 AND running_of_key.concurrency_order IS NOT NULL
            AND running_of_key.concurrency_key = keys.key AND running_of_key.queue_state = 2
          LIMIT $7) AS counted) END,
        CASE WHEN $11 THEN ${bucketTokens('keys.key')} ELSE $2 END))
    ) AS head
    WHERE keys.key IS NOT NULL AND head.run_at <= now()
    LIMIT $2
  ),
  candidates AS (
    SELECT id FROM key_heads
    UNION ALL
    (SELECT id FROM job
     WHERE $8 AND kind = $5 AND concurrency_order IS NOT NULL AND concurrency_key IS NULL
       AND queue_state = 1 AND run_at <= now()
     ORDER BY concurrency_order
     LIMIT greatest(0, least($2, CASE WHEN $11 THEN ${bucketTokens(`''`)} ELSE $2 END)))
    UNION ALL
    (SELECT id FROM job
     WHERE NOT $8 AND queue_state = 1 AND run_at <= now() AND kind = $5
     ORDER BY owner_hash, priority DESC, run_at, id
     LIMIT $2)
  ),
  due AS (
    SELECT id FROM job
    WHERE id = ANY (ARRAY(SELECT id FROM candidates)) AND queue_state = 1 AND (SELECT yes FROM runnable)
    ORDER BY priority DESC, run_at, id
    LIMIT CASE WHEN $9::int IS NOT NULL AND EXISTS (SELECT FROM stale) THEN 0
               ELSE greatest(0, least($2 - (SELECT count(*) FROM stale), coalesce($6 - (SELECT cardinality(ids) FROM running), $2),
                                      coalesce((SELECT n FROM kind_tokens), $2))) END
    FOR UPDATE SKIP LOCKED
  ),
  ${claimedCte('ARRAY(SELECT id FROM stale UNION ALL SELECT id FROM due)')},
  ${lostAttemptsCte},
  ${announce('claimed')},
  ${settleDependents('claimed', { condition: "status = 'failed'" })},
  ${commitWithoutFlushWait},
  started AS (
    INSERT INTO job_rate_start (kind, key, started_at, job_id)
    SELECT $5, CASE WHEN $11 THEN coalesce(job.concurrency_key, '') ELSE '' END, (SELECT t FROM clock), claimed.id
    FROM claimed JOIN job ON job.id = claimed.id
    WHERE $9::int IS NOT NULL AND claimed.status = 'wip'
    RETURNING key, started_at
  ),
  expired AS (
    DELETE FROM job_rate_start WHERE $9::int IS NOT NULL AND kind = $5 AND started_at <= (SELECT since FROM clock)
  ),
  rate_due AS (
    SELECT CASE
      WHEN $9::int IS NULL THEN NULL
      WHEN EXISTS (SELECT FROM stale) THEN 0
      WHEN (SELECT count(*) FROM claimed) >= $2 THEN NULL
      ELSE (SELECT greatest(0, ceil(extract(epoch FROM min(first_start) + $10::int * interval '1 millisecond' - clock_timestamp()) * 1000))::int
            FROM (SELECT min(started_at) AS first_start
                  FROM (SELECT key, started_at FROM job_rate_start
                        WHERE kind = $5 AND started_at > (SELECT since FROM clock)
                        UNION ALL SELECT key, started_at FROM started) AS window_starts
                  GROUP BY key HAVING count(*) >= $9) AS full_buckets)
    END AS ms
  )
  SELECT CASE WHEN row_number() OVER () = 1 THEN running.ids END AS holders,
         CASE WHEN row_number() OVER () = 1 THEN rate_due.ms END AS "rateDueInMs",
         claimed.id, claimed.kind, claimed.input, claimed.attempt, claimed."maxAttempts",
         claimed."createdAtMs", claimed.traceparent, claimed.status, claimed."lastError"
  FROM running CROSS JOIN announced CROSS JOIN settled CROSS JOIN flush_not_awaited CROSS JOIN rate_due LEFT JOIN claimed ON true
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
    const rate = scope.rateLimit;
    return tx.query<ClaimedRow & { holders: string[] | null; rateDueInMs: number | null }>(claimLimitedJobs, [
      workerId,
      limit,
      scope.timeoutSeconds,
      scope.defaultTimeoutSeconds,
      scope.kind,
      scope.concurrency,
      scope.concurrencyPerKey,
      scope.concurrencyPerKey !== null || rate?.perKey === true,
      rate?.limit ?? null,
      rate?.intervalMs ?? null,
      rate?.perKey === true,
    ]);
  });
  const first = rows.find((row) => row.holders !== null);
  const claimed = rows.filter((row) => row.id !== null).map(({ holders: _, rateDueInMs: __, ...row }) => row);
  return { ...toClaimResult(claimed), holders: first?.holders ?? [], rateDueInMs: first?.rateDueInMs ?? null };
}

/*
 * Jobs of a kind with a per-key limit are claimed through the key index, which holds only jobs
 * with a `concurrency_order`. A job added before its kind had the limit, or by a process whose
 * definition of the kind did not have it yet (a rolling deploy), has none; a worker that starts
 * with the limit numbers such jobs here, oldest first, so that they are claimed too. One pass
 * over the pending and wip jobs at a worker's start; it changes no state, so announces nothing.
 */
const adoptUnordered: Statement = {
  name: 'jobs_sequence_adopt',
  text: `
  WITH unordered AS (
    SELECT id FROM job
    WHERE queue_state IN (1, 2) AND concurrency_order IS NULL AND kind = ANY ($1::text[])
    ORDER BY created_at, id
    FOR UPDATE
  ),
  numbered AS (SELECT id, nextval('job_concurrency_order_seq') AS concurrency_order FROM unordered)
  UPDATE job SET concurrency_order = numbered.concurrency_order
  FROM numbered WHERE job.id = numbered.id`,
};

/** Numbers the jobs of `kinds` (kinds with a per-key limit) that have no `concurrency_order`. */
export async function adoptUnorderedStatement(db: Database, kinds: readonly string[]): Promise<void> {
  if (kinds.length > 0) await db.query(adoptUnordered, [kinds]);
}
