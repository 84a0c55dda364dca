import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { type ProcessGaugeSources, registerProcessGauges } from './process-gauges.ts';
import { type QueueGaugeSources, registerKindGauges, registerQueueGauges } from './queue-gauges.ts';

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

/**
 * What the gauges read at scrape time: the queue's state (queue-gauges.ts) and this process's own
 * parts (process-gauges.ts).
 */
export interface StateSources extends QueueGaugeSources, ProcessGaugeSources {}

/**
 * Gauges read at scrape time, from the database and from the process's own parts. Called once,
 * by whoever composes the process, after those parts exist.
 */
export function registerStateGauges(metrics: Metrics, sources: StateSources): void {
  registerQueueGauges([metrics.registry], sources);
  registerProcessGauges([metrics.registry], sources);
  if (sources.kinds) registerKindGauges([metrics.registry], sources.kinds, sources.logger);
}
