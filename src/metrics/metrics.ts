import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { QueueStats } from '../jobs/sql/stats.ts';
import type { Logger } from '../logger.ts';
import { createOldTransactionWatch } from './transaction-age.ts';

/** Why a job ended `failed`: its handler said never, it ran out of attempts, or its last one timed out. */
export type FailureReason = 'permanent' | 'exhausted' | 'timeout';

/**
 * The instruments the service's parts record into, all on one registry. Each process (and each
 * test) makes its own with `createMetrics`, so nothing is shared through prom-client's global
 * registry. The parts take this as an optional option: without it they record nothing.
 */
export interface Metrics {
  readonly registry: Registry;
  readonly jobsCreated: Counter<'kind'>;
  readonly jobsClaimed: Counter<'kind'>;
  readonly jobsCompleted: Counter<'kind'>;
  readonly jobsFailed: Counter<'kind' | 'reason'>;
  readonly jobsRetried: Counter<'kind'>;
  /** Progress values a worker of this process sent to the database (see JobContext.progress). */
  readonly progressWrites: Counter<'kind'>;
  readonly progressDropped: Counter<'kind' | 'reason'>;
  /** Attempts a job used, observed when it completes or fails for good. */
  readonly jobAttempts: Histogram<'kind' | 'outcome'>;
  readonly claimToComplete: Histogram<'kind'>;
  readonly createToComplete: Histogram<'kind'>;
  readonly eventsReceived: Counter;
  readonly eventDispatch: Histogram;
  readonly updateDelivery: Histogram;
  readonly subscriptionsOpen: Gauge;
}

export interface MetricsOptions {
  /** Also export prom-client's process and Node.js metrics (CPU, memory, event loop lag, GC). */
  processMetrics?: boolean;
}

/** Latencies of work that takes milliseconds when all is well and minutes when it is not. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];
const DISPATCH_BUCKETS = [0.000_01, 0.000_05, 0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1];

// Over the ~60-line guide on purpose: one list of every counter and histogram the service records,
// read top to bottom, is easier to check than the same list cut into parts.
export function createMetrics(options: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  if (options.processMetrics) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    jobsCreated: new Counter({
      name: 'jobs_created_total',
      help: 'Jobs added (an idempotent retry that returned an existing job is not counted).',
      labelNames: ['kind'],
      registers,
    }),
    jobsClaimed: new Counter({
      name: 'jobs_claimed_total',
      help: 'Attempts started: jobs claimed by a worker of this process, stale ones taken over included.',
      labelNames: ['kind'],
      registers,
    }),
    jobsCompleted: new Counter({
      name: 'jobs_completed_total',
      help: 'Jobs whose result a worker of this process stored.',
      labelNames: ['kind'],
      registers,
    }),
    jobsFailed: new Counter({
      name: 'jobs_failed_total',
      help: 'Jobs that ended failed: permanent (the handler refused), exhausted (no attempts left), timeout (last attempt stale).',
      labelNames: ['kind', 'reason'],
      registers,
    }),
    jobsRetried: new Counter({
      name: 'jobs_retried_total',
      help: 'Failed attempts sent back to pending to be tried again after a backoff.',
      labelNames: ['kind'],
      registers,
    }),
    progressWrites: new Counter({
      name: 'job_progress_writes_total',
      help: 'Progress values a handler reported that a worker of this process wrote to its job.',
      labelNames: ['kind'],
      registers,
    }),
    progressDropped: new Counter({
      name: 'job_progress_dropped_total',
      help:
        'Progress values not stored: coalesced (a later value of the same job replaced it before its write), ' +
        'invalid (failed the kind\'s progress schema or PROGRESS_MAX_BYTES), fenced (the job was no longer this attempt\'s).',
      labelNames: ['kind', 'reason'],
      registers,
    }),
    jobAttempts: new Histogram({
      name: 'job_attempts',
      help: 'Attempts a job used by the time it completed or failed for good.',
      labelNames: ['kind', 'outcome'],
      buckets: [1, 2, 3, 5, 10, 25, 100],
      registers,
    }),
    claimToComplete: new Histogram({
      name: 'job_claim_to_complete_seconds',
      help: 'From the claim that started the successful attempt to its result being stored (handler run plus write).',
      labelNames: ['kind'],
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    createToComplete: new Histogram({
      name: 'job_create_to_complete_seconds',
      help: 'From the job being created to its result being stored, retries and delays included.',
      labelNames: ['kind'],
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    eventsReceived: new Counter({
      name: 'job_events_received_total',
      help: 'Job changes announced to this process over LISTEN/NOTIFY.',
      registers,
    }),
    eventDispatch: new Histogram({
      name: 'job_event_dispatch_seconds',
      help: 'Time the event hub spent handing one NOTIFY to its listeners; a slow listener holds up all events.',
      buckets: DISPATCH_BUCKETS,
      registers,
    }),
    updateDelivery: new Histogram({
      name: 'job_update_delivery_seconds',
      help: "From a job change being written (its lastUpdated, database clock) to a subscriber's fresh read of it.",
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    subscriptionsOpen: new Gauge({
      name: 'graphql_subscriptions_open',
      help: 'Open GraphQL subscriptions, over graphql-ws and SSE.',
      registers,
    }),
  };
}

export interface StateSources {
  /** Reads the queue's numbers; see `createQueueStatsReader` for its cache. */
  queueStats: () => Promise<QueueStats>;
  db: { poolStats(): { total: number; idle: number; waiting: number } };
  /**
   * The event hub (src/jobs/events.ts). A shape rather than its class: the hub records into these
   * metrics, so importing it here would tie the two modules in a cycle.
   */
  hub?: { readonly watcherCount: number };
  worker?: { readonly activeJobs: number; readonly queuedJobs: number };
  /** Each kind and whether it is paused, read from the database at scrape time (JobService.listKinds). */
  kinds?: () => Promise<ReadonlyArray<{ name: string; paused: boolean }>>;
  logger: Logger;
  /** OLD_TRANSACTION_WARN_SECONDS (see `createOldTransactionWatch`); without it, the gauge only. */
  oldTransactionWarnSeconds?: number;
  /** The clock the warning's once-a-minute throttle reads; tests move it. */
  now?: () => number;
}

/**
 * Gauges read at scrape time, from the database and from the process's own parts. Called once,
 * by whoever composes the process, after those parts exist.
 */
export function registerStateGauges(metrics: Metrics, sources: StateSources): void {
  registerQueueGauges([metrics.registry], sources);
  registerProcessGauges([metrics.registry], sources);
  if (sources.kinds) registerKindGauges([metrics.registry], sources.kinds, sources.logger);
}

/** Each kind's state, read from the database at scrape time. */
function registerKindGauges(registers: Registry[], kinds: NonNullable<StateSources['kinds']>, logger: Logger): void {
  new Gauge({
    name: 'job_kind_paused',
    help: '1 while the kind is paused (no worker starts its jobs), 0 while it runs; NaN when the database did not answer.',
    labelNames: ['kind'],
    registers,
    async collect() {
      try {
        for (const kind of await kinds()) this.set({ kind: kind.name }, kind.paused ? 1 : 0);
      } catch (error) {
        this.reset();
        logger.warn({ err: error }, 'metrics: could not read which kinds are paused');
      }
    },
  });
}

/** The queue's numbers, read from the database at scrape time. */
function registerQueueGauges(registers: Registry[], sources: StateSources): void {
  const { queueStats, logger } = sources;
  const oldTransaction = createOldTransactionWatch({
    registers,
    logger,
    warnSeconds: sources.oldTransactionWarnSeconds ?? Infinity,
    now: sources.now,
  });
  // One read feeds the five gauges below, and the oldest transaction's: prom-client collects all
  // metrics concurrently, so the first collect starts the read and the others join it.
  let collecting: Promise<void> | undefined;
  const collect = () => {
    collecting ??= collectQueue().finally(() => {
      collecting = undefined;
    });
    return collecting;
  };
  const byStatus = new Gauge({
    name: 'jobs',
    help: 'Jobs in each status, in the whole database. See jobs_counts_exact.',
    labelNames: ['status'],
    registers,
    collect,
  });
  const exact = new Gauge({
    name: 'jobs_counts_exact',
    help: '1 when the jobs gauge was counted; 0 when finished statuses are planner estimates (big table).',
    registers,
    collect,
  });
  const depth = new Gauge({
    name: 'job_queue_depth',
    help: 'Pending jobs that are due: work waiting for a worker (capped at METRICS_EXACT_COUNT_LIMIT).',
    registers,
    collect,
  });
  const oldest = new Gauge({
    name: 'job_queue_oldest_due_age_seconds',
    help: 'How long the oldest due pending job has waited for a worker; 0 when none waits.',
    registers,
    collect,
  });
  const up = new Gauge({
    name: 'job_queue_stats_up',
    help: '1 when the last read of the queue numbers succeeded; 0 when the database did not answer.',
    registers,
    collect,
  });
  async function collectQueue(): Promise<void> {
    try {
      const stats = await queueStats();
      for (const [status, count] of Object.entries(stats.byStatus)) byStatus.set({ status }, count);
      exact.set(stats.exactCounts ? 1 : 0);
      depth.set(stats.queueDepth);
      oldest.set(stats.oldestDueAgeSeconds);
      oldTransaction.observe(stats.oldestTransaction);
      up.set(1);
    } catch (error) {
      // Old numbers, or zeros, would look like a calm queue. NaN says "unknown", and an alert on
      // job_queue_stats_up says why.
      byStatus.reset();
      for (const gauge of [exact, depth, oldest]) gauge.set(Number.NaN);
      oldTransaction.unknown();
      up.set(0);
      logger.warn({ err: error }, 'metrics: could not read the queue numbers');
    }
  }
}

/** What this process's own parts hold: its pool, its subscriptions, its worker. */
function registerProcessGauges(registers: Registry[], { db, hub, worker }: StateSources): void {
  new Gauge({
    name: 'db_pool_connections',
    help: 'Connections of the query pool, by state (the LISTEN connection is not in it).',
    labelNames: ['state'],
    registers,
    collect() {
      const stats = db.poolStats();
      this.set({ state: 'in_use' }, stats.total - stats.idle);
      this.set({ state: 'idle' }, stats.idle);
    },
  });
  new Gauge({
    name: 'db_pool_waiting_requests',
    help: 'Queries waiting for a free pool connection.',
    registers,
    collect() {
      this.set(db.poolStats().waiting);
    },
  });
  if (hub) {
    new Gauge({
      name: 'job_subscriptions_open',
      help: 'Job watchers in the event hub: one per subscription execution, which subscribers of the same job and key share.',
      registers,
      collect() {
        this.set(hub.watcherCount);
      },
    });
  }
  if (worker) {
    new Gauge({
      name: 'worker_jobs_running',
      help: "Jobs this process's worker holds right now: queued, running or being stored.",
      registers,
      collect() {
        this.set(worker.activeJobs);
      },
    });
    new Gauge({
      name: 'worker_jobs_queued',
      help: "Claimed jobs waiting in this process's local queue for a free slot.",
      registers,
      collect() {
        this.set(worker.queuedJobs);
      },
    });
  }
}
