import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import packageJson from '../package.json' with { type: 'json' };
import type { Database } from '../src/db/database.ts';
import { addKind } from '../src/kinds/add.ts';
import { defineKind } from '../src/kinds/define.ts';
import { KindRegistry } from '../src/kinds/registry.ts';
import type { Worker } from '../src/worker/worker.ts';
import { closeTestApp, openTestApp, type TestApp } from './helpers/api.ts';
import type { TestDatabase } from './helpers/database.ts';
import { createWorker, waitForJob } from './helpers/jobs.ts';

const greet = defineKind({
  name: 'greet',
  input: z.object({ name: z.string().min(1) }),
  result: z.object({ greeting: z.string() }),
  handler: ({ name }) => ({ greeting: `hello ${name}` }),
});

const KEY = 'openapi-test-key';
/** An operator's key (ADMIN_API_KEYS): pausing kinds and the console's bulk routes are its alone. */
const ADMIN_KEY = 'openapi-test-admin-key';
const MAX_BODY_BYTES = 4096;
const DOCUMENT_ID = 'https://job-service.test/openapi.json';
const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000';

/** Every REST route of rest.ts: the document must describe exactly these. */
const ROUTES = [
  'GET /api/v1/add/{num1}/{num2}',
  'POST /api/v1/add/{num1}/{num2}',
  'GET /api/v1/job/{id}',
  'POST /api/v1/jobs',
  'GET /api/v1/jobs',
  'GET /api/v1/jobs/{id}',
  'POST /api/v1/jobs/{id}/retrieve',
  'POST /api/v1/jobs/{id}/cancel',
  'GET /api/v1/kinds',
  'POST /api/v1/schedules',
  'GET /api/v1/schedules',
  'GET /api/v1/schedules/{id}',
  'DELETE /api/v1/schedules/{id}',
  'POST /api/v1/schedules/{id}/pause',
  'POST /api/v1/schedules/{id}/resume',
  'POST /api/v1/kinds/{kind}/pause',
  'POST /api/v1/kinds/{kind}/resume',
  'POST /api/v1/kinds/pause',
  'POST /api/v1/kinds/resume',
  'GET /api/v1/openapi.json',
  'POST /api/v1/workflows',
  'GET /api/v1/workflows/{id}',
  'POST /api/v1/workflows/{id}/cancel',
  'GET /api/v1/console/jobs',
  'GET /api/v1/console/jobs/count',
  'POST /api/v1/console/jobs/retry',
  'POST /api/v1/console/jobs/cancel',
  'POST /api/v1/console/jobs/retrieve',
  'GET /api/v1/console/overview',
  'POST /api/v1/jobs/{id}/retry',
  'GET /api/v1/jobs/{id}/attempts',
  'POST /api/v1/schedules/{id}/run',
];

interface Answer {
  status: number;
  headers: Headers;
  body: unknown;
}

interface OpenApiDocument {
  openapi: string;
  info: { version: string };
  paths: Record<string, Record<string, { responses: Record<string, Reference | ResponseObject> }>>;
  components: { responses: Record<string, ResponseObject>; securitySchemes: Record<string, unknown> };
}
type Reference = { $ref: string };
type ResponseObject = { headers?: Record<string, { required?: boolean }>; content?: Record<string, unknown> };

let testDb: TestDatabase;
let db: Database;
let api: TestApp;
let worker: Worker;
let document: OpenApiDocument;
let checker: ReturnType<typeof createChecker>;
/** `METHOD template status` of every answer checked, to show each operation was exercised. */
const seen = new Set<string>();

beforeAll(async () => {
  const kinds = new KindRegistry([addKind({ maxDigits: 100 }), greet]);
  ({ testDb, db, api } = await openTestApp(import.meta.filename, {
    service: { kinds },
    apiKeys: [KEY],
    adminKeys: [ADMIN_KEY],
    limits: { maxBodyBytes: MAX_BODY_BYTES },
  }));
  worker = createWorker(db, api.hub, { kinds });
  await worker.start();
  const answer = await call('GET', '/api/v1/openapi.json');
  expect(answer.status).toBe(200);
  document = answer.body as OpenApiDocument;
  checker = createChecker(document);
  checker.check('GET', '/api/v1/openapi.json', answer);
});

afterAll(async () => {
  await worker?.stop();
  if (api) await closeTestApp({ testDb, api });
});

async function call(
  method: string,
  path: string,
  { body, headers = {}, key = KEY }: { body?: unknown; headers?: Record<string, string>; key?: string | null } = {},
): Promise<Answer> {
  const init: RequestInit = {
    method,
    headers: {
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(key ? { authorization: `Bearer ${key}` } : {}),
      ...headers,
    },
  };
  if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body);
  const response = await api.app.fetch(`http://yoga${path}`, init);
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : null };
}

/** Sends the request and checks the answer against the document; returns the answer. */
async function documented(method: string, path: string, options?: Parameters<typeof call>[2]): Promise<Answer> {
  const answer = await call(method, path, options);
  checker.check(method, path, answer);
  return answer;
}

/**
 * Checks an answer against the document: its path and method must be an operation, its status one
 * that operation lists, its required headers present, and its JSON body valid against the schema
 * of that status, compiled by ajv from the document itself (its `#/components/...` refs included).
 */
function createChecker(openApi: OpenApiDocument) {
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  addFormats.default(ajv);
  // The document's own fields are not JSON Schema keywords; declared, ajv's strict mode takes the
  // document whole and still refuses an unknown keyword inside the schemas it compiles.
  ajv.addVocabulary(['openapi', 'info', 'paths', 'components', 'security', 'tags', 'servers', 'webhooks']);
  ajv.addSchema(openApi as object, DOCUMENT_ID);
  const compiled = new Map<string, ValidateFunction>();
  const templates = Object.keys(openApi.paths).map((template) => ({
    template,
    pattern: new RegExp(`^${template.replace(/[.]/g, '\\.').replace(/\{[^}]+\}/g, '[^/]+')}$`),
  }));
  const pointer = (...parts: string[]) => `#/${parts.map((part) => part.replace(/~/g, '~0').replace(/\//g, '~1')).join('/')}`;

  /** The response the document gives for this status, and where it is in the document. */
  function responseFor(method: string, pathname: string, status: number) {
    const match = templates.find(({ pattern }) => pattern.test(pathname));
    if (!match) throw new Error(`${pathname} is not a path of the document`);
    const operation = openApi.paths[match.template]![method.toLowerCase()];
    if (!operation) throw new Error(`${method} ${match.template} is not an operation of the document`);
    const listed = operation.responses[String(status)];
    if (!listed) throw new Error(`${method} ${match.template} answered ${status}, which the document does not list`);
    if ('$ref' in listed) {
      const name = listed.$ref.replace('#/components/responses/', '');
      return { template: match.template, response: openApi.components.responses[name]!, at: pointer('components', 'responses', name) };
    }
    return { template: match.template, response: listed, at: pointer('paths', match.template, method.toLowerCase(), 'responses', String(status)) };
  }

  function validate(at: string, response: ResponseObject, answer: Answer, label: string) {
    for (const [name, header] of Object.entries(response.headers ?? {})) {
      if (header.required) expect(answer.headers.get(name), `${label}: header ${name}`).not.toBeNull();
    }
    expect(response.content, `${label}: the document gives no JSON body`).toHaveProperty(['application/json']);
    expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
    const ref = `${DOCUMENT_ID}${at}/content/application~1json/schema`;
    let check = compiled.get(ref);
    if (!check) {
      check = ajv.compile({ $ref: ref });
      compiled.set(ref, check);
    }
    if (!check(answer.body)) {
      throw new Error(`${label}: the body does not match the document: ${ajv.errorsText(check.errors)}\n${JSON.stringify(answer.body)}`);
    }
  }

  return {
    check(method: string, path: string, answer: Answer) {
      const pathname = new URL(path, 'http://yoga').pathname;
      const { template, response, at } = responseFor(method, pathname, answer.status);
      validate(at, response, answer, `${method} ${path} ${answer.status}`);
      seen.add(`${method} ${template} ${answer.status}`);
    },
    /** For a method no operation has: the document's MethodNotAllowed answer. */
    checkMethodNotAllowed(method: string, path: string, answer: Answer) {
      const pathname = new URL(path, 'http://yoga').pathname;
      const match = templates.find(({ pattern }) => pattern.test(pathname))!;
      expect(openApi.paths[match.template]![method.toLowerCase()]).toBeUndefined();
      expect(answer.status).toBe(405);
      validate(pointer('components', 'responses', 'MethodNotAllowed'), openApi.components.responses['MethodNotAllowed']!, answer, `${method} ${path}`);
    },
  };
}

function done(id: string) {
  const caller = api.auth.authenticate(`Bearer ${KEY}`)!;
  return waitForJob(api.jobs, api.hub, id, (job) => !['pending', 'wip'].includes(job.status), undefined, caller);
}

const later = () => new Date(Date.now() + 3_600_000).toISOString();

describe('GET /api/v1/openapi.json', () => {
  it('is a valid OpenAPI 3.1 document', async () => {
    expect(document.openapi).toBe('3.1.0');
    expect(document.info.version).toBe(packageJson.version);
    const result = await new Validator().validate(document as unknown as Record<string, unknown>);
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
  });

  it('describes every REST route, and no other', () => {
    const operations = Object.entries(document.paths).flatMap(([path, item]) =>
      Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(operations.sort()).toEqual([...ROUTES].sort());
  });

  it('names bearer auth as the security scheme, and every route lists 401', () => {
    expect(document.components.securitySchemes).toEqual({ bearerAuth: expect.objectContaining({ type: 'http', scheme: 'bearer' }) });
    for (const item of Object.values(document.paths)) {
      for (const operation of Object.values(item)) expect(operation.responses).toHaveProperty('401');
    }
  });

  it('is the same document on every request', async () => {
    expect((await call('GET', '/api/v1/openapi.json')).body).toEqual(document);
  });
});

describe('the checker', () => {
  it('fails an answer whose status the document does not list', () => {
    const answer = { status: 418, headers: new Headers({ 'content-type': 'application/json' }), body: {} };
    expect(() => checker.check('GET', '/api/v1/kinds', answer)).toThrow(/answered 418, which the document does not list/);
  });

  it('fails an answer with a field the document does not have', () => {
    const answer = { status: 200, headers: new Headers({ 'content-type': 'application/json' }), body: { kinds: [], extra: 1 } };
    expect(() => checker.check('GET', '/api/v1/kinds', answer)).toThrow(/does not match the document/);
  });
});

describe('real answers match the document', () => {
  it('the add alias: 202, a repeated key, 409 on the key with other numbers, 400', async () => {
    const added = await documented('POST', '/api/v1/add/2/3', { headers: { 'idempotency-key': 'openapi-add' } });
    expect(added.status).toBe(202);
    const again = await documented('GET', '/api/v1/add/2/3', { headers: { 'idempotency-key': 'openapi-add' } });
    expect(again).toMatchObject({ status: 202, body: { created: false } });
    expect((await documented('POST', '/api/v1/add/2/4', { headers: { 'idempotency-key': 'openapi-add' } })).status).toBe(409);
    expect((await documented('GET', '/api/v1/add/abc/3')).status).toBe(400);

    const id = (added.body as { jobId: string }).jobId;
    await done(id);
    // The job alias: an add job as the seed shows it (taking its result), then a 404 and a 400.
    const read = await documented('GET', `/api/v1/job/${id}`);
    expect(read.body).toMatchObject({ status: 'retrieved', result: '5', num1: '2' });
    expect((await documented('GET', `/api/v1/job/${UNKNOWN_ID}`)).status).toBe(404);
    expect((await documented('GET', '/api/v1/job/%E0%A4%A')).status).toBe(400);
  });

  it('submitting: 202, 400, 409, 413, 415', async () => {
    const submitted = await documented('POST', '/api/v1/jobs', { body: { kind: 'greet', input: { name: 'Ada' }, idempotencyKey: 'openapi-submit' } });
    expect(submitted.status).toBe(202);
    const id = (submitted.body as { jobId: string }).jobId;
    // The job alias shows a job of another kind as the generic routes do.
    await done(id);
    expect((await documented('GET', `/api/v1/job/${id}`)).body).toMatchObject({ kind: 'greet', status: 'retrieved' });

    const conflict = await documented('POST', '/api/v1/jobs', { body: { kind: 'greet', input: { name: 'Bo' }, idempotencyKey: 'openapi-submit' } });
    expect(conflict.status).toBe(409);
    expect((await documented('POST', '/api/v1/jobs', { body: { kind: 'greet', input: { name: '' } } })).status).toBe(400);
    expect((await documented('POST', '/api/v1/jobs', { body: { kind: 'nope', input: {} } })).status).toBe(400);
    expect((await documented('POST', '/api/v1/jobs', { body: '{"kind":' })).status).toBe(400);
    const big = { kind: 'greet', input: { name: 'x'.repeat(MAX_BODY_BYTES) } };
    expect((await documented('POST', '/api/v1/jobs', { body: big })).status).toBe(413);
    const plain = await documented('POST', '/api/v1/jobs', { body: '{}', headers: { 'content-type': 'text/plain' } });
    expect(plain.status).toBe(415);
  });

  it('workflows: 201, 200, 400, 404', async () => {
    const steps = [
      { name: 'first', kind: 'greet', input: { name: 'Ed' }, runAt: later() },
      { name: 'second', kind: 'greet', input: { name: 'Flo' }, dependsOn: ['first'], onParentFailure: 'continue' },
    ];
    const made = await documented('POST', '/api/v1/workflows', { body: { steps } });
    expect(made.status).toBe(201);
    const id = (made.body as { workflowId: string }).workflowId;
    expect((await documented('GET', `/api/v1/workflows/${id}`)).body).toMatchObject({ workflowId: id, finished: false });
    expect((await documented('POST', `/api/v1/workflows/${id}/cancel`)).body).toMatchObject({ finished: true });
    expect((await documented('GET', `/api/v1/workflows/${UNKNOWN_ID}`)).status).toBe(404);
    expect((await documented('POST', `/api/v1/workflows/${UNKNOWN_ID}/cancel`)).status).toBe(404);
    const cycle = [{ ...steps[0], dependsOn: ['second'] }, steps[1]];
    expect((await documented('POST', '/api/v1/workflows', { body: { steps: cycle } })).status).toBe(400);
  });

  it('reading, paging, retrieving, cancelling: 200, 400, 404, 409', async () => {
    const submitted = await documented('POST', '/api/v1/jobs', { body: { kind: 'greet', input: { name: 'Cy' } } });
    const id = (submitted.body as { jobId: string }).jobId;
    await done(id);
    expect((await documented('GET', `/api/v1/jobs/${id}`)).body).toMatchObject({ status: 'completed', result: { greeting: 'hello Cy' } });
    expect((await documented('GET', `/api/v1/jobs/${UNKNOWN_ID}`)).status).toBe(404);
    expect((await documented('POST', `/api/v1/jobs/${id}/retrieve`)).body).toMatchObject({ status: 'retrieved' });
    expect((await documented('POST', `/api/v1/jobs/${UNKNOWN_ID}/retrieve`)).status).toBe(404);

    const pending = await documented('POST', '/api/v1/jobs', { body: { kind: 'greet', input: { name: 'Di' }, runAt: later(), priority: 3 } });
    const pendingId = (pending.body as { jobId: string }).jobId;
    expect((await documented('POST', `/api/v1/jobs/${pendingId}/cancel`)).body).toMatchObject({ status: 'cancelled' });
    expect((await documented('POST', `/api/v1/jobs/${id}/cancel`)).status).toBe(409);
    expect((await documented('POST', `/api/v1/jobs/${UNKNOWN_ID}/cancel`)).status).toBe(404);

    const page = await documented('GET', '/api/v1/jobs?kind=greet&first=1');
    expect(page.body).toMatchObject({ pageInfo: { hasNextPage: true } });
    const { endCursor } = (page.body as { pageInfo: { endCursor: string } }).pageInfo;
    expect((await documented('GET', `/api/v1/jobs?status=cancelled&after=${endCursor}`)).status).toBe(200);
    expect((await documented('GET', '/api/v1/jobs?first=0')).status).toBe(400);
    expect((await documented('GET', '/api/v1/jobs?colour=red')).status).toBe(400);
  });

  it('kinds: 200 with each kind and its JSON Schemas', async () => {
    const kinds = await documented('GET', '/api/v1/kinds');
    expect((kinds.body as { kinds: { name: string }[] }).kinds.map((kind) => kind.name)).toEqual(['add', 'greet']);
  });

  it('schedules: 201, 200, 400, 404', async () => {
    const made = await documented('POST', '/api/v1/schedules', {
      body: { kind: 'greet', input: { name: 'Ed' }, cron: '0 9 * * MON', timeZone: 'Europe/Berlin', catchUp: 'skip' },
    });
    expect(made.status).toBe(201);
    const id = (made.body as { scheduleId: string }).scheduleId;
    expect((await documented('GET', '/api/v1/schedules')).body).toMatchObject({ schedules: [{ scheduleId: id }] });
    expect((await documented('GET', `/api/v1/schedules/${id}`)).body).toMatchObject({ scheduleId: id, paused: false });
    expect((await documented('POST', `/api/v1/schedules/${id}/pause`)).body).toMatchObject({ paused: true, nextFireAt: null });
    expect((await documented('POST', `/api/v1/schedules/${id}/resume`)).body).toMatchObject({ paused: false });
    expect((await documented('DELETE', `/api/v1/schedules/${id}`)).body).toEqual({ scheduleId: id, deleted: true });
    expect((await documented('GET', `/api/v1/schedules/${id}`)).status).toBe(404);
    expect((await documented('POST', `/api/v1/schedules/${UNKNOWN_ID}/pause`)).status).toBe(404);
    expect((await documented('DELETE', `/api/v1/schedules/${UNKNOWN_ID}`)).status).toBe(404);
    expect((await documented('POST', '/api/v1/schedules', { body: { kind: 'greet', input: { name: 'Ed' }, cron: 'often' } })).status).toBe(400);
  });

  it('pausing and resuming kinds: 200 for an operator, 403 for a customer, and 404 for a kind the service does not run', async () => {
    const key = ADMIN_KEY;
    expect((await documented('POST', '/api/v1/kinds/greet/pause')).status).toBe(403);
    expect((await documented('POST', '/api/v1/kinds/pause')).status).toBe(403);
    expect((await documented('POST', '/api/v1/kinds/greet/pause', { key })).body).toMatchObject({ name: 'greet', paused: true });
    expect((await documented('POST', '/api/v1/kinds/greet/resume', { key })).body).toMatchObject({ name: 'greet', paused: false });
    expect((await documented('POST', '/api/v1/kinds/nope/pause', { key })).status).toBe(404);
    expect((await documented('POST', '/api/v1/kinds/nope/resume', { key })).status).toBe(404);
    const all = await documented('POST', '/api/v1/kinds/pause', { key });
    expect((all.body as { kinds: { paused: boolean }[] }).kinds.every((kind) => kind.paused)).toBe(true);
    const none = await documented('POST', '/api/v1/kinds/resume', { key });
    expect((none.body as { kinds: { paused: boolean }[] }).kinds.some((kind) => kind.paused)).toBe(false);
  });

  it('the console: search, count, bulk actions, overview, retry, run a schedule now; 403 for a customer where operators only', async () => {
    const key = ADMIN_KEY;
    const submitted = await documented('POST', '/api/v1/jobs', { body: { kind: 'greet', input: { name: 'Console' } } });
    const id = (submitted.body as { jobId: string }).jobId;
    await done(id);
    const found = await documented('GET', '/api/v1/console/jobs?kind=greet&matchPath=name&matchValue=%22Console%22');
    expect((found.body as { jobs: { jobId: string }[] }).jobs.map((job) => job.jobId)).toEqual([id]);
    expect((await documented('GET', '/api/v1/console/jobs?owner=someone')).status).toBe(403);
    expect((await documented('GET', '/api/v1/console/jobs?first=0')).status).toBe(400);
    expect((await documented('GET', '/api/v1/console/jobs/count?kind=greet&status=completed')).body).toEqual({ count: 1, more: false, cap: 10_000 });
    expect((await documented('GET', '/api/v1/console/jobs/count?matchPath=name&matchValue=nojson')).status).toBe(400);
    expect((await documented('POST', '/api/v1/console/jobs/retrieve', { body: { filter: { kind: 'greet' } } })).status).toBe(403);
    expect((await documented('POST', '/api/v1/console/jobs/retrieve', { key, body: { filter: { id } } })).body).toMatchObject({ count: 1 });
    expect((await documented('POST', '/api/v1/console/jobs/retry', { key, body: { filter: { kind: 'greet' } } })).body).toMatchObject({ count: 0 });
    const pending = await documented('POST', '/api/v1/jobs', { body: { kind: 'greet', input: { name: 'Later' }, runAt: later() } });
    const pendingId = (pending.body as { jobId: string }).jobId;
    expect((await documented('POST', '/api/v1/console/jobs/cancel', { key, body: { filter: { id: pendingId } } })).body).toMatchObject({ count: 1 });
    expect((await documented('POST', '/api/v1/console/jobs/cancel', { key, body: { filter: { nope: 1 } } })).status).toBe(400);
    expect((await documented('GET', '/api/v1/console/overview')).status).toBe(403);
    const overview = await documented('GET', '/api/v1/console/overview', { key });
    expect((overview.body as { kinds: { kind: string }[] }).kinds.map((kind) => kind.kind)).toContain('greet');
    expect((await documented('POST', `/api/v1/jobs/${pendingId}/retry`)).status).toBe(409);
    expect((await documented('POST', `/api/v1/jobs/${UNKNOWN_ID}/retry`)).status).toBe(404);
    const failing = await api.jobs.submitJob({ kind: 'greet', input: { name: 'Fails' }, runAt: new Date(later()) }, { owner: '' });
    await db.query({ name: 'openapi_fail', text: `UPDATE job SET status = 'failed', completed_on = now() WHERE id = $1` }, [failing.job.id]);
    expect((await documented('POST', `/api/v1/jobs/${failing.job.id}/retry`, { key })).body).toMatchObject({ status: 'pending' });
    await db.query(
      { name: 'openapi_attempt_error', text: `INSERT INTO job_attempt_error (job_id, attempt, error, worker) VALUES ($1, 1, 'boom', 'w1')` },
      [failing.job.id],
    );
    expect((await documented('GET', `/api/v1/jobs/${failing.job.id}/attempts`, { key })).body).toEqual({
      attempts: [{ attempt: 1, error: 'boom', failedAt: expect.any(String), worker: 'w1' }],
    });
    expect((await documented('GET', `/api/v1/jobs/${id}/attempts`)).body).toEqual({ attempts: [] });
    expect((await documented('GET', `/api/v1/jobs/${UNKNOWN_ID}/attempts`)).status).toBe(404);
    expect((await documented('GET', '/api/v1/console/jobs?uniqueKey=nobody&idempotencyKey=none&concurrencyKey=no')).body).toMatchObject({ jobs: [] });
    const made = await documented('POST', '/api/v1/schedules', { body: { kind: 'greet', input: { name: 'Now' }, cron: '0 9 * * MON' } });
    const scheduleId = (made.body as { scheduleId: string }).scheduleId;
    const ran = await documented('POST', `/api/v1/schedules/${scheduleId}/run`);
    expect(ran.status).toBe(202);
    expect(ran.body).toMatchObject({ kind: 'greet', input: { name: 'Now' } });
    expect((await documented('POST', `/api/v1/schedules/${UNKNOWN_ID}/run`)).status).toBe(404);
  });

  it('without a key: 401 on every route; from a foreign page: 403', async () => {
    for (const route of ROUTES) {
      const [method, template] = route.split(' ') as [string, string];
      const path = template.replace('{num1}', '1').replace('{num2}', '2').replace('{id}', UNKNOWN_ID).replace('{kind}', 'greet');
      expect((await documented(method, path, { key: null })).status, route).toBe(401);
      expect((await documented(method, path, { key: 'wrong' })).status, route).toBe(401);
    }
    const foreign = await documented('POST', '/api/v1/add/1/2', { headers: { origin: 'https://elsewhere.example' } });
    expect(foreign.status).toBe(403);
  });

  it('a method a path does not take: 405, as the document says', async () => {
    checker.checkMethodNotAllowed('DELETE', `/api/v1/jobs/${UNKNOWN_ID}`, await call('DELETE', `/api/v1/jobs/${UNKNOWN_ID}`));
    checker.checkMethodNotAllowed('PUT', '/api/v1/kinds', await call('PUT', '/api/v1/kinds'));
  });

  it('every operation was answered with a success status at least once', () => {
    for (const route of ROUTES) {
      const successes = [...seen].filter((entry) => entry.startsWith(`${route} 2`));
      expect(successes, route).not.toEqual([]);
    }
  });
});
