import { Gauge, type Registry } from 'prom-client';
import type { QueueStats } from '../jobs/sql/stats.ts';
import type { Logger } from '../logger.ts';
import { createOldTransactionWatch } from './transaction-age.ts';

/** Where the gauges of the queue's state read it from, at scrape time. */
export interface QueueGaugeSources {
  /** Reads the queue's numbers; see `createQueueStatsReader` for its cache. */
  queueStats: () => Promise<QueueStats>;
  /** Each kind and whether it is paused, read from the database at scrape time (JobService.listKinds). */
  kinds?: () => Promise<ReadonlyArray<{ name: string; paused: boolean }>>;
  logger: Logger;
  /** OLD_TRANSACTION_WARN_SECONDS (see `createOldTransactionWatch`); without it, the gauge only. */
  oldTransactionWarnSeconds?: number;
  /** The clock the warning's once-a-minute throttle reads; tests move it. */
  now?: () => number;
}

/** The queue's numbers, read from the database at scrape time. */
export function registerQueueGauges(registers: Registry[], sources: QueueGaugeSources): void {
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

/** Each kind's state, read from the database at scrape time. */
export function registerKindGauges(registers: Registry[], kinds: NonNullable<QueueGaugeSources['kinds']>, logger: Logger): void {
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
