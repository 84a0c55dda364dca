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
import { createFreshDatabase, type FreshDatabase, withClient } from './pg.ts';
import { connectRedis, freshPrefix, redisOptions, redisServerPid } from './redis.ts';

export type BullmqBackend = 'redis' | 'postgres';

/** BullMQ's classes bound to one datastore, with the options that point them at this trial's data. */
export interface BullmqSetup<B extends IQueueBackend, C> {
  classes: BackendClasses<B, C>;
  queueOptions: QueueOptions<C>;
  workerOptions: WorkerOptions<C>;
  /** The trial's database on PostgreSQL; null on Redis. */
  database: FreshDatabase | null;
  /** The local redis-server's pid on Redis (for its CPU time); null otherwise. */
  redisPid: number | null;
}

/**
 * Runs `work` on data of its own: on Redis a fresh key prefix whose keys are deleted afterwards,
 * on PostgreSQL a fresh database migrated by BullMQ's own `runMigrations` and dropped afterwards.
 * `poolSize` sets the Worker's pg.Pool (pg's default is 10).
 */
export async function withBullmq<T>(
  backend: BullmqBackend,
  system: string,
  poolSize: number | undefined,
  work: <B extends IQueueBackend, C>(setup: BullmqSetup<B, C>) => Promise<T>,
): Promise<T> {
  if (backend === 'redis') {
    const admin = await connectRedis();
    const fresh = freshPrefix(admin, system);
    try {
      // What BullMQ requires of a Worker's connection: its blocking commands must not give up.
      const options = { connection: { ...redisOptions(), maxRetriesPerRequest: null }, prefix: fresh.prefix };
      return await work({
        classes: withBackend(createRedisBackend),
        queueOptions: options,
        workerOptions: options,
        database: null,
        redisPid: await redisServerPid(admin),
      });
    } finally {
      await fresh.drop();
      admin.disconnect();
    }
  }
  const fresh = await createFreshDatabase(system);
  try {
    await withClient(fresh.url, (client) => runMigrations(client));
    return await work({
      classes: withBackend(createPostgresBackend),
      queueOptions: { connection: fresh.url },
      workerOptions: { connection: { connectionString: fresh.url, ...(poolSize ? { max: poolSize } : {}) } },
      database: fresh,
      redisPid: null,
    });
  } finally {
    await fresh.drop();
  }
}
