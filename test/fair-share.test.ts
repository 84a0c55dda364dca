/**
 * Fair share between owners (src/jobs/sql/claim.ts, `jobs_claim`): a claim takes each owner's
 * share of the batch, so one owner's backlog does not hold another owner's job; priority is
 * honoured within an owner.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Caller } from '../src/jobs/service.ts';
import { claimBatchStatement, type ClaimScope, FIRST_OWNER_CURSOR } from '../src/jobs/sql/claim.ts';
import { closeJobsDatabase, createWorker, type JobsDatabase, openJobsDatabase, statusOf, testKinds, waitForJob } from './helpers/jobs.ts';

const scope: ClaimScope = { kinds: ['add', 'slow'], defaultTimeoutSeconds: 30, shortestTimeoutSeconds: 30 };
const A: Caller = { owner: 'key-a' };
const B: Caller = { owner: 'key-b' };
const C: Caller = { owner: 'key-c' };

/** A job of a few milliseconds, so a drain of the backlog takes a while whatever the machine. */
const kinds = testKinds({ slow: () => new Promise((resolve) => setTimeout(() => resolve(null), 5)) });

let jobs: JobsDatabase;

beforeAll(async () => {
  jobs = await openJobsDatabase(import.meta.filename, { kinds });
});

afterAll(async () => {
  if (jobs) await closeJobsDatabase(jobs);
});

beforeEach(async () => {
  // Each test owns the queue: what an earlier one left pending or running is finished.
  await jobs.db.query({ name: 'test_fair_reset', text: `UPDATE job SET status = 'completed', completed_on = now() WHERE status IN ('pending', 'wip')` });
});

/** `count` pending `kind` jobs of `owner`, written in one statement (a backlog, faster than the API). */
async function backlog(owner: string, count: number, kind = 'add', priority = 0): Promise<void> {
  await jobs.db.query(
    {
      name: 'test_fair_backlog',
      text: `INSERT INTO job (id, kind, max_attempts, input, owner, priority, run_at)
             SELECT gen_random_uuid(), $2, 3, '{"num1":"1","num2":"2"}', $1, $4, now() - interval '1 hour' + g * interval '1 ms'
             FROM generate_series(1, $3::int) AS g`,
    },
    [owner, kind, count, priority],
  );
}

async function submit(caller: Caller, priority = 0): Promise<string> {
  return (await jobs.service.submitJob({ kind: 'add', input: { num1: '1', num2: '2' }, priority }, caller)).job.id;
}

async function ownersOf(ids: readonly string[]): Promise<string[]> {
  const rows = await jobs.db.query<{ owner: string }>(
    { name: 'test_fair_owners', text: `SELECT owner FROM job WHERE id = ANY ($1::uuid[]) ORDER BY owner` },
    [ids],
  );
  return rows.map((row) => row.owner);
}

describe('the claim shares a batch between owners', () => {
  it("takes another owner's one job in the first claim, whatever the first owner's backlog", async () => {
    await backlog(A.owner, 5000);
    const bJob = await submit(B);
    const { claimed } = await claimBatchStatement(jobs.db, 'w', 10, scope);
    expect(claimed).toHaveLength(10);
    expect(claimed.map((job) => job.id)).toContain(bJob);
  });

  it("fills the batch from an owner with more when another has fewer than its share", async () => {
    await backlog(A.owner, 100);
    await submit(B);
    const { claimed } = await claimBatchStatement(jobs.db, 'w', 50, scope);
    expect(await ownersOf(claimed.map((job) => job.id))).toEqual([...Array(49).fill(A.owner), B.owner]);
  });

  it('honours priority within an owner', async () => {
    await backlog(A.owner, 50);
    const urgent = await submit(A, 5);
    const bJob = await submit(B);
    const { claimed } = await claimBatchStatement(jobs.db, 'w', 2, scope);
    expect(claimed.map((job) => job.id).sort()).toEqual([urgent, bJob].sort());
  });

  it('takes one job of each of three owners in a claim of three', async () => {
    await backlog(A.owner, 100);
    await backlog(B.owner, 100);
    await backlog(C.owner, 100);
    const { claimed } = await claimBatchStatement(jobs.db, 'w', 3, scope);
    expect(await ownersOf(claimed.map((job) => job.id))).toEqual([A.owner, B.owner, C.owner]);
  });

  it('gives the turn round the owners from claim to claim through the cursor', async () => {
    await backlog(A.owner, 10);
    await backlog(B.owner, 10);
    await backlog(C.owner, 10);
    let cursor = FIRST_OWNER_CURSOR;
    const served: string[] = [];
    for (let i = 0; i < 4; i++) {
      const result = await claimBatchStatement(jobs.db, 'w', 1, scope, cursor);
      cursor = result.ownerCursor;
      served.push(...(await ownersOf(result.claimed.map((job) => job.id))));
    }
    // Owners take their turns in the claim index's order, which is their hashes'.
    const [turns] = await jobs.db.query<{ order: string[] }>(
      {
        name: 'test_fair_owner_order',
        text: `SELECT array_agg(owner ORDER BY hashtext(owner)) AS order FROM unnest($1::text[]) AS owner`,
      },
      [[A.owner, B.owner, C.owner]],
    );
    expect(served).toEqual([...turns!.order, turns!.order[0]]);
  });

  it('fills concurrent claims, each walking past the rows the others hold', async () => {
    await backlog(A.owner, 2000);
    await backlog(B.owner, 3);
    const results = await Promise.all(Array.from({ length: 4 }, (_, i) => claimBatchStatement(jobs.db, `w${i}`, 100, scope)));
    const ids = results.flatMap((result) => result.claimed.map((job) => job.id));
    for (const result of results) expect(result.claimed).toHaveLength(100);
    expect(new Set(ids).size).toBe(400);
    expect((await ownersOf(ids)).filter((owner) => owner === B.owner)).toHaveLength(3);
  });
});

describe('a worker draining one owner’s backlog', () => {
  it("runs another owner's job while the backlog is still mostly pending", async () => {
    const total = 20_000;
    const worker = createWorker(jobs.db, jobs.hub, { kinds, concurrency: 20 });
    await backlog(A.owner, total, 'slow');
    await worker.start();
    try {
      const bJob = (await jobs.service.submitJob({ kind: 'slow', input: {} }, B)).job.id;
      await waitForJob(jobs.service, jobs.hub, bJob, statusOf('completed'), 15_000, B);
      const [left] = await jobs.db.query<{ pending: number }>(
        { name: 'test_fair_pending', text: `SELECT count(*)::int AS pending FROM job WHERE owner = $1 AND status = 'pending'` },
        [A.owner],
      );
      expect(left!.pending).toBeGreaterThan(total / 2);
    } finally {
      await worker.stop();
    }
  });
});
