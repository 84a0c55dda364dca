import { v7 as uuidv7 } from 'uuid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../src/db/database.ts';
import type { JobStatus } from '../src/generated/prisma/client.ts';
import { Pruner } from '../src/jobs/pruner.ts';
import { insertJobsStatement, uuidv7Floor } from '../src/jobs/queue.ts';
import { createTestDatabase, type TestDatabase, testLogger } from './helpers/database.ts';

let testDb: TestDatabase;
let db: Database;

beforeAll(async () => {
  testDb = await createTestDatabase(import.meta.filename);
  db = testDb.open();
});
afterAll(() => testDb.drop());

const DAY = 86_400_000;

/** A job created `ageDays` ago whose last change was `idleDays` ago, in `status`. */
async function jobAged(status: JobStatus, ageDays: number, idleDays = ageDays): Promise<string> {
  const created = new Date(Date.now() - ageDays * DAY);
  const id = uuidv7({ msecs: created.getTime() });
  await insertJobsStatement(db, [
    { id, kind: 'add', num1: '1', num2: '1', maxAttempts: 1, runAt: null, priority: 0, idempotencyKey: null, owner: '' },
  ]);
  await db.prisma.job.update({
    where: { id },
    data: { status, createdAt: created, lastUpdated: new Date(Date.now() - idleDays * DAY) },
  });
  return id;
}

describe('the pruner', () => {
  it('deletes only finished jobs past their retention, in batches', async () => {
    const doomed = [
      await jobAged('retrieved', 8),
      await jobAged('retrieved', 9),
      await jobAged('failed', 8),
      await jobAged('cancelled', 20),
      await jobAged('completed', 31),
    ];
    const kept = [
      await jobAged('retrieved', 6),
      await jobAged('retrieved', 10, 6), // created long ago, retrieved recently
      await jobAged('failed', 1),
      await jobAged('completed', 8), // nobody has fetched the result yet
      await jobAged('completed', 29),
      await jobAged('pending', 100),
      await jobAged('wip', 100),
    ];
    const pruner = new Pruner({
      db,
      logger: testLogger(),
      retentionDays: 7,
      completedRetentionDays: 30,
      intervalMs: 3_600_000,
      batchSize: 2,
    });
    expect(await pruner.pruneNow()).toBe(doomed.length);
    const left = new Set((await db.prisma.job.findMany({ select: { id: true } })).map((job) => job.id));
    expect(doomed.filter((id) => left.has(id))).toEqual([]);
    expect(kept.filter((id) => !left.has(id))).toEqual([]);
    expect(await pruner.pruneNow()).toBe(0);
    pruner.start();
    pruner.start();
    await pruner.stop();
    await pruner.stop();
  });

  it('bounds ids by creation time exactly', () => {
    const at = new Date('2026-01-02T03:04:05.678Z');
    const floor = uuidv7Floor(at);
    expect(uuidv7({ msecs: at.getTime() - 1 }) < floor).toBe(true);
    expect(uuidv7({ msecs: at.getTime() }) >= floor).toBe(true);
  });
});
