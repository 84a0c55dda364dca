/**
 * A kind of job: its name, the schemas of its input and result, its default options and the
 * handler that does the work. Every kind, the built-in `add` included, is one `defineKind` call.
 */
import type { ParentOutcome } from '../jobs/sql/workflows.ts';
import type { z } from 'zod';
import { type CatchUp, parseTiming } from '../schedules/cron.ts';

export interface KindOptions {
  /** Attempts before the job fails for good. Default: MAX_ATTEMPTS. */
  maxAttempts?: number;
  /**
   * Seconds without a heartbeat after which the stale rule takes a started job back from its
   * worker, presumed dead. Default: JOB_TIMEOUT_SECONDS.
   */
  timeoutSeconds?: number;
  /** The delay before a retry: exponential from baseDelayMs, capped at maxDelayMs. Default: RETRY_*. */
  backoff?: { baseDelayMs: number; maxDelayMs: number };
  /** The priority of a job submitted without one, -1000 to 1000. Default: 0. */
  priority?: number;
  /**
   * At most this many of the kind's jobs run at once, across every worker process (1 to 10000):
   * for a partner API that allows so many connections, say. Its jobs beyond the limit stay
   * pending. Default: no limit, and none of its cost (see src/jobs/sql/claim-limited.ts).
   */
  concurrency?: number;
  /**
   * Jobs submitted with the same `concurrencyKey` run at most this many at once (1 to 10000),
   * and start in the order they were submitted: 1 makes each key a sequence, one job after
   * another (a customer's orders, say). Jobs of other keys, and jobs without a key, keep flowing
   * while a key is busy. A job may carry a key only when its kind sets this. Default: none.
   */
  concurrencyPerKey?: number;
  /**
   * At most `limit` of the kind's jobs start within any `intervalMs` milliseconds, across every
   * worker process: a sliding window, so no interval of that length, wherever it begins, holds
   * more starts. A retry, or a stale job taken over, is a start again. Jobs over the limit stay
   * pending and start once a start leaves the window. With `perKey`, each `concurrencyKey` has a
   * limit of its own (jobs without a key share one), and jobs may carry a key (started in
   * submission order within a key, as with concurrencyPerKey). Default: none, and none of its cost.
   */
  rateLimit?: RateLimit;
}

/** See KindOptions.rateLimit. */
export interface RateLimit {
  /** Starts allowed per interval: 1 to 10000. */
  limit: number;
  /** The interval, in milliseconds: 1 to 86400000 (a day). */
  intervalMs: number;
  /** One limit per concurrency key instead of one for the kind. Default: false. */
  perKey?: boolean;
}

/**
 * A schedule a kind declares: made at every start by a process that runs the kind (found again by
 * kind and name), and deleted once the kind no longer declares it. See README, "Schedules".
 */
export interface KindSchedule {
  /** Tells it apart from the kind's other schedules; the same rules as a kind's name. */
  name: string;
  /** Five fields (minute hour day month weekday), or six with seconds first. */
  cron: string;
  /** An IANA time zone, such as Europe/Berlin. Default: UTC. */
  timeZone?: string;
  /** The input of each job it makes, checked by the kind's input schema when the kind is defined. */
  input?: unknown;
  /** Ticks missed while no scheduler ran: `skip` them, fire `one` (the latest; the default), or `all` up to catchUpLimit. */
  catchUp?: CatchUp;
  /** For `all`: at most this many missed ticks fire, the latest ones; 1 to 1000, default 10. */
  catchUpLimit?: number;
}

export interface JobContext {
  jobId: string;
  /** 1 on the first attempt. */
  attempt: number;
  maxAttempts: number;
  /** Fires when the worker gives the job up: at shutdown, or when it lost the job to the stale rule. */
  readonly signal: AbortSignal;
  /**
   * Tells the job's watchers how far it has got: a small JSON object, such as
   * `{ percent: 40, message: "page 4 of 10" }`, checked by the kind's `progress` schema. It returns
   * at once and never throws: the value is stored in the background, at most every
   * PROGRESS_MIN_INTERVAL_MS (later values replace one still waiting), and the last one before the
   * handler returns is stored before the job's outcome. A value that fails the schema or the size
   * cap is dropped, with one warning per job.
   */
  progress(value: unknown): void;
  /**
   * The outcomes of the jobs this one depends on (workflows, `dependsOn`), by step name (or, for a
   * job outside the workflow, its id): status, result, and the error of one that failed or was
   * cancelled (which a dependent sees only under the policy `continue`). One read, when called;
   * `{}` for a job without parents. A handler in a worker thread has it too: the thread asks,
   * and the main thread reads and answers.
   */
  parents(): Promise<Record<string, ParentOutcome>>;
}

/** Computes a job's result. A thrown error fails the attempt; PermanentJobError fails the job. */
export type KindHandler<Input, Result> = (input: Input, context: JobContext) => Result | Promise<Result>;

/**
 * A handler that runs in a worker thread (see ThreadPool): `module` is a file whose `export`
 * (default: `default`) is the handler. For CPU-bound work, which on the event loop would hold up
 * heartbeats, API answers and every other job of the process.
 */
export interface ThreadHandler {
  module: string | URL;
  export?: string;
}

export interface KindDefinition<In extends z.ZodType, Out extends z.ZodType> {
  /** Letters, digits, `_`, `-` and `.`, starting with a letter; at most 64 characters. */
  name: string;
  description?: string;
  /** Checks a submission's input. Its output is what is stored and handed to the handler, so it must be JSON. */
  input: In;
  /** Checks what the handler returns. A result that fails it fails the job, with the schema's message. */
  result: Out;
  /**
   * Checks what the handler passes to `context.progress`; its output, a JSON object, is what is
   * stored. Default: any JSON object.
   */
  progress?: z.ZodType;
  options?: KindOptions;
  /** Recurring jobs of this kind. */
  schedules?: readonly KindSchedule[];
  handler: KindHandler<z.output<In>, z.input<Out>> | ThreadHandler;
}

/** A defined kind. The type parameters keep a handler's input and result typed at the definition. */
export interface JobKind<In extends z.ZodType = z.ZodType, Out extends z.ZodType = z.ZodType> {
  readonly name: string;
  readonly description: string | undefined;
  readonly input: In;
  readonly result: Out;
  /** The schema of its progress values, if the definition gave one. */
  readonly progress: z.ZodType | undefined;
  readonly options: Readonly<KindOptions>;
  readonly schedules: readonly KindSchedule[];
  readonly handler: KindHandler<z.output<In>, z.input<Out>> | ThreadHandler;
}

export const KIND_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;

/**
 * Marks what defineKind made, so a kinds module's exports can be told apart from other values.
 * Symbol.for, not a module's own symbol: a team's code and the service may load two copies of
 * this file (a linked package, say), and a kind from either must count.
 */
const DEFINED_KIND = Symbol.for('job-service.kind');

export class KindDefinitionError extends Error {
  override name = 'KindDefinitionError';
}

/** Checks a definition once, where it is made, so a bad one fails the start instead of a job. */
export function defineKind<In extends z.ZodType, Out extends z.ZodType>(definition: KindDefinition<In, Out>): JobKind<In, Out> {
  const { name, description, input, result, progress, options = {}, schedules = [], handler } = definition;
  const problem = kindProblem(definition);
  if (problem) throw new KindDefinitionError(`kind ${JSON.stringify(name)}: ${problem}`);
  return Object.freeze({
    name,
    description,
    input,
    result,
    progress,
    options: Object.freeze({ ...options, ...(options.rateLimit ? { rateLimit: Object.freeze({ ...options.rateLimit }) } : {}) }),
    schedules: Object.freeze(schedules.map((schedule) => Object.freeze({ ...schedule }))),
    handler,
    [DEFINED_KIND]: true,
  });
}

/**
 * Whether a kind's jobs may carry a concurrency key: it limits jobs per key, running or starting.
 * Such a kind's jobs are numbered in submission order (`concurrency_order`), key or none.
 */
export function takesKeys(kind: Pick<JobKind, 'options'>): boolean {
  return kind.options.concurrencyPerKey !== undefined || kind.options.rateLimit?.perKey === true;
}

export function isJobKind(value: unknown): value is JobKind {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[DEFINED_KIND] === true;
}

function kindProblem(definition: KindDefinition<z.ZodType, z.ZodType>): string | undefined {
  const { name, input, result, progress, options = {}, handler } = definition;
  if (typeof name !== 'string' || !KIND_NAME.test(name)) {
    return 'the name must start with a letter and hold only letters, digits, _, - and . (at most 64)';
  }
  if (!isSchema(input)) return 'input must be a zod schema';
  if (!isSchema(result)) return 'result must be a zod schema';
  if (progress !== undefined && !isSchema(progress)) return 'progress must be a zod schema';
  if (typeof handler !== 'function' && !(handler && (typeof handler.module === 'string' || handler.module instanceof URL))) {
    return 'handler must be a function, or { module } naming a file to run in a worker thread';
  }
  const { maxAttempts, timeoutSeconds, backoff, priority, concurrency, concurrencyPerKey, rateLimit } = options;
  if (maxAttempts !== undefined && !isIntegerIn(maxAttempts, 1, 100)) return 'options.maxAttempts must be an integer from 1 to 100';
  if (timeoutSeconds !== undefined && !isIntegerIn(timeoutSeconds, 1, 86_400)) {
    return 'options.timeoutSeconds must be an integer from 1 to 86400';
  }
  if (priority !== undefined && !isIntegerIn(priority, -1000, 1000)) return 'options.priority must be an integer from -1000 to 1000';
  if (concurrency !== undefined && !isIntegerIn(concurrency, 1, 10_000)) return 'options.concurrency must be an integer from 1 to 10000';
  if (concurrencyPerKey !== undefined && !isIntegerIn(concurrencyPerKey, 1, 10_000)) {
    return 'options.concurrencyPerKey must be an integer from 1 to 10000';
  }
  if (rateLimit !== undefined && rateLimitProblem(rateLimit)) return rateLimitProblem(rateLimit);
  if (
    backoff !== undefined &&
    !(isIntegerIn(backoff.baseDelayMs, 0, 3_600_000) && isIntegerIn(backoff.maxDelayMs, backoff.baseDelayMs, 86_400_000))
  ) {
    return 'options.backoff needs integer baseDelayMs (0 to 3600000) and maxDelayMs (at least baseDelayMs, at most 86400000)';
  }
  return schedulesProblem(definition);
}

function rateLimitProblem(rateLimit: RateLimit): string | undefined {
  if (typeof rateLimit !== 'object' || rateLimit === null) return 'options.rateLimit must be { limit, intervalMs, perKey? }';
  const unknown = Object.keys(rateLimit).find((key) => !['limit', 'intervalMs', 'perKey'].includes(key));
  if (unknown !== undefined) return `options.rateLimit has an unknown field ${JSON.stringify(unknown)} (limit, intervalMs, perKey)`;
  if (!isIntegerIn(rateLimit.limit, 1, 10_000)) return 'options.rateLimit.limit must be an integer from 1 to 10000';
  if (!isIntegerIn(rateLimit.intervalMs, 1, 86_400_000)) return 'options.rateLimit.intervalMs must be an integer from 1 to 86400000 (milliseconds)';
  if (rateLimit.perKey !== undefined && typeof rateLimit.perKey !== 'boolean') return 'options.rateLimit.perKey must be a boolean';
  return undefined;
}

function schedulesProblem({ input, schedules = [] }: KindDefinition<z.ZodType, z.ZodType>): string | undefined {
  if (!Array.isArray(schedules)) return 'schedules must be an array';
  const names = new Set<string>();
  for (const [index, schedule] of schedules.entries()) {
    const at = `schedules.${index}`;
    if (typeof schedule?.name !== 'string' || !KIND_NAME.test(schedule.name)) {
      return `${at}.name must start with a letter and hold only letters, digits, _, - and . (at most 64)`;
    }
    if (names.has(schedule.name)) return `${at}.name repeats ${JSON.stringify(schedule.name)}`;
    names.add(schedule.name);
    const timing = parseTiming({ cron: String(schedule.cron), timeZone: schedule.timeZone ?? 'UTC' });
    if ('problem' in timing) return `${at}.${timing.field} ${timing.problem}`;
    if (schedule.catchUp !== undefined && !['skip', 'one', 'all'].includes(schedule.catchUp)) return `${at}.catchUp must be skip, one or all`;
    if (schedule.catchUpLimit !== undefined && !isIntegerIn(schedule.catchUpLimit, 1, 1000)) {
      return `${at}.catchUpLimit must be an integer from 1 to 1000`;
    }
    const parsed = input.safeParse(schedule.input);
    if (!parsed.success) {
      const [issue] = parsed.error.issues;
      return `${at}.input${issue?.path.length ? `.${issue.path.join('.')}` : ''} ${issue?.message ?? 'is invalid'}`;
    }
  }
  return undefined;
}

function isSchema(value: unknown): value is z.ZodType {
  return typeof (value as z.ZodType | undefined)?.safeParse === 'function';
}

function isIntegerIn(value: unknown, min: number, max: number): boolean {
  return Number.isInteger(value) && (value as number) >= min && (value as number) <= max;
}

/** Thrown by a handler when retrying cannot help: the job fails at once. */
export class PermanentJobError extends Error {
  override name = 'PermanentJobError';
}
