/**
 * The claim of a kind with a concurrency limit (src/jobs/sql/claim-limited.ts), by hand: claims
 * racing on separate connections never take more than the limit between them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { adoptUnorderedStatement, claimLimitedStatement, type LimitedKindScope } from '../src/jobs/sql/claim-limited.ts';
import { insertJobsStatement } from '../src/jobs/sql/insert.ts';
import { defineKind } from '../src/kinds/define.ts';
import { KindRegistry } from '../src/kinds/registry.ts';
import { interceptStatements } from './helpers/intercept.ts';
import { ANONYMOUS, closeJobsDatabase, createWorker, type JobsDatabase, openJobsDatabase, statusOf, waitForJob } from './helpers/jobs.ts';

const capped = defineKind({ name: 'capped', input: z.object({ n: z.number() }), result: z.null(), handler: () => null, options: { concurrency: 3 } });
const scope: LimitedKindScope = { kind: 'capped', concurrency: 3, concurrencyPerKey: null, timeoutSeconds: 30, defaultTimeoutSeconds: 30, rateLimit: null };

let jobs: JobsDatabase;

beforeAll(async () => {
  jobs = await openJobsDatabase(import.meta.filename, { kinds: new KindRegistry([capped]) });
});

afterAll(async () => {
  if (jobs) await closeJobsDatabase(jobs);
});

async function finish(ids: readonly string[]): Promise<void> {
  await jobs.db.query({ name: 'test_limited_finish', text: `UPDATE job SET status = 'completed', completed_on = now() WHERE id = ANY($1::uuid[])` }, [ids]);
}

describe('claiming a limited kind', () => {
  it('ten claims at once take 3 jobs between them, and after two finish, two more', async () => {
    await jobs.service.submitJobs(Array.from({ length: 40 }, (_, n) => ({ kind: 'capped', input: { n } })), ANONYMOUS);
    const race = () => Promise.all(Array.from({ length: 10 }, (_, i) => claimLimitedStatement(jobs.db, `w${i}`, 5, scope)));

    const first = (await race()).flatMap((result) => result.claimed);
    expect(first).toHaveLength(3);

    await finish(first.slice(0, 2).map((job) => job.id));
    const results = await race();
    expect(results.flatMap((result) => result.claimed)).toHaveLength(2);
    // A claim that found the kind full names the jobs that hold it.
    const full = results.find((result) => result.claimed.length === 0)!;
    expect(full.holders).toHaveLength(3);
    expect(full.holders).toContain(first[2]!.id);
  });

  it('claims nothing while the kind is paused', async () => {
    await jobs.db.query({ name: 'test_limited_reset', text: `UPDATE job SET status = 'completed' WHERE status = 'wip'` });
    await jobs.service.kindControl.pause('capped');
    expect((await claimLimitedStatement(jobs.db, 'w', 5, scope)).claimed).toEqual([]);
    await jobs.service.kindControl.resume('capped');
    expect((await claimLimitedStatement(jobs.db, 'w', 5, scope)).claimed).toHaveLength(3);
  });
});

describe('claiming a kind with a limit per concurrency key', () => {
  const keyed = defineKind({
    name: 'keyed',
    input: z.object({ n: z.number() }),
    result: z.null(),
    handler: () => null,
    options: { concurrencyPerKey: 1 },
  });
  const keyedScope: LimitedKindScope = { kind: 'keyed', concurrency: null, concurrencyPerKey: 1, timeoutSeconds: 30, defaultTimeoutSeconds: 30, rateLimit: null };
  let keyedJobs: JobsDatabase;

  beforeAll(async () => {
    keyedJobs = await openJobsDatabase(`${import.meta.filename}-keyed`, { kinds: new KindRegistry([keyed]) });
  });

  afterAll(async () => {
    if (keyedJobs) await closeJobsDatabase(keyedJobs);
  });

  it('takes the first job of each key, and jobs without a key, and the next of a key once the first is done', async () => {
    const submissions = [
      ...[0, 1, 2].map((n) => ({ kind: 'keyed', input: { n }, concurrencyKey: 'a' })),
      ...[10, 11].map((n) => ({ kind: 'keyed', input: { n }, concurrencyKey: 'b' })),
      ...[20, 21].map((n) => ({ kind: 'keyed', input: { n } })),
    ];
    await keyedJobs.service.submitJobs(submissions, ANONYMOUS);
    const race = () => Promise.all(Array.from({ length: 10 }, (_, i) => claimLimitedStatement(keyedJobs.db, `w${i}`, 10, keyedScope)));
    const numbers = (results: Awaited<ReturnType<typeof race>>) =>
      results.flatMap((result) => result.claimed.map((job) => (job.input as { n: number }).n)).sort((x, y) => x - y);

    const first = await race();
    expect(numbers(first)).toEqual([0, 10, 20, 21]);
    expect(numbers(await race())).toEqual([]);

    const byNumber = new Map(first.flatMap((result) => result.claimed).map((job) => [(job.input as { n: number }).n, job.id]));
    await keyedJobs.db.query({ name: 'test_keyed_finish', text: `UPDATE job SET status = 'failed' WHERE id = $1` }, [byNumber.get(0)]);
    expect(numbers(await race())).toEqual([1]);
  });

  it('claims a job added before its kind limited keys once a worker has numbered it', async () => {
    await keyedJobs.db.query({ name: 'test_keyed_clear', text: `UPDATE job SET status = 'completed' WHERE kind = 'keyed'` });
    // As a process that did not know the limit added it: no key, no concurrency_order.
    const id = '0190f5d2-0000-7000-8000-000000000001';
    await insertJobsStatement(keyedJobs.db, [
      { id, kind: 'keyed', input: '{"n":99}', maxAttempts: 1, timeoutSeconds: null, runAt: null, priority: 0, idempotencyKey: null, owner: '' },
    ]);
    expect((await claimLimitedStatement(keyedJobs.db, 'w', 10, keyedScope)).claimed).toEqual([]);
    await adoptUnorderedStatement(keyedJobs.db, ['keyed']);
    expect((await claimLimitedStatement(keyedJobs.db, 'w', 10, keyedScope)).claimed.map((job) => job.id)).toEqual([id]);
  });
});

describe('a worker claiming limited and unlimited kinds', () => {
  it('runs the jobs a limited claim took when the claim of the other kinds fails after it', async () => {
    const plain = defineKind({ name: 'plain', input: z.object({ n: z.number() }), result: z.null(), handler: () => null });
    const kinds = new KindRegistry([capped, plain]);
    const own = await openJobsDatabase(`${import.meta.filename}-partial`, { kinds });
    let refused = 0;
    const db = interceptStatements(own.db, {
      before(statement) {
        if (statement.name !== 'jobs_claim' || refused > 0) return;
        refused += 1;
        throw new Error('the database refused the claim');
      },
    });
    const [first, second, other] = await own.service.submitJobs(
      [{ kind: 'capped', input: { n: 1 } }, { kind: 'capped', input: { n: 2 } }, { kind: 'plain', input: { n: 3 } }],
      ANONYMOUS,
    );
    const worker = createWorker(db, own.hub, { kinds });
    await worker.start();
    try {
      for (const { job } of [first!, second!, other!]) await waitForJob(own.service, own.hub, job.id, statusOf('completed'));
      expect(refused).toBe(1);
      expect(db.seen('jobs_claim_limited')).toBeGreaterThan(0);
    } finally {
      await worker.stop();
      await closeJobsDatabase(own);
    }
  });
});
