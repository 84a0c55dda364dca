/**
 * Unique jobs: while a job holds its (owner, kind, unique key), that is while it is pending or
 * running, no other job with the same key is added. 50 submissions at once make one job, whether
 * they share a process (the insert coalescer keeps them apart) or race in the database (a
 * service of their own each, so 50 statements meet at the unique index).
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Database } from '../src/db/database.ts';
import { JobServiceError } from '../src/jobs/errors.ts';
import type { InsertedJob } from '../src/jobs/sql/insert.ts';
import { defineKind } from '../src/kinds/define.ts';
import { KindRegistry } from '../src/kinds/registry.ts';
import { addKind } from '../src/kinds/add.ts';
import { enqueue } from '../src/library.ts';
import { closeTestApp, openTestApp, post, type TestApp } from './helpers/api.ts';
import type { TestDatabase } from './helpers/database.ts';
import { ANONYMOUS, createService } from './helpers/jobs.ts';

const SUBMISSIONS = 50;

const sync = defineKind({
  name: 'sync',
  input: z.object({ account: z.string() }),
  result: z.null(),
  handler: () => null,
});
const kinds = new KindRegistry([addKind({ maxDigits: 100 }), sync]);

let testDb: TestDatabase;
let db: Database;
let api: TestApp;

beforeAll(async () => {
  ({ testDb, db, api } = await openTestApp(import.meta.filename, { service: { kinds } }));
});

afterAll(() => closeTestApp({ testDb, api }));

type Outcome = InsertedJob | JobServiceError;

function settle(promise: Promise<InsertedJob>): Promise<Outcome> {
  return promise.catch((error: unknown) => {
    if (error instanceof JobServiceError) return error;
    throw error;
  });
}

async function jobsWithKey(key: string): Promise<number> {
  return db.prisma.job.count({ where: { uniqueKey: key } });
}

/** What 50 answers must be: one job created; the others refused with CONFLICT, or answered with it. */
function expectOneJob(outcomes: Outcome[], onUnique: 'refuse' | 'existing'): string {
  const created = outcomes.filter((outcome): outcome is InsertedJob => !(outcome instanceof Error) && outcome.created);
  expect(created).toHaveLength(1);
  const id = created[0]!.job.id;
  const others = outcomes.filter((outcome) => outcome !== created[0]);
  if (onUnique === 'refuse') {
    for (const other of others) {
      expect(other).toBeInstanceOf(JobServiceError);
      expect(other).toMatchObject({ code: 'CONFLICT', field: 'uniqueKey' });
      expect((other as Error).message).toContain(id);
    }
  } else {
    for (const other of others) expect(other).toMatchObject({ created: false, job: { id, uniqueKey: created[0]!.job.uniqueKey } });
  }
  return id;
}

describe.each(['refuse', 'existing'] as const)('50 concurrent submissions with one uniqueKey, onUnique %s', (onUnique) => {
  it('make one job when they share a process', async () => {
    const key = `shared-${onUnique}`;
    const outcomes = await Promise.all(
      Array.from({ length: SUBMISSIONS }, (_, n) =>
        settle(api.jobs.submitJob({ kind: 'sync', input: { account: `a${n}` }, uniqueKey: key, onUnique }, ANONYMOUS)),
      ),
    );
    expectOneJob(outcomes, onUnique);
    expect(await jobsWithKey(key)).toBe(1);
  });

  it('make one job when 50 statements race in the database', async () => {
    const key = `raced-${onUnique}`;
    const pool = testDb.open({ poolSize: 20 });
    // A service each: no coalescer stands between them, so the unique index decides.
    const services = Array.from({ length: SUBMISSIONS }, () => createService(pool, api.hub, { kinds }));
    const outcomes = await Promise.all(
      services.map((service, n) =>
        settle(service.submitJob({ kind: 'sync', input: { account: `a${n}` }, uniqueKey: key, onUnique }, ANONYMOUS)),
      ),
    );
    expectOneJob(outcomes, onUnique);
    expect(await jobsWithKey(key)).toBe(1);
  });
});

describe('a unique key', () => {
  it('is free again once its job is finished', async () => {
    const first = await api.jobs.submitJob({ kind: 'sync', input: { account: 'x' }, uniqueKey: 'freed' }, ANONYMOUS);
    await expect(api.jobs.submitJob({ kind: 'sync', input: { account: 'x' }, uniqueKey: 'freed' }, ANONYMOUS)).rejects.toMatchObject({
      code: 'CONFLICT',
    });
    await api.jobs.cancelJob(first.job.id, ANONYMOUS);
    const second = await api.jobs.submitJob({ kind: 'sync', input: { account: 'x' }, uniqueKey: 'freed' }, ANONYMOUS);
    expect(second.created).toBe(true);
    expect(second.job.id).not.toBe(first.job.id);
  });

  it('is held per kind and per owner', async () => {
    await api.jobs.submitJob({ kind: 'sync', input: { account: 'x' }, uniqueKey: 'scoped' }, ANONYMOUS);
    const otherKind = await api.jobs.submitJob({ kind: 'add', input: { num1: '1', num2: '2' }, uniqueKey: 'scoped' }, ANONYMOUS);
    const otherOwner = await api.jobs.submitJob({ kind: 'sync', input: { account: 'x' }, uniqueKey: 'scoped' }, { owner: 'someone-else' });
    expect([otherKind.created, otherOwner.created]).toEqual([true, true]);
  });

  it('repeated within one request refuses it, or answers with the first job', async () => {
    const twice = (onUnique: 'refuse' | 'existing', key: string) =>
      api.jobs.submitJobs(
        [
          { kind: 'sync', input: { account: 'a' }, uniqueKey: key, onUnique },
          { kind: 'sync', input: { account: 'b' }, uniqueKey: key, onUnique },
        ],
        ANONYMOUS,
      );
    await expect(twice('refuse', 'in-request-refused')).rejects.toMatchObject({ code: 'CONFLICT', field: 'inputs.1.uniqueKey' });
    expect(await jobsWithKey('in-request-refused')).toBe(0);
    const [first, second] = await twice('existing', 'in-request-existing');
    expect(second).toMatchObject({ created: false, job: { id: first!.job.id } });
  });

  it('held refuses the whole request; answered with the existing job, lets the others in', async () => {
    await api.jobs.submitJob({ kind: 'sync', input: { account: 'x' }, uniqueKey: 'batch' }, ANONYMOUS);
    const batch = (onUnique: 'refuse' | 'existing') =>
      api.jobs.submitJobs(
        [
          { kind: 'sync', input: { account: `new-${onUnique}` } },
          { kind: 'sync', input: { account: 'y' }, uniqueKey: 'batch', onUnique },
        ],
        ANONYMOUS,
      );
    await expect(batch('refuse')).rejects.toMatchObject({ code: 'CONFLICT', field: 'inputs.1.uniqueKey' });
    expect(await db.prisma.job.count({ where: { input: { equals: { account: 'new-refuse' } } } })).toBe(0);
    const [added, existing] = await batch('existing');
    expect([added!.created, existing!.created]).toEqual([true, false]);
  });

  it('is taken by enqueue too', async () => {
    const client = new pg.Client({ connectionString: testDb.url });
    await client.connect();
    try {
      const first = await enqueue(client, sync, { account: 'lib' }, { uniqueKey: 'library' });
      await expect(enqueue(client, sync, { account: 'lib' }, { uniqueKey: 'library' })).rejects.toMatchObject({
        code: 'CONFLICT',
        field: 'uniqueKey',
      });
      const again = await enqueue(client, sync, { account: 'lib' }, { uniqueKey: 'library', onUnique: 'existing' });
      expect(again).toMatchObject({ created: false, job: { id: first.job.id } });
    } finally {
      await client.end();
    }
  });
});

describe('over the APIs', () => {
  it('REST answers 409 CONFLICT naming uniqueKey, or 202 with the existing job', async () => {
    const submit = (body: Record<string, unknown>) =>
      api.app.fetch('http://yoga/api/v1/jobs', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ kind: 'sync', input: { account: 'r' }, uniqueKey: 'rest', ...body }),
      });
    const first = await submit({});
    expect(first.status).toBe(202);
    const { jobId, uniqueKey } = (await first.json()) as { jobId: string; uniqueKey: string };
    expect(uniqueKey).toBe('rest');
    const refused = await submit({});
    expect(refused.status).toBe(409);
    expect(await refused.json()).toMatchObject({ error: { code: 'CONFLICT', field: 'uniqueKey' } });
    const existing = await submit({ onUnique: 'existing' });
    expect(existing.status).toBe(202);
    expect(await existing.json()).toMatchObject({ jobId, created: false });
    const bad = await submit({ onUnique: 'sometimes' });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: { code: 'BAD_USER_INPUT', field: 'onUnique' } });
  });

  it('GraphQL answers CONFLICT naming uniqueKey, or the existing job', async () => {
    const submit = (onUnique: string) =>
      post(api.app, {
        query: `mutation { submitJob(input: { kind: "sync", input: { account: "g" }, uniqueKey: "graphql", onUnique: ${onUnique} }) { created job { id uniqueKey } } }`,
      });
    const first = await submit('REFUSE');
    const id = (first.body.data as { submitJob: { job: { id: string } } }).submitJob.job.id;
    const refused = await submit('REFUSE');
    expect(refused.body.errors?.[0]?.extensions).toMatchObject({ code: 'CONFLICT', field: 'uniqueKey' });
    const existing = await submit('EXISTING');
    expect(existing.body.data).toEqual({ submitJob: { created: false, job: { id, uniqueKey: 'graphql' } } });
  });
});
