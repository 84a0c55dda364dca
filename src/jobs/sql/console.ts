/**
 * The operator console's reads and bulk writes (src/jobs/console.ts): jobs found by a filter, a
 * page, a count, and retry / cancel / retrieve of every job a filter finds.
 *
 * Each statement's text depends on which filters are set, and each combination is its own named
 * statement (`console_list_k_s`, …): a single text with `($n IS NULL OR kind = $n)` conditions
 * would become a generic plan after five runs, and a generic plan cannot pick the index a given
 * filter needs. Every filter the console offers is served by an index that costs a job nothing
 * after its insert (README, "The operator console"):
 * - time range, id and the cursor: the primary key. Ids are UUIDv7, so a creation time range is
 *   an id range, and newest-first is a backward walk of the key;
 * - kind: job_kind_idx (kind, id); owner: job_owner_idx (owner_hash, id). Both hold settled jobs only
 *   (queue_state NULL or above 2; see the console_indexes migration for why), so a kind's or an
 *   owner's pending and running jobs are found through the queue's partial indexes, and a filter
 *   by kind or owner with no status is a union of the two (`inFlightApart`);
 * - a unique or concurrency key: job_unique_key_idx, job_concurrency_key_all_idx, each (key, id)
 *   over the jobs that have that key, in every state: a job without the key has no entry, and one
 *   with it an entry per non-HOT update (its insert, claim and outcome), a cost only keyed jobs
 *   pay. An idempotency key: the filter always names its owner (JobConsole sees to it), and
 *   job_owner_idempotency_key_key serves it; an index of the key alone would cost every write of
 *   every job of clients that send a key with each request;
 * - status: the queue's partial indexes through queue_state (pending, wip, failed, cancelled);
 *   completed and retrieved, the common ones, are found walking the primary key newest first;
 * - a JSON match in input or result: containment (`@>`) checked on the rows of the other
 *   filters' range. It has no index of its own (a GIN index over every input would cost each
 *   insert far more than the job itself), so it is bounded: without a time range, it searches
 *   the last MATCH_WINDOW_MS of jobs (src/jobs/console-filter.ts).
 */
import type { Queryable, Statement } from '../../db/database.ts';
import type { Job, JobStatus } from '../../generated/prisma/client.ts';
import { announce } from './ctes.ts';
import { QUEUE_STATE } from './reads.ts';
import { columns, type JobRow, toJob } from './rows.ts';

/** What the console finds jobs by; every field is optional, and all given ones must hold. */
export interface JobFilter {
  owner?: string;
  kind?: string;
  status?: JobStatus;
  id?: string;
  uniqueKey?: string;
  concurrencyKey?: string;
  idempotencyKey?: string;
  /** Ids from (inclusive): the smallest UUIDv7 of the range's first millisecond. */
  idFrom?: string;
  /** Ids before (exclusive). */
  idBefore?: string;
  /** A JSON object the job's input must contain (jsonb `@>`). */
  inputContains?: string;
  /** A JSON object the job's result must contain. */
  resultContains?: string;
}

/** The condition of job_kind_idx and job_owner_idx, written out so that the planner matches it. */
const SETTLED = '(job.queue_state IS NULL OR job.queue_state > 2)';
// An OR, not `IN (1, 2)`: the planner serves each arm from its own partial index (the claim's,
// the stale rule's) and merges them, where it read the whole table for the IN.
const IN_FLIGHT = '(job.queue_state = 1 OR job.queue_state = 2)';

/**
 * The filter as SQL conditions on `job`, its parameters from `$first`, and a name for the
 * combination. `inFlightApart`: the filter names a kind or an owner but no status, so the settled
 * jobs (through job_kind_idx or job_owner_idx) and the pending and running ones (through the
 * queue's indexes) must be read apart and merged.
 */
function conditions(filter: JobFilter, first: number): { where: string[]; values: unknown[]; key: string; inFlightApart: boolean } {
  const where: string[] = [];
  const values: unknown[] = [];
  let key = '';
  const add = (letter: string, sql: (n: string) => string, value: unknown) => {
    values.push(value);
    where.push(sql(`$${first + values.length - 1}`));
    key += letter;
  };
  if (filter.owner === '') add('e', (n) => `job.owner = ${n}`, filter.owner);
  // job_owner_idx and the claim index hold the owner's hash, which finds the entries, and the
  // owner decides. job_owner_idx holds owners other than '' only: its condition, written out,
  // lets a generic plan (one that does not know $n) use it too.
  else if (filter.owner !== undefined) {
    add('o', (n) => `job.owner_hash = hashtext(${n}) AND job.owner = ${n} AND job.owner <> ''`, filter.owner);
  }
  if (filter.kind !== undefined) add('k', (n) => `job.kind = ${n}`, filter.kind);
  if (filter.status !== undefined) {
    const state = QUEUE_STATE[filter.status];
    // The partial indexes' condition, written out, so that the planner can match it; the status
    // itself stays the condition that decides. The text differs with the state, and so must the
    // statement's name: a connection refuses a name it has prepared with another text.
    if (state !== null) where.push(`job.queue_state = ${state}`);
    else where.push(SETTLED);
    add(`s${state ?? ''}`, (n) => `job.status = ${n}::job_status`, filter.status);
  }
  if (filter.id !== undefined) add('i', (n) => `job.id = ${n}::uuid`, filter.id);
  if (filter.uniqueKey !== undefined) add('u', (n) => `job.unique_key = ${n}`, filter.uniqueKey);
  if (filter.concurrencyKey !== undefined) add('c', (n) => `job.concurrency_key = ${n}`, filter.concurrencyKey);
  if (filter.idempotencyKey !== undefined) add('y', (n) => `job.idempotency_key = ${n}`, filter.idempotencyKey);
  if (filter.idFrom !== undefined) add('f', (n) => `job.id >= ${n}::uuid`, filter.idFrom);
  if (filter.idBefore !== undefined) add('b', (n) => `job.id < ${n}::uuid`, filter.idBefore);
  if (filter.inputContains !== undefined) add('j', (n) => `job.input @> ${n}::jsonb`, filter.inputContains);
  if (filter.resultContains !== undefined) add('r', (n) => `job.result @> ${n}::jsonb`, filter.resultContains);
  const byKindOrOwner = filter.kind !== undefined || (filter.owner !== undefined && filter.owner !== '');
  // The key indexes hold a job in every state: a filter by a key needs no second part.
  const byKey = filter.uniqueKey !== undefined || filter.concurrencyKey !== undefined || filter.idempotencyKey !== undefined;
  return { where, values, key: key || 'all', inFlightApart: byKindOrOwner && !byKey && filter.status === undefined };
}

/**
 * `SELECT <select> FROM job WHERE <where> ORDER BY id <direction> LIMIT <limit>`, or, when the
 * settled jobs and those in flight are read apart, the same over each part, merged.
 */
function pageOfJobs(select: string, where: string[], direction: 'ASC' | 'DESC', limit: string, inFlightApart: boolean): string {
  const part = (conditions: string[]) =>
    `SELECT ${select} FROM job ${conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : ''} ORDER BY job.id ${direction} LIMIT ${limit}`;
  if (!inFlightApart) return part(where);
  return `SELECT * FROM ((${part([...where, SETTLED])}) UNION ALL (${part([...where, IN_FLIGHT])})) AS job
          ORDER BY job.id ${direction} LIMIT ${limit}`;
}

export interface ConsolePage {
  filter: JobFilter;
  order: 'newest' | 'oldest';
  /** The last id of the previous page. */
  after?: string;
  limit: number;
}

/** A page of jobs, newest (or oldest) first: one index walk in id order, stopped at `limit`. */
export async function consoleListStatement(db: Queryable, page: ConsolePage): Promise<Job[]> {
  const { where, values, key, inFlightApart } = conditions(page.filter, 1);
  const newest = page.order === 'newest';
  if (page.after !== undefined) {
    values.push(page.after);
    where.push(`job.id ${newest ? '<' : '>'} $${values.length}::uuid`);
  }
  values.push(page.limit);
  const statement: Statement = {
    name: `console_list_${key}_${newest ? 'n' : 'o'}${page.after !== undefined ? 'a' : ''}`,
    text: `SELECT ${columns('job')} FROM (${pageOfJobs('job.*', where, newest ? 'DESC' : 'ASC', `$${values.length}`, inFlightApart)}) AS job
      ORDER BY job.id ${newest ? 'DESC' : 'ASC'}`,
  };
  return (await db.query<JobRow>(statement, values)).map(toJob);
}

/**
 * How many jobs the filter finds, counting at most `cap` + 1: the confirmation of a bulk action
 * states the number, or "more than cap", and never costs more than the action itself would. The
 * order is the list's: it keeps the planner on the indexes a page uses, where a bare LIMIT may
 * choose a sequential scan that reads the whole table when few rows match.
 */
export async function consoleCountStatement(db: Queryable, filter: JobFilter, cap: number): Promise<number> {
  const { where, values, key, inFlightApart } = conditions(filter, 1);
  values.push(cap + 1);
  const statement: Statement = {
    name: `console_count_${key}`,
    text: `SELECT count(*)::int AS jobs FROM (${pageOfJobs('job.id', where, 'DESC', `$${values.length}`, inFlightApart)}) AS found`,
  };
  const [row] = await db.query<{ jobs: number }>(statement, values);
  return row!.jobs;
}

export type ConsoleAction = 'retry' | 'cancel' | 'retrieve';

/** The status an action applies to: other jobs the filter finds are left as they are. */
export const ACTION_STATUS: Record<ConsoleAction, JobStatus> = { retry: 'failed', cancel: 'pending', retrieve: 'completed' };

/*
 * Each action's SET. A retry is a new attempt of the same job: it is pending again, due now, and
 * allowed one attempt more than it has made; `attempt`, `last_error` and `locked_by` stay as they
 * were (the count the next claim adds to, and the last attempt's error and worker), until the new
 * attempt's own outcome; the job's history (job_attempt_error) is untouched. A cancel and a
 * retrieve do what the customer's own do (customer.ts).
 */
const SET: Record<ConsoleAction, string> = {
  retry: `status = 'pending', run_at = now(), max_attempts = greatest(job.max_attempts, job.attempt + 1),
          completed_on = NULL`,
  cancel: `status = 'cancelled', completed_on = now()`,
  retrieve: `status = 'retrieved', retrieved_at = now()`,
};

/**
 * Applies `action` to at most `cap` jobs of the filter that are in the action's status, and
 * answers with their ids. The jobs are locked in id order, skipping those another transaction
 * holds (a worker completing one, a customer cancelling it): those are not in the state the
 * action needs any more, or will not be once it commits, and the count the caller gets says how
 * many it did change. A retry whose unique key another pending or running job holds is refused
 * by job_unique_key_active_key (a CONFLICT, see console.ts). Every change is announced, as any
 * job's is, so subscribers and sleeping workers hear of it.
 */
export async function consoleActStatement(db: Queryable, action: ConsoleAction, filter: JobFilter, cap: number): Promise<Job[]> {
  const { where, values, key } = conditions({ ...filter, status: ACTION_STATUS[action] }, 1);
  values.push(cap);
  const statement: Statement = {
    name: `console_${action}_${key}`,
    text: `
    WITH chosen AS (
      SELECT job.id FROM job WHERE ${where.join(' AND ')}
      ORDER BY job.id LIMIT $${values.length} FOR UPDATE SKIP LOCKED
    ),
    changed AS (
      UPDATE job SET ${SET[action]}, last_updated = now(), version = job.version + 1
      FROM chosen WHERE job.id = chosen.id AND job.status = '${ACTION_STATUS[action]}'
      RETURNING job.*
    ),
    ${announce('changed', { delayable: action === 'retry' })}
    SELECT ${columns('changed')} FROM changed, announced`,
  };
  return (await db.query<JobRow>(statement, values)).map(toJob);
}

/** One kind's queue now: pending jobs due and delayed, and running ones; each count stops at the cap. */
export interface KindQueue {
  kind: string;
  due: number;
  delayed: number;
  running: number;
}

/*
 * Counted through the claim's and the stale rule's partial indexes (queue_state 1 and 2), each
 * stopped at $1 rows: a backlog of millions costs a scan of $1 index entries, not of the backlog.
 */
const kindQueues: Statement = {
  name: 'console_kind_queues',
  text: `
  SELECT kind, count(*) FILTER (WHERE state = 1 AND run_at <= now())::int AS due,
         count(*) FILTER (WHERE state = 1 AND run_at > now())::int AS delayed,
         count(*) FILTER (WHERE state = 2)::int AS running
  FROM (
    (SELECT kind, 1 AS state, run_at FROM job WHERE queue_state = 1 LIMIT $1)
    UNION ALL
    (SELECT kind, 2, run_at FROM job WHERE queue_state = 2 LIMIT $1)
  ) queued
  GROUP BY kind`,
};

export function kindQueuesStatement(db: Queryable, cap: number): Promise<KindQueue[]> {
  return db.query<KindQueue>(kindQueues, [cap]);
}

/** One minute of one kind's finished jobs. */
export interface MinuteOfKind {
  kind: string;
  /** The minute's start, in epoch milliseconds. */
  minute: number;
  completed: number;
  failed: number;
  /** Milliseconds from creation to completion, of the jobs completed in that minute; null when none. */
  p50: number | null;
  p99: number | null;
}

/*
 * The last hour's throughput and latency, per kind and minute, from the jobs created since $1 (the
 * smallest UUIDv7 of an hour ago): a backward walk of the primary key over one hour of ids,
 * stopped after the newest $2 jobs, so a refresh never reads more than $2 rows however large the
 * table is and however busy the hour was. A job created more than an hour before it finished is
 * not counted; the console says so. Cancelled jobs are neither.
 */
const lastHour: Statement = {
  name: 'console_last_hour',
  text: `
  WITH recent AS (
    SELECT kind, status, created_at, completed_on FROM job WHERE id >= $1::uuid ORDER BY id DESC LIMIT $2
  )
  SELECT kind, (floor(extract(epoch FROM completed_on) / 60) * 60000)::float8 AS minute,
    count(*) FILTER (WHERE status IN ('completed', 'retrieved'))::int AS completed,
    count(*) FILTER (WHERE status = 'failed')::int AS failed,
    (percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM completed_on - created_at) * 1000)
      FILTER (WHERE status IN ('completed', 'retrieved')))::float8 AS p50,
    (percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM completed_on - created_at) * 1000)
      FILTER (WHERE status IN ('completed', 'retrieved')))::float8 AS p99
  FROM recent
  WHERE status IN ('completed', 'retrieved', 'failed') AND completed_on >= now() - interval '1 hour'
  GROUP BY kind, minute
  ORDER BY kind, minute`,
};

export function lastHourStatement(db: Queryable, idFrom: string, cap: number): Promise<MinuteOfKind[]> {
  return db.query<MinuteOfKind>(lastHour, [idFrom, cap]);
}

/*
 * A job run now, outside a schedule's ticks, becomes its last job: a tick row at the moment it
 * ran. Cron ticks fall on whole seconds and this one on the microsecond, so the two do not meet;
 * if they ever did, the tick already there is kept.
 */
const scheduleRan: Statement = {
  name: 'console_schedule_ran',
  text: `INSERT INTO schedule_tick (schedule_id, fire_time, job_id) VALUES ($1, now(), $2) ON CONFLICT DO NOTHING`,
};

export async function scheduleRanStatement(db: Queryable, scheduleId: string, jobId: string): Promise<void> {
  await db.query(scheduleRan, [scheduleId, jobId]);
}
