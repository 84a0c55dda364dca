import type { IQueueBackend } from 'bullmq';
import { addDecimals } from '../../src/jobs/decimal.ts';
import { type BullmqBackend, type BullmqSetup, withBullmq } from '../lib/bullmq.ts';
import { watchCpu } from '../lib/cpu.ts';
import { pollUntil, settle } from '../lib/pg.ts';
import { chunks, type DrainArgs, type DrainTrial, expectedSum, input, signal, trial, withDeadline } from './common.ts';

export interface BullmqOptions {
  /** The same Queue and Worker API on either datastore. */
  backend: BullmqBackend;
  /** Jobs the one Worker runs at once. */
  concurrency: number;
  /** The Worker's pg.Pool size (PostgreSQL only; pg's default is 10). */
  poolSize?: number;
}

type Input = ReturnType<typeof input>;

const QUEUE = 'add';
/** Completed jobs read per call when checking them. */
const VERIFY_PAGE = 1_000;

/**
 * BullMQ: jobs added with `addBulk`, then one Worker started. A job's return value is stored
 * with it (`removeOnComplete` unset keeps every completed job), so "done" is every job
 * completed with its sum, on its first attempt, each handler run once.
 */
export async function drainBullmq(args: DrainArgs & BullmqOptions): Promise<DrainTrial> {
  return withBullmq(args.backend, 'bullmq', args.poolSize, (setup) => drain(setup, args));
}

async function drain<B extends IQueueBackend, C>(
  { classes, queueOptions, workerOptions, database, redisPid }: BullmqSetup<B, C>,
  args: DrainArgs & BullmqOptions,
): Promise<DrainTrial> {
  const queue = new classes.Queue<Input, string>(QUEUE, queueOptions);
  const runs = new Uint8Array(args.jobs);
  const worker = new classes.Worker<Input, string>(
    QUEUE,
    async (job) => {
      runs[job.data.i]! += 1;
      return addDecimals(job.data.num1, job.data.num2);
    },
    { ...workerOptions, concurrency: args.concurrency, autorun: false },
  );
  // Resolves with null when every job is done, or with what went wrong first.
  const heard = signal<Error | null>();
  let completed = 0;
  worker.on('completed', () => {
    completed += 1;
    if (completed >= args.jobs) heard.resolve(null);
  });
  worker.on('failed', (job, error) => heard.resolve(new Error(`bullmq: job ${job?.id} failed: ${error.message}`)));
  worker.on('error', (error) => heard.resolve(error));
  try {
    const enqueueStart = performance.now();
    for (const chunk of chunks(args.jobs, args.enqueueBatch)) {
      await queue.addBulk(chunk.map((i) => ({ name: QUEUE, data: input(i) })));
    }
    const enqueueMs = performance.now() - enqueueStart;
    // Redis here keeps nothing on disk (no RDB, no AOF), so only PostgreSQL has pages to flush.
    if (database) await settle(database.url);
    await worker.waitUntilReady();

    const stopWatch = watchCpu(database?.name ?? null, redisPid);
    const startedAt = performance.now();
    worker.run().catch((error: Error) => heard.resolve(error));
    const failure = await withDeadline(heard.promise, args.deadlineMs, `bullmq-${args.backend}`);
    if (failure) throw failure;
    // `completed` is emitted once the job's move to completed has returned; the count confirms it.
    const doneAt = await pollUntil(async () => ((await queue.getJobCounts('completed')).completed ?? 0) >= args.jobs, 2, 5_000);
    const cpu = stopWatch();
    await worker.close();

    const counts = await queue.getJobCounts('completed', 'failed', 'active', 'wait', 'delayed');
    let correct = 0;
    let firstTry = 0;
    for (let start = 0; start < args.jobs; start += VERIFY_PAGE) {
      for (const job of await queue.getJobs('completed', start, start + VERIFY_PAGE - 1, true)) {
        if (job.returnvalue === expectedSum(job.data.i)) correct += 1;
        if (job.attemptsMade === 1 && job.attemptsStarted === 1) firstTry += 1;
      }
    }
    const once = runs.filter((count) => count === 1).length;
    if (counts.completed !== args.jobs || correct !== args.jobs || firstTry !== args.jobs || once !== args.jobs) {
      throw new Error(`bullmq: verification failed: ${JSON.stringify({ counts, correct, firstTry, once })}`);
    }
    return trial(
      args.jobs,
      enqueueMs,
      startedAt,
      doneAt,
      `${counts.completed} completed, ${correct} return values = num1 + num2, first try, each run once`,
      cpu,
    );
  } finally {
    await worker.close().catch(() => undefined);
    await queue.close().catch(() => undefined);
  }
}
