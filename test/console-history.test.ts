/**
 * A job's history in the operator console (issue 20, item 3): every failed attempt's error, its
 * time and the worker that held it, over GraphQL (`Job.attempts`) and REST
 * (`/api/v1/jobs/:id/attempts`); kept across a retry, recorded for an attempt lost to the stale
 * rule, written once for a failure sent twice, and deleted with the job.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Database } from '../src/db/database.ts';
import { defineKind } from '../src/kinds/define.ts';
import { KindRegistry } from '../src/kinds/registry.ts';
import { failJobsStatement, storedFailuresStatement } from '../src/jobs/sql/outcomes.ts';
import { pruneJobsStatement } from '../src/jobs/sql/prune.ts';
import type { Worker } from '../src/worker/worker.ts';
import { closeTestApp, keyedClient, openTestApp, type TestApp } from './helpers/api.ts';
import { claimJobsStatement } from './helpers/claim.ts';
import type { TestDatabase } from './helpers/database.ts';
import { createWorker } from './helpers/jobs.ts';

/** Fails its first two attempts, then succeeds. */
const flaky = defineKind({
  name: 'flaky',
  input: z.object({ text: z.string() }),
  result: z.null(),
  handler: (_input, context) => {
    if (context.attempt <= 2) throw new Error(`attempt ${context.attempt} failed`);
    return null;
  },
});
/** Always fails. */
const doomed = defineKind({
  name: 'doomed',
  input: z.object({ text: z.string() }),
  result: z.null(),
  handler: (_input, context) => {
    throw new Error(`doomed attempt ${context.attempt}`);
  },
});
const fine = defineKind({ name: 'fine', input: z.object({ text: z.string() }), result: z.null(), handler: () => null });
/** Not run by the worker here: claimed by hand. */
const echo = defineKind({ name: 'echo', input: z.object({ text: z.string() }), result: z.null(), handler: () => null });
const kinds = new KindRegistry([flaky, doomed, fine, echo]);

const CUSTOMER = 'console-history-customer-a';
const OTHER = 'console-history-customer-b';
const OPERATOR = 'console-history-operator-key';
const WORKER = 'history-worker';

let testDb: TestDatabase;
let db: Database;
let api: TestApp;
let client: ReturnType<typeof keyedClient>;
let worker: Worker;

beforeAll(async () => {
  ({ testDb, db, api } = await openTestApp(import.meta.filename, {
    service: { kinds },
    apiKeys: [CUSTOMER, OTHER],
    adminKeys: [OPERATOR],
  }));
  client = keyedClient(api.app);
  worker = createWorker(db, api.hub, {
    kinds: new KindRegistry([flaky, doomed, fine]),
    workerId: WORKER,
    retry: { baseDelayMs: 0, maxDelayMs: 0 },
  });
  await worker.start();
});

afterAll(async () => {
  await worker?.stop();
  await closeTestApp({ testDb, api });
});

const JOB = 'query($id: ID!) { job(id: $id) { id status attempt lockedBy lastError attempts { attempt error failedAt worker } } }';

async function submit(key: string, kind: string, maxAttempts: number, runAt?: Date): Promise<string> {
  const answer = await client.rest('POST', '/api/v1/jobs', key, {
    kind,
    input: { text: kind },
    maxAttempts,
    ...(runAt ? { runAt: runAt.toISOString() } : {}),
  });
  expect(answer.status).toBe(202);
  return answer.body['jobId'] as string;
}

async function settled(key: string, id: string, status: string) {
  await expect.poll(async () => (await client.graphql(key, JOB, { id })).data?.['job']?.status, { timeout: 15_000 }).toBe(status);
  return (await client.graphql(key, JOB, { id })).data!['job'];
}

describe("a job's failed attempts", () => {
  it('shows each error with its attempt, time and worker, over GraphQL and REST, to its owner and operators only', async () => {
    const submittedAt = Date.now();
    const id = await submit(CUSTOMER, 'flaky', 3);
    const job = await settled(CUSTOMER, id, 'COMPLETED');
    expect(job).toMatchObject({ attempt: 3, lockedBy: WORKER, lastError: 'attempt 2 failed' });
    expect(job.attempts).toEqual([
      { attempt: 1, error: 'attempt 1 failed', failedAt: expect.any(String), worker: WORKER },
      { attempt: 2, error: 'attempt 2 failed', failedAt: expect.any(String), worker: WORKER },
    ]);
    const [first, second] = job.attempts.map((entry: { failedAt: string }) => Date.parse(entry.failedAt));
    expect(first).toBeGreaterThanOrEqual(submittedAt - 1000);
    expect(second).toBeGreaterThanOrEqual(first);
    expect(second).toBeLessThanOrEqual(Date.now());

    expect(await client.rest('GET', `/api/v1/jobs/${id}/attempts`, CUSTOMER)).toEqual({ status: 200, body: { attempts: job.attempts } });
    expect((await client.graphql(OPERATOR, JOB, { id })).data!['job'].attempts).toEqual(job.attempts);
    expect((await client.rest('GET', `/api/v1/jobs/${id}/attempts`, OPERATOR)).body).toEqual({ attempts: job.attempts });

    // Another customer sees neither the job nor its history.
    const theirs = await client.graphql(OTHER, JOB, { id });
    expect(theirs.errors?.map((error) => error.extensions?.['code'])).toEqual(['NOT_FOUND']);
    expect((await client.rest('GET', `/api/v1/jobs/${id}/attempts`, OTHER)).status).toBe(404);
    expect((await client.rest('GET', '/api/v1/jobs/not-a-job/attempts', CUSTOMER)).status).toBe(404);
  });

  it('a job that succeeds at once has no history', async () => {
    const id = await submit(CUSTOMER, 'fine', 3);
    const done = await settled(CUSTOMER, id, 'COMPLETED');
    expect(done).toMatchObject({ attempt: 1, lockedBy: WORKER, lastError: null, attempts: [] });
    const [rows] = await db.query<{ n: number }>(
      { name: 'history_rows_of', text: 'SELECT count(*)::int AS n FROM job_attempt_error WHERE job_id = $1' },
      [id],
    );
    expect(rows!.n).toBe(0);
  });

  it('a bulk retry is a new attempt, and the history keeps the attempts before it', async () => {
    const id = await submit(CUSTOMER, 'doomed', 1);
    const failed = await settled(CUSTOMER, id, 'FAILED');
    expect(failed.attempts).toEqual([{ attempt: 1, error: 'doomed attempt 1', failedAt: expect.any(String), worker: WORKER }]);

    const retried = await client.graphql(OPERATOR, 'mutation($filter: JobFilter!) { retryJobs(filter: $filter) { count } }', { filter: { id } });
    expect(retried.data).toEqual({ retryJobs: { count: 1 } });
    await expect
      .poll(async () => (await client.graphql(CUSTOMER, JOB, { id })).data!['job'].attempts.length, { timeout: 15_000 })
      .toBe(2);
    const again = await settled(CUSTOMER, id, 'FAILED');
    expect(again.attempts).toEqual([
      failed.attempts[0],
      { attempt: 2, error: 'doomed attempt 2', failedAt: expect.any(String), worker: WORKER },
    ]);
  });

  it('an attempt lost to the stale rule is in the history, naming the worker that lost it', async () => {
    const id = await submit(CUSTOMER, 'echo', 2);
    const [taken] = await claimJobsStatement(db, 'dead-worker', 10, 30);
    expect(taken?.id).toBe(id);
    await db.query({ name: 'history_go_stale', text: `UPDATE job SET last_updated = now() - interval '1 hour' WHERE id = $1` }, [id]);
    const [again] = await claimJobsStatement(db, 'rescuer', 10, 30);
    expect(again).toMatchObject({ id, attempt: 2 });
    const job = (await client.graphql(CUSTOMER, JOB, { id })).data!['job'];
    expect(job).toMatchObject({ status: 'WIP', attempt: 2, lockedBy: 'rescuer', lastError: 'timed out: no heartbeat for 30 s' });
    expect(job.attempts).toEqual([{ attempt: 1, error: 'timed out: no heartbeat for 30 s', failedAt: expect.any(String), worker: 'dead-worker' }]);

    // The last attempt lost: the claim fails the job, and the history says so too.
    await db.query({ name: 'history_go_stale', text: `UPDATE job SET last_updated = now() - interval '1 hour' WHERE id = $1` }, [id]);
    expect(await claimJobsStatement(db, 'rescuer', 10, 30)).toEqual([]);
    const timedOut = (await client.graphql(CUSTOMER, JOB, { id })).data!['job'];
    expect(timedOut).toMatchObject({ status: 'FAILED', lockedBy: 'rescuer' });
    expect(timedOut.attempts.map((entry: { attempt: number; error: string; worker: string }) => [entry.attempt, entry.error, entry.worker])).toEqual([
      [1, 'timed out: no heartbeat for 30 s', 'dead-worker'],
      [2, 'timed out: no heartbeat for 30 s on its last attempt', 'rescuer'],
    ]);
  });

  it('a failure sent again after its answer was lost writes no second row, and is still recognised as stored', async () => {
    const id = await submit(CUSTOMER, 'echo', 3);
    const [taken] = await claimJobsStatement(db, 'hand', 10, 30);
    expect(taken?.id).toBe(id);
    const failure = { id, attempt: 1, error: 'lost answer', retryInMs: 3_600_000 };
    expect(await failJobsStatement(db, [failure])).toEqual(new Set([id]));
    expect(await failJobsStatement(db, [failure])).toEqual(new Set());
    expect(await storedFailuresStatement(db, [failure])).toEqual(new Set([id]));
    const job = (await client.graphql(CUSTOMER, JOB, { id })).data!['job'];
    expect(job.attempts).toEqual([{ attempt: 1, error: 'lost answer', failedAt: expect.any(String), worker: 'hand' }]);
  });

  it('is deleted with its job by the pruner', async () => {
    const id = await submit(CUSTOMER, 'doomed', 1);
    await settled(CUSTOMER, id, 'FAILED');
    const count = async () =>
      (await db.query<{ n: number }>({ name: 'history_rows_of', text: 'SELECT count(*)::int AS n FROM job_attempt_error WHERE job_id = $1' }, [id]))[0]!.n;
    expect(await count()).toBe(1);
    let pruned = 0;
    for (let round = 0; round < 100; round += 1) {
      const deleted = await pruneJobsStatement(db, ['failed', 'completed', 'retrieved', 'cancelled'], new Date(Date.now() + 60_000), 1000);
      pruned += deleted;
      if (deleted === 0) break;
    }
    expect(pruned).toBeGreaterThan(0);
    expect(await count()).toBe(0);
    const [orphans] = await db.query<{ n: number }>({
      name: 'history_orphans',
      text: 'SELECT count(*)::int AS n FROM job_attempt_error e WHERE NOT EXISTS (SELECT FROM job WHERE job.id = e.job_id)',
    });
    expect(orphans!.n).toBe(0);
  });
});
