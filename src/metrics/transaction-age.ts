import { Gauge, type Registry } from 'prom-client';
import type { OldestTransaction } from '../jobs/sql/stats.ts';
import type { Logger } from '../logger.ts';

/** At most one warning a minute per process, however often /metrics is scraped. */
const WARN_EVERY_MS = 60_000;

export interface OldTransactionOptions {
  registers: Registry[];
  logger: Logger;
  /** A transaction open at least this long is warned about. */
  warnSeconds: number;
  now?: () => number;
}

/**
 * The age of the oldest transaction open on the database, as a gauge and, past `warnSeconds`, a
 * warning that names it, so that an operator learns why claims slow down while dead job rows
 * pile up (as pg-boss's dashboard shows it). Sampled with the queue numbers at scrape time, so it
 * costs the hot path nothing. The gauge has no collect of its own: `observe` sets it.
 */
export function createOldTransactionWatch(options: OldTransactionOptions) {
  const now = options.now ?? Date.now;
  const gauge = new Gauge({
    name: 'db_oldest_transaction_age_seconds',
    help: 'Age of the oldest transaction open on the database (0 when none): it holds back vacuum of the job table. Other roles\' transactions show only with pg_read_all_stats.',
    registers: options.registers,
  });
  let warnedAt = -Infinity;
  return {
    observe(oldest: OldestTransaction | null): void {
      const age = oldest?.ageSeconds ?? 0;
      gauge.set(age);
      if (!oldest || age < options.warnSeconds || now() - warnedAt < WARN_EVERY_MS) return;
      warnedAt = now();
      options.logger.warn(
        { ageSeconds: Math.round(age), pid: oldest.pid, applicationName: oldest.applicationName, state: oldest.state },
        'a transaction has been open for long: it holds back vacuum of the job table',
      );
    },
    unknown(): void {
      gauge.set(Number.NaN);
    },
  };
}
