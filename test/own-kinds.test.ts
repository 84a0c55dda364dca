/**
 * Bringing your own kinds, both ways the README shows: a module named by JOB_KINDS_MODULE next to
 * `npm start`, and the package used as a library inside a team's process, with jobs enqueued in
 * the team's own transaction.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// The package's own entry, as a team imports it.
import { enqueue, type Runtime, startService as startInProcess } from 'job-service';
import { invoice, slugify } from '../examples/kinds.ts';
import { createTestDatabase, type TestDatabase } from './helpers/database.ts';
import { SERVICE_ARGS, startService } from './helpers/processes.ts';

const run = promisify(execFile);
let testDb: TestDatabase;

beforeAll(async () => {
  testDb = await createTestDatabase(import.meta.filename);
});
afterAll(() => testDb.drop());

async function call(base: string, method: string, path: string, body?: unknown) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

/** Polls the job until it is done: the answer a customer without a subscription would see. */
async function finished(base: string, id: string): Promise<Record<string, any>> {
  for (const deadline = Date.now() + 20_000; Date.now() < deadline; ) {
    const { body } = await call(base, 'GET', `/api/v1/jobs/${id}`);
    if (!['pending', 'wip'].includes(body.status)) return body;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`job ${id} did not finish`);
}

describe('JOB_KINDS_MODULE', () => {
  it('runs the kinds of a module next to the built-in ones, over REST and GraphQL', async () => {
    const service = await startService({ DATABASE_URL: testDb.url, JOB_KINDS_MODULE: './examples/kinds.ts' });
    try {
      const base = `http://127.0.0.1:${service.port}`;
      const kinds = await call(base, 'GET', '/api/v1/kinds');
      expect(kinds.body.kinds.map((kind: { name: string }) => kind.name)).toEqual(['add', 'primes', 'digest', 'invoice', 'slugify']);

      const submitted = await call(base, 'POST', '/api/v1/jobs', { kind: 'slugify', input: { title: 'Crème Brûlée, à la carte!' } });
      expect(submitted.status).toBe(202);
      expect(await finished(base, submitted.body.jobId)).toMatchObject({ status: 'completed', result: { slug: 'creme-brulee-a-la-carte' } });

      const graphql = await fetch(`${base}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          query: 'mutation($input: SubmitJobInput!) { submitJob(input: $input) { job { id kind priority maxAttempts } } }',
          variables: { input: { kind: 'invoice', input: { customer: 'ada', lines: [{ item: 'tea', cents: 250, quantity: 4 }] } } },
        }),
      });
      const { data } = (await graphql.json()) as { data: { submitJob: { job: { id: string; priority: number; maxAttempts: number } } } };
      expect(data.submitJob.job).toMatchObject({ kind: 'invoice', priority: 10, maxAttempts: 3 });
      expect(await finished(base, data.submitJob.job.id)).toMatchObject({ result: { customer: 'ada', totalCents: 1000 } });

      const refused = await call(base, 'POST', '/api/v1/jobs', { kind: 'invoice', input: { customer: 'ada', lines: [] } });
      expect(refused.status).toBe(400);
      expect(refused.body.error.field).toBe('input.lines');
    } finally {
      await service.stop();
    }
  });

  it.each([
    ['./test/fixtures/no-kinds.ts', /JOB_KINDS_MODULE=\.\/test\/fixtures\/no-kinds\.ts: the module exports no kinds/],
    ['./test/fixtures/missing.ts', /JOB_KINDS_MODULE=\.\/test\/fixtures\/missing\.ts: the module could not be loaded/],
  ])('refuses to start with %s, saying why', async (path, message) => {
    const failure = await run(process.execPath, SERVICE_ARGS, {
      env: { ...process.env, DATABASE_URL: testDb.url, JOB_KINDS_MODULE: path, PORT: '0', LOG_LEVEL: 'silent' },
      timeout: 30_000,
    }).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    expect(failure?.code).toBe(1);
    expect(failure?.stderr).toMatch(message);
  });
});

describe('the package as a library', () => {
  let service: Runtime;
  let client: pg.Client;
  let base: string;

  beforeAll(async () => {
    // A poll far longer than any test: a job runs only when its NOTIFY is heard.
    service = await startInProcess({
      kinds: [slugify, invoice],
      settings: { DATABASE_URL: testDb.url, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent', WORKER_POLL_INTERVAL_MS: '600000' },
    });
    base = `http://127.0.0.1:${service.api!.port}`;
    client = new pg.Client({ connectionString: testDb.url });
    await client.connect();
  });

  afterAll(async () => {
    await client.end();
    await service.stop();
  });

  it('enqueue in a transaction that commits: the job exists from the commit, and is run', async () => {
    await client.query('BEGIN');
    const { job, created } = await enqueue(client, slugify, { title: 'Hello World' });
    expect(created).toBe(true);
    // Not yet committed: nobody else can see it.
    expect((await call(base, 'GET', `/api/v1/jobs/${job.id}`)).status).toBe(404);
    await client.query('COMMIT');
    expect(await finished(base, job.id)).toMatchObject({ status: 'completed', result: { slug: 'hello-world' } });
  });

  it('runs the built-in primes kind in its thread pool, started by the first such job', async () => {
    const { body } = await call(base, 'POST', '/api/v1/jobs', { kind: 'primes', input: { below: 1000 } });
    expect(await finished(base, body.jobId)).toMatchObject({ status: 'completed', result: { count: 168 } });
  });

  it('enqueue in a transaction that rolls back: no job, and nothing runs', async () => {
    await client.query('BEGIN');
    const { job } = await enqueue(client, slugify, { title: 'Never' });
    await client.query('ROLLBACK');
    expect((await call(base, 'GET', `/api/v1/jobs/${job.id}`)).status).toBe(404);
    const count = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM job WHERE id = $1', [job.id]);
    expect(count.rows[0]!.n).toBe(0);
  });

  it("enqueue checks the input by the kind's schema and writes nothing when it is refused", async () => {
    await client.query('BEGIN');
    // @ts-expect-error: the input is typed by the kind's schema, and `title` is missing.
    await expect(enqueue(client, slugify, { name: 'x' })).rejects.toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.title' });
    await client.query('ROLLBACK');
  });
});
