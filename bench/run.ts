/**
 * Runs the benchmarks, prints one table per benchmark, and writes everything measured to
 * bench/results/<timestamp>.json. Usage (see bench/README.md):
 *
 *   npm run bench -- [--only drain] [--systems ours,graphile-batched] [--runs 3]
 *                    [--ours WORKER_CONCURRENCY=200,DB_POOL_SIZE=10] [--jobs 20000] [--cpu-prof]
 *                    [--size connections=1000,perConnection=100]   (a benchmark's own sizes)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { describeMachine } from './lib/machine.ts';
import type { Benchmark, BenchContext, BenchResult } from './lib/types.ts';

/** Each benchmark is a module of its own; add new ones here. */
const BENCHMARKS: Record<string, () => Promise<Benchmark>> = {
  drain: async () => (await import('./drain.ts')).drainBenchmark,
  latency: async () => (await import('./latency.ts')).latencyBenchmark,
  ingest: async () => (await import('./ingest.ts')).ingestBenchmark,
  enqueue: async () => (await import('./enqueue.ts')).enqueueBenchmark,
  fanout: async () => (await import('./fanout.ts')).fanoutBenchmark,
  idle: async () => (await import('./idle.ts')).idleBenchmark,
  cost: async () => (await import('./cost.ts')).costBenchmark,
  progress: async () => (await import('./progress.ts')).progressBenchmark,
  growth: async () => (await import('./growth.ts')).growthBenchmark,
  fairshare: async () => (await import('./fairshare.ts')).fairShareBenchmark,
  workflow: async () => (await import('./workflow.ts')).workflowBenchmark,
};
/** Run only when named with --only: each takes longer than the rest together. */
const ON_REQUEST = new Set(['growth']);

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    systems: { type: 'string' },
    runs: { type: 'string', default: '3' },
    ours: { type: 'string' },
    jobs: { type: 'string' },
    size: { type: 'string' },
    'cpu-prof': { type: 'boolean', default: false },
  },
});

const list = (text: string | undefined) => (text ? text.split(',').map((item) => item.trim()).filter(Boolean) : []);
const names = list(values.only).length > 0 ? list(values.only) : Object.keys(BENCHMARKS).filter((name) => !ON_REQUEST.has(name));
for (const name of names) if (!BENCHMARKS[name]) throw new Error(`no benchmark "${name}"; have ${Object.keys(BENCHMARKS).join(', ')}`);

const resultsDir = fileURLToPath(new URL('./results/', import.meta.url));
const context: BenchContext = {
  runs: Number(values.runs),
  systems: list(values.systems),
  oursEnv: Object.fromEntries(list(values.ours).map((pair) => pair.split('=') as [string, string])),
  execArgv: values['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${resultsDir}profiles`] : [],
  sizes: {
    ...Object.fromEntries(list(values.size).map((pair) => [pair.split('=')[0]!, Number(pair.split('=')[1])])),
    ...(values.jobs ? { jobs: Number(values.jobs) } : {}),
  },
  log: (line) => console.error(line),
};

function table(result: BenchResult): string {
  const widths = result.columns.map((title, i) => Math.max(title.length, ...result.rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((cell, i) => cell.padEnd(widths[i]!)).join(' | ')} |`;
  return [
    line(result.columns),
    `|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`,
    ...result.rows.map(line),
  ].join('\n');
}

const machine = await describeMachine();
const startedAt = new Date();
const results: BenchResult[] = [];
for (const name of names) {
  const benchmark = await BENCHMARKS[name]!();
  results.push(await benchmark(context));
}

console.log(`\n${machine.cores} × ${machine.cpu}, ${machine.memoryGiB} GiB; Node ${machine.node}; ${machine.postgres}`);
console.log(`server: ${Object.entries(machine.settings).map(([key, value]) => `${key}=${value}`).join(', ')}`);
for (const result of results) {
  console.log(`\n## ${result.name}: ${result.measures}\n\n${table(result)}\n`);
  for (const note of result.notes) console.log(`- ${note}`);
}

mkdirSync(resultsDir, { recursive: true });
const file = `${resultsDir}${startedAt.toISOString().replace(/[:.]/g, '-')}.json`;
writeFileSync(file, `${JSON.stringify({ startedAt, argv: process.argv.slice(2), machine, results }, null, 2)}\n`);
console.log(`\nwritten to ${file}`);
