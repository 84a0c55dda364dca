import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { migrate, readMigrations } from '../src/db/migrate.ts';
import { LOCK_FILE } from '../src/db/data-dir-lock.ts';
import { MIGRATIONS_DIR, openDatabase } from '../src/db/open.ts';
import { DurableNodeFS, openPglite } from '../src/db/pglite.ts';
import { testLogger } from './helpers/database.ts';
import { z } from 'zod';
import { defineKind } from '../src/kinds/define.ts';
import { ANONYMOUS, createHub, createService, createWorker, statusOf, testKinds, waitForJob } from './helpers/jobs.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'jobs-pglite-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

const config = { DATABASE_URL: undefined, EMBEDDED_DATABASE: 'pglite' as const, DATA_DIR: dataDir, DB_POOL_SIZE: 1 };

describe('the embedded database', () => {
  it('runs the whole lifecycle, and keeps the jobs in its data folder', async () => {
    const db = await openDatabase(config, await readMigrations(MIGRATIONS_DIR), testLogger());
    expect(db.kind).toBe('pglite');
    const hub = createHub(db);
    const service = createService(db, hub);
    const worker = createWorker(db, hub);
    await worker.start();

    const { job } = await service.addJob({ num1: '0.1', num2: '0.2' }, ANONYMOUS);
    const completed = await waitForJob(service, hub, job.id, statusOf('completed'));
    expect(completed.result?.toString()).toBe('0.3');
    expect((await service.retrieveJob(job.id, ANONYMOUS))?.status).toBe('retrieved');

    const batch = await service.addJobs(
      Array.from({ length: 50 }, (_, i) => ({ num1: String(i), num2: '1' })),
      ANONYMOUS,
    );
    for (const { job: queued } of batch) await waitForJob(service, hub, queued.id, statusOf('completed'));
    await worker.stop();
    await hub.stop();
    await db.close();

    const reopened = await openDatabase(config, await readMigrations(MIGRATIONS_DIR), testLogger());
    const again = await createService(reopened, createHub(reopened)).getJob(job.id, ANONYMOUS);
    expect(again?.status).toBe('retrieved');
    expect(again?.result?.toString()).toBe('0.3');
    expect(await reopened.prisma.job.count({ where: { status: 'completed' } })).toBe(50);
    const applied = await reopened.prisma.$queryRawUnsafe<Array<{ count: number }>>(
      'SELECT count(*)::int AS count FROM "_prisma_migrations"',
    );
    expect(applied[0]?.count).toBe((await readMigrations(MIGRATIONS_DIR)).length);
    await reopened.close();
  });
});

describe('flow control on the embedded database', () => {
  it('runs a kind limited to one at a time, and a kind of sequences, through their own claim', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'jobs-pglite-flow-'));
    const db = await openDatabase({ ...config, DATA_DIR: dir }, await readMigrations(MIGRATIONS_DIR), testLogger());
    const kinds = testKinds({}, {
      extra: [
        defineKind({ name: 'single', input: z.object({ n: z.number() }), result: z.null(), handler: () => null, options: { concurrency: 1 } }),
        defineKind({ name: 'sequence', input: z.object({ n: z.number() }), result: z.null(), handler: () => null, options: { concurrencyPerKey: 1 } }),
      ],
    });
    const hub = createHub(db);
    const service = createService(db, hub, { kinds });
    const worker = createWorker(db, hub, { kinds });
    try {
      await worker.start();
      const submitted = await service.submitJobs(
        [0, 1, 2, 3].flatMap((n) => [
          { kind: 'single', input: { n } },
          { kind: 'sequence', input: { n }, concurrencyKey: `key-${n % 2}` },
        ]),
        ANONYMOUS,
      );
      for (const { job } of submitted) await waitForJob(service, hub, job.id, statusOf('completed'));
    } finally {
      await worker.stop();
      await hub.stop();
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a commit', () => {
  it('is synced to disk before the job is answered, in a data folder synced whole when new', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'jobs-pglite-sync-'));
    const fs = new DurableNodeFS(dir);
    const db = await openPglite(dir, fs);
    try {
      // The new folder, as PGlite unpacked it, is synced whole: every file and folder once.
      const entries = readdirSync(dir, { recursive: true }).length + 1;
      expect(fs.synced).toBeGreaterThanOrEqual(entries);
      await migrate(db, await readMigrations(MIGRATIONS_DIR), testLogger());
      const service = createService(db, createHub(db));
      const before = fs.synced;
      await service.addJob({ num1: '1', num2: '2' }, ANONYMOUS);
      expect(fs.synced).toBeGreaterThan(before);
      const [setting] = await db.query<{ fsync: string }>({ name: 'pglite_fsync', text: 'SHOW fsync' });
      expect(setting?.fsync).toBe('on');
    } finally {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the data folder', () => {
  const open = async (dir: string) =>
    openDatabase({ ...config, DATA_DIR: dir }, await readMigrations(MIGRATIONS_DIR), testLogger());

  it('is used by one process at a time', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'jobs-pglite-lock-'));
    try {
      const first = await open(dir);
      await expect(open(dir)).rejects.toThrow(new RegExp(`in use by process ${process.pid} on `));
      await first.close();
      expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
      const second = await open(dir);
      await second.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is taken over from a holder that died without letting go', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'jobs-pglite-stale-'));
    try {
      const { pid } = spawnSync(process.execPath, ['-e', '0']);
      writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid, host: hostname() }));
      const db = await open(dir);
      expect(db.kind).toBe('pglite');
      await db.close();
      expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
