import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Database, Statement } from '../src/db/database.ts';
import { JobServiceError } from '../src/jobs/errors.ts';
import type { JobEventHub } from '../src/jobs/events.ts';
import { insertJobsStatement } from '../src/jobs/sql/insert.ts';
import { JOB_EVENTS_CHANNEL } from '../src/jobs/sql/job-events.ts';
import { completeJobsStatement } from '../src/jobs/sql/outcomes.ts';
import type { Job, JobService } from '../src/jobs/service.ts';
import type { Worker } from '../src/worker/worker.ts';
import { claimJobsStatement } from './helpers/claim.ts';
import type { TestDatabase } from './helpers/database.ts';
import {
  ANONYMOUS,
  closeJobsDatabase,
  createService,
  createWorker,
  newAddJob,
  openJobsDatabase,
  statusOf,
  waitForJob,
} from './helpers/jobs.ts';
import { addNumbersOf } from '../src/kinds/add.ts';

let testDb: TestDatabase;
let db: Database;
let hub: JobEventHub;
let service: JobService;

beforeAll(async () => {
  ({ testDb, db, hub, service } = await openJobsDatabase(import.meta.filename));
});

afterAll(() => closeJobsDatabase({ testDb, hub }));

async function countJobs(): Promise<number> {
  return db.prisma.job.count();
}

const LOCK_WAITERS: Statement = {
  name: 'test_lock_waiters',
  text: `SELECT count(*)::int AS waiting FROM pg_stat_activity
         WHERE datname = current_database() AND wait_event_type = 'Lock'`,
};

/** Resolves once a statement on this database waits for a lock another transaction holds. */
async function someoneWaitsForALock(deadlineMs = 15_000): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const [row] = await db.query<{ waiting: number }>(LOCK_WAITERS);
    if (row!.waiting > 0) return;
    if (Date.now() > deadline) throw new Error('no statement ever waited for the lock');
    await sleep(5);
  }
}

/**
 * A service whose next statement is followed, before its answer goes back, by `between`: the
 * interleaving a statement from another connection could have there.
 */
function serviceWithAGap(between: () => Promise<void>): JobService {
  let gap: (() => Promise<void>) | undefined = between;
  const gapped = new Proxy(db, {
    get(target, property) {
      if (property === 'query') {
        return async (statement: Statement, values?: readonly unknown[]) => {
          const rows = await target.query(statement, values);
          const run = gap;
          gap = undefined;
          await run?.();
          return rows;
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return createService(gapped, hub);
}

describe('the lifecycle with a worker running', () => {
  let worker: Worker;
  beforeAll(async () => {
    worker = createWorker(db, hub);
    await worker.start();
  });
  afterAll(() => worker.stop());

  it('takes a job from pending through completed to retrieved', async () => {
    const { job: added, created } = await service.addJob({ num1: '2', num2: '3' }, ANONYMOUS);
    expect(created).toBe(true);
    expect(added.status).toBe('pending');
    expect(added.result).toBeNull();
    expect(added.completedOn).toBeNull();

    const completed = await waitForJob(service, hub, added.id, statusOf('completed'));
    expect(completed.result?.toString()).toBe('5');
    expect(completed.attempt).toBe(1);
    // The worker that ran it stays named on the job (README, "The operator console").
    expect(completed.lockedBy).toBe(worker.id);
    expect(completed.completedOn).toBeInstanceOf(Date);
    expect(completed.lastUpdated.getTime()).toBeGreaterThanOrEqual(added.lastUpdated.getTime());
    expect(completed.version).toBeGreaterThan(added.version);

    const retrieved = await service.retrieveJob(added.id, ANONYMOUS);
    expect(retrieved?.status).toBe('retrieved');
    expect(retrieved?.result?.toString()).toBe('5');
    expect(retrieved?.retrievedAt).toBeInstanceOf(Date);
    expect(retrieved?.completedOn).toEqual(completed.completedOn);

    const again = await service.retrieveJob(added.id, ANONYMOUS);
    expect(again?.status).toBe('retrieved');
    expect(again?.retrievedAt).toEqual(retrieved?.retrievedAt);
    expect(again?.version).toBe(retrieved?.version);
  });

  it.each([
    ['0.1', '0.2', '0.3'],
    ['9007199254740993', '1', '9007199254740994'],
    ['-5', '5', '0'],
    ['-0.000000000000000000000000000001', '0', '-0.000000000000000000000000000001'],
    ['+007.50', '.5', '8'],
    ['9'.repeat(60), '1', `1${'0'.repeat(60)}`],
    [`0.${'3'.repeat(50)}`, `0.${'6'.repeat(50)}`, `0.${'9'.repeat(50)}`],
  ])('adds %s + %s exactly as %s', async (num1, num2, sum) => {
    const { job } = await service.addJob({ num1, num2 }, ANONYMOUS);
    const completed = await waitForJob(service, hub, job.id, statusOf('completed'));
    expect(completed.result).toBe(sum);
  });

  it('runs a batch of 1,000 jobs, answering in input order', async () => {
    const inputs = Array.from({ length: 1000 }, (_, i) => ({ num1: String(i), num2: '0.5' }));
    const added = await service.addJobs(inputs, ANONYMOUS);
    expect(added.map(({ job }) => addNumbersOf(job)?.num1)).toEqual(inputs.map((input) => input.num1));
    expect(new Set(added.map(({ job }) => job.id)).size).toBe(1000);
    // Ids carry random bits within a millisecond, so the batch is claimed in no set order: the
    // last input need not be the last to finish. Wait for each.
    await Promise.all(added.map(({ job }) => waitForJob(service, hub, job.id, statusOf('completed'))));
    const last = await service.getJob(added.at(-1)!.job.id, ANONYMOUS);
    expect(last?.result?.toString()).toBe('999.5');
    const completed = await db.prisma.job.count({
      where: { id: { in: added.map(({ job }) => job.id) }, status: 'completed' },
    });
    expect(completed).toBe(1000);
  });
});

describe('idempotency keys', () => {
  it('return the first job to a retried submission', async () => {
    const first = await service.addJob({ num1: '1', num2: '2', idempotencyKey: 'order-17' }, ANONYMOUS);
    const retried = await service.addJob({ num1: '1', num2: '2', idempotencyKey: 'order-17' }, ANONYMOUS);
    expect(first.created).toBe(true);
    expect(retried.created).toBe(false);
    expect(retried.job.id).toBe(first.job.id);
    expect(await db.prisma.job.count({ where: { idempotencyKey: 'order-17' } })).toBe(1);
  });

  it('are scoped to their owner', async () => {
    const mine = await service.addJob({ num1: '1', num2: '1', idempotencyKey: 'shared' }, { owner: 'key-a' });
    const theirs = await service.addJob({ num1: '1', num2: '1', idempotencyKey: 'shared' }, { owner: 'key-b' });
    expect(theirs.created).toBe(true);
    expect(theirs.job.id).not.toBe(mine.job.id);
  });

  it('collapse duplicates inside one batch', async () => {
    const [a, b] = await service.addJobs(
      [
        { num1: '4', num2: '4', idempotencyKey: 'twice' },
        { num1: '4', num2: '4', idempotencyKey: 'twice' },
      ],
      ANONYMOUS,
    );
    expect(a!.job.id).toBe(b!.job.id);
    expect([a!.created, b!.created].sort()).toEqual([false, true]);
  });

  it('hold when two services on two pools submit one key at once', async () => {
    const elsewhere = createService(testDb.open(), hub);
    await Promise.all([service.addJob({ num1: '0', num2: '0' }, ANONYMOUS), elsewhere.addJob({ num1: '0', num2: '0' }, ANONYMOUS)]);
    for (let round = 0; round < 25; round += 1) {
      const same = { num1: '7', num2: '7', idempotencyKey: `two-pools-${round}` };
      const twins = await Promise.all([service.addJob(same, ANONYMOUS), elsewhere.addJob(same, ANONYMOUS)]);
      expect(twins[0].job.id).toBe(twins[1].job.id);
      expect(twins.map(({ created }) => created).sort()).toEqual([false, true]);

      const key = `two-pools-differ-${round}`;
      const rivals = await Promise.allSettled([
        service.addJob({ num1: '1', num2: '1', idempotencyKey: key }, ANONYMOUS),
        elsewhere.addJob({ num1: '2', num2: '2', idempotencyKey: key }, ANONYMOUS),
      ]);
      const won = rivals.flatMap((rival) => (rival.status === 'fulfilled' ? [rival.value] : []));
      const lost = rivals.flatMap((rival) => (rival.status === 'rejected' ? [rival.reason as unknown] : []));
      expect(won).toHaveLength(1);
      expect(won[0]!.created).toBe(true);
      expect(lost).toEqual([expect.objectContaining({ code: 'CONFLICT', field: 'idempotencyKey' })]);
      const stored = await db.prisma.job.findMany({ where: { idempotencyKey: { in: [same.idempotencyKey, key] } } });
      expect(stored.map((job) => job.id).sort()).toEqual([twins[0].job.id, won[0]!.job.id].sort());
    }
  });

  it('hold under concurrent submissions of the same key', async () => {
    const results = await Promise.all(
      Array.from({ length: 10 }, () => service.addJob({ num1: '7', num2: '7', idempotencyKey: 'race' }, ANONYMOUS)),
    );
    expect(new Set(results.map(({ job }) => job.id)).size).toBe(1);
    expect(results.filter(({ created }) => created)).toHaveLength(1);
  });
});

describe('an idempotency key reused with other input', () => {
  it('is refused with CONFLICT, while the same numbers spelt otherwise find the first job', async () => {
    const first = await service.addJob({ num1: '1.5', num2: '2', idempotencyKey: 'reused' }, ANONYMOUS);
    const error = await service.addJob({ num1: '1.5', num2: '3', idempotencyKey: 'reused' }, ANONYMOUS).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JobServiceError);
    expect(error).toMatchObject({ code: 'CONFLICT', field: 'idempotencyKey' });
    expect(String((error as Error).message)).toContain(first.job.id);
    const respelt = await service.addJob({ num1: '+01.50', num2: '2.000', idempotencyKey: 'reused' }, ANONYMOUS);
    expect(respelt).toMatchObject({ created: false, job: { id: first.job.id } });
    expect(await db.prisma.job.count({ where: { idempotencyKey: 'reused' } })).toBe(1);
  });

  it('refuses the whole batch, naming the item, and writes none of it', async () => {
    await service.addJob({ num1: '1', num2: '1', idempotencyKey: 'batch-reused' }, ANONYMOUS);
    const before = await countJobs();
    const batch = [
      { num1: '5', num2: '5' },
      { num1: '6', num2: '6', idempotencyKey: 'batch-new' },
      { num1: '1', num2: '9', idempotencyKey: 'batch-reused' },
      { num1: '7', num2: '7' },
    ];
    await expect(service.addJobs(batch, ANONYMOUS)).rejects.toMatchObject({ code: 'CONFLICT', field: 'inputs.2.idempotencyKey' });
    expect(await countJobs()).toBe(before);
  });

  it('refuses a batch that repeats a key with other input', async () => {
    const before = await countJobs();
    const batch = [
      { num1: '1', num2: '1', idempotencyKey: 'twice-differs' },
      { num1: '1', num2: '2', idempotencyKey: 'twice-differs' },
    ];
    await expect(service.addJobs(batch, ANONYMOUS)).rejects.toMatchObject({ code: 'CONFLICT', field: 'inputs.1.idempotencyKey' });
    expect(await countJobs()).toBe(before);
  });
});

describe('a batch racing another transaction for one of its keys', () => {
  it.each([
    ['commits that key with the same input', 'commit', '1', { created: [true, true, false] }],
    ['commits that key with other input', 'commit', '2', { error: 'CONFLICT' }],
    ['rolls back', 'rollback', '2', { created: [true, true, true] }],
  ] as const)('waits while the other transaction %s, then writes all or nothing', async (_label, end, num2, expected) => {
    const key = `held-${end}-${num2}`;
    const heldId = randomUUID();
    const before = await countJobs();
    let inserted!: () => void;
    const insertedHeld = new Promise<void>((resolve) => (inserted = resolve));
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    const other = db
      .transaction(async (tx) => {
        const job = newAddJob({ id: heldId, num2, idempotencyKey: key });
        await insertJobsStatement(tx, [job]);
        inserted();
        await finished;
        if (end === 'rollback') throw new Error('rolled back on purpose');
      })
      .catch((error: unknown) => {
        if (end !== 'rollback') throw error;
      });
    await insertedHeld;
    const batch = [{ num1: '3', num2: '3' }, { num1: '4', num2: '4' }, { num1: '1', num2: '1', idempotencyKey: key }];
    const answer = service.addJobs(batch, ANONYMOUS).then(
      (added) => ({ added }),
      (error: unknown) => ({ error }),
    );
    await someoneWaitsForALock();
    finish();
    await other;
    const settled = await answer;
    const held = end === 'commit' ? 1 : 0;
    if ('error' in expected) {
      expect(settled).toMatchObject({ error: { code: expected.error, field: 'inputs.2.idempotencyKey' } });
      expect(await countJobs()).toBe(before + held);
      return;
    }
    if (!('added' in settled)) throw settled.error;
    expect(settled.added.map(({ created }) => created)).toEqual(expected.created);
    expect(settled.added[2]!.job.id === heldId).toBe(end === 'commit');
    expect(await countJobs()).toBe(before + held + expected.created.filter(Boolean).length);
  });
});

describe('bad input', () => {
  // Which spellings are numbers is checkDecimal's table (test/decimal.test.ts) and the fuzz
  // model's; here, that the service refuses one per field before writing anything.
  it.each([
    ['1e5', 'num1'],
    ['1'.repeat(101), 'num2'],
])('rejects %j with BAD_USER_INPUT and writes nothing', async (bad, field) => {
    const before = await countJobs();
    const input = field === 'num1' ? { num1: bad, num2: '1' } : { num1: '1', num2: bad };
    const error = await service.addJob(input, ANONYMOUS).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JobServiceError);
    expect(error).toMatchObject({ code: 'BAD_USER_INPUT', field });
    expect(await countJobs()).toBe(before);
  });

  it('rejects a whole batch when one input is bad, naming it', async () => {
    const before = await countJobs();
    const error = await service
      .addJobs([{ num1: '1', num2: '1' }, { num1: '1', num2: 'x' }], ANONYMOUS)
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'BAD_USER_INPUT', field: 'inputs.1.num2' });
    expect(await countJobs()).toBe(before);
  });

  it('rejects empty and oversized batches', async () => {
    await expect(service.addJobs([], ANONYMOUS)).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
    const small = createService(db, hub, { maxBatchSize: 2 });
    const three = [1, 2, 3].map((n) => ({ num1: String(n), num2: '0' }));
    await expect(small.addJobs(three, ANONYMOUS)).rejects.toMatchObject({ code: 'BAD_USER_INPUT', field: 'inputs' });
  });

  it('rejects an invalid priority, idempotency key or run time', async () => {
    await expect(service.addJob({ num1: '1', num2: '1', priority: 1.5 }, ANONYMOUS)).rejects.toMatchObject({
      field: 'priority',
    });
    await expect(service.addJob({ num1: '1', num2: '1', idempotencyKey: '' }, ANONYMOUS)).rejects.toMatchObject({
      field: 'idempotencyKey',
    });
    await expect(service.addJob({ num1: '1', num2: '1', runAt: new Date('nope') }, ANONYMOUS)).rejects.toMatchObject({
      field: 'runAt',
    });
  });

  it('treats a malformed or unknown id as no job', async () => {
    expect(await service.getJob('not-a-uuid', ANONYMOUS)).toBeNull();
    expect(await service.getJob("'; DROP TABLE job; --", ANONYMOUS)).toBeNull();
    expect(await service.getJob('00000000-0000-4000-8000-000000000000', ANONYMOUS)).toBeNull();
    expect(await service.retrieveJob('00000000-0000-4000-8000-000000000000', ANONYMOUS)).toBeNull();
    await expect(service.cancelJob('nope', ANONYMOUS)).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});

describe('without a worker', () => {
  it('cancels only pending jobs', async () => {
    const { job } = await service.addJob({ num1: '1', num2: '1' }, ANONYMOUS);
    const cancelled = await service.cancelJob(job.id, ANONYMOUS);
    expect(cancelled.status).toBe('cancelled');
    expect((await service.cancelJob(job.id, ANONYMOUS)).status).toBe('cancelled');
    expect(await claimJobsStatement(db, 'w', 1000, 30).then((jobs) => jobs.some((j) => j.id === job.id))).toBe(false);

    const { job: other } = await service.addJob({ num1: '1', num2: '1' }, ANONYMOUS);
    await db.prisma.job.update({ where: { id: other.id }, data: { status: 'wip' } });
    await expect(service.cancelJob(other.id, ANONYMOUS)).rejects.toMatchObject({ code: 'CONFLICT' });
  });

  it('reads timestamps to the millisecond, cut rather than rounded, as they are stored', async () => {
    const { job } = await service.addJob({ num1: '1', num2: '1' }, ANONYMOUS);
    await db.prisma.$executeRaw`UPDATE job SET created_at = '2026-01-02 03:04:05.678999+00',
      last_updated = '1999-12-31 23:59:59.999999+00', run_at = '2026-01-02 03:04:05+00',
      completed_on = '2030-06-07 08:09:10.0005+00', retrieved_at = NULL WHERE id = ${job.id}::uuid`;
    const read = await service.getJob(job.id, ANONYMOUS);
    expect(read?.createdAt.toISOString()).toBe('2026-01-02T03:04:05.678Z');
    expect(read?.lastUpdated.toISOString()).toBe('1999-12-31T23:59:59.999Z');
    expect(read?.runAt.toISOString()).toBe('2026-01-02T03:04:05.000Z');
    expect(read?.completedOn?.toISOString()).toBe('2030-06-07T08:09:10.000Z');
    expect(read?.retrievedAt).toBeNull();
  });

  it('does not hand a job to another owner', async () => {
    const { job } = await service.addJob({ num1: '1', num2: '1' }, { owner: 'alice' });
    expect(await service.getJob(job.id, { owner: 'bob' })).toBeNull();
    expect(await service.retrieveJob(job.id, { owner: 'bob' })).toBeNull();
    await expect(service.cancelJob(job.id, { owner: 'bob' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect((await service.getJob(job.id, { owner: 'alice' }))?.id).toBe(job.id);
  });

  it('answers a job that completes during a retrieve as it was, never with a result left unmarked', async () => {
    const { job } = await service.addJob({ num1: '1', num2: '2' }, ANONYMOUS);
    await db.prisma.job.update({ where: { id: job.id }, data: { status: 'wip', attempt: 1 } });
    // The worker's completion commits right after the retrieve's first statement.
    const racing = serviceWithAGap(async () => {
      expect(await completeJobsStatement(db, [{ id: job.id, attempt: 1, result: '3' }])).toEqual(new Set([job.id]));
    });
    const answer = await racing.retrieveJob(job.id, ANONYMOUS);
    expect(answer).toMatchObject({ status: 'wip', result: null });
    expect((await service.getJob(job.id, ANONYMOUS))?.status).toBe('completed');
    const retrieved = await service.retrieveJob(job.id, ANONYMOUS);
    expect(retrieved?.status).toBe('retrieved');
    expect(retrieved?.result?.toString()).toBe('3');
  });

  it('answers RETRIEVED when another request retrieves the job while this one waits for it', async () => {
    const { job } = await service.addJob({ num1: '1', num2: '2' }, ANONYMOUS);
    await db.prisma.job.update({ where: { id: job.id }, data: { status: 'completed', result: '3', completedOn: new Date() } });
    const other = new pg.Client({ connectionString: testDb.url });
    await other.connect();
    try {
      await other.query('BEGIN');
      await other.query(`UPDATE job SET status = 'retrieved', retrieved_at = now(), version = version + 1 WHERE id = $1`, [job.id]);
      const answer = service.retrieveJob(job.id, ANONYMOUS);
      await someoneWaitsForALock();
      await other.query('COMMIT');
      expect(await answer).toMatchObject({ status: 'retrieved', version: job.version + 1 });
    } finally {
      await other.end();
    }
  });

  it('leaves a job that is not completed as it is on retrieve', async () => {
    const { job } = await service.addJob({ num1: '1', num2: '1' }, { owner: 'retrieve-early' });
    const same = await service.retrieveJob(job.id, { owner: 'retrieve-early' });
    expect(same?.status).toBe('pending');
    expect(same?.version).toBe(job.version);
  });

  it('claims due jobs by priority and leaves future ones alone', async () => {
    const owner = { owner: 'scheduling' };
    // Drain what earlier tests left pending, so only this test's jobs are claimable.
    await claimJobsStatement(db, 'drain', 100_000, 30);
    const later = await service.addJob({ num1: '1', num2: '0', runAt: new Date(Date.now() + 3_600_000) }, owner);
    const low = await service.addJob({ num1: '2', num2: '0', priority: -1 }, owner);
    const high = await service.addJob({ num1: '3', num2: '0', priority: 5 }, owner);
    const normal = await service.addJob({ num1: '4', num2: '0' }, owner);

    const claimed = await claimJobsStatement(db, 'w1', 10, 30);
    expect(claimed.map((job) => job.id)).toEqual([high.job.id, normal.job.id, low.job.id]);
    expect(claimed.every((job) => job.attempt === 1)).toBe(true);
    expect((await service.getJob(later.job.id, owner))?.status).toBe('pending');
  });

  it('pages through jobs by descending id with a cursor, each job once', async () => {
    const owner = { owner: 'paging' };
    const added = await service.addJobs(
      Array.from({ length: 5 }, (_, i) => ({ num1: String(i), num2: '0' })),
      owner,
    );
    // Newest first means descending id: UUIDv7 sorts by creation time (ids made in the same
    // millisecond fall in random order among themselves).
    const expected = added.map(({ job }) => job.id).sort().reverse();
    const seen: string[] = [];
    let after: string | null = null;
    for (;;) {
      const page = await service.listJobs({ first: 2, after }, owner);
      seen.push(...page.jobs.map((job) => job.id));
      if (!page.hasNextPage) break;
      after = page.endCursor;
    }
    expect(seen).toEqual(expected);

    const filtered = await service.listJobs({ status: 'completed', first: 10 }, owner);
    expect(filtered.jobs).toEqual([]);
    await expect(service.listJobs({ first: 0 }, owner)).rejects.toMatchObject({ field: 'first' });
    await expect(service.listJobs({ first: 101 }, owner)).rejects.toMatchObject({ field: 'first' });
    await expect(service.listJobs({ after: 'garbage' }, owner)).rejects.toMatchObject({ field: 'after' });
  });

  // Each combination of filters is a named statement; a name a connection has prepared with one
  // text it refuses for another, so every text must have a name of its own.
  it('lists by every status in turn on one connection', async () => {
    const single = testDb.open({ poolSize: 1 });
    try {
      const listing = createService(single, hub);
      const owner = { owner: 'one-connection' };
      const [added] = await listing.addJobs([{ num1: '1', num2: '2' }], owner);
      const found: Record<string, number> = {};
      for (const status of ['pending', 'wip', 'failed', 'cancelled', 'completed', 'retrieved', 'waiting'] as const) {
        found[status] = (await listing.listJobs({ status }, owner)).jobs.length;
      }
      expect(found).toEqual({ pending: 1, wip: 0, failed: 0, cancelled: 0, completed: 0, retrieved: 0, waiting: 0 });
      expect((await listing.listJobs({}, owner)).jobs.map((job) => job.id)).toEqual([added!.job.id]);
    } finally {
      await single.close();
    }
  });

  // README.md, "Prisma's place": every path is a prepared statement, the listing of pages
  // included (the console's statements, by owner).
  it('runs no Prisma query, listing pages included', async () => {
    const operations: string[] = [];
    const counted = db.prisma.$extends({
      query: {
        $allOperations({ model, operation, args, query }) {
          operations.push(`${model}.${operation}`);
          return query(args);
        },
      },
    });
    const watched = createService(
      new Proxy(db, {
        get(target, property) {
          if (property === 'prisma') return counted;
          const value: unknown = Reflect.get(target, property, target);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      }),
      hub,
    );
    const owner = { owner: 'prisma-place' };
    const [first, second] = await watched.addJobs([{ num1: '1', num2: '2' }, { num1: '3', num2: '4' }], owner);
    await watched.getJob(first!.job.id, owner);
    await watched.retrieveJob(first!.job.id, owner);
    await watched.cancelJob(second!.job.id, owner);
    const updates = await watched.watchJob(first!.job.id, owner);
    await updates.next();
    await updates.return?.();
    const page = await watched.listJobs({ first: 1 }, owner);
    const next = await watched.listJobs({ first: 1, after: page.endCursor }, owner);
    expect([...page.jobs, ...next.jobs].map((job) => job.id).sort()).toEqual([first!.job.id, second!.job.id].sort());
    const cancelled = await watched.listJobs({ status: 'cancelled' }, owner);
    expect(cancelled.jobs.map((job) => job.id)).toEqual([second!.job.id]);
    expect(operations).toEqual([]);
  });
});

/**
 * A change made behind the service's back, with no NOTIFY: the test decides when, and how, the
 * watch hears of it.
 */
async function changeQuietly(id: string): Promise<Job> {
  const statement: Statement = {
    name: 'test_change_quietly',
    text: 'UPDATE job SET priority = priority + 1, version = version + 1, last_updated = now() WHERE id = $1',
  };
  await db.query(statement, [id]);
  return db.prisma.job.findUniqueOrThrow({ where: { id } });
}

/** Resolves once the hub has heard job `id` announced at `version` or later. */
function heardOf(id: string, version: number): Promise<void> {
  return new Promise((resolve) => {
    const stop = hub.onEvents((events) => {
      if (!events.some((event) => event.id === id && event.version >= version)) return;
      stop();
      resolve();
    });
  });
}

/** Every state left on `stream`; the deadline only turns a hang into a readable failure. */
async function rest(stream: AsyncIterableIterator<Job>): Promise<Array<Pick<Job, 'status' | 'version'>>> {
  const states: Array<Pick<Job, 'status' | 'version'>> = [];
  for (;;) {
    const step = await Promise.race([
      stream.next(),
      sleep(15_000).then(() => Promise.reject(new Error(`stream stalled after ${JSON.stringify(states)}`))),
    ]);
    if (step.done) return states;
    states.push({ status: step.value.status, version: step.value.version });
  }
}

describe("a job's watch", () => {
  it('shows a version handed over, and reads nothing when its NOTIFY follows', async () => {
    const { job } = await service.addJob({ num1: '4', num2: '5' }, ANONYMOUS);
    const stream = await service.watchJob(job.id, ANONYMOUS);
    expect((await stream.next()).value).toMatchObject({ status: 'pending' });
    const reads = vi.spyOn(service, 'getJob');
    try {
      const changed = await changeQuietly(job.id);
      hub.deliverLocally([changed]);
      expect((await stream.next()).value).toBe(changed);
      // The consumer asks for more before the NOTIFY comes, so the watch acts on it at once.
      const after = stream.next();
      const announced = heardOf(job.id, changed.version);
      await db.query({ name: 'test_announce', text: `SELECT pg_notify('${JOB_EVENTS_CHANNEL}', $1)` }, [
        `${job.id}:pending:${changed.version}`,
      ]);
      await announced;
      // Whatever the watch does on hearing it, it has begun by the next turn of the event loop.
      await new Promise((resolve) => setImmediate(resolve));
      expect(reads).not.toHaveBeenCalled();
      await service.cancelJob(job.id, ANONYMOUS);
      expect((await after).value).toMatchObject({ status: 'cancelled', version: changed.version + 1 });
      expect(await rest(stream)).toEqual([]);
      expect(reads).toHaveBeenCalledTimes(1);
    } finally {
      reads.mockRestore();
      await stream.return?.();
    }
  });

  it('reads a change announced after a hand-over it has not shown yet', async () => {
    const { job } = await service.addJob({ num1: '4', num2: '5' }, ANONYMOUS);
    const stream = await service.watchJob(job.id, ANONYMOUS);
    expect((await stream.next()).value).toMatchObject({ status: 'pending' });
    // Until the consumer asks for more, the watch waits on its first message, and what it hears
    // meanwhile piles up: a hand-over, then news of a newer change.
    const changed = await changeQuietly(job.id);
    hub.deliverLocally([changed]);
    const announced = heardOf(job.id, changed.version + 1);
    await service.cancelJob(job.id, ANONYMOUS);
    await announced;
    // Showing the hand-over instead of reading would show a state that is not the latest, and
    // hear of nothing more.
    expect(await rest(stream)).toEqual([{ status: 'cancelled', version: changed.version + 1 }]);
  });

  it('show a job handed over whole by this process without reading it', async () => {
    const { job } = await service.addJob({ num1: '4', num2: '5' }, ANONYMOUS);
    const stream = await service.watchJob(job.id, ANONYMOUS);
    expect((await stream.next()).value).toMatchObject({ status: 'pending' });
    const reads = vi.spyOn(service, 'getJob');
    try {
      // A state the database never held: only the hand-over can have shown it.
      const handed = { ...job, status: 'completed' as const, version: job.version + 5 };
      hub.deliverLocally([handed]);
      expect((await stream.next()).value).toBe(handed);
      expect(reads).not.toHaveBeenCalled();
    } finally {
      reads.mockRestore();
      await stream.return?.();
    }
  });

  it('turns away a caller the job does not belong to, watching at the same time as its owner', async () => {
    const { job } = await service.addJob({ num1: '4', num2: '5' }, ANONYMOUS);
    // Both start at once: the owner's watch is registered while the stranger's is turned away.
    const [mine, theirs] = await Promise.allSettled([
      service.watchJob(job.id, ANONYMOUS),
      service.watchJob(job.id, { owner: 'someone-else' }),
    ]);
    expect(mine.status).toBe('fulfilled');
    expect(theirs.status === 'rejected' && String(theirs.reason)).toMatch(/no job with id/);
    if (mine.status === 'fulfilled') await mine.value.return?.();
  });
});
