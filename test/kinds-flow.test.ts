/**
 * Flow control through the API: pausing and resuming kinds (a paused kind's jobs stay pending
 * while another kind's run, and run once it is resumed), the kinds' limits and state in `kinds`,
 * GET /api/v1/kinds and /metrics, and concurrency keys as submissions carry them. Across
 * processes: test/flow-processes.test.ts.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Database } from '../src/db/database.ts';
import { addKind } from '../src/kinds/add.ts';
import { defineKind } from '../src/kinds/define.ts';
import { KindRegistry } from '../src/kinds/registry.ts';
import type { Worker } from '../src/worker/worker.ts';
import { closeTestApp, codes, openTestApp, post, type TestApp } from './helpers/api.ts';
import type { TestDatabase } from './helpers/database.ts';
import { ANONYMOUS, createWorker, statusOf, waitForJob } from './helpers/jobs.ts';

const greet = defineKind({
  name: 'greet',
  input: z.object({ name: z.string() }),
  result: z.object({ greeting: z.string() }),
  handler: ({ name }) => ({ greeting: `hello ${name}` }),
  // Claimed by the limited kinds' claim: pausing holds there too. The rate limit is listed (and
  // loose enough to hold no job here back).
  options: { concurrency: 4, rateLimit: { limit: 1000, intervalMs: 1000 } },
});

/** One job at a time per concurrency key. */
const sequence = defineKind({
  name: 'sequence',
  input: z.object({ n: z.number() }),
  result: z.object({ n: z.number() }),
  handler: ({ n }) => ({ n }),
  options: { concurrencyPerKey: 1 },
});

let testDb: TestDatabase;
let db: Database;
let api: TestApp;
let worker: Worker;

beforeAll(async () => {
  const kinds = new KindRegistry([addKind({ maxDigits: 100 }), greet, sequence]);
  ({ testDb, db, api } = await openTestApp(import.meta.filename, { service: { kinds } }));
  // A slow poll: a resumed kind's jobs must start on the resume's wake-up, not on the poll.
  worker = createWorker(db, api.hub, { kinds, pollIntervalMs: 60_000 });
  await worker.start();
});

afterAll(async () => {
  await worker?.stop();
  if (api) await closeTestApp({ testDb, api });
});

async function rest(method: string, path: string, body?: unknown) {
  const init: RequestInit = { method };
  if (body !== undefined) {
    init.headers = { 'content-type': 'application/json' };
    init.body = JSON.stringify(body);
  }
  const response = await api.app.fetch(`http://yoga${path}`, init);
  return { status: response.status, body: await response.json() };
}

async function graphql(query: string, variables?: Record<string, unknown>) {
  return (await post(api.app, { query, variables })).body;
}

async function statuses(ids: readonly string[]): Promise<string[]> {
  return Promise.all(ids.map(async (id) => (await api.jobs.getJob(id, ANONYMOUS))!.status));
}

async function scrape(): Promise<string> {
  return (await api.app.fetch('http://yoga/metrics')).text();
}

describe('pausing a kind', () => {
  it('keeps its jobs pending while other kinds run, and runs them once resumed', async () => {
    const paused = await rest('POST', '/api/v1/kinds/greet/pause');
    expect(paused).toMatchObject({ status: 200, body: { name: 'greet', paused: true } });
    expect(await scrape()).toContain('job_kind_paused{kind="greet"} 1');

    const { jobs } = api;
    const held = await jobs.submitJobs([0, 1, 2].map((n) => ({ kind: 'greet', input: { name: `n${n}` } })), ANONYMOUS);
    const { job: sum } = await jobs.addJob({ num1: '1', num2: '2' }, ANONYMOUS);
    await waitForJob(jobs, api.hub, sum.id, statusOf('completed'));
    // The add job ran after the greet jobs were submitted, and the worker has been woken by them.
    await sleep(200);
    const ids = held.map(({ job }) => job.id);
    expect(await statuses(ids)).toEqual(['pending', 'pending', 'pending']);

    const { body } = await rest('GET', '/api/v1/kinds');
    const limits = ({ name, paused, concurrency, concurrencyPerKey, rateLimit }: Record<string, unknown>) => ({
      name,
      paused,
      concurrency,
      concurrencyPerKey,
      rateLimit,
    });
    expect(body.kinds.map(limits)).toEqual([
      { name: 'add', paused: false, concurrency: null, concurrencyPerKey: null, rateLimit: null },
      { name: 'greet', paused: true, concurrency: 4, concurrencyPerKey: null, rateLimit: { limit: 1000, intervalMs: 1000, perKey: false } },
      { name: 'sequence', paused: false, concurrency: null, concurrencyPerKey: 1, rateLimit: null },
    ]);

    expect(await rest('POST', '/api/v1/kinds/greet/resume')).toMatchObject({ status: 200, body: { paused: false } });
    for (const id of ids) await waitForJob(jobs, api.hub, id, statusOf('completed'));
    expect(await scrape()).toContain('job_kind_paused{kind="greet"} 0');
  });

  it('over GraphQL: pauseKind, kinds, resumeKind; pauseAllKinds holds every kind until resumeAllKinds', async () => {
    const paused = await graphql('mutation($kind: String!) { pauseKind(kind: $kind) { name paused } }', { kind: 'add' });
    expect(paused).toEqual({ data: { pauseKind: { name: 'add', paused: true } } });
    expect(await graphql('{ kinds { name paused concurrency concurrencyPerKey rateLimit { limit intervalMs perKey } } }')).toEqual({
      data: {
        kinds: [
          { name: 'add', paused: true, concurrency: null, concurrencyPerKey: null, rateLimit: null },
          { name: 'greet', paused: false, concurrency: 4, concurrencyPerKey: null, rateLimit: { limit: 1000, intervalMs: 1000, perKey: false } },
          { name: 'sequence', paused: false, concurrency: null, concurrencyPerKey: 1, rateLimit: null },
        ],
      },
    });
    await graphql('mutation { resumeKind(kind: "add") { paused } }');

    const all = await graphql('mutation { pauseAllKinds { name paused } }');
    expect(all).toEqual({
      data: { pauseAllKinds: [{ name: 'add', paused: true }, { name: 'greet', paused: true }, { name: 'sequence', paused: true }] },
    });
    // A kind's own resume does not lift the pause of every kind.
    expect(await graphql('mutation { resumeKind(kind: "add") { paused } }')).toEqual({ data: { resumeKind: { paused: true } } });
    const { job } = await api.jobs.addJob({ num1: '2', num2: '2' }, ANONYMOUS);
    await sleep(300);
    expect(await statuses([job.id])).toEqual(['pending']);
    const resumed = await graphql('mutation { resumeAllKinds { paused } }');
    expect(resumed).toEqual({ data: { resumeAllKinds: [{ paused: false }, { paused: false }, { paused: false }] } });
    await waitForJob(api.jobs, api.hub, job.id, statusOf('completed'));
  });

  it('refuses a kind the service does not run: 404 over REST, NOT_FOUND over GraphQL', async () => {
    for (const action of ['pause', 'resume']) {
      const answer = await rest('POST', `/api/v1/kinds/nope/${action}`);
      expect(answer).toEqual({
        status: 404,
        body: { error: { code: 'NOT_FOUND', message: 'no kind named "nope"; this service runs add, greet, sequence', field: 'kind' } },
      });
    }
    const refused = await graphql('mutation { pauseKind(kind: "nope") { paused } }');
    expect(codes(refused)).toEqual(['NOT_FOUND']);
    expect(refused.data).toEqual({ pauseKind: null });
    expect((await rest('GET', '/api/v1/kinds/greet/pause')).status).toBe(405);
    expect((await rest('GET', '/api/v1/kinds')).body.kinds.some((kind: { paused: boolean }) => kind.paused)).toBe(false);
  });
});

describe('concurrency keys', () => {
  it('a job carries its key, over REST and GraphQL, and runs', async () => {
    const submitted = await rest('POST', '/api/v1/jobs', { kind: 'sequence', input: { n: 1 }, concurrencyKey: 'customer-7' });
    expect(submitted).toMatchObject({ status: 202, body: { concurrencyKey: 'customer-7' } });
    const answer = await graphql(
      'mutation($input: SubmitJobInput!) { submitJob(input: $input) { job { id concurrencyKey } } }',
      { input: { kind: 'sequence', input: { n: 2 }, concurrencyKey: 'customer-7' } },
    );
    const job = (answer.data as { submitJob: { job: { id: string; concurrencyKey: string } } }).submitJob.job;
    expect(job.concurrencyKey).toBe('customer-7');
    await waitForJob(api.jobs, api.hub, job.id, statusOf('completed'));
    const { body } = await rest('GET', `/api/v1/jobs/${submitted.body.jobId}`);
    expect(body).toMatchObject({ status: 'completed', concurrencyKey: 'customer-7' });
  });

  it.each([
    [{ concurrencyKey: 5 }, /^concurrencyKey /],
    [{ concurrencyKey: '' }, /^concurrencyKey Too small/],
    [{ concurrencyKey: 'k'.repeat(201) }, /^concurrencyKey Too big/],
    [{ concurrencyKey: 'a\u0000b' }, /^concurrencyKey must not contain NUL/],
    [{ kind: 'greet', input: { name: 'Al' }, concurrencyKey: 'k' }, /^concurrencyKey is for kinds that limit jobs per key \(concurrencyPerKey, or rateLimit.perKey\); greet sets neither$/],
  ])('refuses %j with 400 naming concurrencyKey, and writes nothing', async (change, message) => {
    const before = (await api.jobs.listJobs({ first: 100 }, ANONYMOUS)).jobs.length;
    const { status, body } = await rest('POST', '/api/v1/jobs', { kind: 'sequence', input: { n: 1 }, ...change });
    expect(status).toBe(400);
    expect(body.error).toMatchObject({ code: 'BAD_USER_INPUT', field: 'concurrencyKey' });
    expect(body.error.message).toMatch(message);
    expect((await api.jobs.listJobs({ first: 100 }, ANONYMOUS)).jobs.length).toBe(before);
  });

  it('over GraphQL: a key of the wrong type fails validation; one too long is BAD_USER_INPUT', async () => {
    const submit = 'mutation($input: SubmitJobInput!) { submitJob(input: $input) { job { id } } }';
    const wrongType = await graphql(submit, { input: { kind: 'sequence', input: { n: 1 }, concurrencyKey: 5 } });
    expect(codes(wrongType)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
    expect(wrongType.errors![0]!.message).toMatch(/at "input.concurrencyKey"; String cannot represent a non string value: 5/);
    const tooLong = await graphql(submit, { input: { kind: 'sequence', input: { n: 1 }, concurrencyKey: 'k'.repeat(201) } });
    expect(codes(tooLong)).toEqual(['BAD_USER_INPUT']);
    expect(tooLong.errors![0]!.extensions).toMatchObject({ field: 'concurrencyKey' });
  });
});
