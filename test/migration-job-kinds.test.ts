import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../src/db/database.ts';
import { migrate } from '../src/db/migrate.ts';
import { createUnmigratedDatabase, testLogger, type UnmigratedDatabase } from './helpers/database.ts';
import { ANONYMOUS, createHub, createService, createWorker, statusOf, waitForJob } from './helpers/jobs.ts';

const KINDS_MIGRATION = '20261203140000_job_kinds';

/** Jobs as the schema before job kinds held them: numeric columns, in every status. */
const OLD_JOBS = [
  { status: 'pending', num1: '1', num2: '2', result: null, key: 'old-pending' },
  { status: 'pending', num1: '-0.000000000000000000000000000001', num2: '0', result: null, key: null },
  { status: 'wip', num1: '12345678901234567890.123456789', num2: '1', result: null, key: null },
  { status: 'completed', num1: '0.1', num2: '0.2', result: '0.3', key: 'old-completed' },
  // A numeric keeps the trailing zeros it was given; the service never wrote any, but a row
  // written by hand could hold them. The migration writes the service's spelling.
  { status: 'completed', num1: '1.50', num2: '2.50', result: '4.00', key: null },
  { status: 'retrieved', num1: `${'9'.repeat(60)}`, num2: '1', result: `1${'0'.repeat(60)}`, key: null },
  { status: 'failed', num1: '5', num2: '5', result: null, key: null },
  { status: 'cancelled', num1: '-7', num2: '7', result: null, key: null },
] as const;

let unmigrated: UnmigratedDatabase;
let db: Database;

beforeAll(async () => {
  unmigrated = await createUnmigratedDatabase('test_migration_job_kinds');
  db = unmigrated.db;
});

afterAll(() => unmigrated.drop());

async function countsByStatus(): Promise<Record<string, number>> {
  const rows = await db.query<{ status: string; count: number }>({
    name: 'migration_counts',
    text: 'SELECT status::text, count(*)::int AS count FROM job GROUP BY status ORDER BY status',
  });
  return Object.fromEntries(rows.map((row) => [row.status, row.count]));
}

describe('the job kinds migration', () => {
  it('carries every job of a populated database over, with nothing lost', async () => {
    await migrate(db, unmigrated.before(KINDS_MIGRATION), testLogger());
    const ids = OLD_JOBS.map(() => randomUUID());
    for (const [i, job] of OLD_JOBS.entries()) {
      await db.query(
        {
          name: `migration_old_insert`,
          text: `INSERT INTO job (id, num1, num2, result, status, attempt, max_attempts, idempotency_key, locked_by, completed_on)
                 VALUES ($1, $2, $3, $4, $5::job_status, 1, 3, $6, CASE WHEN $5 = 'wip' THEN 'old-worker' END,
                         CASE WHEN $5 IN ('completed', 'retrieved', 'failed') THEN now() END)`,
        },
        [ids[i], job.num1, job.num2, job.result, job.status, job.key],
      );
    }
    const before = await countsByStatus();

    await migrate(db, unmigrated.migrations, testLogger());

    const after = await countsByStatus();
    console.info(`jobs per status, before → after the migration: ${JSON.stringify(before)} → ${JSON.stringify(after)}`);
    expect(after).toEqual(before);
    expect(before).toEqual({ pending: 2, wip: 1, completed: 2, retrieved: 1, failed: 1, cancelled: 1 });
    const rows = await db.query<{ id: string; kind: string; input: unknown; result: unknown; status: string; locked_by: string | null }>({
      name: 'migration_rows',
      text: 'SELECT id, kind, input, result, status::text, locked_by FROM job',
    });
    const byId = new Map(rows.map((row) => [row.id, row]));
    const spelled = (text: string) => text.replace(/(\.\d*?)0+$/, '$1').replace(/\.$/, '');
    for (const [i, job] of OLD_JOBS.entries()) {
      expect(byId.get(ids[i]!)).toEqual({
        id: ids[i],
        kind: 'add',
        input: { num1: spelled(job.num1), num2: spelled(job.num2) },
        result: job.result === null ? null : spelled(job.result),
        status: job.status,
        locked_by: job.status === 'wip' ? 'old-worker' : null,
      });
    }
  });

  it('leaves the jobs working: a retried submission finds its job, and the old ones run', async () => {
    const hub = createHub(db);
    await hub.start();
    try {
      const service = createService(db, hub);
      const again = await service.addJob({ num1: '1', num2: '2', idempotencyKey: 'old-pending' }, ANONYMOUS);
      expect(again.created).toBe(false);
      const completed = await service.addJob({ num1: '0.10', num2: '0.2', idempotencyKey: 'old-completed' }, ANONYMOUS);
      expect(completed).toMatchObject({ created: false, job: { status: 'completed', result: '0.3' } });
      await expect(service.addJob({ num1: '9', num2: '2', idempotencyKey: 'old-pending' }, ANONYMOUS)).rejects.toMatchObject({ code: 'CONFLICT' });
      const worker = createWorker(db, hub);
      await worker.start();
      try {
        expect((await waitForJob(service, hub, again.job.id, statusOf('completed'))).result).toBe('3');
      } finally {
        await worker.stop();
      }
    } finally {
      await hub.stop();
    }
  });
});
