import type { Tracer } from '@opentelemetry/api';
import { NotWritten } from '../db/statement-batcher.ts';
import type { ClaimedJob } from '../jobs/sql/claimed.ts';
import { type JobContext, type JobKind, PermanentJobError, type ThreadHandler } from '../kinds/define.ts';
import { storableResult } from '../kinds/result.ts';
import type { KindRegistry } from '../kinds/registry.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { AttemptTrace } from './attempt-trace.ts';
import { abort, RunningJobContext } from './job-context.ts';
import type { OutcomeWriter } from './outcome-writer.ts';
import { type JobProgress, ProgressReporter } from './progress.ts';
import { RingQueue } from './ring-queue.ts';

/**
 * Where a held job is. The usual path is `queued` → `running` → `writing`, and the job is let go
 * once its outcome is stored.
 * - `queued`: claimed, waiting in the local queue for a slot.
 * - `running`: its handler runs, in a slot.
 * - `writing`: its handler returned; the outcome is being written.
 * - `lost`: the heartbeat found the job taken over while its handler ran. The handler is told to
 *   stop, but keeps its slot until it returns; its outcome is dropped.
 * - `dropped`: handed back, taken over, or given up by stop(). It holds no slot, and its outcome
 *   is never written.
 */
export type JobState = 'queued' | 'running' | 'writing' | 'lost' | 'dropped';

export interface HeldJob {
  job: ClaimedJob;
  state: JobState;
  /** performance.now() when the claim returned it. */
  claimedAt: number;
  /**
   * Made when the handler first reads its signal: most handlers never do, and one controller per
   * job was 8 % of a drain's CPU (BENCHMARKS.md). `abortedWith` is kept so a signal made later starts aborted.
   */
  controller?: AbortController;
  abortedWith?: Error;
  /** Set once it starts: settles when the job's handler and outcome write are done. */
  settled?: Promise<void>;
  /** Made by the handler's first progress report: most kinds never report. */
  progress?: JobProgress;
  /** This attempt's spans; only while tracing is on. */
  trace?: AttemptTrace;
}

/** Runs the handlers of kinds that ask for a worker thread (see ThreadPool). */
export interface ThreadRunner {
  run(handler: ThreadHandler, input: unknown, context: JobContext): Promise<unknown>;
}

export interface ExecutorOptions {
  kinds: KindRegistry;
  /** Needed only when a kind's handler runs in a thread. */
  threads?: ThreadRunner;
  /** The largest result stored, as UTF-8 JSON (JOB_PAYLOAD_MAX_BYTES). */
  maxResultBytes: number;
  /** A job's progress is written at most this often (PROGRESS_MIN_INTERVAL_MS). Default: 250. */
  progressMinIntervalMs?: number;
  /** The largest progress value stored, as UTF-8 JSON (PROGRESS_MAX_BYTES). Default: 4096. */
  maxProgressBytes?: number;
  concurrency: number;
  logger: Logger;
  metrics?: Metrics;
  /** Set while tracing is on: each attempt's wait, run and write are spans (see AttemptTrace). */
  tracer?: Tracer;
  workerId: string;
  /** Called when the first job is held: the heartbeat must run. */
  onHolding: () => void;
  /** Called when no job is held any more. */
  onIdle: () => void;
  /** Called when a slot or a held place frees: the claim loop may claim again. */
  onPlaceFreed: () => void;
}

/** Weight of the newest handler time in the running average the queue depth follows. */
const HANDLER_TIME_SMOOTHING = 0.05;

/**
 * Runs claimed jobs: holds them in a local queue until one of `concurrency` slots frees, runs each
 * handler with an AbortSignal, and hands the outcome to the OutcomeWriter. `open` lets it start
 * jobs; `close` (stop() has begun) starts none any more.
 */
export class Executor {
  /** Every job held, whatever its state, until its outcome is stored or it is handed back. */
  private readonly held = new Map<string, HeldJob>();
  /** Claimed jobs waiting for a slot, in claim order. */
  private readonly queue = new RingQueue<HeldJob>();
  /** Jobs whose handler has not returned yet; `concurrency` bounds these. */
  private slotsTaken = 0;
  /** Running average of handler time, in ms; undefined until a handler has returned. */
  private averageHandlerMs: number | undefined;
  /** Where outcomes go; set by `open`, unset once stop() has begun: then no job starts. */
  private writer: OutcomeWriter | undefined;
  private readonly progress: ProgressReporter;

  private readonly options: ExecutorOptions;

  constructor(options: ExecutorOptions) {
    this.options = options;
    const { progressMinIntervalMs = 250, maxProgressBytes = 4096, logger, metrics } = options;
    this.progress = new ProgressReporter({ minIntervalMs: progressMinIntervalMs, maxBytes: maxProgressBytes, logger, metrics });
  }

  get heldJobs(): number {
    return this.held.size;
  }

  get queuedJobs(): number {
    return this.queue.length;
  }

  get queueCapacity(): number {
    return this.queue.capacity;
  }

  get runningHandlers(): number {
    return this.slotsTaken;
  }

  get handlerMs(): number | undefined {
    return this.averageHandlerMs;
  }

  /** Jobs that the heartbeat keeps: queued or running. */
  beating(): HeldJob[] {
    return [...this.held.values()].filter((entry) => entry.state === 'queued' || entry.state === 'running');
  }

  open(writer: OutcomeWriter): void {
    this.writer = writer;
  }

  /** Starts nothing from now on; jobs already running go on. */
  close(): void {
    this.writer = undefined;
  }

  enqueue(job: ClaimedJob): void {
    const entry: HeldJob = { job, state: 'queued', claimedAt: performance.now() };
    if (this.options.tracer) entry.trace = new AttemptTrace(this.options.tracer, job);
    this.held.set(job.id, entry);
    this.queue.push(entry);
    if (this.held.size === 1) this.options.onHolding();
    this.options.metrics?.jobsClaimed.inc({ kind: job.kind });
    this.options.logger.debug({ jobId: job.id, attempt: job.attempt, workerId: this.options.workerId }, 'job wip');
  }

  /** Starts queued jobs into the free slots. */
  startQueued(): void {
    while (this.writer && this.slotsTaken < this.options.concurrency && this.queue.length > 0) {
      const entry = this.queue.shift()!;
      if (entry.state === 'queued') this.execute(entry, this.writer);
    }
  }

  /**
   * The heartbeat's verdict that another attempt owns the job: a queued one is let go, a running
   * one told to stop. False when the job was past either already.
   */
  lose(entry: HeldJob): boolean {
    if (entry.state === 'queued') {
      entry.state = 'dropped';
      this.forget(entry);
      return true;
    }
    if (entry.state !== 'running') return false;
    entry.state = 'lost';
    abort(entry, new Error('the job was taken over by another worker'));
    return true;
  }

  /** Lets go of every queued job, for stop() to hand back; call after `close`. */
  dropQueued(): HeldJob[] {
    const queued = this.queue.drain().filter((entry) => entry.state === 'queued');
    for (const entry of queued) {
      entry.state = 'dropped';
      this.forget(entry);
    }
    return queued;
  }

  /** Resolves once every started job is done, or after `ms`, whichever is first. */
  async settled(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all([...this.held.values()].map((entry) => entry.settled)),
      new Promise((resolve) => {
        timer = setTimeout(resolve, ms);
      }),
    ]);
    clearTimeout(timer);
  }

  /** Gives up the handlers still running, for stop() to hand their jobs back. */
  dropRunning(): HeldJob[] {
    const unfinished = [...this.held.values()].filter((entry) => entry.state === 'running' || entry.state === 'lost');
    for (const entry of unfinished) {
      abort(entry, new Error('worker is shutting down'));
      entry.state = 'dropped';
      // A handler that ignores its signal must not keep a slot from the next start().
      this.slotFreed();
    }
    return unfinished;
  }

  /** Forgets every job; for the end of stop(). */
  clear(): void {
    this.held.clear();
  }

  private execute(entry: HeldJob, writer: OutcomeWriter): void {
    entry.state = 'running';
    this.slotsTaken += 1;
    entry.settled = this.perform(entry, writer).finally(() => {
      this.forget(entry);
      this.options.onPlaceFreed();
    });
  }

  private async perform(entry: HeldJob, writer: OutcomeWriter): Promise<void> {
    const { job } = entry;
    let outcome: { result: string } | { error: unknown };
    const startedAt = performance.now();
    entry.trace?.running();
    try {
      const kind = this.options.kinds.get(job.kind);
      if (!kind) throw new PermanentJobError(`no handler for job kind "${job.kind}"`);
      const context = new RunningJobContext(entry, kind, writer, this.progress);
      outcome = { result: storableResult(kind, await this.runHandler(kind, job.input, context), this.options.maxResultBytes) };
    } catch (error) {
      outcome = { error };
    }
    this.observeHandlerTime(performance.now() - startedAt);
    if (!this.handlerReturned(entry)) {
      this.progress.abandon(entry);
      return entry.trace?.ended('dropped');
    }
    // Only a job that reported pays for this: its last value is stored before its outcome.
    if (entry.progress) await this.progress.finish(entry, writer);
    if ('result' in outcome) {
      const completing = writer.complete(job, outcome.result);
      const written = await (entry.trace ? entry.trace.write(completing, 'result') : completing);
      if (written === 'stored') writer.recordCompleted(job, entry.claimedAt);
      // A result the database refused still ends the attempt, as a failure that says so, rather
      // than leaving the job `wip` for the stale rule to call it timed out.
      if (!(written instanceof NotWritten)) return entry.trace?.ended('completed');
      outcome = { error: new Error('the result could not be stored; see the worker log') };
    }
    const failure = writer.failureOf(job, outcome.error, this.options.kinds.get(job.kind)?.options.backoff);
    const failing = writer.fail(failure);
    if ((await (entry.trace ? entry.trace.write(failing, 'failure') : failing)) === 'stored') writer.recordFailure(job, failure, outcome.error);
    entry.trace?.ended(failure.retryInMs === null ? 'failed' : 'retry', outcome.error);
  }

  private runHandler(kind: JobKind, input: unknown, context: JobContext): unknown {
    const { handler } = kind;
    if (typeof handler === 'function') return handler(input, context);
    if (!this.options.threads) throw new PermanentJobError(`kind "${kind.name}" runs in a worker thread, and this worker has no thread pool`);
    return this.options.threads.run(handler, input, context);
  }

  private observeHandlerTime(ms: number): void {
    const average = this.averageHandlerMs;
    this.averageHandlerMs = average === undefined ? ms : average + HANDLER_TIME_SMOOTHING * (ms - average);
  }

  /** Frees the slot of a returned handler; true when its outcome is to be written. */
  private handlerReturned(entry: HeldJob): boolean {
    // Given up by stop(), which freed its slot already.
    if (entry.state === 'dropped') return false;
    const lost = entry.state === 'lost';
    entry.state = lost ? 'dropped' : 'writing';
    this.slotFreed();
    return !lost;
  }

  private slotFreed(): void {
    this.slotsTaken -= 1;
    this.startQueued();
    this.options.onPlaceFreed();
  }

  /** Lets go of a job this executor no longer holds. */
  private forget(entry: HeldJob): void {
    // A retry of this job, or a job handed back and claimed again, may already be held under the
    // same id; that entry is not ours to drop.
    if (this.held.get(entry.job.id) === entry) this.held.delete(entry.job.id);
    if (this.held.size === 0) this.options.onIdle();
  }
}
