import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { Database } from '../src/db/database.ts';
import type { HttpServer } from '../src/http/server.ts';
import { createTestApp, type TestApp, testServer } from './helpers/api.ts';
import { createTestDatabase, type TestDatabase } from './helpers/database.ts';

const EVIL = 'https://evil.example';
const FRIEND = 'https://jobs.friend.example';

let testDb: TestDatabase;
let db: Database;
/** No CORS_ORIGINS, as by default. */
let closed: TestApp;
/** CORS_ORIGINS=FRIEND. */
let friendly: TestApp;

beforeAll(async () => {
  testDb = await createTestDatabase(import.meta.filename);
  db = testDb.open();
  closed = await createTestApp(db);
  friendly = await createTestApp(db, { corsOrigins: [FRIEND] });
});

afterAll(async () => {
  await closed.close();
  await friendly.close();
  await testDb.drop();
});

async function preflight(api: TestApp, origin: string, path = '/graphql') {
  return api.app.fetch(`http://yoga${path}`, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
  });
}

describe('CORS', () => {
  it('allows no other origin by default', async () => {
    for (const path of ['/graphql', '/api/v1/add/1/2']) {
      const response = await preflight(closed, EVIL, path);
      expect(response.headers.get('access-control-allow-origin')).toBeNull();
      expect(response.headers.get('access-control-allow-credentials')).toBeNull();
    }
    const post = await closed.app.fetch('http://yoga/graphql', {
      method: 'POST',
      headers: { origin: EVIL, 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ __typename }' }),
    });
    expect(post.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('allows the origins CORS_ORIGINS lists, and only those', async () => {
    const allowed = await preflight(friendly, FRIEND);
    expect(allowed.headers.get('access-control-allow-origin')).toBe(FRIEND);
    expect(allowed.headers.get('access-control-allow-credentials')).toBe('true');
    const refused = await preflight(friendly, EVIL);
    expect(refused.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('cross-site requests to the REST routes', () => {
  async function rest(api: TestApp, method: string, path: string, headers: Record<string, string>) {
    const response = await api.app.fetch(`http://yoga${path}`, { method, headers });
    return { status: response.status, body: (await response.json()) as { error?: { code: string }; jobId?: string } };
  }

  it('refuses a browser request from a foreign page, and writes nothing', async () => {
    const before = await db.prisma.job.count();
    for (const [method, headers] of [
      ['POST', { origin: EVIL }],
      ['GET', { origin: EVIL }],
      ['POST', { origin: 'null' }],
      // A cross-site navigation or <img>: no Origin, but the browser says where it comes from.
      ['GET', { 'sec-fetch-site': 'cross-site' }],
    ] as const) {
      const answer = await rest(closed, method, '/api/v1/add/1/2', headers);
      expect(answer, `${method} ${JSON.stringify(headers)}`).toMatchObject({ status: 403, body: { error: { code: 'FORBIDDEN' } } });
    }
    const created = (await closed.jobs.addJob({ num1: '1', num2: '1' }, { owner: '' })).job.id;
    expect((await rest(closed, 'GET', `/api/v1/job/${created}`, { origin: EVIL })).status).toBe(403);
    expect(await db.prisma.job.count()).toBe(before + 1);
  });

  it('serves curl (no Origin), the service\'s own page, and a listed origin', async () => {
    for (const [api, headers] of [
      [closed, {}],
      [closed, { origin: 'http://yoga', 'sec-fetch-site': 'same-origin' }],
      [closed, { 'sec-fetch-site': 'none' }],
      [friendly, { origin: FRIEND, 'sec-fetch-site': 'cross-site' }],
    ] as const) {
      for (const method of ['POST', 'GET']) {
        expect((await rest(api, method, '/api/v1/add/1/2', headers)).status, `${method} ${JSON.stringify(headers)}`).toBe(202);
      }
    }
  });
});

describe('WebSocket upgrades', () => {
  let server: HttpServer;
  let port: number;
  beforeAll(async () => {
    server = testServer(friendly, { maxSubscriptionsPerConnection: 5, corsOrigins: [FRIEND], maxMessageBytes: 100_000 });
    await server.start();
    port = server.address.port;
  });
  afterAll(() => server.stop());

  /** The upgrade's answer: 101 when the socket opened, else the HTTP status of the refusal. */
  function upgrade(origin: string | undefined): Promise<number> {
    const socket = new WebSocket(`ws://127.0.0.1:${port}/graphql`, 'graphql-transport-ws', origin ? { origin } : {});
    return new Promise((resolve, reject) => {
      socket.once('open', () => {
        socket.close();
        resolve(101);
      });
      socket.once('unexpected-response', (_request, response) => resolve(response.statusCode ?? 0));
      socket.once('error', reject);
    });
  }

  it('refuses a browser upgrade from a foreign page, and takes one without Origin, from itself or a listed origin', async () => {
    expect(await upgrade(EVIL)).toBe(403);
    expect(await upgrade('null')).toBe(403);
    expect(await upgrade(undefined)).toBe(101);
    expect(await upgrade(`http://127.0.0.1:${port}`)).toBe(101);
    expect(await upgrade(FRIEND)).toBe(101);
  });
});
