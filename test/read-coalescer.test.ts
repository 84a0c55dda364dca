import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Database, Queryable } from '../src/db/database.ts';
import { pino } from 'pino';
import { isTransient } from '../src/db/errors.ts';
import { openPostgres } from '../src/db/postgres.ts';
import { ReadCoalescer } from '../src/jobs/read-coalescer.ts';
import { insertJobsStatement } from '../src/jobs/sql/insert.ts';
import { freePort } from '../src/ports.ts';
import { createTestDatabase, type TestDatabase } from './helpers/database.ts';
import { newAddJob } from './helpers/jobs.ts';

let testDb: TestDatabase;
let db: Database;

beforeAll(async () => {
  testDb = await createTestDatabase(import.meta.filename);
  db = testDb.open();
});
afterAll(() => testDb.drop());

it('answers a burst of reads, each with its own job, in a few shared statements', async () => {
  const jobs = Array.from({ length: 1500 }, (_, i) =>
    newAddJob({ id: `00000000-0000-7000-8000-${String(i + 1).padStart(12, '0')}`, num1: String(i) }),
  );
  await insertJobsStatement(db, jobs, jobs.map(() => 0));
  let statements = 0;
  const counted: Queryable = {
    query: ((statement, values) => {
      statements += 1;
      return db.query(statement, values);
    }) as Queryable['query'],
  };
  const coalescer = new ReadCoalescer(counted, { parallel: 2, maxIds: 1000 });
  // Each job read twice (two subscribers), and ids no job has.
  const ids = [...jobs.map((job) => job.id), ...jobs.map((job) => job.id), '00000000-0000-7000-8000-999999999999'];
  const answers = await Promise.all(ids.map((id) => coalescer.read(id)));

  answers.slice(0, 3000).forEach((job, i) => {
    expect(job?.id).toBe(ids[i]);
    expect(job?.input).toEqual({ num1: String(i % 1500), num2: '1' });
  });
  expect(answers[3000]).toBeNull();
  // The first two reads go out alone, at once; the rest wait for them and go 1,000 at a time.
  expect(statements).toBeLessThanOrEqual(6);
});

it("rejects with the database's error when the database is away, so a watch waits and reads again", async () => {
  const away = openPostgres({ connectionString: `postgresql://root@127.0.0.1:${await freePort()}/none`, poolSize: 1, logger: pino({ level: 'silent' }) });
  try {
    const read = new ReadCoalescer(away, { parallel: 2, maxIds: 1000 }).read('00000000-0000-7000-8000-000000000001');
    await expect(read).rejects.toSatisfy(isTransient);
  } finally {
    await away.close();
  }
});
