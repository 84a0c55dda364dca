import { randomBytes } from 'node:crypto';
import { databaseUrl, LOCAL_SERVER_URL, withClient } from '../../test/helpers/admin.ts';

export { withClient };

/** The server every benchmark runs on. Each trial gets a database of its own there. */
export const ADMIN_URL = process.env.BENCH_DATABASE_URL ?? LOCAL_SERVER_URL;

export interface FreshDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

/**
 * Creates `bench_<system>_<random>`, empty or a copy of `template` (file by file: the default
 * strategy would write gigabytes of a big template through the WAL); `drop` removes it, with any
 * connection left open to it.
 */
export async function createFreshDatabase(system: string, template?: string): Promise<FreshDatabase> {
  const name = `bench_${system.replace(/[^a-z0-9]/gi, '_').toLowerCase()}_${randomBytes(4).toString('hex')}`;
  await withClient(ADMIN_URL, (admin) => admin.query(`CREATE DATABASE ${name}${template ? ` TEMPLATE ${template} STRATEGY FILE_COPY` : ''}`));
  return {
    name,
    url: databaseUrl(name, ADMIN_URL),
    drop: () => withClient(ADMIN_URL, async (admin) => void (await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))),
  };
}

/**
 * Flushes dirty pages before the timed part, so a checkpoint that happens to fall inside one
 * system's run does not count against it alone.
 */
export async function settle(url: string): Promise<void> {
  await withClient(url, (client) => client.query('CHECKPOINT'));
}

/** Polls `check` until it is true, then resolves with the time it was first seen true. */
export async function pollUntil(check: () => Promise<boolean>, intervalMs: number, deadlineMs: number): Promise<number> {
  const deadline = performance.now() + deadlineMs;
  for (;;) {
    if (await check()) return performance.now();
    if (performance.now() > deadline) throw new Error(`not done after ${deadlineMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
