import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runIsolated } from './lib/isolate.ts';
import { waitForQuiet } from './lib/quiet.ts';
import { type BenchContext, type BenchResult, median } from './lib/types.ts';
import type { DrainArgs, DrainTrial } from './drain/common.ts';

const JOBS = 20_000;
/** A trial during which other processes used more of the machine than this is not quiet. */
const QUIET_OTHERS_PERCENT = 10;

function isQuiet(trial: DrainTrial): boolean {
  return trial.cpu !== null && trial.cpu.othersPercent <= QUIET_OTHERS_PERCENT;
}
const ENQUEUE_BATCH = 4_000;

function version(pkg: string): string {
  const path = fileURLToPath(new URL(`../node_modules/${pkg}/package.json`, import.meta.url));
  return (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version;
}

interface System {
  name: string;
  settings: string;
  module: string;
  run: string;
  args: Record<string, unknown>;
}

function systems(context: BenchContext): System[] {
  const module = (file: string) => new URL(`./drain/${file}`, import.meta.url).href;
  const overrides = Object.entries(context.oursEnv).map(([key, value]) => `${key}=${value}`);
  return [
    {
      name: 'ours',
      settings: overrides.length > 0 ? overrides.join(' ') : 'service defaults',
      module: module('ours.ts'),
      run: 'drainOurs',
      args: { env: context.oursEnv },
    },
    {
      name: 'ours-c500',
      settings: ['WORKER_CONCURRENCY=500 (500 handlers at once; with the local queue, claims of up to 900)', ...overrides].join(' '),
      module: module('ours.ts'),
      run: 'drainOurs',
      args: { env: { WORKER_CONCURRENCY: '500', ...context.oursEnv } },
    },
    {
      name: 'ours-keyed',
      settings: ['a kind with concurrencyPerKey 1, each job with a concurrency key of its own', ...overrides].join(' '),
      module: module('ours.ts'),
      run: 'drainOurs',
      args: { env: context.oursEnv, keyed: true },
    },
    {
      name: 'graphile-batched',
      settings: `graphile-worker ${version('graphile-worker')}: concurrency 24, localQueue 500, complete/failJobBatchDelay 0`,
      module: module('graphile-worker.ts'),
      run: 'drainGraphile',
      args: { concurrency: 24, batched: true, localQueueSize: 500 },
    },
    {
      name: 'graphile',
      settings: `graphile-worker ${version('graphile-worker')}: concurrency 24, defaults (unbatched)`,
      module: module('graphile-worker.ts'),
      run: 'drainGraphile',
      args: { concurrency: 24, batched: false },
    },
    {
      name: 'pg-boss',
      settings: `pg-boss ${version('pg-boss')}: batchSize 100, burstWhenBatchFull, perJobResults`,
      module: module('pg-boss.ts'),
      run: 'drainPgBoss',
      args: { batchSize: 100 },
    },
    {
      name: 'bullmq-redis',
      settings: `bullmq ${version('bullmq')} on Redis: one Worker, concurrency 100 (bullmq-bench's worker-concurrent), removeOnComplete unset (results kept); addBulk`,
      module: module('bullmq.ts'),
      run: 'drainBullmq',
      args: { backend: 'redis', concurrency: 100 },
    },
    {
      name: 'bullmq-pg',
      settings:
        `bullmq ${version('bullmq')} on PostgreSQL (createPostgresBackend): one Worker, concurrency 100, its pg.Pool max 50 ` +
        '(the docs: a pool sized for the concurrency; the server allows 100 connections), removeOnComplete unset; addBulk',
      module: module('bullmq.ts'),
      run: 'drainBullmq',
      args: { backend: 'postgres', concurrency: 100, poolSize: 50 },
    },
  ];
}

/**
 * Drain throughput: N jobs are enqueued in bulk before any worker runs, then one worker process
 * is started and timed until every job is completed with its result stored. Each trial runs in a
 * fresh Node process on a fresh database; systems take turns, so drift hits them all alike.
 */
export async function drainBenchmark(context: BenchContext): Promise<BenchResult> {
  const chosen = systems(context).filter((system) => context.systems.length === 0 || context.systems.includes(system.name));
  const args: DrainArgs = {
    jobs: context.sizes.jobs ?? JOBS,
    enqueueBatch: context.sizes.enqueueBatch ?? ENQUEUE_BATCH,
    deadlineMs: 60_000,
  };
  const trials = new Map<string, Array<DrainTrial & { busyBefore: number | null }>>(chosen.map((system) => [system.name, []]));
  for (let round = 1; round <= context.runs; round += 1) {
    for (const system of chosen) {
      const busyBefore = await waitForQuiet(15, 10_000);
      const result = await runIsolated<DrainTrial>(system.module, system.run, { ...args, ...system.args }, {
        execArgv: context.execArgv,
        timeoutMs: 120_000,
      });
      trials.get(system.name)!.push({ ...result, busyBefore });
      context.log(
        `drain ${system.name} #${round}: ${result.jobsPerSecond} jobs/s (${result.drainMs} ms; ${result.verified}; ` +
          `CPU: Node ${result.cpu?.nodeMs ?? '?'} ms, PostgreSQL ${result.cpu?.postgresMs ?? '?'} ms, ` +
          `${result.cpu?.redisMs === undefined ? '' : `Redis ${result.cpu.redisMs} ms, `}others ${result.cpu?.othersPercent ?? '?'}%)`,
      );
    }
  }

  const summary = chosen.map((system) => {
    const all = trials.get(system.name)!;
    const rates = all.map((t) => t.jobsPerSecond);
    const quietRates = all.filter(isQuiet).map((t) => t.jobsPerSecond);
    return {
      system,
      rates,
      quietRates,
      median: median(rates),
      quietMedian: quietRates.length > 0 ? median(quietRates) : null,
      best: Math.max(...rates),
    };
  });
  type Entry = (typeof summary)[number];
  // Quiet trials where both have some, else all of them.
  const typical = (mine: Entry, peer: Entry) =>
    mine.quietMedian !== null && peer.quietMedian !== null ? [mine.quietMedian, peer.quietMedian] : [mine.median, peer.median];
  const ratio = (mine: Entry | undefined, peer: Entry) => {
    if (!mine) return '';
    const [a, b] = typical(mine, peer);
    return `${(a! / b!).toFixed(2)}× / ${(mine.best / peer.best).toFixed(2)}×`;
  };
  const ours = summary.find((entry) => entry.system.name === 'ours');
  const ours500 = summary.find((entry) => entry.system.name === 'ours-c500');
  return {
    name: 'drain',
    measures: `${args.jobs} add jobs enqueued in bulk, then one worker started: jobs/s from start to the last result stored`,
    columns: [
      'system',
      'trials, jobs/s (slowed by others)',
      'median',
      'quiet median',
      'best',
      'ours ÷ it (typical / best)',
      'ours-c500 ÷ it',
    ],
    rows: summary.map((entry) => [
      entry.system.name,
      trials
        .get(entry.system.name)!
        .map((t) => (isQuiet(t) ? String(t.jobsPerSecond) : `(${t.jobsPerSecond})`))
        .join(' '),
      String(Math.round(entry.median)),
      entry.quietMedian === null ? '-' : `${Math.round(entry.quietMedian)} (${entry.quietRates.length})`,
      String(entry.best),
      ratio(ours, entry),
      ratio(ours500, entry),
    ]),
    notes: [
      ...summary.map((entry) => `${entry.system.name}: ${entry.system.settings}`),
      `enqueue: ${Math.ceil(args.jobs / args.enqueueBatch)} bulk calls of ${args.enqueueBatch}, before the worker starts; not timed`,
      'a CHECKPOINT runs before each timed drain on PostgreSQL; each trial waits (up to 10 s) for the CPUs to be under 15% busy first',
      `(slowed by others): other processes used more than ${QUIET_OTHERS_PERCENT}% of the machine's CPU while the trial ran (for bullmq-redis the redis-server process is not "other"); "quiet median" leaves those out, "typical" is the quiet median where both have one`,
      'done = an in-process signal (our hub hearing every NOTIFY; graphile job:complete; pg-boss handler returns; BullMQ Worker completed events), then confirmed by polling SQL (BullMQ: its job counts) every 2 ms',
    ],
    data: {
      args,
      systems: summary.map((entry) => ({
        name: entry.system.name,
        settings: entry.system.settings,
        args: entry.system.args,
        trials: trials.get(entry.system.name),
        median: entry.median,
        quietMedian: entry.quietMedian,
        best: entry.best,
      })),
    },
  };
}
