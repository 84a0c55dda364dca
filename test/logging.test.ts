import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../src/db/database.ts';
import { readMigrations } from '../src/db/migrate.ts';
import { MIGRATIONS_DIR } from '../src/db/open.ts';
import { type App, createApp } from '../src/http/app.ts';
import { createAuthenticator } from '../src/http/auth.ts';
import type { JobEventHub } from '../src/jobs/events.ts';
import { addDecimals } from '../src/jobs/decimal.ts';
import type { JobService } from '../src/jobs/service.ts';
import { createLogger } from '../src/logger.ts';
import { TEST_LIMITS } from './helpers/api.ts';
import type { TestDatabase } from './helpers/database.ts';
import { ANONYMOUS, closeJobsDatabase, createService, createWorker, openJobsDatabase, statusOf, waitForJob } from './helpers/jobs.ts';

interface Line {
  level: number;
  msg: string;
  [key: string]: unknown;
}

/** A logger made the way the service makes its own, writing into `lines` instead of stdout. */
function capture(level: 'info' | 'debug') {
  const lines: Line[] = [];
  const logger = createLogger({ level, format: 'json' }, { write: (text) => void lines.push(JSON.parse(text)) });
  return { logger, lines };
}

/** The whole HTTP app, made as the service makes it, over `jobs`; its log lines land in `lines`. */
async function loggedApp(level: 'info' | 'debug', jobs: JobService): Promise<{ app: App; lines: Line[] }> {
  const { logger, lines } = capture(level);
  const migrations = await readMigrations(MIGRATIONS_DIR);
  const app = createApp({ jobs, db, migrations, logger, auth: createAuthenticator(undefined), limits: TEST_LIMITS });
  return { app, lines };
}

const DEBUG = 20;
const INFO = 30;

let testDb: TestDatabase;
let db: Database;
let hub: JobEventHub;
let service: JobService;

beforeAll(async () => {
  ({ testDb, db, hub, service } = await openJobsDatabase(import.meta.filename));
});

afterAll(() => closeJobsDatabase({ testDb, hub }));

describe('request log', () => {
  let app: App;
  let lines: Line[];

  beforeAll(async () => {
    ({ app, lines } = await loggedApp('debug', service));
  });

  const requests = () => lines.filter((line) => line.msg === 'request');

  it('writes one info line per request, and echoes the caller’s request id', async () => {
    lines.length = 0;
    const response = await app.fetch('http://yoga/api/v1/add/2/3?secret=no', {
      method: 'POST',
      headers: { 'x-request-id': 'trace-42.a' },
    });
    expect(response.status).toBe(202);
    expect(response.headers.get('x-request-id')).toBe('trace-42.a');
    expect(requests()).toEqual([
      expect.objectContaining({ level: INFO, reqId: 'trace-42.a', method: 'POST', path: '/api/v1/add/2/3', status: 202 }),
    ]);
    expect(requests()[0]!.ms).toEqual(expect.any(Number));
    expect(JSON.stringify(lines)).not.toContain('secret');
  });

  it('makes up an id when there is none, or the given one is not sane', async () => {
    lines.length = 0;
    const plain = await app.fetch('http://yoga/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ __typename }' }),
    });
    const forged = await app.fetch('http://yoga/api/v1/job/nope', { headers: { 'x-request-id': 'a b\n{"level":60}' } });
    const ids = [plain, forged].map((response) => response.headers.get('x-request-id'));
    for (const id of ids) expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(new Set(ids).size).toBe(2);
    expect(requests().map((line) => [line.reqId, line.path, line.status])).toEqual([
      [ids[0], '/graphql', 200],
      [ids[1], '/api/v1/job/nope', 404],
    ]);
  });

  it('logs probes and scrapes at debug only', async () => {
    lines.length = 0;
    await app.fetch('http://yoga/health');
    await app.fetch('http://yoga/ready');
    expect(requests().map((line) => [line.path, line.level])).toEqual([
      ['/health', DEBUG],
      ['/ready', DEBUG],
    ]);
  });

  it('never writes an Authorization header or an API key', async () => {
    const { logger, lines: secrets } = capture('info');
    logger.info({ headers: { authorization: 'Bearer s3cr3t', 'x-api-key': 'k3y' } }, 'headers');
    logger.info({ req: { headers: { authorization: 'Bearer s3cr3t' } }, caller: { apiKey: 'k3y' } }, 'nested');
    logger.info({ apiKey: 'k3y', authorization: 'Basic s3cr3t' }, 'flat');
    expect(secrets).toHaveLength(3);
    const text = JSON.stringify(secrets);
    expect(text).not.toMatch(/s3cr3t|k3y/);
    expect(text).toContain('[redacted]');
  });
});

describe('a server failure during a request', () => {
  const ERROR = 50;
  let app: App;
  let lines: Line[];

  beforeAll(async () => {
    const jobs = createService(db, hub);
    jobs.addJob = async () => {
      throw new TypeError('boom');
    };
    ({ app, lines } = await loggedApp('info', jobs));
  });

  const failures = () => lines.filter((line) => line.level >= ERROR);

  it('is logged once over GraphQL, with the request id and the field, and masked for the client', async () => {
    lines.length = 0;
    const response = await app.fetch('http://yoga/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'trace-gql' },
      body: JSON.stringify({ query: 'mutation { addJob(input: {num1: "1", num2: "2"}) { job { id } } }' }),
    });
    const body = (await response.json()) as { errors: Array<{ message: string; extensions: { code: string } }> };
    expect(body.errors).toEqual([expect.objectContaining({ message: 'Unexpected error.', extensions: { code: 'INTERNAL_SERVER_ERROR' } })]);
    expect(failures()).toEqual([
      expect.objectContaining({ msg: 'unexpected error', reqId: 'trace-gql', path: 'addJob', err: expect.objectContaining({ message: 'boom', type: 'TypeError' }) }),
    ]);
  });

  it('is logged once over REST, with the request id, and answered with a JSON 500', async () => {
    lines.length = 0;
    const response = await app.fetch('http://yoga/api/v1/add/1/2', { method: 'POST' });
    expect(response.status).toBe(500);
    expect(await response.json()).toEqual({ error: { code: 'INTERNAL_SERVER_ERROR', message: 'unexpected error' } });
    const reqId = response.headers.get('x-request-id');
    expect(reqId).toMatch(/^[0-9a-f-]{36}$/);
    expect(failures()).toEqual([
      expect.objectContaining({ msg: 'unexpected error', reqId, err: expect.objectContaining({ message: 'boom' }) }),
    ]);
  });
});

describe('job state changes', () => {
  it('log one debug line each', async () => {
    const { logger, lines } = capture('debug');
    const jobs: JobService = createService(db, hub, {}, { logger });
    const worker = createWorker(db, hub, {
      logger,
      handlers: {
        add: (input, context) => {
          if (input.num1 === '1' && context.attempt === 1) throw new Error('once');
          if (input.num1 === '9') throw new Error('always');
          return addDecimals(input.num1, input.num2);
        },
      },
    });
    const { job: flaky } = await jobs.addJob({ num1: '1', num2: '1' }, ANONYMOUS);
    const { job: doomed } = await jobs.addJob({ num1: '9', num2: '1' }, ANONYMOUS);
    await worker.start();
    await waitForJob(jobs, hub, flaky.id, statusOf('completed'));
    await waitForJob(jobs, hub, doomed.id, statusOf('failed'));
    await worker.stop();
    await jobs.retrieveJob(flaky.id, ANONYMOUS);

    const changes = (id: string) =>
      lines.filter((line) => line.jobId === id).map((line) => [line.level, line.msg, line.attempt ?? null]);
    expect(changes(flaky.id)).toEqual([
      [DEBUG, 'job pending', null],
      [DEBUG, 'job wip', 1],
      [DEBUG, 'job retrying', 1],
      [DEBUG, 'job wip', 2],
      [DEBUG, 'job completed', 2],
      [DEBUG, 'job retrieved', null],
    ]);
    // The service's maxAttempts in the tests is 3.
    expect(changes(doomed.id)).toEqual([
      [DEBUG, 'job pending', null],
      [DEBUG, 'job wip', 1],
      [DEBUG, 'job retrying', 1],
      [DEBUG, 'job wip', 2],
      [DEBUG, 'job retrying', 2],
      [DEBUG, 'job wip', 3],
      [DEBUG, 'job failed', 3],
    ]);
    expect(lines.find((line) => line.msg === 'job failed')).toMatchObject({ reason: 'exhausted', err: expect.anything() });
  });
});
