import pg from 'pg';
import { loadConfig } from '../../src/config.ts';
import { addKind } from '../../src/kinds/add.ts';
import { enqueue } from '../../src/library.ts';
import { watchCpu } from '../lib/cpu.ts';
import { openOurs } from '../lib/ours.ts';
import { settle, withClient } from '../lib/pg.ts';
import { drive, type EnqueueArgs, type EnqueueTrial, INPUT } from './common.ts';

export interface OursEnqueueOptions {
  /**
   * `library`: the package's `enqueue(client, kind, input)`, a client checked out of a pg.Pool of
   * one connection per caller for each call (no transaction of the caller's around it), one job a
   * call. `service`: `JobService.addJob` / `addJobs` in this process, the path the GraphQL and
   * REST resolvers call, at the service's defaults (DB_POOL_SIZE 10; concurrent adds share a
   * statement through its InsertCoalescer).
   */
  path: 'library' | 'service';
  /** Settings as environment strings over the service's defaults. */
  env?: Record<string, string>;
}

/** Our table, migrated by our own runner on a fresh database; counted with `count(*)` afterwards. */
export async function enqueueOurs(args: EnqueueArgs & OursEnqueueOptions): Promise<EnqueueTrial> {
  const env = args.env ?? {};
  const config = loadConfig(env);
  const ours = await openOurs(`enqueue_ours_${args.path}`, { env, maxBatchSize: config.BATCH_MAX_JOBS });
  const { fresh, service } = ours;
  const library = args.path === 'library' ? new pg.Pool({ connectionString: fresh.url, max: args.callers }) : null;
  try {
    let call: () => Promise<unknown>;
    if (library) {
      if (args.batch !== 1) throw new Error('enqueue takes one job a call; the bulk path is the service\'s addJobs');
      const kind = addKind({ maxDigits: config.NUMBER_MAX_DIGITS });
      call = async () => {
        const client = await library.connect();
        try {
          await enqueue(client, kind, INPUT);
        } finally {
          client.release();
        }
      };
    } else if (args.batch === 1) {
      call = () => service.addJob(INPUT, { owner: '' });
    } else {
      const inputs = Array.from({ length: args.batch }, () => INPUT);
      call = () => service.addJobs(inputs, { owner: '' });
    }
    await settle(fresh.url);
    return await drive(call, args, () => watchCpu(fresh.name), () =>
      withClient(fresh.url, async (client) => (await client.query('SELECT count(*)::int AS n FROM job')).rows[0].n as number),
    );
  } finally {
    await library?.end();
    await ours.close();
  }
}
