/** Adding jobs: one statement per batch of requests, idempotency and unique keys included. */
import type { Queryable, Statement } from '../../db/database.ts';
import type { Job } from '../../generated/prisma/client.ts';
import { announce } from './ctes.ts';
import { columns, jsonArray, type JobRow, toJob } from './rows.ts';

export interface NewJob {
  id: string;
  kind: string;
  /** The input as JSON text, checked by its kind's schema and for what PostgreSQL can store. */
  input: string;
  maxAttempts: number;
  /** The kind's stale timeout; null for the worker's default. */
  timeoutSeconds: number | null;
  runAt: Date | null;
  priority: number;
  idempotencyKey: string | null;
  /** Absent or null for a job without one. */
  concurrencyKey?: string | null;
  /** Whether its kind limits jobs per key: the job then takes a `concurrency_order`, key or none. */
  sequenced?: boolean;
  owner: string;
  /**
   * The W3C trace context of the request, while tracing is on (src/tracing.ts): the worker's
   * spans for the job continue that trace. Absent or null when tracing is off.
   */
  traceparent?: string | null;
  /**
   * While a job of the same owner, kind and unique key is pending or running, this one is not
   * added (see `OnUnique`). Absent or null for a job without one.
   */
  uniqueKey?: string | null;
  onUnique?: OnUnique;
}

/**
 * What a job whose unique key is held answers: `refuse` refuses its request (CONFLICT), `existing`
 * answers with the job that holds the key (created: false) and lets the request's other jobs in.
 */
export type OnUnique = 'refuse' | 'existing';

/*
 * One statement per batch, which commits whole or not at all: the rows of one request never
 * commit without each other. Several requests may share it (see InsertCoalescer); $10 numbers
 * each row's request, and a request refused for a key conflict writes none of its rows while the
 * others go in.
 * - `found`: inputs whose (owner, key) already names a job, as of this statement's snapshot. Each
 *   answers with that job, or, when its kind or input differ (jsonb equality: blind to key order
 *   and to how a JSON number was spelt), refuses its request.
 * - No ON CONFLICT: a key committed by another transaction after the snapshot (or still being
 *   inserted: the unique index waits for it) fails the whole statement with a unique violation
 *   instead of skipping that row, which would commit the rest of its request. The caller sends it
 *   again, and the new snapshot sees the winner (`isKeyRace`).
 * - Keyed rows go in in key order, so two statements that hold the same keys wait for each other
 *   instead of deadlocking. Callers keep one (owner, key) to one row of one request.
 * - $11, the rows' trace contexts, is NULL (not an array of NULLs) when no row has one, as while
 *   tracing is off: ROWS FROM pads a function that returns fewer rows, as unnest(NULL) does
 *   (none), with NULLs. So are $12, their concurrency keys, and $13, which rows are `sequenced`,
 *   when no row has one; and $14 and $15, the unique keys and whether a held one refuses, when no
 *   row has a unique key: `held` then joins nothing, one empty index probe per row.
 * - `held`: inputs whose (owner, kind, unique key) names a pending or running job (queue_state 1
 *   or 2, the condition of job_unique_key_active_key, so that index answers), as of the snapshot,
 *   and no idempotency key answered first. A key taken after the snapshot fails the statement on
 *   job_unique_key_active_key, as an idempotency key does, and is sent again.
 * - A sequenced row (its kind limits jobs per key) draws its `concurrency_order` in `input`, as
 *   the rows are read in the order sent (a CTE with a volatile function is computed once, before
 *   the INSERT sorts its rows), so that a key's jobs start in submission order; other rows draw
 *   none. A row that turns out to repeat an idempotency key leaves a gap.
 */
const insertJobs: Statement = {
  name: 'jobs_insert',
  text: `
  WITH input AS (
    SELECT i.*, CASE WHEN i.sequenced THEN nextval('job_concurrency_order_seq') END AS concurrency_order
    FROM ROWS FROM (unnest($1::uuid[]), unnest($2::text[]), jsonb_array_elements($3::jsonb), unnest($4::int[]),
                             unnest($5::int[]), unnest($6::timestamptz[]), unnest($7::int[]), unnest($8::text[]),
                             unnest($9::text[]), unnest($10::int[]), unnest($11::text[]), unnest($12::text[]),
                             unnest($13::boolean[]), unnest($14::text[]), unnest($15::boolean[]))
      AS i(id, kind, input, max_attempts, timeout_seconds, run_at, priority, idempotency_key, owner, request, traceparent,
           concurrency_key, sequenced, unique_key, unique_refuses)
  ),
  found AS (
    SELECT input.id AS input_id, input.request, job.id AS job_id,
           (job.kind <> input.kind OR job.input <> input.input) AS conflict
    FROM input JOIN job ON job.owner = input.owner AND job.idempotency_key = input.idempotency_key
  ),
  held AS (
    SELECT input.id AS input_id, input.request, job.id AS job_id, input.unique_refuses AS conflict
    FROM input JOIN job ON job.owner = input.owner AND job.kind = input.kind AND job.unique_key = input.unique_key
                       AND job.queue_state IN (1, 2)
    WHERE NOT EXISTS (SELECT 1 FROM found WHERE found.input_id = input.id)
  ),
  inserted AS (
    INSERT INTO job (id, kind, input, max_attempts, timeout_seconds, run_at, priority, idempotency_key, owner, traceparent,
                     concurrency_key, concurrency_order, unique_key)
    SELECT id, kind, input, max_attempts, timeout_seconds, coalesce(run_at, now()), priority, idempotency_key, owner, traceparent,
           concurrency_key, concurrency_order, unique_key
    FROM input
    WHERE NOT EXISTS (SELECT 1 FROM found WHERE found.input_id = input.id)
      AND NOT EXISTS (SELECT 1 FROM found WHERE found.request = input.request AND found.conflict)
      AND NOT EXISTS (SELECT 1 FROM held WHERE held.input_id = input.id)
      AND NOT EXISTS (SELECT 1 FROM held WHERE held.request = input.request AND held.conflict)
    ORDER BY owner, idempotency_key, kind, unique_key
    RETURNING *
  ),
  ${announce('inserted', { delayable: true })}
  SELECT ${columns('inserted')}, inserted.id AS "inputId", 'created' AS outcome FROM inserted, announced
  UNION ALL
  SELECT ${columns('job')}, found.input_id, CASE WHEN found.conflict THEN 'conflict' ELSE 'found' END
  FROM found JOIN job ON job.id = found.job_id
  UNION ALL
  SELECT ${columns('job')}, held.input_id, CASE WHEN held.conflict THEN 'held' ELSE 'found' END
  FROM held JOIN job ON job.id = held.job_id`,
};

export interface InsertedJob {
  job: Job;
  /** False when the idempotency key matched an existing job, which is returned instead. */
  created: boolean;
}

/**
 * What became of one input: `created`; `found`, an earlier job with the same idempotency key and
 * input, or the job holding its unique key (onUnique `existing`); `conflict`, an earlier job with
 * the same idempotency key and other input; or `held`, a job holding its unique key (onUnique
 * `refuse`). After `conflict` or `held` its request wrote nothing.
 */
export interface StoredJob {
  job: Job;
  outcome: 'created' | 'found' | 'conflict' | 'held';
}

/**
 * Inserts jobs and returns them keyed by the id each input proposed. `requests[i]` numbers the
 * request `jobs[i]` belongs to (all one request by default); a request with a `conflict` gets no
 * row for its other inputs. A key raced by another transaction fails the statement: see
 * `isKeyRace`.
 */
export async function insertJobsStatement(
  db: Queryable,
  jobs: readonly NewJob[],
  requests: readonly number[] = jobs.map(() => 0),
): Promise<Map<string, StoredJob>> {
  const rows = await db.query<JobRow & { inputId: string; outcome: StoredJob['outcome'] }>(insertJobs, [
    jobs.map((job) => job.id),
    jobs.map((job) => job.kind),
    // One JSON array, not a jsonb[]: see completionValues in outcomes.ts.
    jsonArray(jobs.map((job) => job.input)),
    jobs.map((job) => job.maxAttempts),
    jobs.map((job) => job.timeoutSeconds),
    jobs.map((job) => job.runAt),
    jobs.map((job) => job.priority),
    jobs.map((job) => job.idempotencyKey),
    jobs.map((job) => job.owner),
    requests,
    // Tracing off, no row has a trace context: one NULL instead of a NULL per row.
    jobs.some((job) => job.traceparent) ? jobs.map((job) => job.traceparent ?? null) : null,
    jobs.some((job) => job.concurrencyKey) ? jobs.map((job) => job.concurrencyKey ?? null) : null,
    jobs.some((job) => job.sequenced) ? jobs.map((job) => job.sequenced ?? false) : null,
    // Likewise the unique keys: most batches have none.
    ...(jobs.some((job) => job.uniqueKey)
      ? [jobs.map((job) => job.uniqueKey ?? null), jobs.map((job) => (job.onUnique ?? 'refuse') === 'refuse')]
      : [null, null]),
  ]);
  return new Map(rows.map(({ inputId, outcome, ...row }) => [inputId, { job: toJob(row), outcome }]));
}

/**
 * Whether an insert failed only because another transaction took one of its idempotency or unique
 * keys at the same time (a unique violation on the key, or a deadlock between two such inserts).
 * Nothing of it was written, and sent again it sees the other's job.
 */
export function isKeyRace(error: unknown): boolean {
  const { code, constraint } = (error ?? {}) as { code?: unknown; constraint?: unknown };
  return (code === '23505' && KEY_INDEXES.has(constraint as string)) || code === '40P01';
}

const KEY_INDEXES = new Set(['job_owner_idempotency_key_key', 'job_unique_key_active_key']);
