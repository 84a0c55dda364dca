/**
 * Bad input, fuzzed. Seeded generators (test/helpers/fuzz-inputs.ts) send well over 10,000
 * requests through `app.fetch`, some raw HTTP and a few hundred WebSocket conversations over a
 * real port. Whatever arrives, the answer must be a 4xx or an error with a code (never a 5xx,
 * never a masked INTERNAL_SERVER_ERROR), nothing may be written by a rejected request, and the
 * process must log no error and see no unhandled rejection. Where a request may be valid, its
 * answer is checked against a model written from the README.
 *
 * FUZZ_SEED=<n> replays a run; FUZZ_SCALE=<x> multiplies every run count for a longer session.
 */
import { createHash } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import fc from 'fast-check';
import { createClient } from 'graphql-ws';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import type { Database } from '../src/db/database.ts';
import { readMigrations } from '../src/db/migrate.ts';
import { MIGRATIONS_DIR } from '../src/db/open.ts';
import { type App, createApp } from '../src/http/app.ts';
import { createAuthenticator } from '../src/http/auth.ts';
import type { HttpServer } from '../src/http/server.ts';
import type { JobEventHub } from '../src/jobs/events.ts';
import { sseEvents, TEST_LIMITS, testServer } from './helpers/api.ts';
import type { TestDatabase } from './helpers/database.ts';
import {
  type AddJobVariables,
  addJobVariables,
  anyDocument,
  canonicalDecimal,
  EXISTING_JOB,
  method,
  mutationBatch,
  plainDecimal,
  type RawBody,
  rawBody,
  type HttpSubscriptionCase,
  httpSubscriptionCase,
  type RestCase,
  restCase,
  wrongJson,
  type WsCase,
  wsCase,
} from './helpers/fuzz-inputs.ts';
import { openJobsDatabase } from './helpers/jobs.ts';
import { cancelAndExpectEnded } from './helpers/subscribers.ts';

const SEED = Number(process.env['FUZZ_SEED'] ?? 20_261_129);
const SCALE = Number(process.env['FUZZ_SCALE'] ?? 1);
/** Per test; a category takes a few seconds at scale 1. */
const TIMEOUT_MS = 60_000 * Math.max(1, SCALE);
const MAX_BODY_BYTES = 50_000;
const MAX_BATCH = 20;
const MAX_DIGITS = 100;
const KEY = 'fuzz-key-0123456789abcdef';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

type Owner = 'open' | 'keyed';
const OWNER_IN_DATABASE: Record<Owner, string> = {
  open: '',
  keyed: createHash('sha256').update(KEY).digest('hex'),
};

let testDb: TestDatabase;
let db: Database;
let hub: JobEventHub;
const apps = {} as Record<Owner, App>;

/** Requests sent, per category, for the summary printed at the end. */
const sent: Record<string, number> = {};
/** Runs each property that ran was given: each must have sent at least that many requests. */
const planned: Record<string, number> = {};
/** Every job the answers have shown, with its owner: the database must hold exactly these. */
const known = new Map<string, string>();
/** First job per (owner, idempotency key), as a retry must get it back. */
const firstByKey = new Map<string, FirstJob>();
/** Keyed jobs the answers of the current request showed, for `firstByKey` after its checks. */
const keysSeen: Array<[Owner, string, FirstJob]> = [];
const errorLogs: string[] = [];
const processTroubles: string[] = [];
const onRejection = (reason: unknown) => void processTroubles.push(`unhandledRejection: ${String(reason)}`);
const onException = (error: unknown) => void processTroubles.push(`uncaughtException: ${String(error)}`);
let startedAt = 0;

beforeAll(async () => {
  startedAt = Date.now();
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onException);
  const { service: jobs, ...opened } = await openJobsDatabase(import.meta.filename, { maxBatchSize: MAX_BATCH, numberMaxDigits: MAX_DIGITS });
  ({ testDb, db, hub } = opened);
  // Errors logged by the app are server errors even when the client got a 4xx.
  const logger = pino({ level: 'error' }, { write: (line: string) => void errorLogs.push(line) });
  const migrations = await readMigrations(MIGRATIONS_DIR);
  const limits = { ...TEST_LIMITS, maxBodyBytes: MAX_BODY_BYTES };
  apps.open = createApp({ jobs, db, migrations, logger, auth: createAuthenticator(undefined), limits });
  apps.keyed = createApp({ jobs, db, migrations, logger, auth: createAuthenticator([KEY]), limits });
});

/*
 * What must hold after whichever properties ran, in whatever order (a summary test would have to
 * run last): the database holds exactly the jobs the answers showed, the server logged no error,
 * the process saw no unhandled failure, and every property sent the requests it was given. All
 * twelve send over 10,000 requests, not counting set-up, WebSocket frames and raw HTTP.
 */
afterAll(async () => {
  try {
    const rows = await db.prisma.job.findMany({ select: { id: true, owner: true } });
    expect(new Map(rows.map((row) => [row.id, row.owner]))).toEqual(known);
    expect(errorLogs).toEqual([]);
    expect(processTroubles).toEqual([]);
    for (const [category, runs] of Object.entries(planned)) expect(sent[category] ?? 0, category).toBeGreaterThanOrEqual(runs);
  } finally {
    process.off('unhandledRejection', onRejection);
    process.off('uncaughtException', onException);
    const total = Object.values(sent).reduce((sum, n) => sum + n, 0);
    console.info(
      `fuzz: seed ${SEED}, ${total} requests in ${((Date.now() - startedAt) / 1000).toFixed(1)} s; ` +
        `${Object.entries(sent).map(([category, n]) => `${category} ${n}`).join(', ')}; ${known.size} jobs written`,
    );
    await hub?.stop();
    await testDb?.drop();
  }
});

// ---------------------------------------------------------------------------------------------
// Running properties and reporting

const clip = (text: string, max = 600) => (text.length > max ? `${text.slice(0, max)}… (${text.length} chars)` : text);

class FuzzFailure extends Error {
  override name = 'FuzzFailure';
}

function fail(message: string, request: string, answer?: { status: number; text: string }): never {
  const logged = errorLogs.length > 0 ? `\n  logged:  ${clip(errorLogs.join(''), 2000)}` : '';
  throw new FuzzFailure(
    `${message}\n  request: ${clip(request)}\n  answer:  ${answer ? `${answer.status} ${clip(answer.text)}` : '(none)'}${logged}`,
  );
}

/**
 * Runs one property with its own seed, derived from FUZZ_SEED and the category's name. Failing
 * values are not shrunk: the checks carry state (the jobs seen, the keys used), so a run after a
 * failure would fail for the wrong reason.
 */
async function fuzz<T>(category: string, arbitrary: fc.Arbitrary<T>, runs: number, check: (value: T) => Promise<void>) {
  const seed = (SEED + [...category].reduce((hash, c) => (hash * 31 + c.charCodeAt(0)) | 0, 0)) | 0;
  const numRuns = Math.max(1, Math.round(runs * SCALE));
  planned[category] = numRuns;
  const details = await fc.check(
    fc.asyncProperty(arbitrary, async (value) => {
      await check(value);
      await expectNoHiddenWrites();
      expectQuietServer();
    }),
    { seed, numRuns, endOnFailure: true },
  );
  if (details.failed) {
    await forgiveFailure();
    const cause = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
    throw new FuzzFailure(
      `[${category}] failed at run ${details.numRuns}; reproduce with FUZZ_SEED=${SEED} ` +
        `(fast-check seed ${details.seed}, path ${details.counterexamplePath})\n${cause}\n` +
        `  value:   ${clip(fc.stringify(details.counterexample), 1500)}`,
    );
  }
}

/** After a failed category, so the next one fails only for faults of its own. */
async function forgiveFailure(): Promise<void> {
  errorLogs.length = 0;
  processTroubles.length = 0;
  for (const row of await db.prisma.job.findMany({ select: { id: true, owner: true } })) known.set(row.id, row.owner);
}

// Run once per request or so: prepared statements on the pool, which cost less than Prisma.
const COUNT_JOBS = { name: 'fuzz_count_jobs', text: 'SELECT count(*)::int AS count FROM job' };
const JOBS_BY_ID = {
  name: 'fuzz_jobs_by_id',
  text: "SELECT id, owner, idempotency_key AS key, input->>'num1' AS num1, input->>'num2' AS num2 FROM job WHERE id = ANY($1::uuid[])",
};

/**
 * Every job in the database must have appeared in some answer. A request that was refused, or
 * whose answer lost the job it created, shows up here as one job too many.
 */
async function expectNoHiddenWrites(): Promise<void> {
  for (const [owner, key, job] of keysSeen.splice(0)) rememberKey(owner, key, job);
  const [{ count }] = (await db.query<{ count: number }>(COUNT_JOBS)) as [{ count: number }];
  if (count !== known.size) {
    const rows = await db.prisma.job.findMany({ select: { id: true, kind: true, input: true, idempotencyKey: true } });
    const hidden = rows.filter((row) => !known.has(row.id));
    throw new FuzzFailure(`the database holds ${count} jobs, the answers showed ${known.size}; unseen: ${clip(JSON.stringify(hidden))}`);
  }
}

function expectQuietServer(): void {
  if (errorLogs.length > 0) throw new FuzzFailure(`the server logged errors:\n${clip(errorLogs.join('\n'), 3000)}`);
  if (processTroubles.length > 0) throw new FuzzFailure(processTroubles.join('\n'));
}

/** Collects the job ids an answer shows, after checking they are real jobs of that owner. */
async function remember(value: unknown, owner: Owner, request: string): Promise<void> {
  const fresh = [...uuidsIn(value)].filter((id) => !known.has(id));
  if (fresh.length === 0) return;
  const rows = await db.query<{ id: string; owner: string; key: string | null; num1: string; num2: string }>(JOBS_BY_ID, [fresh]);
  for (const row of rows) {
    if (row.owner !== OWNER_IN_DATABASE[owner]) fail(`the answer shows job ${row.id} of another owner`, request);
    known.set(row.id, row.owner);
    // Whichever property made a keyed job first (they run in any order), later requests with its
    // key must find it; learnt once this request's own checks are done.
    if (row.key !== null) keysSeen.push([owner, row.key, { id: row.id, num1: row.num1, num2: row.num2 }]);
  }
}

function uuidsIn(value: unknown, found = new Set<string>()): Set<string> {
  if (typeof value === 'string' && UUID.test(value)) found.add(value.toLowerCase());
  else if (Array.isArray(value)) for (const item of value) uuidsIn(item, found);
  else if (value && typeof value === 'object') for (const item of Object.values(value)) uuidsIn(item, found);
  return found;
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

// ---------------------------------------------------------------------------------------------
// Sending, and the checks every answer must pass

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  json: unknown;
}

async function send(category: string, owner: Owner, path: string, init: RequestInit): Promise<Answer> {
  sent[category] = (sent[category] ?? 0) + 1;
  const response = await apps[owner].fetch(`http://yoga${path}`, init);
  const text = await response.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

interface GraphQLBody {
  data?: Record<string, unknown> | null;
  errors?: Array<{ message: string; extensions?: Record<string, unknown> }>;
}

/** A GraphQL answer: no 5xx, JSON, and every error names its code (and is not a masked crash). */
async function checkGraphQL(request: string, answer: Answer, owner: Owner, accept?: string): Promise<GraphQLBody | undefined> {
  if (answer.status >= 500) fail('a 5xx answer', request, answer);
  const type = answer.headers.get('content-type') ?? '';
  // A CORS preflight; a media type Yoga cannot read (415); a refusal to a client that accepts no
  // JSON; GraphiQL for a browser: no GraphQL result to check.
  if (answer.status === 204 && answer.text === '') return undefined;
  if (answer.status === 415 && answer.text === '') return undefined;
  const acceptsJson = accept === undefined || /json|\*\/\*/.test(accept);
  if (!acceptsJson && answer.status >= 400 && answer.text === '') return undefined;
  if (type.includes('text/html')) {
    if (answer.status !== 200 || !/graphiql/i.test(answer.text)) fail('HTML that is not GraphiQL', request, answer);
    return undefined;
  }
  // A client that asked for multipart/mixed or server-sent events gets each result as a part.
  const bodies = type.startsWith('multipart/mixed')
    ? [...answer.text.matchAll(/\r\n\r\n(\{.*?\})\r\n---/gs)].map((part) => JSON.parse(part[1]!) as unknown)
    : type.startsWith('text/event-stream')
      ? [...answer.text.matchAll(/^data: (\{.*\})$/gm)].map((event) => JSON.parse(event[1]!) as unknown)
      : [answer.json];
  if (bodies.length === 0) fail('a multipart or event-stream answer without parts', request, answer);
  for (const body of bodies) await checkGraphQLBody(request, answer, owner, body);
  return bodies[0] as GraphQLBody;
}

async function checkGraphQLBody(request: string, answer: Answer, owner: Owner, json: unknown): Promise<void> {
  if (!isObject(json)) fail('the answer is not a JSON object', request, answer);
  const body = json as GraphQLBody;
  if (body.errors !== undefined) {
    if (!Array.isArray(body.errors) || body.errors.length === 0) fail('errors is not a non-empty list', request, answer);
    for (const error of body.errors) {
      const code = error?.extensions?.['code'];
      if (typeof error?.message !== 'string' || typeof code !== 'string') fail('an error without a code', request, answer);
      if (code === 'INTERNAL_SERVER_ERROR') fail('an internal server error', request, answer);
    }
  }
  if (answer.status >= 400 && !body.errors) fail('a 4xx without errors', request, answer);
  if (!body.errors && !isObject(body.data)) fail('neither data nor errors', request, answer);
  await remember(body.data, owner, request);
}

function graphQLInit(body: string | Uint8Array, contentType = 'application/json', extra: Record<string, string> = {}): RequestInit {
  return {
    method: 'POST',
    headers: { ...(contentType ? { 'content-type': contentType } : {}), ...extra },
    body: body as BodyInit,
  };
}

// ---------------------------------------------------------------------------------------------
// The model: what the README says each request must do

/** Whether `accept` asks for server-sent events: named, in any case, in UTF-8 or no charset. */
const acceptsEventStream = (accept: string | undefined) =>
  (accept ?? '').split(',').some((entry) => {
    const [type, ...params] = entry.split(';').map((part) => part.trim().toLowerCase());
    return type === 'text/event-stream' && params.every((param) => !param.startsWith('charset=') || param === 'charset=utf-8');
  });

/** The key an Authorization header carries, as HTTP (which trims header values) delivers it. */
const bearerKey = (header: string | null | undefined) =>
  /^Bearer\s+(\S+)\s*$/i.exec((header ?? '').replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, ''))?.[1];

const hasLoneSurrogate = (text: string) => /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(text);

/** An idempotency key is 1 to 200 characters of text PostgreSQL can store as given. */
const validKey = (key: string) => key.length >= 1 && key.length <= 200 && !key.includes('\u0000') && !hasLoneSurrogate(key);

const EARLIEST = Date.parse('0001-01-01T00:00:00.000Z');
const LATEST = Date.parse('9999-12-31T23:59:59.999Z');

/** Refused inputs name the fields at fault; the service reports one of them. */
type Prediction =
  | { ok: true; num1: string; num2: string; key: string | null; priority: number; runAt: string | null }
  | { ok: false; fields?: string[] };

/** What addJob must make of one input, as graphql-js would coerce it and the service check it. */
function predictInput(input: unknown): Prediction {
  if (!isObject(input)) return { ok: false };
  const allowed = new Set(['num1', 'num2', 'idempotencyKey', 'runAt', 'priority']);
  if (Object.keys(input).some((key) => !allowed.has(key))) return { ok: false };
  const { num1, num2, idempotencyKey, runAt, priority } = input as AddJobVariables;
  if (typeof num1 !== 'string' || typeof num2 !== 'string') return { ok: false };
  if (idempotencyKey != null && typeof idempotencyKey !== 'string') return { ok: false };
  const isInt = (value: unknown) => typeof value === 'number' && Number.isInteger(value) && value >= -(2 ** 31) && value < 2 ** 31;
  if (priority != null && !isInt(priority)) {
    return { ok: false };
  }
  if (runAt != null && (typeof runAt !== 'string' || Number.isNaN(Date.parse(runAt)))) return { ok: false };
  const faults: string[] = [];
  if (typeof idempotencyKey === 'string' && !validKey(idempotencyKey)) faults.push('idempotencyKey');
  const time = runAt == null ? undefined : new Date(runAt as string).getTime();
  if (time !== undefined && (time < EARLIEST || time > LATEST)) faults.push('runAt');
  if (priority != null && ((priority as number) < -1000 || (priority as number) > 1000)) faults.push('priority');
  const one = canonicalDecimal(num1, MAX_DIGITS);
  if (one === null) faults.push('num1');
  const two = canonicalDecimal(num2, MAX_DIGITS);
  if (two === null) faults.push('num2');
  if (one === null || two === null || faults.length > 0) return { ok: false, fields: faults };
  return {
    ok: true,
    num1: one,
    num2: two,
    key: (idempotencyKey as string | null | undefined) ?? null,
    priority: (priority as number | null | undefined) ?? 0,
    runAt: runAt == null ? null : new Date(runAt as string).toISOString(),
  };
}

interface FirstJob {
  id: string;
  num1: string;
  num2: string;
}

/**
 * The job a successful add must answer: for a key used before (by an earlier request, or earlier
 * in the same batch) the first job with that key, else a new one.
 */
function expectedJob(owner: Owner, prediction: Extract<Prediction, { ok: true }>, earlierInBatch: Map<string, FirstJob>) {
  const slot = prediction.key === null ? undefined : `${owner}|${prediction.key}`;
  const first = slot === undefined ? undefined : (firstByKey.get(slot) ?? earlierInBatch.get(slot));
  if (first) return { created: false, ...first };
  return { created: true, id: undefined, num1: prediction.num1, num2: prediction.num2 };
}

/**
 * Whether the input reuses a key whose first job (earlier, or earlier in the same batch) has
 * other numbers: the request is then refused with CONFLICT and writes nothing. Numbers compare in
 * canonical form, so another spelling of the same value is no conflict.
 */
function reusesKeyWithOtherInput(owner: Owner, prediction: Extract<Prediction, { ok: true }>, earlierInBatch: Map<string, FirstJob>) {
  if (prediction.key === null) return false;
  const slot = `${owner}|${prediction.key}`;
  const first = firstByKey.get(slot) ?? earlierInBatch.get(slot);
  return first !== undefined && (first.num1 !== prediction.num1 || first.num2 !== prediction.num2);
}

function rememberKey(owner: Owner, key: string | null, job: FirstJob) {
  if (key !== null && !firstByKey.has(`${owner}|${key}`)) firstByKey.set(`${owner}|${key}`, job);
}

type RestPrediction =
  | { kind: 'health' | 'ready' | 'graphql' | 'static' }
  | { kind: 'error'; status: number; code: string; fields?: string[] }
  | { kind: 'preflight' }
  | { kind: 'added'; prediction: Extract<Prediction, { ok: true }> }
  | { kind: 'job'; id: string };

const STATIC_PATHS = new Set(['/', '/assets/app.js', '/assets/app.css', '/assets/graphql-ws.js', '/metrics']);

/** The README's REST API: its routes, statuses and error codes. */
function predictRest(owner: Owner, methodName: string, pathname: string, headers: Headers): RestPrediction {
  // CORS: a browser asks before a cross-origin call, on any path.
  if (methodName === 'OPTIONS') return { kind: 'preflight' };
  if (pathname === '/graphql') return { kind: 'graphql' };
  if (pathname === '/health') return { kind: 'health' };
  if (pathname === '/ready') return { kind: 'ready' };
  // The jobs page, its files, GraphiQL's files and /metrics: read-only, open, GET or HEAD.
  if (STATIC_PATHS.has(pathname) || pathname.startsWith('/assets/graphiql/')) {
    return methodName === 'GET' || methodName === 'HEAD'
      ? { kind: 'static' }
      : { kind: 'error', status: 405, code: 'METHOD_NOT_ALLOWED' };
  }
  const notFound = { kind: 'error', status: 404, code: 'NOT_FOUND' } as const;
  if (!pathname.startsWith('/api/')) return notFound;
  if (owner === 'keyed' && bearerKey(headers.get('authorization')) !== KEY) {
    return { kind: 'error', status: 401, code: 'UNAUTHENTICATED' };
  }
  const add = /^\/api\/v1\/add\/([^/]*)\/([^/]*)\/?$/.exec(pathname);
  const job = /^\/api\/v1\/job\/([^/]*)\/?$/.exec(pathname);
  if (!add && !job) return notFound;
  if (add ? !['GET', 'POST'].includes(methodName) : methodName !== 'GET') {
    return { kind: 'error', status: 405, code: 'METHOD_NOT_ALLOWED' };
  }
  let segments: string[];
  try {
    segments = (add ?? job)!.slice(1).map((segment) => decodeURIComponent(segment!));
  } catch {
    return { kind: 'error', status: 400, code: 'BAD_USER_INPUT' };
  }
  if (job) {
    const id = segments[0]!.toLowerCase();
    return UUID.test(id) && known.get(id) === OWNER_IN_DATABASE[owner] ? { kind: 'job', id } : notFound;
  }
  const key = headers.get('idempotency-key');
  const prediction = predictInput({ num1: segments[0], num2: segments[1], ...(key === null ? {} : { idempotencyKey: key }) });
  if (!prediction.ok) return { kind: 'error', status: 400, code: 'BAD_USER_INPUT', fields: prediction.fields! };
  if (reusesKeyWithOtherInput(owner, prediction, new Map())) {
    return { kind: 'error', status: 409, code: 'CONFLICT', fields: ['idempotencyKey'] };
  }
  return { kind: 'added', prediction };
}

async function checkRest(owner: Owner, methodName: string, path: string, headers: Headers, answer: Answer) {
  const request = `${methodName} ${path} ${JSON.stringify(Object.fromEntries(headers))}`;
  if (answer.status >= 500) fail('a 5xx answer', request, answer);
  const predicted = predictRest(owner, methodName, new URL(`http://yoga${path}`).pathname, headers);
  if (predicted.kind === 'graphql') {
    await checkGraphQL(request, answer, owner);
    return;
  }
  if (predicted.kind === 'static') {
    // An unknown versioned GraphiQL file is a 404; everything else here is served.
    if (answer.status !== 200 && answer.status !== 304 && answer.status !== 404) {
      fail('expected a static file', request, answer);
    }
    return;
  }
  // HEAD answers may come without a body; their status must still be right.
  const bodyless = (methodName === 'HEAD' && answer.text === '') || predicted.kind === 'preflight';
  const body = answer.json as Record<string, any> | undefined;
  if (!bodyless && (!isObject(body) || !/^application\/json/.test(answer.headers.get('content-type') ?? ''))) {
    fail('the answer is not JSON', request, answer);
  }
  switch (predicted.kind) {
    case 'preflight':
      if (answer.status !== 204 || answer.text !== '') fail('expected a 204 preflight answer', request, answer);
      return;
    case 'health':
      if (answer.status !== 200 || (!bodyless && body!['status'] !== 'ok')) fail('/health is not ok', request, answer);
      return;
    case 'ready':
      if (answer.status !== 200 || (!bodyless && body!['status'] !== 'ready')) fail('/ready is not ready', request, answer);
      return;
    case 'error': {
      if (answer.status !== predicted.status) fail(`expected ${predicted.status} ${predicted.code}`, request, answer);
      if (bodyless) return;
      const error = body!['error'];
      if (!isObject(error) || error['code'] !== predicted.code || typeof error['message'] !== 'string') {
        fail(`expected { error: { code: ${predicted.code}, message } }`, request, answer);
      }
      if (predicted.fields && !predicted.fields.includes(error['field'] as string)) {
        fail(`expected the field to be one of ${predicted.fields.join(', ')}`, request, answer);
      }
      return;
    }
    case 'job':
      if (answer.status !== 200 || body!['jobId'] !== predicted.id) fail(`expected job ${predicted.id}`, request, answer);
      return;
    case 'added': {
      const { prediction } = predicted;
      const expected = expectedJob(owner, prediction, new Map());
      if (answer.status !== 202) fail(`expected 202 with ${prediction.num1} + ${prediction.num2}`, request, answer);
      await remember(body!['jobId'], owner, request);
      const id = body!['jobId'] as string;
      if (!known.has(id)) fail('the job in the answer is not in the database', request, answer);
      if (
        body!['created'] !== expected.created ||
        (expected.id !== undefined && id !== expected.id) ||
        body!['num1'] !== expected.num1 ||
        body!['num2'] !== expected.num2 ||
        body!['status'] !== 'pending' ||
        answer.headers.get('location') !== `/api/v1/job/${id}`
      ) {
        fail(`expected ${JSON.stringify(expected)}`, request, answer);
      }
      rememberKey(owner, prediction.key, { id, num1: expected.num1, num2: expected.num2 });
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The properties

const ADD_JOB = 'mutation($input: AddJobInput!) { addJob(input: $input) { created job { id status num1 num2 priority idempotencyKey runAt } } }';
const ADD_JOBS = 'mutation($inputs: [AddJobInput!]!) { addJobs(inputs: $inputs) { created job { id num1 num2 idempotencyKey } } }';

async function restRequest(category: string, owner: Owner, value: RestCase, authorization?: string) {
  const headers = new Headers();
  if (value.idempotencyKey !== undefined) headers.set('idempotency-key', value.idempotencyKey);
  if (value.contentType) headers.set('content-type', value.contentType);
  if (authorization !== undefined) headers.set('authorization', authorization);
  const withBody = value.body !== undefined && !['GET', 'HEAD'].includes(value.method);
  const answer = await send(category, owner, value.path, {
    method: value.method,
    headers,
    ...(withBody ? { body: value.body } : {}),
  });
  await checkRest(owner, value.method, value.path, headers, answer);
}

const authorization = fc.constantFrom(
  `Bearer ${KEY}`, `bearer ${KEY}  `, `Bearer   ${KEY}`, 'Bearer', 'Bearer ', `Bearer ${KEY} extra`, KEY, `Basic ${KEY}`,
  'Bearer wrong-key-0123456789', `Bearer ${KEY}x`, `Bearer ${'k'.repeat(5000)}`, '', 'Bearer ÿ',
);

describe('fuzzing the HTTP API in process', { timeout: TIMEOUT_MS }, () => {
  it('REST: odd paths, numbers, methods and headers', async () => {
    await fuzz('rest', restCase, 3500, (value) => restRequest('rest', 'open', value));
  });

  it('GraphQL addJob: odd numbers and wrong types in variables', async () => {
    await fuzz('graphql-add', addJobVariables, 1500, async (input) => {
      const request = JSON.stringify({ query: ADD_JOB, variables: { input } });
      const answer = await send('graphql-add', 'open', '/graphql', graphQLInit(request));
      const body = await checkGraphQL(request, answer, 'open');
      const prediction = predictInput(input);
      const payload = body?.data?.['addJob'] as { created: boolean; job: Record<string, unknown> } | undefined | null;
      if (!prediction.ok) {
        if (payload) fail('an invalid input was accepted', request, answer);
        const field = body?.errors?.[0]?.extensions?.['field'];
        if (prediction.fields && body?.errors?.[0]?.extensions?.['code'] === 'BAD_USER_INPUT' && !prediction.fields.includes(field as string)) {
          fail(`expected BAD_USER_INPUT on one of ${prediction.fields.join(', ')}`, request, answer);
        }
        return;
      }
      if (reusesKeyWithOtherInput('open', prediction, new Map())) {
        const error = body?.errors?.[0]?.extensions;
        if (payload || error?.['code'] !== 'CONFLICT' || error['field'] !== 'idempotencyKey') {
          fail('expected CONFLICT on idempotencyKey: the key was used with other numbers', request, answer);
        }
        return;
      }
      const expected = expectedJob('open', prediction, new Map());
      if (!payload || body?.errors) fail(`a valid input was refused; expected ${JSON.stringify(prediction)}`, request, answer);
      const { job } = payload;
      const matches =
        payload.created === expected.created &&
        (expected.id === undefined || job['id'] === expected.id) &&
        job['num1'] === expected.num1 &&
        job['num2'] === expected.num2 &&
        job['status'] === 'PENDING' &&
        (!expected.created ||
          (job['priority'] === prediction.priority &&
            job['idempotencyKey'] === prediction.key &&
            (prediction.runAt === null || job['runAt'] === prediction.runAt)));
      if (!matches) fail(`expected ${JSON.stringify({ ...prediction, ...expected })}`, request, answer);
      rememberKey('open', prediction.key, { id: job['id'] as string, num1: expected.num1, num2: expected.num2 });
    });
  });

  it('GraphQL addJobs: batches around the limit, with bad items', async () => {
    const item = fc.oneof(
      { weight: 8, arbitrary: fc.record({ num1: plainDecimal, num2: plainDecimal }, { requiredKeys: ['num1', 'num2'] }) },
      { weight: 1, arbitrary: fc.record({ num1: plainDecimal, num2: plainDecimal, idempotencyKey: fc.constantFrom('b1', 'b2', 'k1') }) },
      { weight: 1, arbitrary: addJobVariables },
      { weight: 1, arbitrary: wrongJson },
    );
    const inputs = fc.oneof(
      { weight: 6, arbitrary: fc.array(item, { minLength: 0, maxLength: MAX_BATCH + 5 }) },
      { weight: 1, arbitrary: fc.integer({ min: MAX_BATCH + 1, max: 3_000 }).map((n) => Array.from({ length: n }, () => ({ num1: '1', num2: '2' }))) },
      { weight: 1, arbitrary: item },
    );
    await fuzz('graphql-batch', inputs, 300, async (value) => {
      const request = JSON.stringify({ query: ADD_JOBS, variables: { inputs: value } });
      const answer = await send('graphql-batch', 'open', '/graphql', graphQLInit(request));
      const body = await checkGraphQL(request, answer, 'open');
      // graphql-js reads a single value where a list is expected as a list of one.
      const list = value === null || value === undefined ? null : Array.isArray(value) ? value : [value];
      const predictions = list?.map(predictInput) ?? [];
      const valid = list !== null && list.length >= 1 && list.length <= MAX_BATCH && predictions.every((p) => p.ok);
      const payloads = body?.data?.['addJobs'] as Array<{ created: boolean; job: Record<string, unknown> }> | undefined | null;
      if (!valid) {
        if (payloads) fail('an invalid batch was accepted', request, answer);
        return;
      }
      const firstInBatch = new Map<string, FirstJob>();
      const conflicts = predictions.flatMap((prediction, index) => {
        const ok = prediction as Extract<Prediction, { ok: true }>;
        const conflict = reusesKeyWithOtherInput('open', ok, firstInBatch);
        if (ok.key !== null && !firstInBatch.has(`open|${ok.key}`)) firstInBatch.set(`open|${ok.key}`, { id: '', num1: ok.num1, num2: ok.num2 });
        return conflict ? [predictions.length > 1 ? `inputs.${index}.idempotencyKey` : 'idempotencyKey'] : [];
      });
      if (conflicts.length > 0) {
        const error = body?.errors?.[0]?.extensions;
        if (payloads || error?.['code'] !== 'CONFLICT' || !conflicts.includes(error['field'] as string)) {
          fail(`expected CONFLICT on one of ${conflicts.join(', ')}`, request, answer);
        }
        return;
      }
      if (!payloads || body?.errors) fail('a valid batch was refused', request, answer);
      if (payloads.length !== predictions.length) fail(`expected ${predictions.length} jobs`, request, answer);
      const inBatch = new Map<string, FirstJob>();
      predictions.forEach((prediction, index) => {
        const ok = prediction as Extract<Prediction, { ok: true }>;
        const expected = expectedJob('open', ok, inBatch);
        const { created, job } = payloads[index]!;
        if (
          created !== expected.created ||
          (expected.id !== undefined && job['id'] !== expected.id) ||
          job['num1'] !== expected.num1 ||
          job['num2'] !== expected.num2
        ) {
          fail(`item ${index}: expected ${JSON.stringify(expected)}`, request, answer);
        }
        if (ok.key !== null && !inBatch.has(`open|${ok.key}`)) {
          inBatch.set(`open|${ok.key}`, { id: job['id'] as string, num1: expected.num1, num2: expected.num2 });
        }
      });
      predictions.forEach((prediction, index) => {
        const ok = prediction as Extract<Prediction, { ok: true }>;
        const { job } = payloads[index]!;
        rememberKey('open', ok.key, { id: job['id'] as string, num1: job['num1'] as string, num2: job['num2'] as string });
      });
    });
  });

  it('GraphQL documents: random, huge, deep and broken', async () => {
    const variables = fc.option(
      fc.oneof(
        fc.dictionary(fc.constantFrom('a', 'b', 'input', 'id', 'inputs'), wrongJson, { maxKeys: 3 }),
        addJobVariables.map((input) => ({ input, a: input })),
        wrongJson,
      ),
      { nil: undefined },
    );
    const operationName = fc.option(fc.constantFrom<unknown>('Op', 'Op2', 'Nope', '', 5, null), { nil: undefined, freq: 4 });
    await fuzz('graphql-documents', fc.tuple(anyDocument, variables, operationName), 2500, async ([query, vars, name]) => {
      const request = JSON.stringify({ query, variables: vars, operationName: name });
      const answer = await send('graphql-documents', 'open', '/graphql', graphQLInit(request));
      await checkGraphQL(request, answer, 'open');
    });
  });

  it('GraphQL mutations: several in one document, some failing', async () => {
    await fuzz('graphql-mutations', mutationBatch, 500, async (query) => {
      const request = JSON.stringify({ query });
      const answer = await send('graphql-mutations', 'open', '/graphql', graphQLInit(request));
      await checkGraphQL(request, answer, 'open');
    });
  });

  it('GraphQL over GET: with and without the CSRF header, mutations refused', async () => {
    const params = fc.record(
      {
        query: fc.oneof(anyDocument, mutationBatch),
        variables: fc.oneof(fc.json(), fc.constantFrom('{', '[]', 'null', '%zz')),
        operationName: fc.constantFrom('Op', '', 'Nope'),
        extensions: fc.constantFrom('{}', '1', '{'),
      },
      { requiredKeys: ['query'] },
    );
    const extra = fc.record({ csrf: fc.boolean(), method: fc.constantFrom('GET', 'GET', 'GET', 'HEAD', 'DELETE', 'PUT', 'PATCH', 'OPTIONS') });
    const jobCount = async () => ((await db.query<{ count: number }>(COUNT_JOBS)) as [{ count: number }])[0].count;
    const before = await jobCount();
    await fuzz('graphql-get', fc.tuple(params, extra), 400, async ([values, { csrf, method: verb }]) => {
      const search = new URLSearchParams(values as Record<string, string>).toString();
      const path = `/graphql?${search}`;
      const answer = await send('graphql-get', 'open', path, {
        method: verb,
        headers: { accept: 'application/json', ...(csrf ? { 'x-graphql-yoga-csrf': '1' } : {}) },
      });
      const request = `${verb} ${path}`;
      if (verb === 'HEAD' && answer.text === '') {
        if (answer.status >= 500) fail('a 5xx answer', request, answer);
        return;
      }
      await checkGraphQL(request, answer, 'open');
    });
    // A mutation over GET must never run: an answer that showed the job it made would pass the
    // checks above, since every job an answer shows is counted as seen.
    expect(await jobCount()).toBe(before);
  });

  it('GraphQL bodies: invalid JSON, wrong content types, oversized', async () => {
    await fuzz('graphql-bodies', rawBody, 1200, async ({ body, contentType, accept }: RawBody) => {
      const size = typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength;
      const request = `${contentType} (${size} bytes) ${typeof body === 'string' ? body : `<${size} bytes>`}`;
      const answer = await send('graphql-bodies', 'open', '/graphql', graphQLInit(body, contentType, accept ? { accept } : {}));
      await checkGraphQL(request, answer, 'open', accept);
      if (size > MAX_BODY_BYTES && answer.status < 400) fail('an oversized body was taken', request, answer);
    });
  });

  it('GraphQL subscriptions over HTTP: known, unknown and malformed ids, streaming or not', async () => {
    const added = await send('setup', 'open', '/api/v1/add/20/22', { method: 'POST' });
    const existing = (added.json as { jobId: string }).jobId;
    await remember(existing, 'open', 'setup');
    await fuzz('graphql-subscriptions', httpSubscriptionCase, 300, async ({ id: raw, inline, accept }: HttpSubscriptionCase) => {
      const id = raw.replaceAll(EXISTING_JOB, existing);
      const document = inline && /^[\w -]*$/.test(id)
        ? { query: `subscription { jobUpdated(id: "${id}") { id status } }` }
        : { query: 'subscription($id: ID!) { jobUpdated(id: $id) { id status } }', variables: { id } };
      const request = `accept ${accept ?? '(none)'}: ${JSON.stringify(document)}`;
      sent['graphql-subscriptions'] = (sent['graphql-subscriptions'] ?? 0) + 1;
      const response = await apps.open.fetch('http://yoga/graphql', graphQLInit(JSON.stringify(document), 'application/json', accept ? { accept } : {}));
      const type = response.headers.get('content-type') ?? '';
      // The README: a subscription over HTTP is streamed as server-sent events, and only to a
      // client that asks for them; any other is refused with 406, naming SSE and WebSocket.
      if (!acceptsEventStream(accept)) {
        const answer = { status: response.status, headers: response.headers, text: await response.text(), json: undefined as unknown };
        if (answer.status !== 406 || !type.includes('json')) fail('a subscription without SSE was not refused with a JSON 406', request, answer);
        const body = JSON.parse(answer.text) as GraphQLBody;
        if (body.errors?.[0]?.extensions?.['code'] !== 'BAD_REQUEST' || !/text\/event-stream[\s\S]*WebSocket/.test(body.errors[0].message)) {
          fail('the refusal names neither SSE nor WebSocket', request, answer);
        }
        return;
      }
      // A refusal before the stream began may come as one JSON result to a client that also
      // accepts JSON (as the GraphQL-over-HTTP spec allows): 200, with the coded error.
      if (id !== existing && type.startsWith('application/json') && /json/i.test(accept ?? '')) {
        const text = await response.text();
        const codes = ((JSON.parse(text) as GraphQLBody).errors ?? []).map((error) => error.extensions?.['code']);
        if (response.status !== 200 || codes.join() !== 'NOT_FOUND') fail('an unknown job is not NOT_FOUND', request, { status: response.status, text });
        return;
      }
      if (response.status !== 200 || !type.startsWith('text/event-stream')) {
        fail('a subscription that asked for SSE got no stream', request, { status: response.status, text: await response.text() });
      }
      const events = sseEvents(response);
      const first = (await events.next()).value as GraphQLBody | undefined;
      const shown = JSON.stringify(first);
      if (id === existing) {
        if ((first?.data?.['jobUpdated'] as { id?: string } | undefined)?.id !== existing) fail('the job did not come first', request, { status: 200, text: shown });
        await events.return(undefined);
        return;
      }
      const codes = (first?.errors ?? []).map((error) => error.extensions?.['code']);
      if (codes.length !== 1 || codes[0] !== 'NOT_FOUND') fail('an unknown job is not NOT_FOUND', request, { status: 200, text: shown });
      if (!(await events.next()).done) fail('the stream went on after NOT_FOUND', request, { status: 200, text: shown });
    });
  });

  it('with API keys: refusals are 401 with a JSON body, and valid keys work', async () => {
    await fuzz('keyed-rest', fc.tuple(restCase, fc.option(authorization, { nil: undefined })), 400, ([value, auth]) =>
      restRequest('keyed-rest', 'keyed', value, auth),
    );
    await fuzz('keyed-graphql', fc.tuple(fc.oneof(anyDocument, fc.constant(ADD_JOB)), addJobVariables, fc.option(authorization, { nil: undefined })), 300, async ([query, input, auth]) => {
      const request = JSON.stringify({ query, variables: { input } });
      const headers: Record<string, string> = auth === undefined ? {} : { authorization: auth };
      const answer = await send('keyed-graphql', 'keyed', '/graphql', graphQLInit(request, 'application/json', headers));
      const body = await checkGraphQL(`${auth} ${request}`, answer, 'keyed');
      if (bearerKey(auth) !== KEY && body?.data && Object.values(body.data).some((value) => value !== null)) {
        fail('data for a request without a valid key', request, answer);
      }
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Over a real port: raw HTTP request targets, and graphql-ws

describe('fuzzing over a real port', { timeout: TIMEOUT_MS }, () => {
  let server: HttpServer;
  let port: number;
  let existingJob: string;
  const consoleErrors: unknown[][] = [];

  beforeAll(async () => {
    server = testServer({ app: apps.open, auth: createAuthenticator(undefined) }, { maxSubscriptionsPerConnection: 5, maxMessageBytes: MAX_BODY_BYTES, closeGraceMs: 500 });
    await server.start();
    port = server.address.port;
    const answer = await send('setup', 'open', '/api/v1/add/1/2', { method: 'POST' });
    existingJob = (answer.json as { jobId: string }).jobId;
    await remember(existingJob, 'open', 'setup');
    // graphql-ws reports what it takes for faults of its own on console.error.
    vi.spyOn(console, 'error').mockImplementation((...args: unknown[]) => void consoleErrors.push(args));
  });

  afterAll(async () => {
    vi.restoreAllMocks();
    await server?.stop();
  });

  function expectNoConsoleErrors(request: string) {
    if (consoleErrors.length > 0) {
      const printed = consoleErrors.map((args) => args.map((arg) => (arg instanceof Error ? arg.stack : String(arg))).join(' '));
      consoleErrors.length = 0;
      fail(`console.error was called: ${printed.join('\n')}`, request);
    }
  }

  it('raw HTTP: request targets no client would normalise', async () => {
    const target = fc.oneof(
      { weight: 6, arbitrary: restCase.map((value) => value.path) },
      { weight: 1, arbitrary: fc.constantFrom('*', '//', '//api/v1/add/1/2', 'http://other/api/v1/add/1/2', '/api/v1/add/1/2#x', '/%', '/api/v1/add/%/1', '/graphql/../api/v1/add/1/2', '/api/v1/add/1/2/..', '/api/./v1/add/3/4', '/./health', '/health?x', '/\\api') },
    );
    const host = fc.oneof(
      { weight: 6, arbitrary: fc.constant(undefined) },
      { weight: 1, arbitrary: fc.constantFrom('exa mple', '[::1', '', 'a:b:c', 'localhost:99999', 'x/y', '%41', 'ü.example', 'localhost:') },
    );
    const escape = (path: string) => path.replace(/[^\u0021-\u007e]/gu, (c) => encodeURIComponent(c));
    await fuzz('raw-http', fc.tuple(method, target, host), 300, async ([verb, rawTarget, hostHeader]) => {
      const path = escape(rawTarget);
      sent['raw-http'] = (sent['raw-http'] ?? 0) + 1;
      const answer = await new Promise<{ status: number; text: string; type: string }>((resolve, reject) => {
        const headers = hostHeader === undefined ? {} : { host: hostHeader };
        const req = httpRequest({ host: '127.0.0.1', port, method: verb, path, headers }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => resolve({ status: res.statusCode!, text, type: res.headers['content-type'] ?? '' }));
        });
        req.on('error', reject);
        req.end();
      });
      const request = `${verb} ${path}${hostHeader === undefined ? '' : ` (Host: ${hostHeader})`}`;
      if (answer.status >= 500) fail('a 5xx answer', request, answer);
      // Node's own HTTP parser refuses a request line over 16 kB (431), or a target that is no
      // path (400), before the app sees it.
      const refusedByNode = (answer.status === 431 || answer.status === 400) && answer.text === '';
      if (answer.status >= 400 && verb !== 'HEAD' && !refusedByNode && !/json/.test(answer.type)) {
        fail('a 4xx that is not JSON', request, answer);
      }
      if (answer.text) await remember(JSON.parse(answer.text), 'open', request);
    });
  });

  it('graphql-ws: broken frames never crash the server, and a fresh client still subscribes', async () => {
    await fuzz('websocket', wsCase, 300, async (value) => {
      const transcript = await converse(`ws://127.0.0.1:${port}/graphql`, value, existingJob);
      const request = `protocol ${JSON.stringify(value.protocol)}: ${transcript.sent.join(' → ')}`;
      const answer = { status: transcript.closeCode ?? 0, text: transcript.received.join(' | ') };
      sent['websocket'] = (sent['websocket'] ?? 0) + 1;
      sent['websocket-frames'] = (sent['websocket-frames'] ?? 0) + transcript.sent.length;
      if (transcript.problem) fail(transcript.problem, request, answer);
      const code = transcript.closeCode;
      if (code !== undefined && (code === 1011 || code === 4500 || code < 1000 || (code > 1015 && code < 4000) || code > 4999)) {
        fail(`closed with ${code}`, request, answer);
      }
      for (const message of transcript.messages) {
        const errors =
          message.type === 'error' ? message.payload : message.type === 'next' ? (message.payload as GraphQLBody)?.errors : undefined;
        if (message.type === 'error' && (!Array.isArray(errors) || errors.length === 0)) fail('an error message without errors', request, answer);
        for (const error of (errors as GraphQLBody['errors']) ?? []) {
          const errorCode = error?.extensions?.['code'];
          if (typeof errorCode !== 'string' || errorCode === 'INTERNAL_SERVER_ERROR') fail('an error without a code', request, answer);
        }
        if (message.type === 'next') await remember((message.payload as GraphQLBody)?.data, 'open', request);
      }
      expectNoConsoleErrors(request);
    });

    const client = createClient({ url: `ws://127.0.0.1:${port}/graphql`, webSocketImpl: WebSocket, retryAttempts: 0, lazy: true });
    const added = await send('setup', 'open', '/api/v1/add/20/22', { method: 'POST' });
    const id = (added.json as { jobId: string }).jobId;
    await remember(id, 'open', 'setup');
    const updates = client.iterate<{ jobUpdated: { status: string } }>({ query: `subscription { jobUpdated(id: "${id}") { status } }` });
    expect((await updates.next()).value?.data?.jobUpdated.status).toBe('PENDING');
    const cancel = graphQLInit(JSON.stringify({ query: `mutation { cancelJob(id: "${id}") { id } }` }));
    await cancelAndExpectEnded(() => send('setup', 'open', '/graphql', cancel), updates);
    await client.dispose();
  });
});

// ---------------------------------------------------------------------------------------------
// One graphql-ws conversation

interface Transcript {
  sent: string[];
  received: string[];
  messages: Array<{ type?: string; id?: unknown; payload?: unknown }>;
  closeCode?: number;
  problem?: string;
}

const WS_WAIT_MS = 3_000;

/**
 * Sends a case's frames, then a ping. The server must answer the ping (or have closed the
 * socket), and must answer every well-formed subscribe it accepted: a subscription it forgets
 * is a client waiting forever.
 */
async function converse(url: string, value: WsCase, existingJob: string): Promise<Transcript> {
  const transcript: Transcript = { sent: [], received: [], messages: [] };
  const socket = new WebSocket(url, value.protocol as string | string[]);
  let wake: (() => void) | undefined;
  const changed = () => wake?.();
  let closedByUs = false;
  let closed = false;
  socket.on('message', (data, isBinary) => {
    const text = String(data);
    transcript.received.push(clip(text, 300));
    try {
      transcript.messages.push(JSON.parse(text));
    } catch {
      transcript.problem ??= `the server sent a frame that is not JSON (binary: ${isBinary})`;
    }
    changed();
  });
  socket.on('close', (code) => {
    closed = true;
    if (!closedByUs) transcript.closeCode = code;
    changed();
  });
  socket.on('error', () => changed());
  socket.on('open', changed);

  async function until(condition: () => boolean, ms = WS_WAIT_MS): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!condition()) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return true;
  }

  const open = () => socket.readyState === WebSocket.OPEN;
  const acked = () => transcript.messages.some((message) => message.type === 'connection_ack');
  const answered = (id: string) =>
    transcript.messages.some((message) => message.id === id && ['next', 'error', 'complete'].includes(message.type ?? ''));
  const awaiting = new Set<string>();

  if (!(await until(() => open() || closed || socket.readyState === WebSocket.CLOSED))) {
    transcript.problem = 'the socket never opened';
  }
  for (const step of value.steps) {
    if (!open()) break;
    if (step === 'await-ack') {
      if (!(await until(() => acked() || closed))) transcript.problem ??= 'no connection_ack';
      continue;
    }
    if ('text' in step) {
      const text = step.text.replaceAll(EXISTING_JOB, existingJob);
      transcript.sent.push(clip(text, 200));
      let message: unknown;
      try {
        message = JSON.parse(text);
      } catch {
        message = undefined;
      }
      const frame = message as { type?: unknown; id?: unknown; payload?: { query?: unknown } } | undefined;
      if (isObject(frame) && typeof frame.id === 'string' && frame.id !== '') {
        const wellFormed = frame.type === 'subscribe' && isObject(frame.payload) && typeof frame.payload.query === 'string';
        if (wellFormed && acked() && Buffer.byteLength(text) <= MAX_BODY_BYTES) awaiting.add(frame.id);
        if (frame.type === 'complete') awaiting.delete(frame.id);
      }
      socket.send(text);
    } else {
      transcript.sent.push(`<${step.binary ? 'binary' : 'text'} ${Buffer.from(step.bytes).toString('hex').slice(0, 40)}>`);
      socket.send(step.bytes, { binary: step.binary });
    }
  }
  if (open()) {
    socket.send('{"type":"ping"}');
    if (!(await until(() => closed || transcript.messages.some((message) => message.type === 'pong')))) {
      transcript.problem ??= 'no pong';
    }
  }
  if (!(await until(() => closed || [...awaiting].every(answered)))) {
    transcript.problem ??= `no answer to subscribe ${[...awaiting].filter((id) => !answered(id)).join(', ')}`;
  }
  closedByUs = !closed;
  if (!closed) socket.close(1000);
  if (!(await until(() => closed, 2_000))) socket.terminate();
  return transcript;
}
