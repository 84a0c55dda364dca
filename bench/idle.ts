import { ADMIN_URL, createFreshDatabase, withClient } from './lib/pg.ts';
import { startServiceProcess } from './lib/service.ts';
import type { BenchContext, BenchResult } from './lib/types.ts';

// An idle backend sends its counters up to 10 s late (PGSTAT_IDLE_INTERVAL): with a 2 s settle the
// start-up's migration transactions landed inside the window and read as ~10 tx/s.
const SETTLE_MS = 12_000;
const WINDOW_MS = 20_000;

/**
 * What an idle worker costs the database: transactions committed per second in its own database,
 * from pg_stat_database (pg_stat_statements is not installed, and server files are not changed).
 * The counters are read from the admin database, so the reads themselves do not count. A window
 * of the same length with no service at all gives the floor (autovacuum, stats) to subtract.
 */
export async function idleBenchmark(context: BenchContext): Promise<BenchResult> {
  const windowMs = context.sizes.windowMs ?? WINDOW_MS;
  const fresh = await createFreshDatabase('idle');
  const counters = () =>
    withClient(ADMIN_URL, async (client) => {
      // A snapshot is per transaction; each read here is its own.
      const { rows } = await client.query<{ commits: string; rollbacks: string }>(
        'SELECT xact_commit AS commits, xact_rollback AS rollbacks FROM pg_stat_database WHERE datname = $1',
        [fresh.name],
      );
      return { commits: Number(rows[0]!.commits), rollbacks: Number(rows[0]!.rollbacks), at: performance.now() };
    });
  const windowRate = async () => {
    const before = await counters();
    await new Promise((resolve) => setTimeout(resolve, windowMs));
    // Backends flush their counters at most once a second; wait that out for the last ones.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const after = await counters();
    const seconds = (after.at - before.at) / 1000;
    return { perSecond: (after.commits + after.rollbacks - before.commits - before.rollbacks) / seconds, seconds };
  };
  let floor: { perSecond: number; seconds: number };
  let worker: { perSecond: number; seconds: number };
  try {
    floor = await windowRate();
    const service = await startServiceProcess({ ROLE: 'worker', DATABASE_URL: fresh.url, ...context.oursEnv }, { execArgv: context.execArgv });
    try {
      await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
      worker = await windowRate();
    } finally {
      await service.stop();
    }
  } finally {
    await fresh.drop();
  }
  const net = worker.perSecond - floor.perSecond;
  context.log(`idle: ${net.toFixed(2)} transactions/s from one idle worker (floor ${floor.perSecond.toFixed(2)}/s)`);
  const settings = Object.entries(context.oursEnv).map(([key, value]) => `${key}=${value}`).join(' ') || 'service defaults';
  return {
    name: 'idle',
    measures: `transactions/s one idle ROLE=worker process commits in its database, over ${windowMs / 1000} s after ${SETTLE_MS / 1000} s settling`,
    columns: ['settings', 'worker window (tx/s)', 'no-service floor (tx/s)', 'idle worker (tx/s)'],
    rows: [[settings, worker.perSecond.toFixed(2), floor.perSecond.toFixed(2), net.toFixed(2)]],
    notes: [
      'target (issue): ≤ 1 query/s per idle worker',
      'counted: xact_commit + xact_rollback of pg_stat_database; each autocommit statement is one transaction, LISTEN\'s wait costs none',
    ],
    data: { windowMs, settleMs: SETTLE_MS, floor, worker, net },
  };
}
