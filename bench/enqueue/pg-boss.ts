import { PgBoss } from 'pg-boss';
import { watchCpu } from '../lib/cpu.ts';
import { createFreshDatabase, settle, withClient } from '../lib/pg.ts';
import { drive, type EnqueueArgs, type EnqueueTrial, INPUT } from './common.ts';

const QUEUE = 'add';

/**
 * pg-boss started as its docs start it (its pool `max` set to one connection per caller, which is
 * its default of 10 at 10 callers), `send` one job at a time or `insert` in bulk into a queue made
 * with `createQueue`. No worker, so every job is still there to count.
 */
export async function enqueuePgBoss(args: EnqueueArgs): Promise<EnqueueTrial> {
  const fresh = await createFreshDatabase('enqueue_pgboss');
  const boss = new PgBoss({ connectionString: fresh.url, max: args.callers });
  // Once stopping, a connection of its pool may still be open when the database is dropped, and
  // pg-boss reports the server ending it: no news.
  let stopping = false;
  boss.on('error', (error) => {
    if (!stopping) console.error('pg-boss:', error);
  });
  let started = false;
  try {
    await boss.start();
    started = true;
    await boss.createQueue(QUEUE);
    const jobs = Array.from({ length: args.batch }, () => ({ data: INPUT }));
    const call = args.batch === 1 ? () => boss.send(QUEUE, INPUT) : () => boss.insert(QUEUE, jobs);
    await settle(fresh.url);
    return await drive(call, args, () => watchCpu(fresh.name), () =>
      withClient(
        fresh.url,
        async (client) => (await client.query('SELECT count(*)::int AS n FROM pgboss.job WHERE name = $1', [QUEUE])).rows[0].n as number,
      ),
    );
  } finally {
    stopping = true;
    if (started) await boss.stop({ graceful: true, timeout: 5_000 }).catch(() => undefined);
    await fresh.drop();
  }
}
