// Over the ~300-line guide: idempotency and the subscription stream are to become modules of their
// own with the structure work (issue 14); until then the service keeps them.
import { setTimeout } from 'node:timers/promises';
import { Repeater } from '@repeaterjs/repeater';
import { z } from 'zod';
import type { Database } from '../db/database.ts';
import { isConnectionError } from '../db/errors.ts';
import type { Job, JobStatus } from '../generated/prisma/client.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { parseDecimal } from './decimal.ts';
import { JobServiceError, jobDeleted, jobNotFound } from './errors.ts';
import { JobIdGenerator, toJobId } from './ids.ts';
import { InsertCoalescer } from './insert-coalescer.ts';
import type { JobEventHub } from './events.ts';
import { cancelJobStatement, retrieveJobStatement } from './sql/customer.ts';
import { type InsertedJob, isIdempotencyRace, type NewJob, type StoredJob } from './sql/insert.ts';
import type { JobEvent } from './sql/job-events.ts';
import { listJobsQuery, readJobStatement } from './sql/reads.ts';

export type { Job, JobStatus };

export interface AddJobInput {
  num1: string;
  num2: string;
  idempotencyKey?: string | null;
  runAt?: Date | null;
  priority?: number | null;
}

/** Who is asking. Jobs belong to the key that created them; '' while the service has no keys. */
export interface Caller {
  owner: string;
}

export interface JobServiceLimits {
  maxAttempts: number;
  numberMaxDigits: number;
  maxBatchSize: number;
}

export interface ListJobsArgs {
  status?: JobStatus | null;
  first?: number | null;
  after?: string | null;
}

export interface JobPage {
  jobs: Job[];
  hasNextPage: boolean;
  endCursor: string | null;
}

export interface JobServiceOptions {
  metrics?: Metrics;
  /** Job state changes made here (created, retrieved, cancelled) are logged at debug. */
  logger?: Logger;
}

export const MAX_PAGE_SIZE = 100;
const READ_RETRY_MS = 1000;

/** States a job never leaves. A subscription ends after delivering one. */
export const FINAL_STATUSES: ReadonlySet<JobStatus> = new Set(['retrieved', 'failed', 'cancelled']);

// RFC 3339's years. PostgreSQL's timestamptz stops at 4713 BC, while a JS Date reaches 271821 BC,
// so without a bound an early date got as far as the INSERT and failed there.
const EARLIEST_RUN_AT = new Date('0001-01-01T00:00:00.000Z');
const LATEST_RUN_AT = new Date('9999-12-31T23:59:59.999Z');

// PostgreSQL text cannot hold NUL, and the driver writes an unpaired surrogate as U+FFFD, which
// would make two different keys one.
const UNSTORABLE_TEXT = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

const OptionsSchema = z.object({
  idempotencyKey: z
    .string()
    .min(1)
    .max(200)
    .refine((key) => !UNSTORABLE_TEXT.test(key), 'must not contain NUL characters or unpaired surrogates')
    .nullish(),
  runAt: z
    .date()
    .refine((date) => !Number.isNaN(date.getTime()), 'must be a valid date')
    .refine((date) => date >= EARLIEST_RUN_AT && date <= LATEST_RUN_AT, 'must be between the years 1 and 9999')
    .nullish(),
  priority: z.number().int().min(-1000).max(1000).nullish(),
});

/**
 * For each job, the index of the first job of the request with its idempotency key (its own index
 * when it has none, or is the first). A repeated key must repeat the input, as a retry would.
 * Numbers compare as parseDecimal wrote them: one spelling per value, so string equality is the
 * exact equality the insert statement applies to stored numbers.
 */
function firstWithSameKey(jobs: readonly NewJob[], pathOf: (index: number) => string): number[] {
  const firstByKey = new Map<string, number>();
  return jobs.map((job, index) => {
    if (job.idempotencyKey === null) return index;
    const first = firstByKey.get(job.idempotencyKey);
    if (first === undefined) {
      firstByKey.set(job.idempotencyKey, index);
      return index;
    }
    const earlier = jobs[first]!;
    if (earlier.kind !== job.kind || earlier.num1 !== job.num1 || earlier.num2 !== job.num2) {
      const field = `${pathOf(index)}idempotencyKey`;
      throw new JobServiceError('CONFLICT', `${field} repeats the key of inputs.${first} with other input`, field);
    }
    return first;
  });
}

/**
 * The one entry point of the API layers (GraphQL and REST) to jobs. It validates, scopes every
 * read and write to the caller, and leaves SQL to the queue module.
 */
export class JobService {
  /** Counts subscriber wake-ups and read starts, to tell whether a read began after a wake-up. */
  private clock = 0;
  /** Concurrent requests' new jobs, sent as one INSERT. */
  private readonly inserts: InsertCoalescer;
  private readonly ids = new JobIdGenerator();
  /** Subscriber reads in flight, by owner and job id. */
  private readonly watchReads = new Map<string, { startedAt: number | undefined; read: Promise<Job | null> }>();

  constructor(
    private readonly db: Database,
    private readonly hub: JobEventHub,
    private readonly limits: JobServiceLimits,
    private readonly options: JobServiceOptions = {},
  ) {
    // A shared statement never grows past what one request may send on its own.
    this.inserts = new InsertCoalescer(db, Math.max(limits.maxBatchSize, 1000));
  }

  async addJob(input: AddJobInput, caller: Caller): Promise<InsertedJob> {
    const [inserted] = await this.addJobs([input], caller);
    return inserted!;
  }

  /**
   * Adds jobs in one statement, all or none; the answer keeps the order of `inputs`. An
   * idempotency key already used by the caller answers with its first job (created: false) when
   * the kind and numbers match it, and refuses the whole request with CONFLICT when they differ.
   */
  async addJobs(inputs: readonly AddJobInput[], caller: Caller): Promise<InsertedJob[]> {
    if (inputs.length === 0) throw new JobServiceError('BAD_USER_INPUT', 'give at least one job', 'inputs');
    if (inputs.length > this.limits.maxBatchSize) {
      throw new JobServiceError(
        'BAD_USER_INPUT',
        `at most ${this.limits.maxBatchSize} jobs fit in one request; got ${inputs.length}`,
        'inputs',
      );
    }
    const pathOf = (index: number) => (inputs.length > 1 ? `inputs.${index}.` : '');
    const jobs = inputs.map((input, index) => this.toNewJob(input, caller, pathOf(index)));
    const firstOf = firstWithSameKey(jobs, pathOf);
    const sent = jobs.filter((_job, index) => firstOf[index] === index);
    const stored = await this.insertRequest(sent);
    for (const [index, job] of jobs.entries()) {
      const { job: existing, outcome } = stored.get(job.id) ?? {};
      if (outcome !== 'conflict') continue;
      const field = `${pathOf(index)}idempotencyKey`;
      throw new JobServiceError('CONFLICT', `${field} was first used for job ${existing!.id}, with other input`, field);
    }
    const answer = jobs.map((_job, index): InsertedJob => {
      const first = jobs[firstOf[index]!]!;
      const { job, outcome } = stored.get(first.id)!;
      return { job, created: outcome === 'created' && first === jobs[index] };
    });
    for (const { job, created } of answer) {
      if (!created) continue;
      this.options.metrics?.jobsCreated.inc({ kind: job.kind });
      this.options.logger?.debug({ jobId: job.id, kind: job.kind }, 'job pending');
    }
    return answer;
  }

  /**
   * One request's jobs, in one statement. A statement that lost a race for a key to another
   * transaction wrote nothing, and is sent again: the next one sees the winner. Three rounds
   * cover any interleaving of two such statements.
   */
  private async insertRequest(jobs: readonly NewJob[]): Promise<Map<string, StoredJob>> {
    for (let round = 1; ; round += 1) {
      try {
        return await this.inserts.insert(jobs);
      } catch (error) {
        if (!isIdempotencyRace(error)) throw error;
        if (round === 3) {
          throw new JobServiceError('CONFLICT', 'the idempotency key is in use by a request still running; retry', undefined, {
            cause: error,
          });
        }
      }
    }
  }

  /** A pure read: it never changes the job. */
  async getJob(requestedId: string, caller: Caller): Promise<Job | null> {
    const id = toJobId(requestedId);
    if (!id) return null;
    return readJobStatement(this.db, id, caller.owner);
  }

  /**
   * Hands the result over: a completed job becomes `retrieved`. Any other job is returned as it
   * is, so calling this twice, or before the job is done, is safe.
   */
  async retrieveJob(requestedId: string, caller: Caller): Promise<Job | null> {
    const id = toJobId(requestedId);
    if (!id) return null;
    // A `completed` answer not marked here means another request changed the job after this
    // statement's snapshot (see retrieveJobStatement); asked again, the job shows that change.
    for (let round = 1; ; round += 1) {
      const answer = await retrieveJobStatement(this.db, id, caller.owner);
      if (answer?.retrieved) this.options.logger?.debug({ jobId: id }, 'job retrieved');
      if (!answer || answer.job.status !== 'completed' || round === 3) return answer?.job ?? null;
    }
  }

  /** pending → cancelled. A job a worker already took cannot be cancelled. */
  async cancelJob(requestedId: string, caller: Caller): Promise<Job> {
    const id = toJobId(requestedId);
    const cancelled = id ? await cancelJobStatement(this.db, id, caller.owner) : null;
    if (cancelled) {
      this.options.logger?.debug({ jobId: id }, 'job cancelled');
      return cancelled;
    }
    const job = await this.getJob(requestedId, caller);
    if (!job) throw jobNotFound(requestedId);
    if (job.status === 'cancelled') return job;
    throw new JobServiceError('CONFLICT', `only a pending job can be cancelled; this one is ${job.status}`, 'id');
  }

  /** Newest first. `after` is the `endCursor` of the previous page. */
  async listJobs(args: ListJobsArgs, caller: Caller): Promise<JobPage> {
    const first = args.first ?? 20;
    if (!Number.isInteger(first) || first < 1 || first > MAX_PAGE_SIZE) {
      throw new JobServiceError('BAD_USER_INPUT', `first must be between 1 and ${MAX_PAGE_SIZE}`, 'first');
    }
    const after = args.after == null ? undefined : toJobId(args.after);
    if (args.after != null && !after) {
      throw new JobServiceError('BAD_USER_INPUT', 'after must be a cursor from a previous page', 'after');
    }
    const rows = await listJobsQuery(this.db, {
      owner: caller.owner,
      status: args.status ?? undefined,
      before: after,
      limit: first + 1,
    });
    const jobs = rows.slice(0, first);
    return { jobs, hasNextPage: rows.length > first, endCursor: jobs.at(-1)?.id ?? null };
  }

  /**
   * The job's state now, then each later state, ending after a final one, or with NOT_FOUND if
   * the job is deleted (pruned) before it reaches one. It subscribes to the
   * job's events before it reads, so no change falls between the read and the first event.
   *
   * Events only say that the job changed; each is followed by a read of the whole job. When
   * several changes land before a read, the read shows the latest and the states in between are
   * not repeated: every message is a real state, versions only grow, and the last state always
   * arrives. A slow consumer gets the same coalescing instead of an unbounded backlog.
   *
   * Subscribers of the same job (and owner) share a read that started after their own wake-up,
   * so one change seen by 10,000 subscribers costs one query, not 10,000. A result stored by a
   * worker of this process comes with the whole row (JobEventHub.deliverLocally) and is shown
   * without any read; measured over 1,500 jobs, that took 0.15 ms off the median from a job's
   * add to its COMPLETED message.
   */
  async watchJob(requestedId: string, caller: Caller): Promise<AsyncIterableIterator<Job>> {
    const id = toJobId(requestedId);
    if (!id) throw jobNotFound(requestedId);
    let changed = false;
    let changedAt = 0;
    let wake: (() => void) | undefined;
    /** The newest version pushed so far: an event about it, or an older one, needs no read. */
    let shown = -1;
    /** A newer state handed over whole by a worker of this process: shown without a read. */
    let delivered: Job | undefined;
    const poke = (event?: JobEvent) => {
      // A job handed over here is the caller's own: a watcher the first read turns away (another
      // owner's, or no such job) is released before it could show anything.
      if (event?.job) {
        if (event.job.version <= (delivered?.version ?? shown)) return;
        delivered = event.job;
      } else if (event && event.version <= shown) {
        return;
      }
      changed = true;
      changedAt = ++this.clock;
      wake?.();
    };
    const unwatch = this.hub.watch(id, poke);
    const unresync = this.hub.onResync(() => poke());
    const release = () => {
      unwatch();
      unresync();
    };
    let snapshot: Job | null;
    try {
      snapshot = await this.readForWatcher(id, caller, ++this.clock, true);
    } catch (error) {
      release();
      throw error;
    }
    if (!snapshot) {
      release();
      throw jobNotFound(id);
    }
    const first = snapshot;

    return new Repeater<Job>(async (push, stop) => {
      let stopped = false;
      void stop.then(() => {
        stopped = true;
        release();
        wake?.();
      });
      try {
        let current = first;
        shown = current.version;
        await push(current);
        while (!stopped && !FINAL_STATUSES.has(current.status)) {
          if (!changed) await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
          if (stopped) break;
          changed = false;
          let next: Job | null;
          const handedOver = delivered;
          delivered = undefined;
          try {
            next = handedOver && handedOver.version > current.version ? handedOver : await this.readForWatcher(id, caller, changedAt, false);
          } catch (error) {
            // While the database is away the subscriber waits: its stream must neither end nor
            // report a state it cannot confirm. It reads again after the hub's resync, or soon.
            if (!isConnectionError(error)) throw error;
            changed = true;
            await Promise.race([new Promise<void>((resolve) => (wake = resolve)), setTimeout(READ_RETRY_MS)]);
            continue;
          }
          // Gone since it was shown: the pruner deleted it (and announced it). Saying NOT_FOUND
          // tells the subscriber so; a plain end would look like a final state it missed.
          if (!next) throw jobDeleted(id);
          if (next.version > current.version) {
            // lastUpdated is the database's clock: host clock skew shifts this a little.
            this.options.metrics?.updateDelivery.observe(Math.max(0, Date.now() - next.lastUpdated.getTime()) / 1000);
            current = next;
            shown = current.version;
            await push(current);
          }
        }
        stop();
      } catch (error) {
        stop(error);
      }
    });
  }

  /**
   * The job as read by a query that started at or after `after` on this service's clock. A read
   * that started after a subscriber was woken (or registered) began after the change's commit
   * (its NOTIFY comes after the commit), so it shows that change, and any subscriber woken by the
   * same change may take its answer. A read that started earlier may not show it, and is not
   * shared with them.
   *
   * Subscribers woken by one NOTIFY are all woken before any of them reads, so the first read
   * starts at once and the rest share it. A new subscription registers itself just before its
   * read, so each would start a read of its own; `deferStart` starts the read on the next turn of
   * the event loop instead, so subscriptions opened by one burst of messages share it too (10,000
   * reads at once overran the pool's wait limit).
   */
  private readForWatcher(id: string, caller: Caller, after: number, deferStart: boolean): Promise<Job | null> {
    const key = `${caller.owner}\u0000${id}`;
    const inFlight = this.watchReads.get(key);
    if (inFlight && (inFlight.startedAt === undefined || inFlight.startedAt >= after)) return inFlight.read;
    const entry: { startedAt: number | undefined; read: Promise<Job | null> } = { startedAt: undefined, read: Promise.resolve(null) };
    const start = () => {
      entry.startedAt = this.clock;
      return this.getJob(id, caller);
    };
    entry.read = deferStart ? new Promise<void>((resolve) => setImmediate(resolve)).then(start) : start();
    this.watchReads.set(key, entry);
    const forget = () => {
      if (this.watchReads.get(key) === entry) this.watchReads.delete(key);
    };
    entry.read.then(forget, forget);
    return entry.read;
  }

  private toNewJob(input: AddJobInput, caller: Caller, path: string): NewJob {
    const options = OptionsSchema.safeParse({
      idempotencyKey: input.idempotencyKey,
      runAt: input.runAt,
      priority: input.priority,
    });
    if (!options.success) {
      const [issue] = options.error.issues;
      const field = `${path}${issue?.path.join('.') ?? ''}`;
      throw new JobServiceError('BAD_USER_INPUT', `${field} ${issue?.message ?? 'is invalid'}`, field);
    }
    return {
      id: this.ids.next(),
      kind: 'add',
      num1: parseDecimal(String(input.num1), `${path}num1`, this.limits.numberMaxDigits),
      num2: parseDecimal(String(input.num2), `${path}num2`, this.limits.numberMaxDigits),
      maxAttempts: this.limits.maxAttempts,
      runAt: options.data.runAt ?? null,
      priority: options.data.priority ?? 0,
      idempotencyKey: options.data.idempotencyKey ?? null,
      owner: caller.owner,
    };
  }
}
