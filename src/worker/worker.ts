import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Tracer } from '@opentelemetry/api';
import type { Database } from '../db/database.ts';
import type { JobEventHub } from '../jobs/events.ts';
import { adoptUnorderedStatement } from '../jobs/sql/claim-limited.ts';
import { releaseJobsStatement } from '../jobs/sql/release.ts';
import type { KindRegistry } from '../kinds/registry.ts';
import { takesKeys } from '../kinds/define.ts';
import { StartStop } from '../lifecycle.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { BackoffPolicy } from './backoff.ts';
import { ClaimLoop } from './claim-loop.ts';
import { Executor, type HeldJob, type ThreadRunner } from './executor.ts';
import { Heartbeat } from './heartbeat.ts';
import { OutcomeWriter } from './outcome-writer.ts';
import { storableText } from './storable-text.ts';

export interface WorkerOptions {
  db: Database;
  hub: JobEventHub;
  /** The kinds this worker runs; a job of another kind fails for good. */
  kinds: KindRegistry;
  /** Runs the kinds whose handlers ask for a worker thread. */
  threads?: ThreadRunner;
  /** The largest result stored, as UTF-8 JSON (JOB_PAYLOAD_MAX_BYTES). */
  maxResultBytes: number;
  /** A running job's progress is written at most this often (PROGRESS_MIN_INTERVAL_MS). Default: 250. */
  progressMinIntervalMs?: number;
  /** The largest progress value stored (PROGRESS_MAX_BYTES). Default: 4096. */
  maxProgressBytes?: number;
  logger: Logger;
  concurrency: number;
  /**
   * The most jobs the worker may claim beyond `concurrency`, to queue locally while every slot is
   * busy. The queue is kept to about `PREFETCH_HORIZON_MS` (claim-capacity.ts) of work at the
   * handlers' observed speed, so only fast handlers reach this ceiling. 0 claims only into free slots.
   */
  prefetch?: number;
  pollIntervalMs: number;
  /** For jobs whose kind sets no timeout. */
  jobTimeoutSeconds: number;
  /** For jobs whose kind sets no backoff. */
  retry: BackoffPolicy;
  shutdownGraceMs: number;
  /** Defaults to host:pid:random, so a restarted process never reuses an old id. */
  workerId?: string;
  random?: () => number;
  metrics?: Metrics;
  /** Set while tracing is on (src/tracing.ts). */
  tracer?: Tracer;
}

/**
 * Runs jobs, in four parts: the ClaimLoop claims them (claim-loop.ts), the Executor runs their
 * handlers in `concurrency` slots (executor.ts), the Heartbeat keeps them from the stale rule
 * (heartbeat.ts), and the OutcomeWriter stores what became of them (outcome-writer.ts). The worker
 * starts and stops the parts, in order.
 */
export class Worker extends StartStop {
  readonly id: string;
  private readonly executor: Executor;
  private readonly heartbeat: Heartbeat;
  private readonly claims: ClaimLoop;
  /** Made by each start: stop() closes it. */
  private writer: OutcomeWriter | undefined;

  private readonly options: WorkerOptions;

  constructor(options: WorkerOptions) {
    super();
    this.options = options;
    this.id = storableText(options.workerId ?? `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`);
    const { db, hub, kinds, logger, metrics, concurrency, pollIntervalMs, jobTimeoutSeconds } = options;
    const limited = kinds.limited;
    const scope = {
      kinds: kinds.names.filter((name) => !limited.some((kind) => kind.name === name)),
      defaultTimeoutSeconds: jobTimeoutSeconds,
      shortestTimeoutSeconds: kinds.shortestTimeoutSeconds(jobTimeoutSeconds),
    };
    this.heartbeat = new Heartbeat({
      db,
      logger,
      timeoutSeconds: scope.shortestTimeoutSeconds,
      jobs: () => this.executor.beating(),
      lose: (entry) => this.executor.lose(entry),
    });
    this.executor = new Executor({
      kinds,
      threads: options.threads,
      maxResultBytes: options.maxResultBytes,
      progressMinIntervalMs: options.progressMinIntervalMs,
      maxProgressBytes: options.maxProgressBytes,
      concurrency,
      logger,
      metrics,
      tracer: options.tracer,
      workerId: this.id,
      onHolding: () => this.heartbeat.start(),
      onIdle: () => this.heartbeat.stop(),
      onPlaceFreed: () => this.claims.placeFreed(),
    });
    this.claims = new ClaimLoop({
      db,
      hub,
      logger,
      metrics,
      workerId: this.id,
      executor: this.executor,
      concurrency,
      prefetch: options.prefetch ?? 0,
      pollIntervalMs,
      scope,
      limited: limited.map((kind) => ({
        kind: kind.name,
        concurrency: kind.options.concurrency ?? null,
        concurrencyPerKey: kind.options.concurrencyPerKey ?? null,
        rateLimit: kind.options.rateLimit ? { ...kind.options.rateLimit, perKey: kind.options.rateLimit.perKey === true } : null,
        timeoutSeconds: Math.min(kind.options.timeoutSeconds ?? jobTimeoutSeconds, jobTimeoutSeconds),
        defaultTimeoutSeconds: jobTimeoutSeconds,
      })),
    });
  }

  /** Jobs this worker holds: queued, running, or waiting for their outcome to be stored. */
  get activeJobs(): number {
    return this.executor.heldJobs;
  }

  /** Claimed jobs that wait in the local queue for a free slot. */
  get queuedJobs(): number {
    return this.executor.queuedJobs;
  }

  /** Slots the local queue has allocated: bounded by its recent depth, never by the jobs run so far. */
  get queueCapacity(): number {
    return this.executor.queueCapacity;
  }

  /** Starts the loop; see StartStop for what repeated and overlapping calls do. */
  protected async onStart(): Promise<void> {
    const { db, hub, logger, metrics, retry, random } = this.options;
    await hub.start();
    const sequenced = this.options.kinds.limited.filter(takesKeys);
    await adoptUnorderedStatement(db, sequenced.map((kind) => kind.name));
    this.writer = new OutcomeWriter({ db, hub, logger, metrics, workerId: this.id, retry, random });
    this.executor.open(this.writer);
    this.claims.start();
    const { concurrency, prefetch, pollIntervalMs, jobTimeoutSeconds, shutdownGraceMs } = this.options;
    logger.info(
      { workerId: this.id, kinds: this.options.kinds.names, concurrency, prefetch, pollIntervalMs, jobTimeoutSeconds, shutdownGraceMs },
      'worker started',
    );
  }

  /**
   * Stops claiming, hands queued jobs back at once, gives running jobs `shutdownGraceMs` to
   * finish, then hands the rest back as pending.
   */
  protected async onStop(): Promise<void> {
    this.executor.close();
    await this.claims.stop();

    // Nobody will start these now; another worker can, while this one finishes the rest.
    const queuedHandedBack = this.handBack(this.executor.dropQueued(), 'queued');
    await this.executor.settled(this.options.shutdownGraceMs);
    const unfinished = this.executor.dropRunning();
    await this.writer?.close();
    this.writer = undefined;
    await Promise.all([queuedHandedBack, this.handBack(unfinished, 'unfinished')]);
    this.heartbeat.stop();
    this.executor.clear();
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
}
