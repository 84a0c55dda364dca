import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runIsolated } from './lib/isolate.ts';
import { waitForQuiet } from './lib/quiet.ts';
import type { BenchContext, BenchResult } from './lib/types.ts';
import type { EnqueueArgs, EnqueueTrial } from './enqueue/common.ts';

const SECONDS = 5;
const WARMUP_SECONDS = 1;
const CALLERS = 10;
const BATCH = 1000;

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
  /** Its one-job call and its bulk call; null where it has none. */
  single: string;
  bulk: string | null;
}

function systems(context: BenchContext, callers: number): System[] {
  const module = (file: string) => new URL(`./enqueue/${file}`, import.meta.url).href;
  const overrides = Object.entries(context.oursEnv).map(([key, value]) => `${key}=${value}`);
  const ourSettings = overrides.length > 0 ? overrides.join(' ') : 'service defaults: DB_POOL_SIZE 10';
  return [
    {
      name: 'ours',
      settings: `JobService in this process, as the resolvers call it (${ourSettings}); concurrent adds share a statement`,
      module: module('ours.ts'),
      run: 'enqueueOurs',
      args: { path: 'service', env: context.oursEnv },
      single: 'JobService.addJob',
      bulk: 'JobService.addJobs',
    },
    {
      name: 'ours-library',
      settings: `the package's enqueue(client, kind, input), a client from a pg.Pool of ${callers} per call, no transaction around it`,
      module: module('ours.ts'),
      run: 'enqueueOurs',
      args: { path: 'library', env: context.oursEnv },
      single: 'enqueue',
      bulk: null,
    },
    {
      name: 'graphile',
      settings: `graphile-worker ${version('graphile-worker')}: one WorkerUtils on a pg.Pool of ${callers}, no runner`,
      module: module('graphile-worker.ts'),
      run: 'enqueueGraphile',
      args: {},
      single: 'WorkerUtils.addJob',
      bulk: 'WorkerUtils.addJobs',
    },
    {
      name: 'pg-boss',
      settings: `pg-boss ${version('pg-boss')}: started with pool max ${callers}, a queue made by createQueue (its defaults), no worker`,
      module: module('pg-boss.ts'),
      run: 'enqueuePgBoss',
      args: {},
      single: 'send',
      bulk: 'insert',
    },
    {
      name: 'bullmq-redis',
      settings: `bullmq ${version('bullmq')} on Redis: one Queue, its one connection (commands of all callers pipelined by ioredis), no Worker; Redis without persistence here`,
      module: module('bullmq.ts'),
      run: 'enqueueBullmq',
      args: { backend: 'redis' },
      single: 'Queue.add',
      bulk: 'Queue.addBulk',
    },
    {
      name: 'bullmq-pg',
      settings: `bullmq ${version('bullmq')} on PostgreSQL (createPostgresBackend, schema by runMigrations): one Queue, its pg.Pool max ${callers} (the docs: a pool sized for the concurrency), no Worker`,
      module: module('bullmq.ts'),
      run: 'enqueueBullmq',
      args: { backend: 'postgres' },
      single: 'Queue.add',
      bulk: 'Queue.addBulk',
    },
  ];
}

/**
 * In-process ingest: jobs accepted per second when `callers` async callers in one Node process
 * each add one job at a time (then a bulk call at a time) through each system's own client API
 * into its store. The comparison that applies to BullMQ, which has no HTTP API; ours over HTTP is
 * the `ingest` module. Each row runs in a fresh Node process on a fresh database or key prefix,
 * one trial each; afterwards the store is counted against the jobs the calls reported added.
 */
export async function enqueueBenchmark(context: BenchContext): Promise<BenchResult> {
  const args: EnqueueArgs = {
    callers: context.sizes.callers ?? CALLERS,
    batch: 1,
    seconds: context.sizes.seconds ?? SECONDS,
    warmupSeconds: context.sizes.warmup ?? WARMUP_SECONDS,
  };
  const bulk = context.sizes.batch ?? BATCH;
  const chosen = systems(context, args.callers).filter((system) => context.systems.length === 0 || context.systems.includes(system.name));
  const rows = [
    ...chosen.map((system) => ({ system, call: system.single, batch: 1 })),
    ...chosen.flatMap((system) => (system.bulk ? [{ system, call: `${system.bulk} ×${bulk}`, batch: bulk }] : [])),
  ];
  const measured: Array<{ system: string; call: string; batch: number; trial: EnqueueTrial; busyBefore: number | null }> = [];
  for (const { system, call, batch } of rows) {
    const busyBefore = await waitForQuiet(15, 10_000);
    const trial = await runIsolated<EnqueueTrial>(system.module, system.run, { ...args, batch, ...system.args }, {
      execArgv: context.execArgv,
      timeoutMs: 120_000,
    });
    measured.push({ system: system.name, call, batch, trial, busyBefore });
    context.log(
      `enqueue ${system.name} ${call}: ${trial.jobsPerSecond} jobs/s (p50 ${trial.callP50Ms} ms, p99 ${trial.callP99Ms} ms; ` +
        `${trial.added} added, ${trial.stored} stored; CPU: Node ${trial.cpu?.nodeMs ?? '?'} ms, PostgreSQL ${trial.cpu?.postgresMs ?? '?'} ms, ` +
        `${trial.cpu?.redisMs === undefined ? '' : `Redis ${trial.cpu.redisMs} ms, `}others ${trial.cpu?.othersPercent ?? '?'}%)`,
    );
  }

  return {
    name: 'enqueue',
    measures:
      `jobs added per second in-process through each system's client API, ${args.callers} async callers each with one call in flight, ` +
      `${args.seconds} s per row after ${args.warmupSeconds} s warm-up`,
    columns: ['system', 'call', 'jobs/s', 'per call p50 / p99 ms', 'jobs added', 'stored − added', 'CPU ms per job: Node / store', 'others %'],
    rows: measured.map(({ system, call, trial }) => [
      system,
      call,
      String(trial.jobsPerSecond),
      `${trial.callP50Ms} / ${trial.callP99Ms}`,
      String(trial.added),
      String(trial.stored - trial.added),
      cpuPerJob(trial),
      String(trial.cpu?.othersPercent ?? '?'),
    ]),
    notes: [
      ...chosen.map((system) => `${system.name}: ${system.settings}`),
      'jobs/s: jobs whose call returned inside the timed window; per call: calls started in it (one job, or one bulk call)',
      'stored − added: the store counted after the last call returned (ours, graphile, pg-boss: SQL; BullMQ: getJobCounts) minus the jobs of every call that returned, warm-up included; anything but 0 is a lost or doubled job',
      'CPU per job: this Node process (the client library, and for ours the JobService) and the store (PostgreSQL\'s backends of the trial\'s database, or redis-server), over warm-up, timed window and tail, divided by the jobs added; others %: the rest of the machine\'s CPU meanwhile (above 10 the row was slowed by others)',
      'every job has the input {num1: "1", num2: "2"}; ours-library has no bulk call (enqueue takes one job; its bulk is the service\'s addJobs)',
      'an add answered on PostgreSQL has been committed as the server\'s synchronous_commit says (the header line)',
      ...[...new Set(measured.flatMap(({ system, trial }) => (trial.durability ? [`${system}: ${trial.durability}`] : [])))],
    ],
    data: { args: { ...args, bulk }, rows: measured },
  };
}

function cpuPerJob(trial: EnqueueTrial): string {
  if (!trial.cpu || trial.added === 0) return '-';
  const store = trial.cpu.redisMs ?? trial.cpu.postgresMs;
  return `${(trial.cpu.nodeMs / trial.added).toFixed(3)} / ${(store / trial.added).toFixed(3)}`;
}
