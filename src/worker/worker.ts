// Over the ~300-line guide: the claim loop, executor, heartbeat and outcome writer are to be split
// into named parts by the structure work (issue 14, item 2); this file holds them until then.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Database } from '../db/database.ts';
import type { JobEventHub } from '../jobs/events.ts';
import { parseDecimal } from '../jobs/decimal.ts';
import { type JobHandlers, PermanentJobError } from '../jobs/handlers.ts';
import { type ClaimedJob, claimBatchStatement } from '../jobs/sql/claim.ts';
import { heartbeatStatement } from '../jobs/sql/heartbeat.ts';
import type { JobEvent } from '../jobs/sql/job-events.ts';
import {
  type Completion,
  completeJobsReturningStatement,
  completeJobsStatement,
  type Failure,
  failJobsStatement,
  storedCompletionsStatement,
  storedFailuresStatement,
} from '../jobs/sql/outcomes.ts';
import { releaseJobsStatement } from '../jobs/sql/release.ts';
import { StartStop } from '../lifecycle.ts';
import type { Logger } from '../logger.ts';
import type { FailureReason, Metrics } from '../metrics/metrics.ts';
import { type BackoffPolicy, retryDelayMs } from './backoff.ts';
import { DueWakeups } from './due-wakeups.ts';
import { RingQueue } from './ring-queue.ts';
import { printableAscii, storableError, storableText } from './storable-text.ts';
import { WriteBatcher } from './write-batcher.ts';

export interface WorkerOptions {
  db: Database;
  hub: JobEventHub;
  handlers: JobHandlers;
  logger: Logger;
  concurrency: number;
  /**
   * The most jobs the worker may claim beyond `concurrency`, to queue locally while every slot is
   * busy. The queue is kept to about `PREFETCH_HORIZON_MS` of work at the handlers' observed
   * speed, so only fast handlers reach this ceiling. 0 claims only into free slots.
   */
  prefetch?: number;
  pollIntervalMs: number;
  jobTimeoutSeconds: number;
  retry: BackoffPolicy;
  shutdownGraceMs: number;
  /** Defaults to host:pid:random, so a restarted process never reuses an old id. */
  workerId?: string;
  random?: () => number;
  metrics?: Metrics;
}

interface HeldJob {
  job: ClaimedJob;
  /**
   * Made when the handler first reads its signal: most handlers never do, and one controller per
   * job was a tenth of a drain's CPU. `abortedWith` is kept so a signal made later starts aborted.
   */
  controller?: AbortController;
  abortedWith?: Error;
  /**
   * `queued` from the claim until a slot frees, `running` until the handler settles, then
   * `writing` until its outcome is stored.
   */
  phase: 'queued' | 'running' | 'writing';
  /** Set when the job was handed back or lost; its outcome must then never be written. */
  abandoned: boolean;
  /** Set when the fence accepted its outcome: the job's state really changed. */
  stored: boolean;
  /** performance.now() when the claim returned it. */
  claimedAt: number;
  /** The job counts against `concurrency` from its start until its handler returns, or until stop() gives it up. */
  holdsSlot: boolean;
  settled: Promise<void>;
}

const MAX_CLAIM_BACKOFF_MS = 30_000;
/** Delayed jobs whose due time a worker remembers; any beyond are found by the poll. */
const MAX_DUE_WAKEUPS = 10_000;
const MAX_RESULT_DIGITS = 10_000;
/**
 * How much work, at the handlers' observed speed, the local queue may hold. A queued job is
 * claimed but not started: another worker that falls idle cannot take it, and a more urgent job
 * that arrives meanwhile starts after it. Bounding the queue by time rather than by count keeps
 * that wait this short whatever the job type: `add` (microseconds) fills the whole `prefetch`,
 * a one-second job queues a few jobs at most.
 */
const PREFETCH_HORIZON_MS = 100;
/** Weight of the newest handler time in the running average the queue depth follows. */
const HANDLER_TIME_SMOOTHING = 0.05;

/**
 * The loop that runs jobs: claim a batch into the free slots and a short local queue, run each
 * handler, store the outcome.
 *
 * It sleeps while there is nothing to do, and wakes when a NOTIFY says a job is pending, when a
 * delayed job or a retry it heard of comes due (see DueWakeups), when the local queue runs low
 * after a full claim, or after `pollIntervalMs` as a safety net. The poll finds jobs left stale
 * by a dead worker, and delayed jobs announced while this worker was not listening.
 */
export class Worker extends StartStop {
  readonly id: string;
  /** Every job this worker has claimed and not yet stored or handed back, whatever its phase. */
  private readonly held = new Map<string, HeldJob>();
  /** Claimed jobs waiting for a slot, in claim order. */
  private readonly queue = new RingQueue<HeldJob>();
  /** Running average of handler time, in ms; undefined until a handler has returned. */
  private handlerMs: number | undefined;
  /**
   * The job each queued write belongs to. Not looked up by id in `held`: a retry can be
   * claimed again, under the same id, before the write that failed its last attempt returns.
   */
  private readonly writers = new WeakMap<Completion | Failure, HeldJob>();
  private completions: WriteBatcher<Completion>;
  private failures: WriteBatcher<Failure>;
  private loop: Promise<void> | undefined;
  /** True from start() until stop() begins; the loop runs while it holds. */
  private active = false;
  private unsubscribe: Array<() => void> = [];
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private wakeRequested = false;
  private wakeSleeper: (() => void) | undefined;
  /** The last claim filled every free slot, so more work is probably waiting. */
  private saturated = false;
  /** Jobs whose handler has not returned yet; `concurrency` bounds these. */
  private handlersRunning = 0;
  private startedBefore = false;
  private readonly dueWakeups = new DueWakeups(() => this.wake(), MAX_DUE_WAKEUPS);

  constructor(private readonly options: WorkerOptions) {
    super();
    this.id = storableText(options.workerId ?? `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`);
    [this.completions, this.failures] = this.createWriters();
  }

  /** Writers are closed by stop(), so each start gets new ones. */
  private createWriters(): [WriteBatcher<Completion>, WriteBatcher<Failure>] {
    const { db, logger } = this.options;
    return [
      new WriteBatcher(
        async (items) => this.reportFenced(items, await this.writeResults(items), storedCompletionsStatement, 'result'),
        { maxBatch: 1000, retryDelayMs: 500, logger, what: 'results' },
      ),
      new WriteBatcher(
        async (items) => this.reportFenced(items, await failJobsStatement(db, items), storedFailuresStatement, 'failure'),
        {
          maxBatch: 1000,
          retryDelayMs: 500,
          logger,
          what: 'failures',
          substitute: (failure, refusal) => {
            const substitute = asciiFailure(failure, refusal);
            const entry = this.writers.get(failure);
            if (entry) this.writers.set(substitute, entry);
            return substitute;
          },
        },
      ),
    ];
  }

  /**
   * Stores results. When someone in this process watches one of the jobs (a subscriber of
   * `jobUpdated` on a ROLE=all process), the write answers with the whole rows and the hub hands
   * them over at once: that subscriber's message does not wait for the NOTIFY and a read of its
   * own, two round trips on the path from result to customer.
   */
  private async writeResults(items: readonly Completion[]): Promise<Set<string>> {
    const { db, hub } = this.options;
    if (!items.some((item) => hub.isWatched(item.id))) return completeJobsStatement(db, items);
    const jobs = await completeJobsReturningStatement(db, items);
    hub.deliverLocally(jobs);
    return new Set(jobs.map((job) => job.id));
  }

  /** Jobs this worker holds: queued, running, or waiting for their outcome to be stored. */
  get activeJobs(): number {
    return this.held.size;
  }

  /** Claimed jobs that wait in the local queue for a free slot. */
  get queuedJobs(): number {
    return this.queue.length;
  }

  /** Slots the local queue has allocated: bounded by its recent depth, never by the jobs run so far. */
  get queueCapacity(): number {
    return this.queue.capacity;
  }

  /** Starts the loop; see StartStop for what repeated and overlapping calls do. */
  protected async onStart(): Promise<void> {
    await this.options.hub.start();
    if (this.startedBefore) [this.completions, this.failures] = this.createWriters();
    this.startedBefore = true;
    this.unsubscribe = [
      this.options.hub.onEvents((events) => this.hear(events)),
      this.options.hub.onResync(() => this.wake()),
    ];
    this.active = true;
    this.loop = this.run();
    const { concurrency, prefetch, pollIntervalMs, jobTimeoutSeconds, shutdownGraceMs } = this.options;
    this.options.logger.info(
      { workerId: this.id, concurrency, prefetch, pollIntervalMs, jobTimeoutSeconds, shutdownGraceMs },
      'worker started',
    );
  }

  /**
   * Stops claiming, hands queued jobs back at once, gives running jobs `shutdownGraceMs` to
   * finish, then hands the rest back as pending.
   */
  protected onStop(): Promise<void> {
    return this.shutDown();
  }

  private async shutDown(): Promise<void> {
    const loop = this.loop;
    for (const unsubscribe of this.unsubscribe) unsubscribe();
    this.unsubscribe = [];
    this.dueWakeups.clear();
    this.active = false;
    this.loop = undefined;
    this.wake();
    await loop;

    // Nobody will start these now; another worker can, while this one finishes the rest.
    const queued = this.queue.drain().filter((entry) => !entry.abandoned);
    for (const entry of queued) this.drop(entry);
    const queuedHandedBack = this.handBack(queued, 'queued');

    let graceTimer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all([...this.held.values()].map((entry) => entry.settled)),
      new Promise((resolve) => {
        graceTimer = setTimeout(resolve, this.options.shutdownGraceMs);
      }),
    ]);
    clearTimeout(graceTimer);

    const unfinished = [...this.held.values()].filter((entry) => entry.phase === 'running');
    for (const entry of unfinished) {
      entry.abandoned = true;
      abort(entry, new Error('worker is shutting down'));
      // A handler that ignores its signal must not keep a slot from the next start().
      this.releaseSlot(entry);
    }
    await Promise.all([this.completions.close(), this.failures.close()]);
    await Promise.all([queuedHandedBack, this.handBack(unfinished, 'unfinished')]);
    this.stopHeartbeat();
    this.held.clear();
    this.options.logger.info({ workerId: this.id }, 'worker stopped');
  }

  private async handBack(entries: readonly HeldJob[], which: 'queued' | 'unfinished'): Promise<void> {
    if (entries.length === 0) return;
    const jobs = entries.map((entry) => ({ id: entry.job.id, attempt: entry.job.attempt }));
    try {
      const released = await releaseJobsStatement(this.options.db, jobs);
      this.options.logger.info({ released: released.size }, `handed ${which} jobs back`);
    } catch (error) {
      this.options.logger.warn({ err: error }, 'could not hand jobs back; the stale rule will rescue them');
    }
  }

  /**
   * How many jobs the next claim may take; 0 while the local queue is still deep enough.
   *
   * Capacity is the slots plus the local queue's depth. The queue is refilled in bulk, once it is
   * down to half its depth, so a drain costs one claim per few hundred jobs rather than one per
   * freed slot. A job whose handler has returned gives its place back while its outcome is being
   * written, so the next claim overlaps that write instead of waiting for it; up to a capacity's
   * worth of jobs may wait for their write, and beyond that a slow database holds claims back.
   */
  private claimable(): number {
    const depth = this.queueDepth();
    const queued = this.queuedJobs;
    if (queued > 0 && queued >= depth / 2) return 0;
    const capacity = this.options.concurrency + depth;
    return Math.min(capacity - this.handlersRunning - queued, 2 * capacity - this.held.size);
  }

  /** Jobs to queue beyond the slots: `PREFETCH_HORIZON_MS` of work for all slots, up to `prefetch`. */
  private queueDepth(): number {
    const prefetch = this.options.prefetch ?? 0;
    // Before any handler has returned there is nothing to go by, so the first claim fills the slots only.
    if (prefetch === 0 || this.handlerMs === undefined) return 0;
    const perSlot = PREFETCH_HORIZON_MS / Math.max(this.handlerMs, 0.001);
    return Math.min(prefetch, Math.floor(this.options.concurrency * perSlot));
  }

  private async run(): Promise<void> {
    const { db, logger, pollIntervalMs, jobTimeoutSeconds } = this.options;
    let claimFailures = 0;
    while (this.active) {
      const free = this.claimable();
      if (free <= 0) {
        // Only a freed slot can help now; a NOTIFY that arrived meanwhile must not make this spin.
        this.saturated = true;
        this.wakeRequested = false;
        await this.sleep(pollIntervalMs);
        continue;
      }
      this.wakeRequested = false;
      let claimed: ClaimedJob[];
      try {
        const batch = await claimBatchStatement(db, this.id, free, jobTimeoutSeconds);
        claimed = batch.claimed;
        for (const job of batch.timedOut) {
          this.recordFailed(job, 'timeout', `timed out: no heartbeat for ${jobTimeoutSeconds} s on its last attempt`);
        }
        claimFailures = 0;
      } catch (error) {
        claimFailures += 1;
        logger.warn({ err: error, failures: claimFailures }, 'claiming jobs failed');
        await this.sleep(Math.min(MAX_CLAIM_BACKOFF_MS, pollIntervalMs * 2 ** (claimFailures - 1)));
        continue;
      }
      // Jobs claimed while stop() began are queued too: stop() hands the queue back.
      for (const job of claimed) this.enqueue(job);
      this.startQueued();
      this.saturated = claimed.length === free;
      if (!this.saturated && !this.wakeRequested) await this.sleep(pollIntervalMs);
    }
  }

  private enqueue(job: ClaimedJob): void {
    const entry: HeldJob = {
      job,
      phase: 'queued',
      abandoned: false,
      stored: false,
      claimedAt: performance.now(),
      holdsSlot: false,
      settled: Promise.resolve(),
    };
    this.held.set(job.id, entry);
    this.queue.push(entry);
    this.startHeartbeat();
    this.options.metrics?.jobsClaimed.inc({ kind: job.kind });
    this.options.logger.debug({ jobId: job.id, attempt: job.attempt, workerId: this.id }, 'job wip');
  }

  /** Starts queued jobs into the free slots. Nothing starts once stop() has begun. */
  private startQueued(): void {
    while (this.active && this.handlersRunning < this.options.concurrency && this.queue.length > 0) {
      const entry = this.queue.shift()!;
      if (!entry.abandoned) this.execute(entry);
    }
  }

  private execute(entry: HeldJob): void {
    entry.phase = 'running';
    entry.holdsSlot = true;
    this.handlersRunning += 1;
    entry.settled = this.perform(entry).finally(() => {
      this.drop(entry);
      if (this.saturated && this.claimable() > 0) this.wake();
    });
  }

  /** Forgets a job this worker no longer holds. */
  private drop(entry: HeldJob): void {
    // A retry of this job, or a job handed back and claimed again, may already be held under the
    // same id; that entry is not ours to drop.
    if (this.held.get(entry.job.id) === entry) this.held.delete(entry.job.id);
    if (this.held.size === 0) this.stopHeartbeat();
  }

  private async perform(entry: HeldJob): Promise<void> {
    const { job } = entry;
    let outcome: { result: string } | { error: unknown };
    const startedAt = performance.now();
    try {
      const handler = this.options.handlers.get(job.kind);
      if (!handler) throw new PermanentJobError(`no handler for job kind "${job.kind}"`);
      const context = {
        attempt: job.attempt,
        maxAttempts: job.maxAttempts,
        get signal() {
          return signalOf(entry);
        },
      };
      outcome = { result: checkResult(await handler({ num1: job.num1, num2: job.num2 }, context)) };
    } catch (error) {
      outcome = { error };
    }
    const handlerMs = performance.now() - startedAt;
    this.handlerMs =
      this.handlerMs === undefined ? handlerMs : this.handlerMs + HANDLER_TIME_SMOOTHING * (handlerMs - this.handlerMs);
    this.releaseSlot(entry);
    if (entry.abandoned) return;
    entry.phase = 'writing';
    if ('result' in outcome) {
      const written = await this.completions.push(
        this.ownedBy(entry, { id: job.id, attempt: job.attempt, result: outcome.result }),
      );
      if (entry.stored) this.recordCompleted(entry);
      // A result the database refused still ends the attempt, as a failure that says so, rather
      // than leaving the job `wip` for the stale rule to call it timed out.
      if (written) return;
      outcome = { error: new Error('the result could not be stored; see the worker log') };
    }
    const permanent = outcome.error instanceof PermanentJobError;
    const final = permanent || job.attempt >= job.maxAttempts;
    const retryInMs = final ? null : retryDelayMs(job.attempt, this.options.retry, this.options.random);
    await this.failures.push(
      this.ownedBy(entry, { id: job.id, attempt: job.attempt, error: storableError(outcome.error), retryInMs }),
    );
    if (!entry.stored) return;
    if (retryInMs === null) {
      this.recordFailed(job, permanent ? 'permanent' : 'exhausted', outcome.error);
    } else {
      this.options.metrics?.jobsRetried.inc({ kind: job.kind });
      this.options.logger.debug({ jobId: job.id, attempt: job.attempt, err: outcome.error, retryInMs }, 'job retrying');
    }
  }

  private ownedBy<T extends Completion | Failure>(entry: HeldJob, item: T): T {
    this.writers.set(item, entry);
    return item;
  }

  private recordCompleted({ job, claimedAt }: HeldJob): void {
    const { metrics, logger } = this.options;
    const runMs = performance.now() - claimedAt;
    logger.debug({ jobId: job.id, attempt: job.attempt, ms: Math.round(runMs) }, 'job completed');
    if (!metrics) return;
    const kind = { kind: job.kind };
    metrics.jobsCompleted.inc(kind);
    metrics.jobAttempts.observe({ ...kind, outcome: 'completed' }, job.attempt);
    metrics.claimToComplete.observe(kind, runMs / 1000);
    // createdAt is the database's clock and Date.now() this host's: skew between them shifts
    // this by a few milliseconds at worst, and a negative span is skew, not speed.
    metrics.createToComplete.observe(kind, Math.max(0, Date.now() - job.createdAtMs) / 1000);
  }

  private recordFailed(job: { id: string; kind: string; attempt: number }, reason: FailureReason, error: unknown): void {
    this.options.logger.debug({ jobId: job.id, attempt: job.attempt, reason, err: error }, 'job failed');
    this.options.metrics?.jobsFailed.inc({ kind: job.kind, reason });
    this.options.metrics?.jobAttempts.observe({ kind: job.kind, outcome: 'failed' }, job.attempt);
  }

  private releaseSlot(entry: HeldJob): void {
    if (!entry.holdsSlot) return;
    entry.holdsSlot = false;
    this.handlersRunning -= 1;
    this.startQueued();
    if (this.saturated && this.claimable() > 0) this.wake();
  }

  /**
   * Tells each item's job whether its outcome is stored. An item the fence refused may be this
   * attempt's own write, sent again after its answer was lost; it is stored, and counted once.
   */
  private async reportFenced<T extends Completion | Failure>(
    items: readonly T[],
    accepted: Set<string>,
    storedBefore: (db: Database, items: readonly T[]) => Promise<Set<string>>,
    what: string,
  ): Promise<void> {
    const { db, logger } = this.options;
    // The usual batch is all accepted, and costs neither the filter nor the read.
    const refused = accepted.size < items.length ? items.filter((item) => !accepted.has(item.id)) : [];
    const own = refused.length === 0 ? undefined : await storedBefore(db, refused);
    for (const item of items) {
      const entry = this.writers.get(item);
      if (entry) entry.stored = accepted.has(item.id) || own?.has(item.id) === true;
      if (accepted.has(item.id)) continue;
      const line = { jobId: item.id, attempt: item.attempt, workerId: this.id };
      if (own?.has(item.id)) logger.info(line, `${what} already stored by this attempt; the answer to its write was lost`);
      else logger.warn(line, `${what} discarded: another attempt owns the job now`);
    }
  }

  /*
   * One statement refreshes every queued and running job, every third of the timeout, so the
   * stale rule never takes a live job. A job the statement no longer finds was taken over: its
   * handler is told to stop, and its outcome is dropped; a queued one is never started.
   */
  private startHeartbeat(): void {
    if (this.heartbeatTimer) return;
    const intervalMs = Math.max(100, (this.options.jobTimeoutSeconds * 1000) / 3);
    this.heartbeatTimer = setInterval(() => void this.beat(), intervalMs);
    this.heartbeatTimer.unref();
  }

  private stopHeartbeat(): void {
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
  }

  private async beat(): Promise<void> {
    const entries = [...this.held.values()].filter((entry) => entry.phase !== 'writing' && !entry.abandoned);
    if (entries.length === 0) return;
    try {
      const held = await heartbeatStatement(
        this.options.db,
        entries.map((entry) => ({ id: entry.job.id, attempt: entry.job.attempt })),
      );
      for (const entry of entries) {
        if (held.has(entry.job.id) || entry.phase === 'writing') continue;
        entry.abandoned = true;
        if (entry.phase === 'queued') this.drop(entry);
        else abort(entry, new Error('the job was taken over by another worker'));
        this.options.logger.warn({ jobId: entry.job.id, attempt: entry.job.attempt }, 'lost job to the stale rule');
      }
    } catch (error) {
      this.options.logger.warn({ err: error }, 'heartbeat failed');
    }
  }

  /** A pending job is claimable now, or when its `runAt` comes; anything else is no work for us. */
  private hear(events: readonly JobEvent[]): void {
    let dueNow = false;
    // Jobs added together share their delay; one wake-up does for all of them.
    const delays = new Set<number>();
    for (const event of events) {
      if (event.status !== 'pending') continue;
      if (event.dueInMs === undefined) dueNow = true;
      else delays.add(event.dueInMs);
    }
    for (const delay of delays) this.dueWakeups.add(delay);
    if (dueNow) this.wake();
  }

  private wake(): void {
    this.wakeRequested = true;
    this.wakeSleeper?.();
  }

  private sleep(ms: number): Promise<void> {
    if (this.wakeRequested || !this.active) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const self = this;
      function done() {
        clearTimeout(timer);
        if (self.wakeSleeper === done) self.wakeSleeper = undefined;
        resolve();
      }
      this.wakeSleeper = done;
    });
  }
}

function abort(entry: HeldJob, reason: Error): void {
  entry.abortedWith = reason;
  entry.controller?.abort(reason);
}

function signalOf(entry: HeldJob): AbortSignal {
  if (!entry.controller) {
    entry.controller = new AbortController();
    if (entry.abortedWith) entry.controller.abort(entry.abortedWith);
  }
  return entry.controller.signal;
}

/** Results are stored as numeric; a handler bug must fail its job, not the batch it is written in. */
function checkResult(value: unknown): string {
  try {
    return parseDecimal(String(value), 'result', MAX_RESULT_DIGITS);
  } catch {
    throw new PermanentJobError(`the handler returned ${JSON.stringify(value)}, which is not a decimal number`);
  }
}

/**
 * A failure the database refused, with its message in printable ASCII, which it can always store.
 * A message that was ASCII already is sent unchanged: the refusal was not about its text.
 */
function asciiFailure(failure: Failure, refusal: unknown): Failure {
  const ascii = printableAscii(failure.error);
  if (ascii === failure.error) return { ...failure };
  const code = (refusal as { code?: unknown } | null)?.code;
  return { ...failure, error: `${ascii} (stored as ASCII: the database refused the text, SQLSTATE ${String(code)})` };
}
