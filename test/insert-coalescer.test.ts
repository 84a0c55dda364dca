import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database, Queryable } from '../src/db/database.ts';
import { InsertCoalescer } from '../src/jobs/insert-coalescer.ts';
import type { NewJob } from '../src/jobs/queue.ts';
import { createTestDatabase, type TestDatabase } from './helpers/database.ts';

let testDb: TestDatabase;
let db: Database;

beforeAll(async () => {
  testDb = await createTestDatabase(import.meta.filename);
  db = testDb.open();
});
afterAll(() => testDb.drop());

/** The real database, counting the statements that reach it. */
function counting(target: Queryable) {
  const counter = {
    statements: 0,
    query: ((statement, values) => {
      counter.statements += 1;
      return target.query(statement, values);
    }) as Queryable['query'],
  };
  return counter;
}

let next = 0;
function newJob(num1: string): NewJob {
  next += 1;
  const id = `00000000-0000-7000-8000-${String(next).padStart(12, '0')}`;
  return { id, kind: 'add', num1, num2: '1', maxAttempts: 1, runAt: null, priority: 0, idempotencyKey: null, owner: '' };
}

describe('the insert coalescer', () => {
  it('puts concurrent requests into shared statements, and answers each with its own jobs', async () => {
    const queryable = counting(db);
    const coalescer = new InsertCoalescer(queryable, 1000);
    const requests = Array.from({ length: 40 }, (_, i) => [newJob(String(i)), newJob(`${i}.5`)]);
    const answers = await Promise.all(requests.map((jobs) => coalescer.insert(jobs)));
    answers.forEach((found, i) => {
      for (const job of requests[i]!) expect(found.get(job.id)?.job.num1.toString()).toBe(job.num1);
    });
    expect(queryable.statements).toBeLessThan(requests.length);
    expect(await db.prisma.job.count({ where: { id: { in: requests.flat().map((job) => job.id) } } })).toBe(80);
  });

  it('lets a request the database refuses fail alone', async () => {
    const coalescer = new InsertCoalescer(db, 1000);
    const good = [newJob('1'), newJob('2')];
    const bad = [newJob('not a number')];
    const [goodAnswer, badAnswer] = await Promise.allSettled([
      coalescer.insert([newJob('0')]),
      coalescer.insert(good),
      coalescer.insert(bad),
    ]).then(([, second, third]) => [second, third]);
    expect(goodAnswer?.status).toBe('fulfilled');
    expect(badAnswer?.status).toBe('rejected');
    expect(await db.prisma.job.count({ where: { id: { in: good.map((job) => job.id) } } })).toBe(2);
  });
});
