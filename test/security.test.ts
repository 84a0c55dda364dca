import { request as httpRequest } from 'node:http';
import { print } from 'graphql';
import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import type { Database } from '../src/db/database.ts';
import type { HttpServer } from '../src/http/server.ts';
import {
  AddJobDocument,
  AddJobsDocument,
  CancelJobDocument,
  JobDocument,
  JobsDocument,
  JobUpdatedDocument,
  RetrieveJobDocument,
} from './graphql/generated/graphql.ts';
import { closeTestApp, codes, createTestApp, execute, openTestApp, sseEvents, type TestApp, testServer } from './helpers/api.ts';
import type { TestDatabase } from './helpers/database.ts';
import { cancelAndExpectEnded } from './helpers/subscribers.ts';

const KEY_A = 'key-a-0123456789abcdef';
const KEY_B = 'key-b-0123456789abcdef';
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

let testDb: TestDatabase;
let db: Database;
let api: TestApp;

beforeAll(async () => {
  ({ testDb, db, api } = await openTestApp(import.meta.filename, {
    apiKeys: [KEY_A, KEY_B],
    service: { maxBatchSize: 10 },
    // maxCost fits the typed documents (JobFields on a page of jobs: 126) with a little room.
    limits: { maxDepth: 5, maxAliases: 3, maxTokens: 400, maxCost: 140, maxDirectives: 2, maxBodyBytes: 20_000 },
  }));
});

afterAll(() => closeTestApp({ testDb, api }));

async function rest(method: string, path: string, headers: Record<string, string> = {}) {
  const response = await api.app.fetch(`http://yoga${path}`, { method, headers });
  return { status: response.status, body: (await response.json()) as { error?: { code: string }; jobId?: string } };
}

async function addAs(key: string): Promise<string> {
  const result = await execute(api.app, AddJobDocument, { input: { num1: '1', num2: '2' } }, bearer(key));
  return result.data!.addJob!.job.id;
}

describe('with API keys', () => {
  it('turns away requests without a valid key, on REST and GraphQL', async () => {
    const before = await db.prisma.job.count();
    expect(await rest('POST', '/api/v1/add/1/2')).toMatchObject({
      status: 401,
      body: { error: { code: 'UNAUTHENTICATED' } },
    });
    expect((await rest('POST', '/api/v1/add/1/2', bearer('wrong-key-0123456789'))).status).toBe(401);
    expect((await rest('POST', '/api/v1/add/1/2', { authorization: KEY_A })).status).toBe(401);

    const response = await api.app.fetch('http://yoga/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: print(AddJobDocument), variables: { input: { num1: '1', num2: '1' } } }),
    });
    expect(response.status).toBe(401);
    expect(codes((await response.json()) as never)).toEqual(['UNAUTHENTICATED']);
    expect(await db.prisma.job.count()).toBe(before);
  });

  it('keeps the health checks open to the load balancer', async () => {
    expect((await api.app.fetch('http://yoga/health')).status).toBe(200);
    expect((await api.app.fetch('http://yoga/ready')).status).toBe(200);
  });

  it('stores only a digest of the key as the owner', async () => {
    const id = await addAs(KEY_A);
    const row = await db.prisma.job.findUniqueOrThrow({ where: { id } });
    expect(row.owner).toMatch(/^[0-9a-f]{64}$/);
    expect(row.owner).not.toContain(KEY_A);
  });

  it("hides one key's jobs from another: reads, retrieval, cancellation, lists", async () => {
    const id = await addAs(KEY_A);
    expect((await rest('GET', `/api/v1/job/${id}`, bearer(KEY_B))).status).toBe(404);
    expect(codes(await execute(api.app, JobDocument, { id }, bearer(KEY_B)))).toEqual(['NOT_FOUND']);
    expect(codes(await execute(api.app, RetrieveJobDocument, { id }, bearer(KEY_B)))).toEqual(['NOT_FOUND']);
    expect(codes(await execute(api.app, CancelJobDocument, { id }, bearer(KEY_B)))).toEqual(['NOT_FOUND']);
    const theirs = await execute(api.app, JobsDocument, { first: 100 }, bearer(KEY_B));
    expect(theirs.errors).toBeUndefined();
    expect(theirs.data!.jobs.nodes.map((job) => job.id)).not.toContain(id);

    const mine = await rest('GET', `/api/v1/job/${id}`, bearer(KEY_A));
    expect(mine).toMatchObject({ status: 200, body: { jobId: id } });
    const listed = await execute(api.app, JobsDocument, { first: 100 }, bearer(KEY_A));
    expect(listed.data!.jobs.nodes.map((job) => job.id)).toContain(id);
  });

  it('keeps idempotency keys apart per API key', async () => {
    const a = await rest('POST', '/api/v1/add/1/1', { ...bearer(KEY_A), 'idempotency-key': 'same' });
    const b = await rest('POST', '/api/v1/add/1/1', { ...bearer(KEY_B), 'idempotency-key': 'same' });
    expect(a.body.jobId).not.toBe(b.body.jobId);
  });

  it("refuses a subscription to another key's job over SSE", async () => {
    const id = await addAs(KEY_A);
    const response = await api.app.fetch('http://yoga/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...bearer(KEY_B) },
      body: JSON.stringify({ query: print(JobUpdatedDocument), variables: { id } }),
    });
    const { value } = await sseEvents(response).next();
    expect(codes(value as never)).toEqual(['NOT_FOUND']);
  });

  describe('over WebSocket', () => {
    let server: HttpServer;
    let url: string;
    beforeAll(async () => {
      server = testServer(api, { maxSubscriptionsPerConnection: 2, maxMessageBytes: 20_000 });
      await server.start();
      url = `ws://127.0.0.1:${server.address.port}/graphql`;
    });
    afterAll(() => server.stop());

    function connect(connectionParams?: Record<string, string>) {
      return createClient({ url, webSocketImpl: WebSocket, retryAttempts: 0, lazy: true, connectionParams });
    }

    it('closes a connection without a key (4403)', async () => {
      const client = connect();
      const closed = new Promise<number>((resolve) => client.on('closed', (event) => resolve((event as CloseEvent).code)));
      const iterator = client.iterate({ query: print(JobUpdatedDocument), variables: { id: await addAs(KEY_A) } });
      await iterator.next().catch(() => undefined);
      expect(await closed).toBe(4403);
      await client.dispose();
    });

    it('closes a socket that sends an oversized or non-UTF-8 frame, and reports no fault of its own', async () => {
      const printed = vi.spyOn(console, 'error').mockImplementation(() => undefined);
      try {
        const frames: Array<[string | Buffer, number]> = [
          ['x'.repeat(20_001), 1009],
          [Buffer.from([0xff, 0xfe]), 1007],
        ];
        for (const [frame, code] of frames) {
          const socket = new WebSocket(url, 'graphql-transport-ws');
          await new Promise((resolve) => socket.once('open', resolve));
          const closed = new Promise<number>((resolve) => socket.once('close', resolve));
          socket.send(frame, { binary: false });
          expect(await closed).toBe(code);
        }
        expect(printed).not.toHaveBeenCalled();
      } finally {
        printed.mockRestore();
      }
    });

    it('closes with 4400 a socket that sends a message only a server may send', async () => {
      const printed = vi.spyOn(console, 'error').mockImplementation(() => undefined);
      try {
        for (const type of ['connection_ack', 'next', 'error']) {
          const socket = new WebSocket(url, 'graphql-transport-ws');
          await new Promise((resolve) => socket.once('open', resolve));
          const closed = new Promise<number>((resolve) => socket.once('close', resolve));
          socket.send(JSON.stringify({ id: '1', type, payload: type === 'error' ? [] : {} }));
          expect(await closed).toBe(4400);
        }
        expect(printed).not.toHaveBeenCalled();
      } finally {
        printed.mockRestore();
      }
    });

    it('labels parse, validation and operation-name errors with a code, as over HTTP', async () => {
      const client = connect({ authorization: `Bearer ${KEY_A}` });
      const codeOf = (payload: { query: string; operationName?: string }) =>
        client
          .iterate(payload)
          .next()
          .then(
            () => 'no error',
            (errors: Array<{ extensions?: { code?: string } }>) => errors[0]?.extensions?.code,
          );
      expect(await codeOf({ query: '{ job(' })).toBe('GRAPHQL_PARSE_FAILED');
      expect(await codeOf({ query: '{ nope }' })).toBe('GRAPHQL_VALIDATION_FAILED');
      expect(await codeOf({ query: 'query A { __typename }', operationName: 'B' })).toBe('OPERATION_RESOLUTION_FAILURE');
      await client.dispose();
    });

    it('answers a document over the depth, alias or directive limits with an error, and keeps the socket', async () => {
      const printed = vi.spyOn(console, 'error').mockImplementation(() => undefined);
      const client = connect({ authorization: `Bearer ${KEY_A}` });
      try {
        for (const query of [
          '{ jobs { edges { node { ... on Job { ... on Job { ... on Job { id } } } } } } }',
          '{ a: jobs { pageInfo { hasNextPage } } b: jobs { pageInfo { hasNextPage } } c: jobs { pageInfo { hasNextPage } } d: jobs { pageInfo { hasNextPage } } }',
          '{ jobs { nodes { id @include(if: true) @include(if: true) @skip(if: false) } } }',
        ]) {
          const errors = await client.iterate({ query }).next().then(
            () => [],
            (thrown: Array<{ extensions?: { code?: string } }>) => thrown,
          );
          expect(errors.map((error) => error.extensions?.code)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
        }
        expect((await client.iterate({ query: '{ __typename }' }).next()).value?.data).toEqual({ __typename: 'Query' });
        expect(printed).not.toHaveBeenCalled();
      } finally {
        printed.mockRestore();
        await client.dispose();
      }
    });

    it("answers NOT_FOUND for another key's job, and limits operations per connection", async () => {
      const id = await addAs(KEY_A);
      const stranger = connect({ authorization: `Bearer ${KEY_B}` });
      const refused = await stranger.iterate({ query: print(JobUpdatedDocument), variables: { id } }).next();
      expect(refused.value?.errors?.[0]?.extensions?.['code']).toBe('NOT_FOUND');
      expect(refused.value?.data ?? null).toBeNull();
      await stranger.dispose();

      const owner = connect({ authorization: `Bearer ${KEY_A}` });
      const first = owner.iterate({ query: print(JobUpdatedDocument), variables: { id } });
      const second = owner.iterate({ query: print(JobUpdatedDocument), variables: { id } });
      expect((await first.next()).value?.data).toBeTruthy();
      expect((await second.next()).value?.data).toBeTruthy();
      const third = await owner
        .iterate({ query: print(JobUpdatedDocument), variables: { id } })
        .next()
        .then(
          () => null,
          (errors: Array<{ extensions?: { code?: string } }>) => errors,
        );
      expect(third?.[0]?.extensions?.code).toBe('TOO_MANY_SUBSCRIPTIONS');
      // A job reaching a final state ends both subscriptions on the server, which frees their slots.
      await cancelAndExpectEnded(() => execute(api.app, CancelJobDocument, { id }, bearer(KEY_A)), first, second);
      const again = owner.iterate({ query: print(JobUpdatedDocument), variables: { id: await addAs(KEY_A) } });
      expect((await again.next()).value?.data).toBeTruthy();
      await again.return?.();
      await owner.dispose();
    });
  });
});

describe('limits', () => {
  const headers = { 'content-type': 'application/json', ...bearer(KEY_A) };
  async function send(body: string, extra: Record<string, string> = {}) {
    const response = await api.app.fetch('http://yoga/graphql', { method: 'POST', headers: { ...headers, ...extra }, body });
    const text = await response.text();
    return { status: response.status, body: JSON.parse(text) as { errors?: Array<{ message: string; extensions?: { code?: string } }> } };
  }
  const query = (text: string) => JSON.stringify({ query: text });

  it('caps query depth', async () => {
    const ok = await send(query('{ jobs { edges { node { id } } } }'));
    expect(ok.body.errors).toBeUndefined();
    const deep = await send(query('{ jobs { edges { node { ... on Job { ... on Job { ... on Job { id } } } } } } }'));
    expect(deep.body.errors?.[0]?.message).toMatch(/depth/i);
    expect(deep.body.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
  });

  it('caps aliases', async () => {
    const result = await send(query('{ a: jobs { pageInfo { hasNextPage } } b: jobs { pageInfo { hasNextPage } } c: jobs { pageInfo { hasNextPage } } d: jobs { pageInfo { hasNextPage } } }'));
    expect(result.body.errors?.[0]?.message).toMatch(/alias/i);
  });

  it('caps tokens', async () => {
    const fields = Array.from({ length: 450 }, () => 'id').join(' ');
    const result = await send(query(`{ jobs { nodes { ${fields} } } }`));
    expect(result.body.errors?.[0]?.message).toMatch(/token/i);
    expect(result.body.errors?.[0]?.extensions?.code).toBe('GRAPHQL_PARSE_FAILED');
  });

  it('caps directives', async () => {
    const result = await send(query('{ jobs { nodes { id @include(if: true) @include(if: true) @skip(if: false) } } }'));
    expect(result.body.errors?.[0]?.message).toMatch(/directive/i);
  });

  it('caps cost, as its setting says', async () => {
    const body = query('{ jobs { edges { node { id status num1 num2 result } } } }');
    expect((await send(body)).body.errors).toBeUndefined();
    const strict = await createTestApp(db, { apiKeys: [KEY_A], limits: { maxCost: 10 } });
    const response = await strict.app.fetch('http://yoga/graphql', { method: 'POST', headers, body });
    const result = (await response.json()) as { errors?: Array<{ message: string; extensions?: { code?: string } }> };
    await strict.close();
    expect(result.errors?.[0]?.message).toMatch(/cost/i);
    expect(result.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
  });

  it('refuses an oversized body with 413 and writes nothing', async () => {
    const before = await db.prisma.job.count();
    // A valid addJob, padded past maxBodyBytes with whitespace JSON allows: only the limit stops its write.
    const body = JSON.stringify({ query: print(AddJobDocument), variables: { input: { num1: '1', num2: '1' } } });
    const result = await send(body + ' '.repeat(20_000));
    expect(result.status).toBe(413);
    expect(result.body.errors?.[0]?.extensions?.code).toBe('REQUEST_ENTITY_TOO_LARGE');
    expect(await db.prisma.job.count()).toBe(before);
    expect((await send(body)).status).toBe(200);
    expect(await db.prisma.job.count()).toBe(before + 1);
  });

  it('caps the batch size, refusing the whole request, and takes a batch at the cap', async () => {
    const before = await db.prisma.job.count();
    const jobs = (count: number) => Array.from({ length: count }, () => ({ num1: '1', num2: '1' }));
    const over = await execute(api.app, AddJobsDocument, { inputs: jobs(11) }, bearer(KEY_A));
    expect(codes(over)).toEqual(['BAD_USER_INPUT']);
    expect(over.errors?.[0]?.message).toMatch(/at most 10 jobs/);
    expect(await db.prisma.job.count()).toBe(before);
    const atCap = await execute(api.app, AddJobsDocument, { inputs: jobs(10) }, bearer(KEY_A));
    expect(atCap.errors).toBeUndefined();
    expect(atCap.data?.addJobs?.map((added) => added.created)).toEqual(jobs(10).map(() => true));
    expect(await db.prisma.job.count()).toBe(before + 10);
  });

  it('blocks simple cross-site requests (CSRF prevention)', async () => {
    const form = await api.app.fetch('http://yoga/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...bearer(KEY_A) },
      body: 'query=mutation%7BaddJob(input%3A%7Bnum1%3A%221%22%2Cnum2%3A%221%22%7D)%7Bcreated%7D%7D',
    });
    expect(form.status).toBeGreaterThanOrEqual(400);
    expect(form.status).toBeLessThan(500);
    const get = await api.app.fetch('http://yoga/graphql?query=%7Bjobs%7Bnodes%7Bid%7D%7D%7D', { headers: bearer(KEY_A) });
    expect(get.status).toBe(403);
    const withHeader = await api.app.fetch('http://yoga/graphql?query=%7Bjobs%7Bnodes%7Bid%7D%7D%7D', {
      headers: { ...bearer(KEY_A), 'x-graphql-yoga-csrf': '1' },
    });
    expect(withHeader.status).toBe(200);
  });
});

describe('job ids', () => {
  it('carry 74 random bits each, so a neighbour cannot be guessed from an id', async () => {
    const result = await execute(
      api.app,
      AddJobsDocument,
      { inputs: Array.from({ length: 10 }, () => ({ num1: '1', num2: '1' })) },
      bearer(KEY_A),
    );
    const ids = result.data!.addJobs!.map(({ job }) => job.id);
    // After the 48-bit time and the version nibble: what remains must differ wildly between
    // ids made in the same millisecond, not count up.
    const tails = ids.map((id) => BigInt(`0x${id.replace(/-/g, '').slice(13)}`) & ((1n << 74n) - 1n));
    const gaps = tails.slice(1).map((tail, i) => (tail > tails[i]! ? tail - tails[i]! : tails[i]! - tail));
    expect(gaps.every((gap) => gap > 1n << 20n)).toBe(true);
  });
});

describe('malformed requests on a real port', () => {
  let server: HttpServer;
  let port: number;
  beforeAll(async () => {
    server = testServer(api, { maxSubscriptionsPerConnection: 2, maxMessageBytes: 20_000 });
    await server.start();
    port = server.address.port;
  });
  afterAll(() => server.stop());

  function send(path: string, host: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const request = httpRequest({ host: '127.0.0.1', port, path, headers: { host } }, (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => resolve({ status: response.statusCode!, body }));
      });
      request.on('error', reject);
      request.end();
    });
  }

  it('answers a Host header or request target that makes no URL with a 400, not a 500 with a stack', async () => {
    for (const [path, host] of [
      ['/health', 'exa mple'],
      ['/health', '[::1'],
      ['*', `127.0.0.1:${port}`],
      ['http://other/health', `127.0.0.1:${port}`],
    ]) {
      const { status, body } = await send(path!, host!);
      expect({ path, host, status }).toEqual({ path, host, status: 400 });
      expect(JSON.parse(body)).toEqual({ error: { code: 'BAD_REQUEST', message: expect.any(String) } });
    }
    expect((await send('/health', `127.0.0.1:${port}`)).status).toBe(200);
  });

  /** POSTs `chunks` to /graphql, with a Content-Length unless `chunked`. */
  function postBody(chunks: string[], chunked: boolean): Promise<{ status: number; body: string }> {
    const length = chunks.reduce((sum, chunk) => sum + Buffer.byteLength(chunk), 0);
    return new Promise((resolve, reject) => {
      const request = httpRequest(
        {
          host: '127.0.0.1',
          port,
          path: '/graphql',
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            ...bearer(KEY_A),
            ...(chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': String(length) }),
          },
        },
        (response) => {
          let body = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => (body += chunk));
          response.on('end', () => resolve({ status: response.statusCode!, body }));
        },
      );
      // A refused upload may be cut off while it is still being sent.
      request.on('error', (error: NodeJS.ErrnoException) => (error.code === 'EPIPE' || error.code === 'ECONNRESET' ? undefined : reject(error)));
      for (const chunk of chunks) request.write(chunk);
      request.end();
    });
  }

  it('limits the body by its Content-Length, and counts a chunked body as it arrives', async () => {
    const before = await db.prisma.job.count();
    const add = (padding: number) =>
      JSON.stringify({ query: `mutation { addJob(input: {num1: "1", num2: "2"}) { created } }${' '.repeat(padding)}` });
    const oversized = add(25_000);
    const halves = [oversized.slice(0, 12_000), oversized.slice(12_000)];
    for (const chunked of [false, true]) {
      const refused = await postBody(halves, chunked);
      expect({ chunked, status: refused.status }).toEqual({ chunked, status: 413 });
      expect(JSON.parse(refused.body).errors[0].extensions.code).toBe('REQUEST_ENTITY_TOO_LARGE');
    }
    expect(await db.prisma.job.count()).toBe(before);
    const small = add(10);
    for (const chunked of [false, true]) {
      const taken = await postBody([small.slice(0, 20), small.slice(20)], chunked);
      expect({ chunked, status: taken.status, body: JSON.parse(taken.body) }).toEqual({
        chunked,
        status: 200,
        body: { data: { addJob: { created: true } } },
      });
    }
    expect(await db.prisma.job.count()).toBe(before + 2);
  });

  it('answers a Content-Length that is not a number with a 400', async () => {
    // Node's HTTP parser refuses such a request itself; an in-process caller meets our check.
    const response = await api.app.fetch('http://yoga/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': '1e3', ...bearer(KEY_A) },
      body: JSON.stringify({ query: '{ __typename }' }),
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { errors: Array<{ extensions: { code: string } }> }).errors[0]!.extensions.code).toBe('BAD_REQUEST');
  });
});
