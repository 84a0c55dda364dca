import type { IQueueBackend } from 'bullmq';
import { type BullmqBackend, type BullmqSetup, withBullmq } from '../lib/bullmq.ts';
import { watchCpu } from '../lib/cpu.ts';
import { settle } from '../lib/pg.ts';
import { connectRedis } from '../lib/redis.ts';
import { drive, type EnqueueArgs, type EnqueueTrial, INPUT } from './common.ts';

const QUEUE = 'add';

/**
 * BullMQ's producer side: one `Queue`, `add` one job at a time or `addBulk` (its docs: fewer
 * round trips, all or none). On Redis the Queue's one connection carries every caller's commands
 * (ioredis sends them without waiting for the answers before); on PostgreSQL its pg.Pool has one
 * connection per caller (the docs: a pool sized for the concurrency). No Worker, so every job is
 * still waiting when counted through the same API.
 */
export async function enqueueBullmq(args: EnqueueArgs & { backend: BullmqBackend }): Promise<EnqueueTrial> {
  const trial = await withBullmq(args.backend, 'enqueue_bullmq', args.callers, (setup) => measure(setup, args));
  return args.backend === 'redis' ? { ...trial, durability: await redisPersistence() } : trial;
}

/**
 * An add that Redis answered is on disk only as its persistence settings say: with neither an
 * append-only file nor snapshots, it is in memory alone, whereas PostgreSQL's answer came after
 * the commit's WAL flush. A server that refuses CONFIG (a managed one) is reported as unknown.
 */
async function redisPersistence(): Promise<string> {
  const client = await connectRedis();
  try {
    const [, appendonly] = (await client.config('GET', 'appendonly')) as string[];
    const [, appendfsync] = (await client.config('GET', 'appendfsync')) as string[];
    const [, save] = (await client.config('GET', 'save')) as string[];
    return `Redis appendonly ${appendonly}${appendonly === 'yes' ? ` (appendfsync ${appendfsync})` : ''}, save "${save}"`;
  } catch (error) {
    return `Redis persistence unknown (${(error as Error).message})`;
  } finally {
    client.disconnect();
  }
}

async function measure<B extends IQueueBackend, C>(
  { classes, queueOptions, workerOptions, database, redisPid }: BullmqSetup<B, C>,
  args: EnqueueArgs,
): Promise<EnqueueTrial> {
  // withBullmq puts the pool size on the Worker's connection; here the Queue is the only user.
  const queue = new classes.Queue<typeof INPUT>(QUEUE, database ? { ...queueOptions, connection: workerOptions.connection } : queueOptions);
  try {
    await queue.waitUntilReady();
    const jobs = Array.from({ length: args.batch }, () => ({ name: QUEUE, data: INPUT }));
    const call = args.batch === 1 ? () => queue.add(QUEUE, INPUT) : () => queue.addBulk(jobs);
    // Redis here keeps nothing on disk (no RDB, no AOF), so only PostgreSQL has pages to flush.
    if (database) await settle(database.url);
    return await drive(call, args, () => watchCpu(database?.name ?? null, redisPid), async () => {
      const counts = await queue.getJobCounts();
      return Object.values(counts).reduce((sum, count) => sum + count, 0);
    });
  } finally {
    await queue.close().catch(() => undefined);
  }
}
