import { watchServerCpu } from './lib/cpu.ts';
import { runIsolated } from './lib/isolate.ts';
import { createFreshDatabase, withClient } from './lib/pg.ts';
import { waitForQuiet } from './lib/quiet.ts';
import { startServiceProcess } from './lib/service.ts';
import type { BenchContext, BenchResult } from './lib/types.ts';
import type { LoadArgs, LoadResult } from './ingest/load.ts';

const SECONDS = 5;
const WARMUP_SECONDS = 1;
const BATCH = 1000;

interface Phase {
  name: string;
  path: string;
  body?: string;
  connections: number;
  jobsPerRequest: number;
}

const ADD = JSON.stringify({ query: 'mutation { addJob(input: {num1: "1", num2: "2"}) { job { id } } }' });
// Variables keep the document small: inline, 1,000 inputs would meet GRAPHQL_MAX_TOKENS.
const ADD_BATCH = JSON.stringify({
  query: 'mutation ($inputs: [AddJobInput!]!) { addJobs(inputs: $inputs) { job { id } } }',
  variables: { inputs: Array.from({ length: BATCH }, () => ({ num1: '1', num2: '2' })) },
});

const PHASES: Phase[] = [
  { name: 'addJob', path: '/graphql', body: ADD, connections: 1, jobsPerRequest: 1 },
  { name: 'addJob', path: '/graphql', body: ADD, connections: 10, jobsPerRequest: 1 },
  { name: 'addJob', path: '/graphql', body: ADD, connections: 100, jobsPerRequest: 1 },
  { name: `addJobs ×${BATCH}`, path: '/graphql', body: ADD_BATCH, connections: 4, jobsPerRequest: BATCH },
  { name: 'REST POST /api/v1/add/1/2', path: '/api/v1/add/1/2', connections: 10, jobsPerRequest: 1 },
];

/**
 * Ingest: jobs accepted per second over HTTP keep-alive. The service runs as a real ROLE=api
 * process (no worker competes for the CPUs or the database); autocannon runs in a process of its
 * own. After each phase the job table is counted: every 2xx answer must have its jobs stored.
 */
export async function ingestBenchmark(context: BenchContext): Promise<BenchResult> {
  const seconds = context.sizes.seconds ?? SECONDS;
  const fresh = await createFreshDatabase('ingest');
  const measured: Array<{
    phase: Phase;
    load: LoadResult;
    stored: number;
    busyBefore: number | null;
    cpu: { serviceMs: number | null; postgresMs: number };
  }> = [];
  try {
    const service = await startServiceProcess({ ROLE: 'api', DATABASE_URL: fresh.url, ...context.oursEnv }, { execArgv: context.execArgv });
    const count = () => withClient(fresh.url, async (client) => (await client.query('SELECT count(*)::int AS n FROM job')).rows[0].n as number);
    try {
      for (const phase of PHASES) {
        const busyBefore = await waitForQuiet(15, 10_000);
        const before = await count();
        const args: LoadArgs = {
          url: `${service.base}${phase.path}`,
          method: 'POST',
          ...(phase.body ? { body: phase.body } : {}),
          connections: phase.connections,
          seconds,
          warmupSeconds: WARMUP_SECONDS,
        };
        const stopWatch = watchServerCpu(service.pid, fresh.name);
        const load = await runIsolated<LoadResult>(new URL('./ingest/load.ts', import.meta.url).href, 'load', args, {
          timeoutMs: 120_000,
        });
        const cpu = stopWatch();
        // Requests still in flight when autocannon stops may land after it; let them.
        await new Promise((resolve) => setTimeout(resolve, 500));
        const stored = (await count()) - before;
        measured.push({ phase, load, stored, busyBefore, cpu });
        context.log(
          `ingest ${phase.name} c=${phase.connections}: ${Math.round(load.requestsPerSecond * phase.jobsPerRequest)} jobs/s (${load.ok2xx} 2xx, ${load.non2xx} non-2xx, ${load.errors} errors; CPU busy before: ${busyBefore ?? '?'}%)`,
        );
      }
    } finally {
      await service.stop();
    }
  } finally {
    await fresh.drop();
  }

  return {
    name: 'ingest',
    measures: `jobs accepted per second over HTTP keep-alive by a ROLE=api process, autocannon in another process, ${seconds} s per row after ${WARMUP_SECONDS} s warm-up`,
    columns: [
      'request',
      'connections',
      'requests/s',
      'jobs/s',
      'latency p50 / p99 ms',
      '2xx',
      'non-2xx + errors',
      'jobs stored − jobs answered',
      'CPU ms per request: service / load / PostgreSQL',
    ],
    rows: measured.map(({ phase, load, stored, cpu }) => [
      phase.name,
      String(phase.connections),
      String(Math.round(load.requestsPerSecond)),
      String(Math.round(load.requestsPerSecond * phase.jobsPerRequest)),
      `${load.latencyP50Ms} / ${load.latencyP99Ms}`,
      String(load.ok2xx),
      String(load.non2xx + load.errors + load.timeouts),
      String(stored - (load.ok2xx + load.warmup2xx) * phase.jobsPerRequest),
      cpuPerRequest(cpu, load),
    ]),
    notes: [
      'targets (issue): addJob ≥ 5,000 jobs/s at 10 connections; addJobs ≥ 30,000 jobs/s',
      'last column: jobs in the table after the phase (warm-up included) minus 2xx answers × jobs per request; negative would be a loss, a small positive number is requests in flight when autocannon stopped',
      'one service process for all rows, in this order, on one fresh database',
      'the peers (graphile-worker, pg-boss, BullMQ, which has no HTTP API) are in the enqueue module: in-process adds through each client',
      'CPU per request: each process\'s CPU time over the warm-up and the timed run, divided by the 2xx answers of both (/proc; PostgreSQL is the backends of this database). Their sum against the 2 cores bounds requests/s',
    ],
    data: measured,
  };
}

function cpuPerRequest(cpu: { serviceMs: number | null; postgresMs: number }, load: LoadResult): string {
  const answered = load.ok2xx + load.warmup2xx;
  if (answered === 0) return '-';
  const per = (value: number | null) => (value === null ? '?' : (value / answered).toFixed(3));
  return `${per(cpu.serviceMs)} / ${per(load.cpuMs)} / ${per(cpu.postgresMs)}`;
}
