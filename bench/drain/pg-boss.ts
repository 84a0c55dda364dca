import { PgBoss } from 'pg-boss';
import { addDecimals } from '../../src/jobs/decimal.ts';
import { watchCpu } from '../lib/cpu.ts';
import { createFreshDatabase, pollUntil, settle, withClient } from '../lib/pg.ts';
import { chunks, type DrainArgs, type DrainTrial, input, signal, trial, withDeadline } from './common.ts';

export interface PgBossOptions {
  /** Jobs per fetch; the handler gets them as one array and returns one result per job. */
  batchSize: number;
  /** Fetch loops per process (pg-boss's default is 1). */
  localConcurrency?: number;
}

const QUEUE = 'add';

/**
 * pg-boss with a batch handler. `perJobResults` makes it store each job's own output (the sum) in
 * one statement per batch; without it, a batch handler's return value is not stored per job.
 * `burstWhenBatchFull` makes the worker fetch again at once while fetches come back full; without
 * it pg-boss waits `pollingIntervalSeconds` (2 s) between fetches, i.e. 50 jobs/s at batchSize 100.
 */
export async function drainPgBoss(args: DrainArgs & PgBossOptions): Promise<DrainTrial> {
  const fresh = await createFreshDatabase('pgboss');
  const boss = new PgBoss({ connectionString: fresh.url });
  boss.on('error', (error) => console.error('pg-boss:', error));
  let started = false;
  try {
    await boss.start();
    started = true;
    await boss.createQueue(QUEUE);
    const enqueueStart = performance.now();
    for (const chunk of chunks(args.jobs, args.enqueueBatch)) {
      await boss.insert(QUEUE, chunk.map((i) => ({ data: input(i) })));
    }
    const enqueueMs = performance.now() - enqueueStart;
    await settle(fresh.url);

    let handled = 0;
    const heard = signal();
    const stopWatch = watchCpu(fresh.name);
    const startedAt = performance.now();
    await boss.work<ReturnType<typeof input>>(QUEUE, {
        batchSize: args.batchSize,
        localConcurrency: args.localConcurrency ?? 1,
        burstWhenBatchFull: true,
        perJobResults: true,
      }, async (jobs) => {
      const results = jobs.map((job) => ({
        id: job.id,
        status: 'completed' as const,
        output: { sum: addDecimals(job.data.num1, job.data.num2) },
      }));
      handled += jobs.length;
      // The handler has returned its last batch; pg-boss writes it after this.
      if (handled >= args.jobs) setImmediate(() => heard.resolve());
      return results;
    });
    await withDeadline(heard.promise, args.deadlineMs, 'pg-boss');
    const count = `SELECT count(*) FILTER (WHERE state = 'completed')::int AS completed,
                          count(*) FILTER (WHERE state = 'completed' AND retry_count = 0
                                           AND (output->>'sum')::numeric = (data->>'num1')::numeric + (data->>'num2')::numeric)::int AS correct
                   FROM pgboss.job WHERE name = '${QUEUE}'`;
    const check = await withClient(fresh.url, async (client) => {
      const doneAt = await pollUntil(async () => (await client.query(count)).rows[0].completed >= args.jobs, 2, 5_000);
      const cpu = stopWatch();
      return { doneAt, cpu, ...(await client.query(count)).rows[0] };
    });
    if (check.correct !== args.jobs) throw new Error(`pg-boss: verification failed: ${JSON.stringify(check)}`);
    return trial(args.jobs, enqueueMs, startedAt, check.doneAt, `${check.completed} completed, ${check.correct} outputs = num1 + num2, first try`, check.cpu);
  } finally {
    if (started) await boss.stop({ graceful: true, timeout: 5_000 }).catch(() => undefined);
    await fresh.drop();
  }
}
