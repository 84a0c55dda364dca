import { EventEmitter } from 'node:events';
import pg from 'pg';
import { Logger, makeWorkerUtils, run, runMigrations, type WorkerEvents } from 'graphile-worker';
import { watchCpu } from '../lib/cpu.ts';
import { createFreshDatabase, pollUntil, settle, withClient } from '../lib/pg.ts';
import { chunks, type DrainArgs, type DrainTrial, expectedSum, input, signal, trial, withDeadline } from './common.ts';
import { addDecimals } from '../../src/jobs/decimal.ts';

export interface GraphileOptions {
  concurrency: number;
  /**
   * Batched: the pool fetches `localQueue.size` jobs per query and hands them to its workers, and
   * completions are written in batches (`completeJobBatchDelay: 0`). Unbatched: the defaults,
   * one get_job and one complete_job query per job.
   */
  batched: boolean;
  localQueueSize?: number;
}

const silent = new Logger(() => () => undefined);

/**
 * graphile-worker deletes a job when it completes and stores no result, so "done" is an empty
 * jobs table. The task checks each sum itself and counts how often each job ran.
 */
export async function drainGraphile(args: DrainArgs & GraphileOptions): Promise<DrainTrial> {
  const fresh = await createFreshDatabase(args.batched ? 'graphile_batched' : 'graphile');
  const connectionString = fresh.url;
  // Our own pool (graphile's default size, 10), so it is surely closed before the database is
  // dropped; graphile-worker does not end a pool it was given.
  const pgPool = new pg.Pool({ connectionString, max: 10 });
  pgPool.on('error', () => undefined);
  pgPool.on('connect', (client) => client.on('error', () => undefined));
  const preset = {
    worker: {
      concurrentJobs: args.concurrency,
      logger: silent,
      ...(args.batched
        ? { localQueue: { size: args.localQueueSize ?? 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 }
        : {}),
    },
  };
  let runner: Awaited<ReturnType<typeof run>> | undefined;
  try {
    await runMigrations({ preset, pgPool });
    const utils = await makeWorkerUtils({ preset, pgPool });
    const enqueueStart = performance.now();
    try {
      for (const chunk of chunks(args.jobs, args.enqueueBatch)) {
        await utils.addJobs(chunk.map((i) => ({ identifier: 'add', payload: input(i) })));
      }
    } finally {
      await utils.release();
    }
    const enqueueMs = performance.now() - enqueueStart;
    await settle(connectionString);

    const runs = new Uint8Array(args.jobs);
    let wrong = 0;
    let completed = 0;
    const heard = signal();
    const events: WorkerEvents = new EventEmitter();
    events.on('job:complete', ({ error }) => {
      if (!error) completed += 1;
      if (completed >= args.jobs) heard.resolve();
    });
    const taskList = {
      add: async (payload: unknown) => {
        const { i, num1, num2 } = payload as ReturnType<typeof input>;
        runs[i]! += 1;
        if (addDecimals(num1, num2) !== expectedSum(i)) wrong += 1;
      },
    };
    const stopWatch = watchCpu(fresh.name);
    const startedAt = performance.now();
    runner = await run({ preset, pgPool, concurrency: args.concurrency, noHandleSignals: true, taskList, events });
    await withDeadline(heard.promise, args.deadlineMs, 'graphile-worker');
    // job:complete fires once the completion is queued; the batch may still be on its way.
    const doneAt = await withClient(connectionString, (client) =>
      pollUntil(
        async () => (await client.query('SELECT count(*)::int AS n FROM graphile_worker._private_jobs')).rows[0].n === 0,
        2,
        5_000,
      ),
    );
    const cpu = stopWatch();
    await runner.stop();
    runner = undefined;
    const once = runs.filter((count) => count === 1).length;
    if (once !== args.jobs || wrong !== 0) throw new Error(`graphile-worker: ${once} ran once, ${wrong} wrong sums`);
    return trial(args.jobs, enqueueMs, startedAt, doneAt, `${args.jobs} deleted (done), each run once, sums correct (not stored)`, cpu);
  } finally {
    await runner?.stop().catch(() => undefined);
    await pgPool.end();
    await fresh.drop();
  }
}
