import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';

/** The Redis server the BullMQ rows run on. Each trial gets a key prefix of its own there. */
export const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Host, port and db of `REDIS_URL`, as BullMQ's (ioredis's) connection options take them. */
export function redisOptions(): { host: string; port: number; db: number } {
  const url = new URL(REDIS_URL);
  return { host: url.hostname, port: Number(url.port || 6379), db: Number(url.pathname.slice(1) || 0) };
}

/**
 * A client that fails at once when the server is not there: ioredis otherwise retries for ever,
 * and BullMQ's own connections (`maxRetriesPerRequest: null`) would wait until the trial's
 * deadline with no word of why.
 */
export async function connectRedis(): Promise<Redis> {
  const client = new Redis({
    ...redisOptions(),
    lazyConnect: true,
    connectTimeout: 2_000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  // connect() rejects with "Connection is closed."; the socket's own error says why.
  let cause: Error | undefined;
  client.on('error', (error: Error) => {
    cause ??= error;
  });
  try {
    await client.connect();
    await client.ping();
  } catch (error) {
    client.disconnect();
    throw new Error(
      `Redis is not reachable at ${REDIS_URL} (set BENCH_REDIS_URL, or start redis-server): ${(cause ?? (error as Error)).message}`,
    );
  }
  return client;
}

export interface FreshPrefix {
  prefix: string;
  /** Deletes every key under the prefix. */
  drop(): Promise<void>;
}

/** A key prefix no other trial uses, `bench_<system>_<random>`, like a fresh database. */
export function freshPrefix(client: Redis, system: string): FreshPrefix {
  const prefix = `bench_${system.replace(/[^a-z0-9]/gi, '_').toLowerCase()}_${randomBytes(4).toString('hex')}`;
  return {
    prefix,
    drop: async () => {
      let cursor = '0';
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
        if (keys.length > 0) await client.unlink(...keys);
        cursor = next;
      } while (cursor !== '0');
    },
  };
}

/**
 * The pid of the redis-server process behind `client`, when it runs on this machine (its
 * /proc entry exists and is a redis-server); null otherwise, e.g. for a server elsewhere.
 */
export async function redisServerPid(client: Redis): Promise<number | null> {
  const match = /^process_id:(\d+)/m.exec(await client.info('server'));
  if (!match) return null;
  try {
    return readFileSync(`/proc/${match[1]}/comm`, 'utf8').trim() === 'redis-server' ? Number(match[1]) : null;
  } catch {
    return null;
  }
}
