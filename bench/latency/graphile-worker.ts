import { EventEmitter } from 'node:events';
import pg from 'pg';
import { Logger, makeWorkerUtils, run, runMigrations, type WorkerEvents } from 'graphile-worker';
import { addDecimals } from '../../src/jobs/decimal.ts';
import { createFreshDatabase } from '../lib/pg.ts';
import type { LatencySamples } from './ours.ts';

const silent = new Logger(() => () => undefined);

/**
 * graphile-worker in this process, batched as in the drain benchmark and idle (LISTENing) when
 * each job is added: addJob sent → its runner's job:complete event. No HTTP, no WebSocket.
 */
export async function latencyGraphile(args: { jobs: number; warmup: number }): Promise<LatencySamples> {
  const fresh = await createFreshDatabase('latency_graphile');
  const pgPool = new pg.Pool({ connectionString: fresh.url, max: 10 });
  pgPool.on('error', () => undefined);
  pgPool.on('connect', (client) => client.on('error', () => undefined));
  const preset = {
    worker: { concurrentJobs: 24, logger: silent, localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 },
  };
  let runner: Awaited<ReturnType<typeof run>> | undefined;
  try {
    await runMigrations({ preset, pgPool });
    const utils = await makeWorkerUtils({ preset, pgPool });
    const completedAt = new Map<string, number>();
    let waiting: { id: string; resolve: () => void } | undefined;
    const events: WorkerEvents = new EventEmitter();
    events.on('job:complete', ({ job, error }) => {
      if (error) return;
      completedAt.set(job.id, performance.now());
      if (waiting?.id === job.id) waiting.resolve();
    });
    const taskList = {
      add: async (payload: unknown) => {
        const { num1, num2 } = payload as { num1: string; num2: string };
        addDecimals(num1, num2);
      },
    };
    runner = await run({ preset, pgPool, concurrency: 24, noHandleSignals: true, taskList, events });
    // Let the runner reach its idle LISTEN state before the first job.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const samples: LatencySamples = { total: [], add: [], completedAtSubscribe: 0 };
    try {
      for (let n = 0; n < args.warmup + args.jobs; n += 1) {
        const t0 = performance.now();
        const job = await utils.addJob('add', { num1: '1', num2: '2' });
        const added = performance.now();
        if (!completedAt.has(job.id)) {
          await new Promise<void>((resolve) => {
            waiting = { id: job.id, resolve };
          });
        }
        if (n >= args.warmup) {
          samples.total.push(completedAt.get(job.id)! - t0);
          samples.add.push(added - t0);
        }
        completedAt.delete(job.id);
      }
    } finally {
      await utils.release();
    }
    return samples;
  } finally {
    await runner?.stop().catch(() => undefined);
    await pgPool.end();
    await fresh.drop();
  }
}
