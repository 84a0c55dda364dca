import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database, Queryable } from '../src/db/database.ts';
import { InsertCoalescer } from '../src/jobs/insert-coalescer.ts';
import { insertJobsStatement, type NewJob } from '../src/jobs/sql/insert.ts';
import { createTestDatabase, type TestDatabase } from './helpers/database.ts';
import { newAddJob } from './helpers/jobs.ts';

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
function newJob(num1: string, idempotencyKey: string | null = null): NewJob {
  next += 1;
  const id = `00000000-0000-7000-8000-${String(next).padStart(12, '0')}`;
  return newAddJob({ id, num1, idempotencyKey });
}

async function countOf(jobs: readonly NewJob[]): Promise<number> {
  return db.prisma.job.count({ where: { id: { in: jobs.map((job) => job.id) } } });
}

describe('the insert coalescer', () => {
  it('puts concurrent requests into shared statements, and answers each with its own jobs', async () => {
    const queryable = counting(db);
    const coalescer = new InsertCoalescer(queryable, 1000);
    const requests = Array.from({ length: 40 }, (_, i) => [newJob(String(i)), newJob(`${i}.5`)]);
    const answers = await Promise.all(requests.map((jobs) => coalescer.insert(jobs)));
    answers.forEach((found, i) => {
      for (const job of requests[i]!) expect(found.get(job.id)?.job.input).toEqual(JSON.parse(job.input));
    });
    expect(queryable.statements).toBeLessThan(requests.length);
    expect(await db.prisma.job.count({ where: { id: { in: requests.flat().map((job) => job.id) } } })).toBe(80);
  });

  it('lets a request the database refuses fail alone, writing none of its jobs', async () => {
    const coalescer = new InsertCoalescer(db, 1000);
    const good = [newJob('1'), newJob('2')];
    // Input that is not JSON: jsonb refuses it, as it would any the service's checks let through by mistake.
    const bad = [newJob('3'), { ...newJob('4'), input: '{"num1": ' }];
    const [goodAnswer, badAnswer] = await Promise.allSettled([
      coalescer.insert([newJob('0')]),
      coalescer.insert(good),
      coalescer.insert(bad),
    ]).then(([, second, third]) => [second, third]);
    expect(goodAnswer?.status).toBe('fulfilled');
    expect(badAnswer?.status).toBe('rejected');
    expect(await countOf(good)).toBe(2);
    expect(await countOf(bad)).toBe(0);
  });

  it('refuses, within a shared statement, only the request whose key holds other input', async () => {
    await insertJobsStatement(db, [newJob('1', 'shared-statement')]);
    const queryable = counting(db);
    const coalescer = new InsertCoalescer(queryable, 1000);
    const before = [newJob('0')];
    const good = [newJob('2'), newJob('3')];
    const refused = [newJob('4'), newJob('5', 'shared-statement')];
    const alsoGood = [newJob('6')];
    const [, goodAnswer, refusedAnswer] = await Promise.all([before, good, refused, alsoGood].map((jobs) => coalescer.insert(jobs)));
    expect(queryable.statements).toBe(2);
    expect(good.map((job) => goodAnswer!.get(job.id)?.outcome)).toEqual(['created', 'created']);
    expect(refused.map((job) => refusedAnswer!.get(job.id)?.outcome)).toEqual([undefined, 'conflict']);
    expect(await countOf([...before, ...good, ...alsoGood])).toBe(4);
    expect(await countOf(refused)).toBe(0);
  });

  it('sends requests that hold the same key in separate statements', async () => {
    const queryable = counting(db);
    const coalescer = new InsertCoalescer(queryable, 1000);
    const first = newJob('1', 'same-key');
    const retry = newJob('1', 'same-key');
    const other = newJob('2', 'same-key');
    const answers = await Promise.all([[newJob('0')], [first], [retry], [other]].map((jobs) => coalescer.insert(jobs)));
    // One statement each, and none refused: sharing one, the second row would fail the first.
    expect(queryable.statements).toBe(4);
    expect(answers[1]!.get(first.id)?.outcome).toBe('created');
    expect(answers[2]!.get(retry.id)).toMatchObject({ outcome: 'found', job: { id: first.id } });
    expect(answers[3]!.get(other.id)).toMatchObject({ outcome: 'conflict', job: { id: first.id } });
  });
});
