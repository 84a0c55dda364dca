import {
  type BackendClasses,
  createPostgresBackend,
  createRedisBackend,
  type IQueueBackend,
  type QueueOptions,
  runMigrations,
  withBackend,
  type WorkerOptions,
} from 'bullmq';
import { addDecimals } from '../../src/jobs/decimal.ts';
import { type CpuReport, watchCpu } from '../lib/cpu.ts';
import { createFreshDatabase, pollUntil, settle, withClient } from '../lib/pg.ts';
import { connectRedis, freshPrefix, redisOptions, redisServerPid } from '../lib/redis.ts';
import { chunks, type DrainArgs, type DrainTrial, expectedSum, input, signal, trial, withDeadline } from './common.ts';

export interface BullmqOptions {
  /** The same Queue and Worker API on either datastore. */
  backend: 'redis' | 'postgres';
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
  return args.backend === 'redis' ? drainOnRedis(args) : drainOnPostgres(args);
}

/** A trial owns a fresh key prefix on the server and deletes its keys afterwards. */
async function drainOnRedis(args: DrainArgs & BullmqOptions): Promise<DrainTrial> {
  const admin = await connectRedis();
  const fresh = freshPrefix(admin, 'bullmq');
  try {
    const pid = await redisServerPid(admin);
    // What BullMQ requires of a Worker's connection: its blocking commands must not give up.
    const connection = { ...redisOptions(), maxRetriesPerRequest: null };
    const options = { connection, prefix: fresh.prefix };
    return await drain(withBackend(createRedisBackend), options, options, args, {
      // Redis here keeps nothing on disk (no RDB, no AOF), so there is nothing to flush first.
      settle: async () => undefined,
      watch: () => watchCpu(null, pid),
    });
  } finally {
    await fresh.drop();
    admin.disconnect();
  }
}

/** A trial owns a fresh database, migrated by BullMQ's own `runMigrations`, and drops it. */
async function drainOnPostgres(args: DrainArgs & BullmqOptions): Promise<DrainTrial> {
  const fresh = await createFreshDatabase('bullmq');
  try {
    await withClient(fresh.url, (client) => runMigrations(client));
    return await drain(
      withBackend(createPostgresBackend),
      { connection: fresh.url },
      { connection: { connectionString: fresh.url, ...(args.poolSize ? { max: args.poolSize } : {}) } },
      args,
      { settle: () => settle(fresh.url), watch: () => watchCpu(fresh.name) },
    );
  } finally {
    await fresh.drop();
  }
}

async function drain<B extends IQueueBackend, C>(
  classes: BackendClasses<B, C>,
  queueOptions: QueueOptions<C>,
  workerOptions: WorkerOptions<C>,
  args: DrainArgs & BullmqOptions,
  around: { settle: () => Promise<void>; watch: () => () => CpuReport | null },
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
    await around.settle();
    await worker.waitUntilReady();

    const stopWatch = around.watch();
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
