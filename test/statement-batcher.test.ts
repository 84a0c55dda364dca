import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../src/db/database.ts';
import { NotWritten, type Sent, StatementBatcher, type StatementBatcherOptions } from '../src/db/statement-batcher.ts';
import { insertJobsStatement } from '../src/jobs/sql/insert.ts';
import { type Failure, failJobsStatement } from '../src/jobs/sql/outcomes.ts';
import type { ClaimedJob } from '../src/jobs/sql/claimed.ts';
import { claimJobsStatement } from './helpers/claim.ts';
import { createTestDatabase, type TestDatabase } from './helpers/database.ts';
import { type InterceptedDatabase, interceptStatements, type StatementHooks } from './helpers/intercept.ts';
import { deferred, newAddJob } from './helpers/jobs.ts';

let testDb: TestDatabase;
let db: Database;

beforeAll(async () => {
  testDb = await createTestDatabase(import.meta.filename);
  db = testDb.open();
});
afterEach(async () => {
  await db.prisma.job.deleteMany();
});
afterAll(() => testDb.drop());

let next = 0;
/** `count` claimed jobs, numbered by num1 from 0, and a final failure for each. */
async function claimedFailures(count: number): Promise<Failure[]> {
  const jobs = Array.from({ length: count }, (_, i) => {
    next += 1;
    const id = `00000000-0000-7000-8000-${String(next).padStart(12, '0')}`;
    const num1 = String(i);
    return newAddJob({ id, num1, num2: '0' });
  });
  await insertJobsStatement(db, jobs);
  const claimed = await claimJobsStatement(db, 'batcher-test', count, 30);
  const num1Of = (job: ClaimedJob) => (job.input as { num1: string }).num1;
  claimed.sort((a, b) => Number(num1Of(a)) - Number(num1Of(b)));
  return claimed.map((job) => ({ id: job.id, attempt: job.attempt, error: `failure ${num1Of(job)}`, retryInMs: null }));
}

/** Failures written through the fence: each answered `stored`, or `fenced` when its attempt no longer holds the job. */
function failureBatcher(
  target: Database,
  options: Partial<StatementBatcherOptions<Failure, 'stored' | 'fenced'>> = {},
): StatementBatcher<Failure, 'stored' | 'fenced'> {
  return new StatementBatcher<Failure, 'stored' | 'fenced'>({
    send: async (items) => {
      const accepted = await failJobsStatement(target, items);
      return items.map((item) => (accepted.has(item.id) ? 'stored' : 'fenced'));
    },
    maxBatch: 1000,
    gatherTick: true,
    // A pause after a refusal would hold the others for ten minutes: the test would time out.
    retryDelayMs: 600_000,
    log: { logger: pino({ level: 'silent' }), what: 'failures' },
    ...options,
  });
}

async function rows() {
  // Ids grow with insertion, which numbered the jobs.
  return db.prisma.job.findMany({ orderBy: { id: 'asc' }, select: { status: true, lastError: true } });
}

/** The database, its failure statements passed through `hooks`. */
function intercepted(hooks: StatementHooks): InterceptedDatabase {
  return interceptStatements(db, {
    before: (statement, values) => (statement.name === 'jobs_fail' ? hooks.before?.(statement, values) : undefined),
  });
}

describe('the statement batcher', () => {
  it("answers each caller with its own item's outcome: stored, fenced off, or refused with the database's reason", async () => {
    const failures = await claimedFailures(5);
    failures[1] = { ...failures[1]!, attempt: failures[1]!.attempt + 1 };
    failures[2] = { ...failures[2]!, error: 'refused\u0000here' };
    const counted = intercepted({});
    const batcher = failureBatcher(counted);
    const outcomes = await Promise.all(failures.map((failure) => batcher.push(failure)));
    expect(outcomes.slice(0, 2)).toEqual(['stored', 'fenced']);
    expect(outcomes.slice(3)).toEqual(['stored', 'stored']);
    const refused = outcomes[2] as NotWritten;
    expect(refused).toBeInstanceOf(NotWritten);
    expect(refused.why).toBe('refused');
    expect(refused.reason).toMatchObject({ code: '22021' });
    expect((await rows()).map((row) => row.status)).toEqual(['failed', 'wip', 'wip', 'failed', 'failed']);
    // The batch of five, then halves down to the refused one: [0, 1, 2], [0, 1], [2], [3, 4].
    expect(counted.seen('jobs_fail')).toBe(5);
    await batcher.close();
  });

  it('writes a refused item as its substitute, which answers for it', async () => {
    const failures = await claimedFailures(5);
    failures[2] = { ...failures[2]!, error: 'refused\u0000here' };
    const substitute = (failure: Failure) => ({ ...failure, error: failure.error.replace('\u0000', '?') });
    const batcher = failureBatcher(db, { substitute });
    const outcomes = await Promise.all(failures.map((failure) => batcher.push(failure)));
    expect(outcomes).toEqual(['stored', 'stored', 'stored', 'stored', 'stored']);
    const stored = (await rows()).map((row) => row.lastError);
    expect(stored).toEqual(['failure 0', 'failure 1', 'refused?here', 'failure 3', 'failure 4']);
    await batcher.close();
  });

  it('sends the first item at once, and all that queued while its statement ran as the next one', async () => {
    const failures = await claimedFailures(10);
    const firstSent = deferred();
    const release = deferred();
    let sent = 0;
    const held = intercepted({
      async before() {
        sent += 1;
        if (sent > 1) return;
        firstSent.resolve();
        await release.promise;
      },
    });
    const batcher = failureBatcher(held, { gatherTick: false });
    const first = batcher.push(failures[0]!);
    // Sent before push returns: no timer, not even a microtask, stands between.
    expect(held.seen('jobs_fail')).toBe(1);
    await firstSent.promise;
    const rest = failures.slice(1).map((failure) => batcher.push(failure));
    release.resolve();
    expect(await Promise.all([first, ...rest])).toEqual(failures.map(() => 'stored'));
    expect(held.seen('jobs_fail')).toBe(2);
    await batcher.close();
  });

  it('gathers the items of one tick into its first statement when asked to', async () => {
    const failures = await claimedFailures(10);
    const counted = intercepted({});
    const batcher = failureBatcher(counted, { gatherTick: true });
    const outcomes = Promise.all(failures.map((failure) => batcher.push(failure)));
    // Sent after one microtask: no timer delays it.
    await Promise.resolve();
    expect(counted.seen('jobs_fail')).toBe(1);
    expect(await outcomes).toEqual(failures.map(() => 'stored'));
    expect(counted.seen('jobs_fail')).toBe(1);
    await batcher.close();
  });

  it('sends a batch again after the pause while the database is unreachable, or else answers unreachable', async () => {
    const failures = await claimedFailures(2);
    let lost = 0;
    const dropping = intercepted({
      before() {
        lost += 1;
        if (lost === 1) throw new Error('Connection terminated unexpectedly');
      },
    });
    const retrying = failureBatcher(dropping, { retryDelayMs: 10 });
    expect(await retrying.push(failures[0]!)).toBe('stored');
    expect(dropping.seen('jobs_fail')).toBe(2);
    await retrying.close();

    lost = 0;
    const once = failureBatcher(dropping, { retryDelayMs: undefined });
    const outcome = (await once.push(failures[1]!)) as NotWritten;
    expect([outcome.why, (outcome.reason as Error).message]).toEqual(['unreachable', 'Connection terminated unexpectedly']);
    expect((await rows()).map((row) => row.status)).toEqual(['failed', 'wip']);
    await once.close();
  });

  it('sends a batch again whole when the database cannot run it for now (a transient SQLSTATE), not split as refused', async () => {
    const failures = await claimedFailures(3);
    // Disk full, as PostgreSQL reports it, raised by the server on the first statement only (a
    // sequence counts the statements: unlike a table, it is not rolled back with them).
    await db.query({ name: 'test_disk_full_count', text: 'CREATE SEQUENCE disk_full_statements' });
    await db.query({
      name: 'test_disk_full_function',
      text: `CREATE FUNCTION disk_full_once() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
               IF nextval('disk_full_statements') = 1 THEN
                 RAISE EXCEPTION 'could not extend file: No space left on device' USING ERRCODE = '53100';
               END IF;
               RETURN NULL;
             END $$`,
    });
    await db.query({
      name: 'test_disk_full_trigger',
      text: 'CREATE TRIGGER disk_full_once BEFORE UPDATE ON job FOR EACH STATEMENT EXECUTE FUNCTION disk_full_once()',
    });
    const sizes: number[] = [];
    const watched = intercepted({ before: (_statement, values) => void sizes.push((values![0] as unknown[]).length) });
    const retrying = failureBatcher(watched, { retryDelayMs: 10 });
    const outcomes = await Promise.all(failures.map((failure) => retrying.push(failure)));
    expect(outcomes).toEqual(['stored', 'stored', 'stored']);
    // Halving would have sent 2 and 1 after the first 3.
    expect(sizes).toEqual([3, 3]);
    await retrying.close();
    await db.query({ name: 'test_disk_full_cleanup', text: 'DROP TRIGGER disk_full_once ON job' });
  });

  it('writes what is queued when closed, and answers later items closed', async () => {
    const failures = await claimedFailures(2);
    const batcher = failureBatcher(db);
    const queued = batcher.push(failures[0]!);
    await batcher.close();
    expect(await queued).toBe('stored');
    const late: Sent<'stored' | 'fenced'> = await batcher.push(failures[1]!);
    expect(late).toMatchObject({ why: 'closed' });
    expect((await rows()).map((row) => row.status)).toEqual(['failed', 'wip']);
  });
});
