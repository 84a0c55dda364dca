import pg from 'pg';
import { Logger, makeWorkerUtils, runMigrations } from 'graphile-worker';
import { watchCpu } from '../lib/cpu.ts';
import { createFreshDatabase, settle, withClient } from '../lib/pg.ts';
import { drive, type EnqueueArgs, type EnqueueTrial, INPUT } from './common.ts';

const silent = new Logger(() => () => undefined);

/**
 * graphile-worker's producer side: one `WorkerUtils` on a pg.Pool of one connection per caller
 * (its docs: make WorkerUtils once and reuse it; `quickAddJob` builds and tears down a pool per
 * call), `addJob` one at a time or `addJobs` in bulk. No runner, so nothing deletes a job before
 * the count.
 */
export async function enqueueGraphile(args: EnqueueArgs): Promise<EnqueueTrial> {
  const fresh = await createFreshDatabase('enqueue_graphile');
  // Our own pool, so it is surely closed before the database is dropped.
  const pgPool = new pg.Pool({ connectionString: fresh.url, max: args.callers });
  pgPool.on('error', () => undefined);
  pgPool.on('connect', (client) => client.on('error', () => undefined));
  const preset = { worker: { logger: silent } };
  try {
    await runMigrations({ preset, pgPool });
    const utils = await makeWorkerUtils({ preset, pgPool });
    try {
      const specs = Array.from({ length: args.batch }, () => ({ identifier: 'add', payload: INPUT }));
      const call = args.batch === 1 ? () => utils.addJob('add', INPUT) : () => utils.addJobs(specs);
      await settle(fresh.url);
      return await drive(call, args, () => watchCpu(fresh.name), () =>
        withClient(
          fresh.url,
          async (client) => (await client.query('SELECT count(*)::int AS n FROM graphile_worker._private_jobs')).rows[0].n as number,
        ),
      );
    } finally {
      await utils.release();
    }
  } finally {
    await pgPool.end();
    await fresh.drop();
  }
}
