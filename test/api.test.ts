import { print } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../src/db/database.ts';
import { readMigrations } from '../src/db/migrate.ts';
import { MIGRATIONS_DIR } from '../src/db/open.ts';
import { createHealthHandler } from '../src/http/health.ts';
import type { Worker } from '../src/worker/worker.ts';
import {
  AddJobDocument,
  AddJobsDocument,
  CancelJobDocument,
  JobDocument,
  JobsDocument,
  JobUpdatedDocument,
  RetrieveJobDocument,
} from './graphql/generated/graphql.ts';
import { closeTestApp, codes, createTestApp, execute, openTestApp, post, sseEvents, type TestApp } from './helpers/api.ts';
import { type TestDatabase, testLogger } from './helpers/database.ts';
import { ANONYMOUS, createWorker, statusOf, waitForJob } from './helpers/jobs.ts';
import { cancelAndExpectEnded } from './helpers/subscribers.ts';

let testDb: TestDatabase;
let db: Database;
let api: TestApp;

beforeAll(async () => {
  ({ testDb, db, api } = await openTestApp(import.meta.filename, { service: { maxBatchSize: 1000 } }));
});

afterAll(() => closeTestApp({ testDb, api }));

const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000';

async function countJobs() {
  return db.prisma.job.count();
}

async function rest(method: string, path: string, headers: Record<string, string> = {}) {
  const response = await api.app.fetch(`http://yoga${path}`, { method, headers });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : null };
}

describe('GraphQL mutations', () => {
  it('addJob answers with the pending job', async () => {
    const result = await execute(api.app, AddJobDocument, { input: { num1: '0.1', num2: '0.2' } });
    expect(result.errors).toBeUndefined();
    const { job, created } = result.data!.addJob!;
    expect(created).toBe(true);
    expect(job).toMatchObject({ status: 'PENDING', num1: '0.1', num2: '0.2', result: null, attempt: 0 });
    expect(job.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(new Date(job.createdAt).toISOString()).toBe(job.createdAt);
  });

  it('addJob with an idempotency key returns the first job on a retry', async () => {
    const input = { num1: '1', num2: '1', idempotencyKey: 'gql-key' };
    const first = await execute(api.app, AddJobDocument, { input });
    const again = await execute(api.app, AddJobDocument, { input });
    expect(again.data!.addJob!.job.id).toBe(first.data!.addJob!.job.id);
    expect(again.data!.addJob!.created).toBe(false);
    expect(again.data!.addJob!.job.idempotencyKey).toBe('gql-key');
  });

  it('addJob answers CONFLICT on idempotencyKey when the key was used with other numbers', async () => {
    const first = await execute(api.app, AddJobDocument, { input: { num1: '1', num2: '1', idempotencyKey: 'gql-reused' } });
    const before = await countJobs();
    const reused = await execute(api.app, AddJobDocument, { input: { num1: '1', num2: '2', idempotencyKey: 'gql-reused' } });
    expect(codes(reused)).toEqual(['CONFLICT']);
    expect(reused.errors![0]!.extensions).toMatchObject({ field: 'idempotencyKey' });
    expect(reused.data?.addJob ?? null).toBeNull();
    const respelt = await execute(api.app, AddJobDocument, { input: { num1: '1.00', num2: '01', idempotencyKey: 'gql-reused' } });
    expect(respelt.data!.addJob).toMatchObject({ created: false, job: { id: first.data!.addJob!.job.id } });
    expect(await countJobs()).toBe(before);
  });

  it('addJobs answers CONFLICT naming the item whose key was used with other numbers, and writes none', async () => {
    await execute(api.app, AddJobDocument, { input: { num1: '1', num2: '1', idempotencyKey: 'gql-batch-reused' } });
    const before = await countJobs();
    const inputs = [
      { num1: '2', num2: '2' },
      { num1: '1', num2: '3', idempotencyKey: 'gql-batch-reused' },
    ];
    const result = await execute(api.app, AddJobsDocument, { inputs });
    expect(codes(result)).toEqual(['CONFLICT']);
    expect(result.errors![0]!.extensions).toMatchObject({ field: 'inputs.1.idempotencyKey' });
    expect(await countJobs()).toBe(before);
  });

  it('addJob takes priority and runAt', async () => {
    const runAt = '2030-01-01T00:00:00.000Z';
    const result = await execute(api.app, AddJobDocument, { input: { num1: '1', num2: '2', priority: 7, runAt } });
    expect(result.data!.addJob!.job).toMatchObject({ priority: 7, runAt });
  });

  it('addJobs adds 1,000 jobs in one request, in order', async () => {
    const inputs = Array.from({ length: 1000 }, (_, i) => ({ num1: String(i), num2: '0.5' }));
    const result = await execute(api.app, AddJobsDocument, { inputs });
    expect(result.errors).toBeUndefined();
    expect(result.data!.addJobs!.map(({ job }) => job.num1)).toEqual(inputs.map((input) => input.num1));
  });

  // One bad number stands for all: every other spelling is the fuzz model's (test/fuzz.test.ts),
  // which checks code, field and that nothing was written, over GraphQL and REST alike.
  it.each([
    ['a malformed decimal', { num1: 'abc', num2: '1' }],
    ['a bad priority', { num1: '1', num2: '1', priority: 5000 }],
    ['an empty idempotency key', { num1: '1', num2: '1', idempotencyKey: '' }],
    ['an idempotency key with a NUL character', { num1: '1', num2: '1', idempotencyKey: 'a\u0000b' }],
    ['an idempotency key with an unpaired surrogate', { num1: '1', num2: '1', idempotencyKey: 'a\ud800' }],
    ['a runAt before PostgreSQL can store it', { num1: '1', num2: '1', runAt: '-271821-04-20T00:00:00.000Z' }],
    ['a runAt after the year 9999', { num1: '1', num2: '1', runAt: '+010000-01-01T00:00:00.000Z' }],
  ])('addJob rejects %s with BAD_USER_INPUT and writes nothing', async (_label, input) => {
    const before = await countJobs();
    const result = await execute(api.app, AddJobDocument, { input });
    expect(codes(result)).toEqual(['BAD_USER_INPUT']);
    expect(result.data?.addJob ?? null).toBeNull();
    expect(await countJobs()).toBe(before);
  });

  it('keeps the job an earlier mutation added when a later one in the same document fails', async () => {
    const before = await countJobs();
    const { body } = await post(api.app, {
      query: 'mutation { added: addJob(input: { num1: "1", num2: "2" }) { job { id } } gone: cancelJob(id: "nope") { id } }',
    });
    expect(codes(body)).toEqual(['NOT_FOUND']);
    const data = body.data as { added: { job: { id: string } }; gone: null };
    expect(data.gone).toBeNull();
    expect(await db.prisma.job.findUnique({ where: { id: data.added.job.id } })).not.toBeNull();
    expect(await countJobs()).toBe(before + 1);
  });

  it('rejects a decimal sent as a JSON number, which may already have lost digits', async () => {
    const before = await countJobs();
    const { body } = await post(api.app, {
      query: print(AddJobDocument),
      variables: { input: { num1: 0.1, num2: '0.2' } },
    });
    expect(codes(body)).toEqual(['BAD_USER_INPUT']);
    expect(await countJobs()).toBe(before);
  });

  it('accepts exact decimal literals inline in the document', async () => {
    const { body } = await post(api.app, {
      query: 'mutation { addJob(input: { num1: 0.1, num2: "0.2" }) { job { num1 num2 } } }',
    });
    expect(body.data).toEqual({ addJob: { job: { num1: '0.1', num2: '0.2' } } });
  });

  it('addJobs rejects an empty or oversized batch', async () => {
    expect(codes(await execute(api.app, AddJobsDocument, { inputs: [] }))).toEqual(['BAD_USER_INPUT']);
    const inputs = Array.from({ length: 1001 }, () => ({ num1: '1', num2: '1' }));
    expect(codes(await execute(api.app, AddJobsDocument, { inputs }))).toEqual(['BAD_USER_INPUT']);
  });

  it('rejects an invalid runAt', async () => {
    const { body } = await post(api.app, {
      query: print(AddJobDocument),
      variables: { input: { num1: '1', num2: '1', runAt: 'tomorrow' } },
    });
    expect(codes(body)).toEqual(['BAD_USER_INPUT']);
  });
});

describe('GraphQL reads, retrieval and cancellation', () => {
  let worker: Worker;
  beforeAll(async () => {
    worker = createWorker(db, api.hub);
    await worker.start();
  });
  afterAll(() => worker.stop());

  it('job reads without changing; retrieveJob hands over the result once', async () => {
    const added = await execute(api.app, AddJobDocument, { input: { num1: '2', num2: '3' } });
    const id = added.data!.addJob!.job.id;
    await waitForJob(api.jobs, api.hub, id, statusOf('completed'));

    const read = await execute(api.app, JobDocument, { id });
    const again = await execute(api.app, JobDocument, { id });
    expect(read.data!.job).toMatchObject({ status: 'COMPLETED', result: '5', attempt: 1 });
    expect(again.data!.job!.version).toBe(read.data!.job!.version);

    const retrieved = await execute(api.app, RetrieveJobDocument, { id });
    expect(retrieved.data!.retrieveJob).toMatchObject({ status: 'RETRIEVED', result: '5' });
    expect(retrieved.data!.retrieveJob!.retrievedAt).not.toBeNull();
    const twice = await execute(api.app, RetrieveJobDocument, { id });
    expect(twice.data!.retrieveJob!.retrievedAt).toBe(retrieved.data!.retrieveJob!.retrievedAt);
  });

  it('unknown and malformed ids are NOT_FOUND everywhere', async () => {
    for (const id of [UNKNOWN_ID, 'not-an-id']) {
      const read = await execute(api.app, JobDocument, { id });
      expect(codes(read)).toEqual(['NOT_FOUND']);
      expect(read.data).toEqual({ job: null });
      expect(codes(await execute(api.app, RetrieveJobDocument, { id }))).toEqual(['NOT_FOUND']);
      expect(codes(await execute(api.app, CancelJobDocument, { id }))).toEqual(['NOT_FOUND']);
    }
  });

  it('cancelJob cancels a pending job, and refuses a finished one with CONFLICT', async () => {
    const later = await execute(api.app, AddJobDocument, {
      input: { num1: '1', num2: '1', runAt: '2099-01-01T00:00:00Z' },
    });
    const cancelled = await execute(api.app, CancelJobDocument, { id: later.data!.addJob!.job.id });
    expect(cancelled.data!.cancelJob!.status).toBe('CANCELLED');

    const done = await execute(api.app, AddJobDocument, { input: { num1: '1', num2: '1' } });
    await waitForJob(api.jobs, api.hub, done.data!.addJob!.job.id, statusOf('completed'));
    expect(codes(await execute(api.app, CancelJobDocument, { id: done.data!.addJob!.job.id }))).toEqual(['CONFLICT']);
  });

  it('jobs pages newest first, filters by status, and checks its arguments', async () => {
    // Its own jobs, the newest in the table whatever ran before: ids are UUIDv7, ordered by their
    // millisecond and, within one, by random bits; so each job is added in a millisecond of its own.
    const added: string[] = [];
    // Due in an hour, so the worker of this block leaves them pending and one can be cancelled.
    const runAt = new Date(Date.now() + 3_600_000);
    for (let i = 0; i < 5; i += 1) {
      const before = Date.now();
      while (Date.now() === before) await new Promise((resolve) => setTimeout(resolve, 1));
      added.push((await api.jobs.addJob({ num1: String(i), num2: '1', runAt }, ANONYMOUS)).job.id);
    }
    await api.jobs.cancelJob(added[0]!, ANONYMOUS);

    const page1 = await execute(api.app, JobsDocument, { first: 2 });
    const page2 = await execute(api.app, JobsDocument, { first: 2, after: page1.data!.jobs.pageInfo.endCursor });
    const ids = [...page1.data!.jobs.nodes, ...page2.data!.jobs.nodes].map((job) => job.id);
    expect(ids).toEqual(added.slice(1).reverse());
    expect(page1.data!.jobs.edges.map((edge) => edge.cursor)).toEqual(page1.data!.jobs.nodes.map((job) => job.id));
    expect(page1.data!.jobs.pageInfo.hasNextPage).toBe(true);

    const cancelled = await execute(api.app, JobsDocument, { status: 'CANCELLED', first: 100 });
    expect(cancelled.data!.jobs.nodes.map((job) => job.id)).toContain(added[0]);
    expect(cancelled.data!.jobs.nodes.every((job) => job.status === 'CANCELLED')).toBe(true);

    expect(codes(await execute(api.app, JobsDocument, { first: 0 }))).toEqual(['BAD_USER_INPUT']);
    expect(codes(await execute(api.app, JobsDocument, { first: 1000 }))).toEqual(['BAD_USER_INPUT']);
    expect(codes(await execute(api.app, JobsDocument, { after: 'garbage' }))).toEqual(['BAD_USER_INPUT']);
  });
});

describe('GraphQL protocol errors', () => {
  it('gives parse and validation errors a code', async () => {
    expect(codes((await post(api.app, { query: '{ job(' })).body)).toEqual(['GRAPHQL_PARSE_FAILED']);
    expect(codes((await post(api.app, { query: '{ nope }' })).body)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
    expect(codes((await post(api.app, { query: 'query { job(id: 1, extra: 2) { id } }' })).body)).toEqual([
      'GRAPHQL_VALIDATION_FAILED',
    ]);
  });

  it('answers a document nested deeper than the parser can recurse as it answers any syntax error', async () => {
    const syntaxError = await post(api.app, { query: '{ job(' });
    // One token per level: the stack gives out near 2,000 levels, far below the token limit.
    const query = `{ jobs(after: ${'['.repeat(9_000)}"x"${']'.repeat(9_000)}) { pageInfo { hasNextPage } } }`;
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const { status, body } = await post(api.app, { query });
      expect(status).toBe(syntaxError.status);
      expect(codes(body)).toEqual(['GRAPHQL_PARSE_FAILED']);
    }
  });

  it('answers invalid JSON with a 400 and a coded error', async () => {
    const { status, body } = await post(api.app, '{"query": ');
    expect(status).toBe(400);
    expect(codes(body).length).toBeGreaterThan(0);
  });

  it('answers GraphQL parameters that are not JSON with a 400, over GET and as a form', async () => {
    const csrf = { 'x-graphql-yoga-csrf': '1' };
    for (const params of ['variables=%7B', 'extensions=%7Bx']) {
      const get = await api.app.fetch(`http://yoga/graphql?query=%7B__typename%7D&${params}`, { headers: csrf });
      expect(get.status).toBe(400);
      expect(codes((await get.json()) as never)).toEqual(['BAD_REQUEST']);
      const form = await api.app.fetch('http://yoga/graphql', {
        method: 'POST',
        headers: { ...csrf, 'content-type': 'application/x-www-form-urlencoded' },
        body: `query=%7B__typename%7D&${params}`,
      });
      expect(form.status).toBe(400);
      expect(codes((await form.json()) as never)).toEqual(['BAD_REQUEST']);
    }
  });

  it('serves GraphiQL to a browser', async () => {
    const response = await api.app.fetch('http://yoga/graphql', { headers: { accept: 'text/html' } });
    expect(response.status).toBe(200);
    expect(await response.text()).toMatch(/graphiql/i);
  });
});

describe('GraphQL subscription over SSE, in process', () => {
  it('sends the current state at once, then each change, and ends after the final one', async () => {
    const added = await execute(api.app, AddJobDocument, { input: { num1: '20', num2: '22' } });
    const id = added.data!.addJob!.job.id;
    const response = await api.app.fetch('http://yoga/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query: print(JobUpdatedDocument), variables: { id } }),
    });
    expect(response.headers.get('content-type')).toMatch(/text\/event-stream/);
    const events = sseEvents(response);
    expect((await events.next()).value).toMatchObject({ data: { jobUpdated: { id, status: 'PENDING' } } });
    await cancelAndExpectEnded(() => api.jobs.cancelJob(id, ANONYMOUS), events);
  });

  it('answers an unknown or malformed job id with a coded NOT_FOUND, never a 5xx', async () => {
    for (const id of [UNKNOWN_ID, 'x']) {
      const response = await api.app.fetch('http://yoga/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
        body: JSON.stringify({ query: print(JobUpdatedDocument), variables: { id } }),
      });
      expect(response.status).toBe(200);
      const events = [];
      for await (const event of sseEvents(response)) events.push(event);
      expect(events.map((event) => codes(event as never))).toEqual([['NOT_FOUND']]);
    }
  });

  it('refuses a subscription sent as a plain JSON request with a 406 naming SSE and WebSocket', async () => {
    const added = await execute(api.app, AddJobDocument, { input: { num1: '1', num2: '1' } });
    for (const id of [added.data!.addJob!.job.id, UNKNOWN_ID]) {
      for (const accept of [undefined, 'application/json', 'application/graphql-response+json']) {
        const response = await api.app.fetch('http://yoga/graphql', {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(accept ? { accept } : {}) },
          body: JSON.stringify({ query: print(JobUpdatedDocument), variables: { id } }),
        });
        expect(response.status).toBe(406);
        const body = (await response.json()) as { errors: Array<{ message: string; extensions: { code: string } }> };
        expect(body.errors.map((error) => error.extensions.code)).toEqual(['BAD_REQUEST']);
        expect(body.errors[0]!.message).toMatch(/text\/event-stream[\s\S]*WebSocket/);
      }
    }
  });
});

describe('REST aliases', () => {
  it.each(['POST', 'GET'])('%s /api/v1/add/:num1/:num2 answers 202 with the pending job', async (method) => {
    const { status, headers, body } = await rest(method, '/api/v1/add/0.1/0.2');
    expect(status).toBe(202);
    expect(body).toMatchObject({ status: 'pending', num1: '0.1', num2: '0.2', result: null, created: true });
    expect(headers.get('location')).toBe(`/api/v1/job/${body.jobId}`);
  });

  it('honours an Idempotency-Key header', async () => {
    const first = await rest('POST', '/api/v1/add/1/2', { 'idempotency-key': 'rest-key' });
    const again = await rest('POST', '/api/v1/add/1/2', { 'idempotency-key': 'rest-key' });
    expect(again.body.jobId).toBe(first.body.jobId);
    expect(again.body.created).toBe(false);
  });

  it('answers 409 CONFLICT to an Idempotency-Key reused with other numbers', async () => {
    const first = await rest('POST', '/api/v1/add/1/2', { 'idempotency-key': 'rest-reused' });
    const before = await countJobs();
    const reused = await rest('POST', '/api/v1/add/1/3', { 'idempotency-key': 'rest-reused' });
    expect(reused.status).toBe(409);
    expect(reused.headers.get('content-type')).toMatch(/^application\/json/);
    expect(reused.body).toEqual({ error: { code: 'CONFLICT', message: expect.any(String), field: 'idempotencyKey' } });
    const respelt = await rest('POST', '/api/v1/add/1.0/%2B2', { 'idempotency-key': 'rest-reused' });
    expect(respelt.status).toBe(202);
    expect(respelt.body).toMatchObject({ jobId: first.body.jobId, created: false });
    expect(await countJobs()).toBe(before);
  });

  it('GET /api/v1/job/:id shows the job, and marks a completed one retrieved', async () => {
    const { body: added } = await rest('POST', '/api/v1/add/-1.5/0.25');
    const pending = await rest('GET', `/api/v1/job/${added.jobId}`);
    expect(pending.status).toBe(200);
    expect(pending.body.jobId).toBe(added.jobId);

    const worker = createWorker(db, api.hub);
    await worker.start();
    await waitForJob(api.jobs, api.hub, added.jobId, statusOf('completed'));
    await worker.stop();

    const read = await rest('GET', `/api/v1/job/${added.jobId}`);
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({ jobId: added.jobId, status: 'retrieved', result: '-1.25', attempt: 1 });
    expect(read.body.completedOn).not.toBeNull();
    expect(read.body.retrievedAt).not.toBeNull();
    expect(Object.keys(read.body)).toEqual(
      expect.arrayContaining(['jobId', 'status', 'result', 'lastUpdated', 'completedOn']),
    );
  });

  // The seed's contract for a bad number, once per field; the fuzz model tries every other spelling.
  it.each([
    ['/api/v1/add//3', 'num1'],
    ['/api/v1/add/1/1e999999', 'num2'],
  ])('%s is a 400 naming the field, and writes nothing', async (path, field) => {
    const before = await countJobs();
    const { status, body } = await rest('POST', path);
    expect(status).toBe(400);
    expect(body).toEqual({ error: { code: 'BAD_USER_INPUT', message: expect.any(String), field } });
    expect(await countJobs()).toBe(before);
  });

  it('a broken percent-encoding is a 400', async () => {
    const { status, body } = await rest('GET', '/api/v1/add/%E0%A4%A/1');
    expect(status).toBe(400);
    expect(body.error.code).toBe('BAD_USER_INPUT');
  });

  it.each([`/api/v1/job/${UNKNOWN_ID}`, '/api/v1/job/not-a-uuid', "/api/v1/job/1'%20OR%201=1"])(
    '%s is a 404',
    async (path) => {
      const { status, body } = await rest('GET', path);
      expect(status).toBe(404);
      expect(body.error.code).toBe('NOT_FOUND');
    },
  );

  it('unknown routes are 404 and wrong methods 405, both JSON', async () => {
    expect((await rest('GET', '/api/v2/add/1/2')).status).toBe(404);
    expect((await rest('GET', '/nowhere')).body.error.code).toBe('NOT_FOUND');
    const wrong = await rest('DELETE', '/api/v1/job/x');
    expect(wrong.status).toBe(405);
    expect(wrong.body.error.code).toBe('METHOD_NOT_ALLOWED');
  });
});

describe('health', () => {
  it('/health says alive and /ready says the database is migrated', async () => {
    expect(await rest('GET', '/health')).toMatchObject({ status: 200, body: { status: 'ok' } });
    expect(await rest('GET', '/ready')).toMatchObject({ status: 200, body: { status: 'ready', database: 'postgres' } });
  });

  it('/ready shares one check among concurrent callers, and reuses its answer', async () => {
    let queries = 0;
    const counting: Database = Object.assign(Object.create(db) as Database, {
      query: (...args: Parameters<Database['query']>) => {
        queries += 1;
        return db.query(...args);
      },
    });
    const migrations = await readMigrations(MIGRATIONS_DIR);
    const handler = (readyCacheMs: number) => createHealthHandler({ db: counting, migrations, logger: testLogger(), readyCacheMs });

    // One check's queries, from a handler that keeps no answer: two calls, two checks.
    const uncached = handler(0);
    await uncached('/ready');
    const perCheck = queries;
    expect(perCheck).toBeGreaterThan(0);
    await uncached('/ready');
    expect(queries).toBe(2 * perCheck);

    queries = 0;
    const cached = handler(60_000);
    const answers = await Promise.all(Array.from({ length: 50 }, () => cached('/ready')));
    expect(answers.map((answer) => answer!.status)).toEqual(Array(50).fill(200));
    expect(queries).toBe(perCheck);
    await Promise.all(Array.from({ length: 50 }, () => cached('/ready')));
    expect(queries).toBe(perCheck);
  });

  it('serves /metrics only when asked to (METRICS_ON_API_PORT)', async () => {
    const quiet = await createTestApp(db, { serveMetrics: false });
    try {
      const response = await quiet.app.fetch('http://yoga/metrics');
      expect(response.status).toBe(404);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
      expect((await api.app.fetch('http://yoga/metrics')).status).toBe(200);
    } finally {
      await quiet.close();
    }
  });
});

describe('a database that cannot write for now', () => {
  it('answers 503 and UNAVAILABLE while inserts fail with disk full, writes nothing, and recovers', async () => {
    // What PostgreSQL raises when its disk is full, from the server, for every insert meanwhile.
    await db.query({
      name: 'test_disk_full_function',
      text: `CREATE FUNCTION insert_disk_full() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN RAISE EXCEPTION 'could not extend file: No space left on device' USING ERRCODE = '53100'; END $$`,
    });
    await db.query({
      name: 'test_disk_full_trigger',
      text: 'CREATE TRIGGER insert_disk_full BEFORE INSERT ON job FOR EACH STATEMENT EXECUTE FUNCTION insert_disk_full()',
    });
    const before = await countJobs();
    try {
      const refused = await rest('POST', '/api/v1/add/1/2');
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('1');
      expect(refused.body.error.code).toBe('UNAVAILABLE');
      const graphql = await execute(api.app, AddJobDocument, { input: { num1: '1', num2: '2' } });
      expect(codes(graphql)).toEqual(['UNAVAILABLE']);
      expect(await countJobs()).toBe(before);
    } finally {
      await db.query({ name: 'test_disk_full_over', text: 'DROP TRIGGER insert_disk_full ON job' });
    }
    expect((await rest('POST', '/api/v1/add/1/2')).status).toBe(202);
    expect(await countJobs()).toBe(before + 1);
  });
});
