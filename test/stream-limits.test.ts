import { print } from 'graphql';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { TOO_MANY_CONNECTIONS } from '../src/http/server.ts';
import type { StreamLimits } from '../src/http/stream-limits.ts';
import { AddJobDocument, JobUpdatedDocument } from './graphql/generated/graphql.ts';
import { closeTestApp, execute, openTestApp, sseEvents, type TestApp, testServer } from './helpers/api.ts';
import type { TestDatabase } from './helpers/database.ts';

const KEY_A = 'key-a-0123456789abcdef';
const KEY_B = 'key-b-0123456789abcdef';
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
const LIMITS: StreamLimits = { perKey: 2, total: 3 };

let testDb: TestDatabase;
let api: TestApp;

beforeAll(async () => {
  ({ testDb, api } = await openTestApp(import.meta.filename, { apiKeys: [KEY_A, KEY_B], sseStreams: LIMITS }));
});

afterAll(() => closeTestApp({ testDb, api }));

/** A server of its own per test: its connection counts start at zero. */
async function withServer(test: (url: string) => Promise<void>): Promise<void> {
  const server = testServer(api, { maxSubscriptionsPerConnection: 5, connections: LIMITS, maxMessageBytes: 100_000 });
  try {
    await server.start();
    await test(`ws://127.0.0.1:${server.address.port}/graphql`);
  } finally {
    await server.stop();
  }
}

async function addAs(key: string): Promise<string> {
  const result = await execute(api.app, AddJobDocument, { input: { num1: '1', num2: '2' } }, bearer(key));
  return result.data!.addJob!.job.id;
}

interface Message {
  id?: string;
  type: string;
  payload?: unknown;
}

/** A graphql-ws conversation without a client library: frames go out exactly as the test sends them. */
class RawSocket {
  readonly messages: Message[] = [];
  closed: { code: number; reason: string } | undefined;
  private readonly waiters = new Set<() => void>();

  readonly socket: WebSocket;

  constructor(socket: WebSocket) {
    this.socket = socket;
    socket.on('message', (data) => {
      this.messages.push(JSON.parse(String(data)) as Message);
      this.wake();
    });
    socket.on('close', (code, reason) => {
      this.closed = { code, reason: String(reason) };
      this.wake();
    });
  }

  static async connect(url: string, key: string): Promise<RawSocket> {
    const raw = new RawSocket(new WebSocket(url, 'graphql-transport-ws'));
    await new Promise((resolve, reject) => raw.socket.once('open', resolve).once('error', reject));
    raw.socket.send(JSON.stringify({ type: 'connection_init', payload: bearer(key) }));
    await raw.until(() => raw.closed !== undefined || raw.messages.some((message) => message.type === 'connection_ack'));
    return raw;
  }

  until(predicate: () => boolean): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (!predicate()) return;
        this.waiters.delete(check);
        resolve();
      };
      this.waiters.add(check);
      check();
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.socket.close(1000);
    await this.until(() => this.closed !== undefined);
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}

describe('WebSocket operations per connection', () => {
  it('lets exactly WS_MAX_SUBSCRIPTIONS of a burst of 40 subscribe messages in one write run', () =>
    withServer(async (url) => {
      const id = await addAs(KEY_A);
      const raw = await RawSocket.connect(url, KEY_A);
      const tcp = (raw.socket as unknown as { _socket: import('node:net').Socket })._socket;
      tcp.cork();
      for (let n = 0; n < 40; n += 1) {
        raw.socket.send(JSON.stringify({ id: String(n), type: 'subscribe', payload: { query: print(JobUpdatedDocument), variables: { id } } }));
      }
      tcp.uncork();
      const answered = () => new Set(raw.messages.filter((message) => message.id !== undefined).map((message) => message.id));
      await raw.until(() => answered().size === 40 || raw.closed !== undefined);
      const running = raw.messages.filter((message) => message.type === 'next').map((message) => message.id);
      const refused = raw.messages.filter((message) => message.type === 'error');
      expect(running).toHaveLength(5);
      expect(refused).toHaveLength(35);
      for (const error of refused) expect((error.payload as Array<{ extensions: { code: string } }>)[0]!.extensions.code).toBe('TOO_MANY_SUBSCRIPTIONS');

      // A slot comes back when its operation ends, which the server finishes a moment after the
      // client's `complete`.
      raw.socket.send(JSON.stringify({ id: running[0], type: 'complete' }));
      let attempt = 0;
      await vi.waitFor(async () => {
        const again = `again-${(attempt += 1)}`;
        raw.socket.send(JSON.stringify({ id: again, type: 'subscribe', payload: { query: print(JobUpdatedDocument), variables: { id } } }));
        await raw.until(() => raw.messages.some((message) => message.id === again));
        expect(raw.messages.find((message) => message.id === again)!.type).toBe('next');
      });
      expect(raw.messages.filter((message) => message.type === 'next')).toHaveLength(6);
      await raw.close();
    }),
  );

  it('counts an operation id the client reuses after `complete` as a second operation', () =>
    withServer(async (url) => {
      const id = await addAs(KEY_A);
      const raw = await RawSocket.connect(url, KEY_A);
      const subscribe = (operation: string) =>
        JSON.stringify({ id: operation, type: 'subscribe', payload: { query: print(JobUpdatedDocument), variables: { id } } });
      // graphql-ws takes an id again once `complete` came for it, even while the first operation
      // is still being set up: 6 operations under one id, in one write.
      const tcp = (raw.socket as unknown as { _socket: import('node:net').Socket })._socket;
      tcp.cork();
      for (let n = 0; n < 5; n += 1) {
        raw.socket.send(subscribe('r'));
        raw.socket.send(JSON.stringify({ id: 'r', type: 'complete' }));
      }
      raw.socket.send(subscribe('r'));
      tcp.uncork();
      const count = (type: string) => raw.messages.filter((message) => message.type === type).length;
      await raw.until(() => count('error') > 0 || count('next') > 5 || raw.closed !== undefined);
      expect(count('error')).toBe(1);
      expect(count('next')).toBeLessThanOrEqual(5);

      // Every slot comes back once those operations are over.
      let attempt = 0;
      await vi.waitFor(async () => {
        const fresh = Array.from({ length: 5 }, () => `fresh-${(attempt += 1)}`);
        for (const operation of fresh) raw.socket.send(subscribe(operation));
        await raw.until(() => fresh.every((operation) => raw.messages.some((message) => message.id === operation)));
        for (const operation of fresh) raw.socket.send(JSON.stringify({ id: operation, type: 'complete' }));
        expect(fresh.map((operation) => raw.messages.find((message) => message.id === operation)!.type)).toEqual(Array(5).fill('next'));
      });
      await raw.close();
    }));
});

describe('WebSocket connections per key and per process', () => {
  it('closes a connection over either limit with TOO_MANY_CONNECTIONS, and frees the slot on close', () =>
    withServer(async (url) => {
      const a1 = await RawSocket.connect(url, KEY_A);
      const a2 = await RawSocket.connect(url, KEY_A);
      const a3 = await RawSocket.connect(url, KEY_A);
      expect(a3.closed).toMatchObject({ code: TOO_MANY_CONNECTIONS, reason: expect.stringMatching(/per API key/) });
      const b1 = await RawSocket.connect(url, KEY_B);
      expect(b1.closed).toBeUndefined();
      const b2 = await RawSocket.connect(url, KEY_B);
      expect(b2.closed).toMatchObject({ code: TOO_MANY_CONNECTIONS, reason: expect.stringMatching(/retry later/) });
      for (const open of [a1, a2, b1]) expect(open.messages.map((message) => message.type)).toEqual(['connection_ack']);

      await a1.close();
      // The server learns of the close a moment after the client does.
      const again = await vi.waitFor(async () => {
        const socket = await RawSocket.connect(url, KEY_B);
        if (socket.closed) throw new Error(`refused: ${socket.closed.reason}`);
        return socket;
      });
      expect(again.messages.map((message) => message.type)).toEqual(['connection_ack']);
      await Promise.all([a2.close(), b1.close(), again.close()]);
    }),
  );
});

describe('SSE streams per key and per process', () => {
  async function stream(key: string, id: string, signal?: AbortSignal): Promise<Response> {
    return await api.app.fetch('http://yoga/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...bearer(key) },
      body: JSON.stringify({ query: print(JobUpdatedDocument), variables: { id } }),
      signal,
    });
  }

  it('answers a stream over either limit with 429 and a JSON body, and frees the slot when a stream ends', async () => {
    const idA = await addAs(KEY_A);
    const idB = await addAs(KEY_B);
    const first = new AbortController();
    const openA = [await stream(KEY_A, idA, first.signal), await stream(KEY_A, idA)];
    for (const response of openA) expect(response.headers.get('content-type')).toMatch(/text\/event-stream/);
    const readers = openA.map((response) => sseEvents(response));
    for (const reader of readers) expect(await reader.next()).toMatchObject({ done: false });

    const overKey = await stream(KEY_A, idA);
    expect(overKey.status).toBe(429);
    expect(overKey.headers.get('content-type')).toMatch(/application\/json/);
    expect(await overKey.json()).toMatchObject({ errors: [{ extensions: { code: 'TOO_MANY_SUBSCRIPTIONS' } }] });

    const openB = await stream(KEY_B, idB);
    const readerB = sseEvents(openB);
    expect(await readerB.next()).toMatchObject({ done: false });
    const overProcess = await stream(KEY_B, idB);
    expect(overProcess.status).toBe(429);
    expect(((await overProcess.json()) as { errors: Array<{ message: string }> }).errors[0]!.message).toMatch(/retry later/);

    // A client that goes away gives its slot back.
    await readers[0]!.return(undefined);
    first.abort();
    const again = await vi.waitFor(async () => {
      const response = await stream(KEY_B, idB);
      if (response.status !== 200) throw new Error(`refused: ${await response.text()}`);
      return response;
    });
    const readerAgain = sseEvents(again);
    expect(await readerAgain.next()).toMatchObject({ done: false });
    await Promise.all([readers[1]!.return(undefined), readerB.return(undefined), readerAgain.return(undefined)]);
  });
});
