import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Database } from '../src/db/database.ts';
import { addKind } from '../src/kinds/add.ts';
import { defineKind, KindDefinitionError, PermanentJobError } from '../src/kinds/define.ts';
import { KindRegistry } from '../src/kinds/registry.ts';
import type { Worker } from '../src/worker/worker.ts';
import { print } from 'graphql';
import { JobDocument, JobsDocument, JobUpdatedDocument, KindsDocument, SubmitJobDocument, SubmitJobsDocument } from './graphql/generated/graphql.ts';
import { closeTestApp, codes, execute, openTestApp, sseEvents, type TestApp } from './helpers/api.ts';
import { claimJobsStatement } from './helpers/claim.ts';
import type { TestDatabase } from './helpers/database.ts';
import { ANONYMOUS, createWorker, statusOf, waitForJob } from './helpers/jobs.ts';

const greet = defineKind({
  name: 'greet',
  description: 'Greets someone.',
  input: z.object({ name: z.string().min(1), times: z.number().int().min(1).max(3).default(1) }),
  result: z.object({ greeting: z.string() }),
  options: { maxAttempts: 2, priority: 7, timeoutSeconds: 5 },
  handler: ({ name, times }) => ({ greeting: `hello ${name}`.repeat(times) }),
});

/** Returns what its input asks for, checked by a result schema it may not meet. */
const echo = defineKind({
  name: 'echo',
  input: z.object({ value: z.unknown() }),
  result: z.object({ value: z.string() }),
  handler: ({ value }) => ({ value }) as { value: string },
});

const LIMIT_BYTES = 2048;

let testDb: TestDatabase;
let db: Database;
let api: TestApp;
let worker: Worker;

beforeAll(async () => {
  const kinds = new KindRegistry([addKind({ maxDigits: 100 }), greet, echo]);
  ({ testDb, db, api } = await openTestApp(import.meta.filename, { service: { kinds, maxInputBytes: LIMIT_BYTES } }));
  worker = createWorker(db, api.hub, { kinds, maxResultBytes: LIMIT_BYTES });
  await worker.start();
});

afterAll(async () => {
  await worker.stop();
  await closeTestApp({ testDb, api });
});

async function rest(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const init: RequestInit = { method, headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers } };
  if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body);
  const response = await api.app.fetch(`http://yoga${path}`, init);
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : null };
}

function done(id: string) {
  return waitForJob(api.jobs, api.hub, id, (job) => !['pending', 'wip'].includes(job.status));
}

describe('POST /api/v1/jobs', () => {
  it('runs a job of any kind: 202 with the job, then its typed result', async () => {
    const submitted = await rest('POST', '/api/v1/jobs', { kind: 'greet', input: { name: 'Ada', times: 2 } });
    expect(submitted.status).toBe(202);
    expect(submitted.body).toMatchObject({
      kind: 'greet',
      status: 'pending',
      input: { name: 'Ada', times: 2 },
      result: null,
      attempt: 0,
      maxAttempts: 2,
      priority: 7,
      created: true,
    });
    expect(submitted.headers.get('location')).toBe(`/api/v1/jobs/${submitted.body.jobId}`);
    await done(submitted.body.jobId);
    const read = await rest('GET', `/api/v1/jobs/${submitted.body.jobId}`);
    expect(read.body).toMatchObject({ status: 'completed', result: { greeting: 'hello Adahello Ada' } });
    expect(Object.keys(read.body).sort()).toEqual(
      ['jobId', 'kind', 'status', 'input', 'result', 'progress', 'attempt', 'maxAttempts', 'lastError', 'priority', 'concurrencyKey', 'uniqueKey', 'runAt', 'createdAt', 'lastUpdated', 'completedOn', 'retrievedAt'].sort(),
    );
  });

  it('stores the input as the schema made it (defaults filled in)', async () => {
    const { body } = await rest('POST', '/api/v1/jobs', { kind: 'greet', input: { name: 'Bo' } });
    expect(body.input).toEqual({ name: 'Bo', times: 1 });
  });

  it('takes the add kind with its exact-decimal rules', async () => {
    const { status, body } = await rest('POST', '/api/v1/jobs', { kind: 'add', input: { num1: '+007.50', num2: '0.25' } });
    expect(status).toBe(202);
    expect(body.input).toEqual({ num1: '7.5', num2: '0.25' });
    expect((await done(body.jobId)).result).toBe('7.75');
  });

  it.each([
    [{ kind: 'nope', input: {} }, 'kind', /"nope" is not a kind this service runs; it runs add, greet, echo/],
    [{ kind: 'greet', input: { name: '' } }, 'input.name', /input\.name Too small/],
    [{ kind: 'greet', input: { name: 'x', times: 9 } }, 'input.times', /input\.times Too big/],
    [{ kind: 'greet', input: 'Ada' }, 'input', /^input Invalid input: expected object/],
    [{ kind: 'greet' }, 'input', /^input Invalid input: expected object/],
    [{ kind: 'add', input: { num1: 1.5, num2: '1' } }, 'input.num1', /must be a decimal number as a string/],
    [{ kind: 'add', input: { num1: 'x', num2: '1' } }, 'input.num1', /input\.num1 must be a decimal number like 12 or -0\.5/],
    [{ kind: 'greet', input: { name: 'x' }, priority: 5000 }, 'priority', /priority Too big/],
    [{ kind: 'greet', input: { name: 'x' }, maxAttempts: 0 }, 'maxAttempts', /maxAttempts Too small/],
    [{ kind: 'greet', input: { name: 'x' }, runAt: 'tomorrow' }, 'runAt', /runAt/],
    [{ kind: 'greet', input: { name: 'x' }, colour: 'red' }, 'colour', /colour is not a field this route takes/],
    [{ kind: 'greet', input: { name: 'x'.repeat(LIMIT_BYTES) } }, 'input', /input is \d+ bytes as JSON; at most 2048 are allowed/],
    [{ kind: 'echo', input: { value: 'nul \u0000' } }, 'input', /NUL character or an unpaired surrogate/],
  ])('refuses %j with 400 naming %s, and writes nothing', async (body, field, message) => {
    const before = await db.prisma.job.count();
    const answer = await rest('POST', '/api/v1/jobs', body);
    expect(answer.status).toBe(400);
    expect(answer.body.error).toMatchObject({ code: 'BAD_USER_INPUT', field });
    expect(answer.body.error.message).toMatch(message);
    expect(await db.prisma.job.count()).toBe(before);
  });

  it('refuses a body that is not JSON (400) or not sent as JSON (415)', async () => {
    expect((await rest('POST', '/api/v1/jobs', '{"kind":')).status).toBe(400);
    const plain = await rest('POST', '/api/v1/jobs', '{}', { 'content-type': 'text/plain' });
    expect(plain.status).toBe(415);
    expect(plain.body.error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
  });

  it('answers a retried submission with its first job, and refuses the key with other input', async () => {
    const body = { kind: 'greet', input: { name: 'Cy' }, idempotencyKey: 'kinds-key' };
    const first = await rest('POST', '/api/v1/jobs', body);
    // Key order does not matter: the schema writes the input the same way.
    const again = await rest('POST', '/api/v1/jobs', { ...body, input: { times: 1, name: 'Cy' } });
    expect(again.body).toMatchObject({ jobId: first.body.jobId, created: false });
    const other = await rest('POST', '/api/v1/jobs', { ...body, input: { name: 'Di' } });
    expect(other.status).toBe(409);
    expect(other.body.error).toMatchObject({ code: 'CONFLICT', field: 'idempotencyKey' });
    const header = await rest('POST', '/api/v1/jobs', { kind: 'greet', input: { name: 'Cy' } }, { 'idempotency-key': 'kinds-key' });
    expect(header.body.jobId).toBe(first.body.jobId);
  });
});

describe('a handler whose result fails its schema', () => {
  it('fails the job at once, with the schema message, and stores no result', async () => {
    const { body } = await rest('POST', '/api/v1/jobs', { kind: 'echo', input: { value: 42 } });
    const failed = await done(body.jobId);
    expect(failed).toMatchObject({ status: 'failed', attempt: 1, result: null });
    expect(failed.lastError).toBe('the handler returned {"value":42}, which fails the result schema of echo at value: Invalid input: expected string, received number');
  });

  it('fails the job when the result is over JOB_PAYLOAD_MAX_BYTES', async () => {
    const { body } = await rest('POST', '/api/v1/jobs', { kind: 'echo', input: { value: 'y'.repeat(1500) } });
    // The input fits; the result, with the same text, is checked on its own and fits too.
    expect((await done(body.jobId)).status).toBe('completed');
    const big = await api.jobs.submitJob({ kind: 'greet', input: { name: 'z'.repeat(700), times: 3 } }, ANONYMOUS);
    const failed = await done(big.job.id);
    expect(failed.status).toBe('failed');
    expect(failed.lastError).toMatch(/^the result is \d+ bytes as JSON; at most 2048 are allowed/);
  });
});

describe('the other job routes', () => {
  it('GET /api/v1/jobs/:id is a pure read; retrieve hands the result over', async () => {
    const { body } = await rest('POST', '/api/v1/jobs', { kind: 'greet', input: { name: 'Eve' } });
    await done(body.jobId);
    expect((await rest('GET', `/api/v1/jobs/${body.jobId}`)).body.status).toBe('completed');
    expect((await rest('GET', `/api/v1/jobs/${body.jobId}`)).body.status).toBe('completed');
    const retrieved = await rest('POST', `/api/v1/jobs/${body.jobId}/retrieve`);
    expect(retrieved.body).toMatchObject({ status: 'retrieved', result: { greeting: 'hello Eve' } });
    expect(retrieved.body.retrievedAt).not.toBeNull();
  });

  it('cancel: a pending job is cancelled, a finished one is a 409; an unknown id is a 404', async () => {
    const later = new Date(Date.now() + 3_600_000).toISOString();
    const { body } = await rest('POST', '/api/v1/jobs', { kind: 'greet', input: { name: 'Fay' }, runAt: later });
    expect(body.runAt).toBe(later);
    expect((await rest('POST', `/api/v1/jobs/${body.jobId}/cancel`)).body.status).toBe('cancelled');
    const finished = await rest('POST', '/api/v1/jobs', { kind: 'greet', input: { name: 'Gus' } });
    await done(finished.body.jobId);
    const refused = await rest('POST', `/api/v1/jobs/${finished.body.jobId}/cancel`);
    expect(refused.status).toBe(409);
    const unknown = '00000000-0000-4000-8000-000000000000';
    for (const [method, path] of [['GET', ''], ['POST', '/retrieve'], ['POST', '/cancel']] as const) {
      const answer = await rest(method, `/api/v1/jobs/${unknown}${path}`);
      expect(answer.status).toBe(404);
      expect(answer.body.error.code).toBe('NOT_FOUND');
    }
  });

  it('GET /api/v1/jobs pages through jobs, by status and kind', async () => {
    const ids = [];
    for (const name of ['h1', 'h2', 'h3']) ids.push((await rest('POST', '/api/v1/jobs', { kind: 'greet', input: { name }, runAt: '2999-01-01T00:00:00Z' })).body.jobId);
    const first = await rest('GET', '/api/v1/jobs?status=pending&kind=greet&first=2');
    expect(first.body.jobs.map((job: { jobId: string }) => job.jobId)).toEqual([ids[2], ids[1]]);
    expect(first.body.pageInfo).toEqual({ hasNextPage: true, endCursor: ids[1] });
    const second = await rest('GET', `/api/v1/jobs?status=pending&kind=greet&first=2&after=${ids[1]}`);
    expect(second.body.jobs[0].jobId).toBe(ids[0]);
    const adds = await rest('GET', '/api/v1/jobs?kind=add&first=100');
    expect(adds.body.jobs.every((job: { kind: string }) => job.kind === 'add')).toBe(true);
    for (const query of ['status=lost', 'first=0', 'first=abc', 'after=nope', 'colour=red']) {
      const answer = await rest('GET', `/api/v1/jobs?${query}`);
      expect(answer.status, query).toBe(400);
      expect(answer.body.error.code).toBe('BAD_USER_INPUT');
    }
  });

  it('GET /api/v1/kinds lists each kind with the JSON Schemas of its input and result', async () => {
    const { status, body } = await rest('GET', '/api/v1/kinds');
    expect(status).toBe(200);
    expect(body.kinds.map((kind: { name: string }) => kind.name)).toEqual(['add', 'greet', 'echo']);
    const greetKind = body.kinds[1];
    expect(greetKind.description).toBe('Greets someone.');
    expect(greetKind.inputSchema).toMatchObject({
      type: 'object',
      properties: { name: { type: 'string', minLength: 1 }, times: { type: 'integer', minimum: 1, maximum: 3, default: 1 } },
      required: ['name'],
    });
    expect(greetKind.resultSchema).toMatchObject({ type: 'object', properties: { greeting: { type: 'string' } } });
    expect(body.kinds[0].inputSchema.required).toEqual(['num1', 'num2']);
  });
});

describe('GraphQL', () => {
  it('submitJob takes any kind; Job.input and Job.result are JSON; num1 is null for other kinds', async () => {
    const result = await execute(api.app, SubmitJobDocument, { input: { kind: 'greet', input: { name: 'Hal' } } });
    expect(result.errors).toBeUndefined();
    const { job } = result.data!.submitJob!;
    expect(job).toMatchObject({ kind: 'greet', status: 'PENDING', input: { name: 'Hal', times: 1 }, num1: null, priority: 7 });
    await done(job.id);
    const read = await execute(api.app, JobDocument, { id: job.id });
    expect(read.data!.job).toMatchObject({ status: 'COMPLETED', result: { greeting: 'hello Hal' } });
  });

  it('an add job shows its numbers both as Decimal fields and in its input', async () => {
    const result = await execute(api.app, SubmitJobDocument, { input: { kind: 'add', input: { num1: '2', num2: '3' } } });
    expect(result.data!.submitJob!.job).toMatchObject({ kind: 'add', num1: '2', num2: '3', input: { num1: '2', num2: '3' } });
  });

  it('jobUpdated follows a job of any kind to its result', async () => {
    const { job } = await api.jobs.submitJob({ kind: 'greet', input: { name: 'Ivy' }, runAt: new Date(Date.now() + 300) }, ANONYMOUS);
    const response = await api.app.fetch('http://yoga/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query: print(JobUpdatedDocument), variables: { id: job.id } }),
    });
    const states = [];
    for await (const event of sseEvents(response)) {
      const { jobUpdated } = (event as { data: { jobUpdated: { status: string; kind: string; result: unknown } } }).data;
      states.push(jobUpdated);
      if (jobUpdated.status === 'COMPLETED') break;
    }
    expect(states[0]).toMatchObject({ kind: 'greet', status: 'PENDING' });
    expect(states.at(-1)).toMatchObject({ kind: 'greet', status: 'COMPLETED', result: { greeting: 'hello Ivy' } });
  });

  it('refuses bad input with BAD_USER_INPUT and the path of the field', async () => {
    const result = await execute(api.app, SubmitJobsDocument, {
      inputs: [
        { kind: 'greet', input: { name: 'ok' } },
        { kind: 'greet', input: { name: 7 } },
      ],
    });
    expect(codes(result)).toEqual(['BAD_USER_INPUT']);
    expect(result.errors![0]!.extensions).toMatchObject({ field: 'inputs.1.input.name' });
    expect(result.data!.submitJobs).toBeNull();
  });

  it('kinds lists the kinds; jobs filters by kind', async () => {
    const kinds = await execute(api.app, KindsDocument, {});
    expect(kinds.data!.kinds.map((kind) => kind.name)).toEqual(['add', 'greet', 'echo']);
    expect(kinds.data!.kinds[0]!.resultSchema).toMatchObject({ type: 'string' });
    const jobs = await execute(api.app, JobsDocument, { kind: 'echo', first: 100 });
    expect(jobs.data!.jobs.nodes.length).toBeGreaterThan(0);
    expect(jobs.data!.jobs.nodes.every((job) => job.kind === 'echo')).toBe(true);
  });
});

describe('a kind\'s options', () => {
  it('are the defaults of its jobs, and a submission overrides them', async () => {
    const plain = await api.jobs.submitJob({ kind: 'greet', input: { name: 'x' }, runAt: new Date('2999-01-01') }, ANONYMOUS);
    expect(plain.job).toMatchObject({ maxAttempts: 2, priority: 7, timeoutSeconds: 5 });
    const told = await api.jobs.submitJob({ kind: 'greet', input: { name: 'x' }, runAt: new Date('2999-01-01'), maxAttempts: 9, priority: -3 }, ANONYMOUS);
    expect(told.job).toMatchObject({ maxAttempts: 9, priority: -3 });
    const add = await api.jobs.submitJob({ kind: 'add', input: { num1: '1', num2: '1' }, runAt: new Date('2999-01-01') }, ANONYMOUS);
    expect(add.job).toMatchObject({ maxAttempts: 3, priority: 0, timeoutSeconds: null });
  });

  it("the stale rule takes a job back after its kind's timeout, not the worker's", async () => {
    const stale = await api.jobs.submitJob({ kind: 'greet', input: { name: 'stale' }, runAt: new Date('2999-01-01') }, ANONYMOUS);
    const other = await api.jobs.submitJob({ kind: 'add', input: { num1: '1', num2: '2' }, runAt: new Date('2999-01-01') }, ANONYMOUS);
    const ids = [stale.job.id, other.job.id];
    // Both claimed by a worker that went away 10 s ago: past greet's 5 s, within the default 30 s.
    await db.query({ name: 'test_kinds_wip', text: `UPDATE job SET status = 'wip', attempt = 1, last_updated = now() - interval '10 seconds' WHERE id = ANY($1::uuid[])` }, [ids]);
    const claimed = await claimJobsStatement(db, 'rescuer', 10, { defaultSeconds: 30, shortestSeconds: 5 });
    // This file's worker may take the stale job back first, by a poll between the two statements;
    // either way it is taken back (a second attempt), and the other job is left alone.
    expect(claimed.map((job) => job.id).filter((id) => ids.includes(id))).not.toContain(other.job.id);
    const rows = await db.query<{ id: string; attempt: number; status: string }>(
      { name: 'test_kinds_stale_rows', text: `SELECT id, attempt, status::text FROM job WHERE id = ANY($1::uuid[])` },
      [ids],
    );
    expect(rows.find((row) => row.id === stale.job.id)?.attempt).toBe(2);
    expect(rows.find((row) => row.id === other.job.id)).toMatchObject({ attempt: 1, status: 'wip' });
    await db.query({ name: 'test_kinds_park', text: `UPDATE job SET status = 'cancelled' WHERE id = ANY($1::uuid[])` }, [ids]);
  });
});

describe('defineKind', () => {
  it.each([
    [{ name: '1abc' }, /the name must start with a letter/],
    [{ name: 'a'.repeat(65) }, /the name must start with a letter/],
    [{ input: {} }, /input must be a zod schema/],
    [{ handler: 'run' }, /handler must be a function, or \{ module \}/],
    [{ options: { maxAttempts: 0 } }, /options.maxAttempts/],
    [{ options: { timeoutSeconds: 1.5 } }, /options.timeoutSeconds/],
    [{ options: { backoff: { baseDelayMs: 100, maxDelayMs: 10 } } }, /options.backoff/],
    [{ options: { concurrency: 0 } }, /options.concurrency must be an integer from 1 to 10000/],
    [{ options: { concurrency: 2.5 } }, /options.concurrency/],
    [{ options: { concurrency: '2' } }, /options.concurrency/],
    [{ options: { concurrency: 10_001 } }, /options.concurrency/],
    [{ options: { concurrencyPerKey: 0 } }, /options.concurrencyPerKey must be an integer from 1 to 10000/],
    [{ options: { concurrencyPerKey: null } }, /options.concurrencyPerKey/],
  ])('refuses %j', (change, message) => {
    const definition = { name: 'ok', input: z.object({}), result: z.null(), handler: () => null, ...change };
    expect(() => defineKind(definition as Parameters<typeof defineKind>[0])).toThrow(KindDefinitionError);
    expect(() => defineKind(definition as Parameters<typeof defineKind>[0])).toThrow(message);
  });

  it('a registry refuses two kinds of one name', () => {
    expect(() => new KindRegistry([greet, greet])).toThrow(/two kinds are named "greet"/);
  });

  it('a job is claimed only by a worker that runs its kind', async () => {
    const kinds = new KindRegistry([
      defineKind({
        name: 'doomed',
        input: z.object({}),
        result: z.null(),
        handler: () => {
          throw new PermanentJobError('never works');
        },
      }),
    ]);
    const own = createWorker(db, api.hub, { kinds });
    await own.start();
    try {
      const submitted = await api.jobs.submitJob({ kind: 'greet', input: { name: 'parked' }, runAt: new Date('2999-01-01') }, ANONYMOUS);
      expect(submitted.created).toBe(true);
      // The API's registry does not know `doomed`: only a worker's does. Put one in by hand.
      await db.query(
        { name: 'test_kinds_doomed', text: `UPDATE job SET kind = 'doomed', input = '{}', run_at = now() WHERE id = $1` },
        [submitted.job.id],
      );
      const failed = await waitForJob(api.jobs, api.hub, submitted.job.id, statusOf('failed'));
      expect(failed).toMatchObject({ attempt: 1, lastError: 'never works' });
    } finally {
      await own.stop();
    }
  });
});
