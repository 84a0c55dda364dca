import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runIsolated } from './lib/isolate.ts';
import { createFreshDatabase } from './lib/pg.ts';
import { waitForQuiet } from './lib/quiet.ts';
import { ms, startServiceProcess } from './lib/service.ts';
import type { BenchContext, BenchResult } from './lib/types.ts';
import { type LatencySamples, summarize } from './latency/ours.ts';

const JOBS = 500;
const WARMUP = 50;

function version(pkg: string): string {
  const path = fileURLToPath(new URL(`../node_modules/${pkg}/package.json`, import.meta.url));
  return (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version;
}

/**
 * End-to-end latency of one job at a time on an idle service: ours as a real process (ROLE=all)
 * driven over HTTP + graphql-ws from another process; graphile-worker and BullMQ (on Redis and on
 * PostgreSQL) in-process beside it.
 */
export async function latencyBenchmark(context: BenchContext): Promise<BenchResult> {
  const jobs = context.sizes.jobs ?? JOBS;
  const want = (name: string) => context.systems.length === 0 || context.systems.includes(name);
  const measured: Array<{ name: string; settings: string; path: string; samples: LatencySamples; busyBefore: number | null }> = [];

  if (want('ours')) {
    const fresh = await createFreshDatabase('latency_ours');
    try {
      const service = await startServiceProcess(
        { ROLE: 'all', DATABASE_URL: fresh.url, ...context.oursEnv },
        { execArgv: context.execArgv },
      );
      try {
        const busyBefore = await waitForQuiet(15, 10_000);
        const samples = await runIsolated<LatencySamples>(
          new URL('./latency/ours.ts', import.meta.url).href,
          'latencyOurs',
          { base: service.base, jobs, warmup: WARMUP },
          { timeoutMs: 120_000 },
        );
        measured.push({
          name: 'ours',
          settings: 'ROLE=all process, service defaults; client in another process',
          path: 'addJob over HTTP keep-alive, then jobUpdated(id) over one graphql-ws connection',
          samples,
          busyBefore,
        });
      } finally {
        await service.stop();
      }
    } finally {
      await fresh.drop();
    }
  }
  if (want('graphile-batched')) {
    const busyBefore = await waitForQuiet(15, 10_000);
    const samples = await runIsolated<LatencySamples>(
      new URL('./latency/graphile-worker.ts', import.meta.url).href,
      'latencyGraphile',
      { jobs, warmup: WARMUP },
      { execArgv: context.execArgv, timeoutMs: 120_000 },
    );
    measured.push({
      name: 'graphile-batched',
      settings: `graphile-worker ${version('graphile-worker')} in-process: concurrency 24, localQueue 500, completeJobBatchDelay 0`,
      path: 'WorkerUtils.addJob → runner job:complete event, same process',
      samples,
      busyBefore,
    });
  }
  for (const [name, backend, datastore] of [
    ['bullmq-redis', 'redis', 'Redis'],
    ['bullmq-pg', 'postgres', 'PostgreSQL'],
  ] as const) {
    if (!want(name)) continue;
    const busyBefore = await waitForQuiet(15, 10_000);
    const samples = await runIsolated<LatencySamples>(
      new URL('./latency/bullmq.ts', import.meta.url).href,
      'latencyBullmq',
      { jobs, warmup: WARMUP, backend, concurrency: 100, ...(backend === 'postgres' ? { poolSize: 50 } : {}) },
      { execArgv: context.execArgv, timeoutMs: 120_000 },
    );
    measured.push({
      name,
      settings: `bullmq ${version('bullmq')} in-process on ${datastore}: one Worker, concurrency 100${backend === 'postgres' ? ', pg.Pool max 50' : ''}, as in the drain`,
      path: 'Queue.add → Worker completed event, same process',
      samples,
      busyBefore,
    });
  }
  for (const entry of measured) {
    const t = summarize(entry.samples.total);
    context.log(`latency ${entry.name}: p50 ${ms(t.p50)} ms, p99 ${ms(t.p99)} ms, max ${ms(t.max)} ms (CPU busy before: ${entry.busyBefore ?? '?'}%)`);
  }

  return {
    name: 'latency',
    measures: `${jobs} jobs one after another on an idle worker (after ${WARMUP} not counted): add sent → COMPLETED seen`,
    columns: ['system', 'path', 'p50 ms', 'p99 ms', 'max ms', 'mean ms', 'add answer p50 / p99 ms', 'rest p50 / p99 ms', 'COMPLETED in 1st message'],
    rows: measured.map((entry) => {
      const total = summarize(entry.samples.total);
      const add = summarize(entry.samples.add);
      const rest = summarize(entry.samples.total.map((value, i) => value - entry.samples.add[i]!));
      return [
        entry.name,
        entry.path,
        ms(total.p50),
        ms(total.p99),
        ms(total.max),
        ms(total.mean),
        `${ms(add.p50)} / ${ms(add.p99)}`,
        `${ms(rest.p50)} / ${ms(rest.p99)}`,
        entry.name === 'ours' ? `${entry.samples.completedAtSubscribe} of ${entry.samples.total.length}` : 'n/a',
      ];
    }),
    notes: [
      'targets (issue): ours p50 ≤ 5 ms, p99 ≤ 20 ms through HTTP and WebSocket',
      'ours: "rest" = subscribe sent after the add answer → first message with COMPLETED; the subscription sends the current state first, so a job done by then counts at that first message',
      'one trial per system (≥ 500 samples each); each waits (up to 10 s) for the CPUs to be under 15% busy first',
    ],
    data: measured.map((entry) => ({
      name: entry.name,
      settings: entry.settings,
      busyBefore: entry.busyBefore,
      total: summarize(entry.samples.total),
      add: summarize(entry.samples.add),
      completedAtSubscribe: entry.samples.completedAtSubscribe,
    })),
  };
}
