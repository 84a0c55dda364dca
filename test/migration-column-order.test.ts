import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../src/db/database.ts';
import { migrate } from '../src/db/migrate.ts';
import { withAdmin } from './helpers/admin.ts';
import { createUnmigratedDatabase, testLogger, type UnmigratedDatabase } from './helpers/database.ts';
import { ANONYMOUS, createHub, createService, createWorker, statusOf, waitForJob } from './helpers/jobs.ts';

const COLUMN_ORDER_MIGRATION = '20261205000000_job_column_order';

let unmigrated: UnmigratedDatabase;
let reader: string;
let db: Database;

beforeAll(async () => {
  reader = `test_job_reader_${randomBytes(4).toString('hex')}`;
  await withAdmin((admin) => admin.query(`CREATE ROLE ${reader} NOLOGIN`));
  unmigrated = await createUnmigratedDatabase('test_migration_column_order');
  db = unmigrated.db;
});

afterAll(async () => {
  await unmigrated.drop();
  await withAdmin((admin) => admin.query(`DROP ROLE IF EXISTS ${reader}`));
});

/** Every job whole, generated columns included, in id order: what the rebuild must keep. */
async function allJobs(): Promise<unknown[]> {
  const rows = await db.query<{ job: unknown }>({ name: 'column_order_jobs', text: 'SELECT to_jsonb(job) AS job FROM job ORDER BY id' });
  return rows.map((row) => row.job);
}

async function indexDefinitions(): Promise<Record<string, string>> {
  const rows = await db.query<{ indexname: string; indexdef: string }>({
    name: 'column_order_indexes',
    text: `SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'job'`,
  });
  return Object.fromEntries(rows.map((row) => [row.indexname, row.indexdef]));
}

async function tableSettings(): Promise<{ heap: string[]; toast: string[] }> {
  const [row] = await db.query<{ heap: string[] | null; toast: string[] | null }>({
    name: 'column_order_settings',
    text: `SELECT heap.reloptions AS heap, toast.reloptions AS toast
           FROM pg_class AS heap LEFT JOIN pg_class AS toast ON toast.oid = heap.reltoastrelid WHERE heap.oid = 'job'::regclass`,
  });
  return { heap: [...(row!.heap ?? [])].sort(), toast: [...(row!.toast ?? [])].sort() };
}

describe('the job column order migration', () => {
  it('keeps every job, column for column, and the indexes, settings and grants of the table', async () => {
    const before = unmigrated.before(COLUMN_ORDER_MIGRATION);
    await migrate(db, before, testLogger());

    // A job in every state, with every optional column set somewhere.
    const statuses = ['pending', 'wip', 'completed', 'retrieved', 'failed', 'cancelled', 'waiting'] as const;
    for (const [i, status] of statuses.entries()) {
      await db.query(
        {
          name: 'column_order_insert',
          text: `INSERT INTO job (id, kind, input, result, progress, status, attempt, max_attempts, timeout_seconds, last_error,
                                 run_at, priority, locked_by, idempotency_key, unique_key, owner, version, created_at,
                                 last_updated, completed_on, retrieved_at, traceparent, concurrency_key, concurrency_order,
                                 has_dependents, parents_left)
                 VALUES ($1, 'add', $2, $3, $4, $5::job_status, $6::int, 5, $7, $8, now() + make_interval(secs => $6::int), $6::int,
                         $9, $10, $11, $12, $6::int + 1, now() - interval '1 hour', now(),
                         CASE WHEN $5 IN ('completed', 'retrieved', 'failed', 'cancelled') THEN now() END,
                         CASE WHEN $5 = 'retrieved' THEN now() END, $13, $14, $15, $6::int = 2, $16)`,
        },
        [
          randomUUID(),
          { num1: String(i), num2: '0.5' },
          ['completed', 'retrieved'].includes(status) ? { sum: `${i}.5` } : null,
          i % 2 === 0 ? { done: i, of: 10 } : null,
          status,
          i,
          i % 3 === 0 ? 30 : null,
          i % 2 === 1 ? `error ${i}` : null,
          status === 'pending' || status === 'waiting' ? null : `worker-${i}`,
          `idempotency-${i}`,
          ['pending', 'wip'].includes(status) ? `unique-${i}` : null,
          i % 2 === 0 ? 'a'.repeat(64) : '',
          i % 2 === 0 ? '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' : null,
          i % 3 === 1 ? `concurrency-${i}` : null,
          i % 3 === 1 ? i : null,
          status === 'waiting' ? 2 : null,
        ],
      );
    }
    await db.transaction(async (tx) => {
      await tx.exec(`ALTER TABLE job SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000, toast.autovacuum_enabled = false)`);
      await tx.exec(`GRANT SELECT ON job TO ${reader}`);
    });
    const jobsBefore = await allJobs();
    const indexesBefore = await indexDefinitions();
    expect(jobsBefore).toHaveLength(statuses.length);

    await migrate(db, unmigrated.migrations.slice(0, before.length + 1), testLogger());

    expect(await allJobs()).toEqual(jobsBefore);
    expect(await indexDefinitions()).toEqual(indexesBefore);
    expect(await tableSettings()).toEqual({
      heap: ['autovacuum_vacuum_scale_factor=0.01', 'autovacuum_vacuum_threshold=1000', 'fillfactor=50'],
      toast: ['autovacuum_enabled=false'],
    });
    const [privileges] = await db.query<{ select: boolean; insert: boolean }>({
      name: 'column_order_privileges',
      text: `SELECT has_table_privilege($1, 'job', 'SELECT') AS select, has_table_privilege($1, 'job', 'INSERT') AS insert`,
    }, [reader]);
    expect(privileges).toEqual({ select: true, insert: false });
  });

  it('leaves the queue working on the rebuilt table: a job submitted now completes', async () => {
    // With the later migrations too: this build's statements name their columns.
    await migrate(db, unmigrated.migrations, testLogger());
    const hub = createHub(db);
    await hub.start();
    try {
      const service = createService(db, hub);
      const { job } = await service.addJob({ num1: '1.25', num2: '2' }, ANONYMOUS);
      const worker = createWorker(db, hub);
      await worker.start();
      try {
        expect((await waitForJob(service, hub, job.id, statusOf('completed'))).result).toBe('3.25');
      } finally {
        await worker.stop();
      }
    } finally {
      await hub.stop();
    }
  });
});
