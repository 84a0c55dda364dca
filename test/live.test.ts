import { type ChildProcess, spawn } from 'node:child_process';
import { print } from 'graphql';
import { createClient, type Client } from 'graphql-ws';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import type { Database } from '../src/db/database.ts';
import type { HttpServer } from '../src/http/server.ts';
import { addDecimals } from '../src/jobs/decimal.ts';
import type { Worker } from '../src/worker/worker.ts';
import { AddJobDocument, JobUpdatedDocument, type JobUpdatedSubscription } from './graphql/generated/graphql.ts';
import { closeTestApp, openTestApp, sseEvents, type TestApp, testServer } from './helpers/api.ts';
import type { TestDatabase } from './helpers/database.ts';
import { ANONYMOUS, createWorker } from './helpers/jobs.ts';
import { SERVICE_ARGS } from './helpers/processes.ts';

type JobState = JobUpdatedSubscription['jobUpdated'];

let testDb: TestDatabase;
let db: Database;
let api: TestApp;
let server: HttpServer;
let base: string;
let client: Client;
const workers: Worker[] = [];

beforeAll(async () => {
  ({ testDb, db, api } = await openTestApp(import.meta.filename));
  server = testServer(api);
  await server.start();
  const { port } = server.address;
  base = `http://127.0.0.1:${port}`;
  client = createClient({ url: `ws://127.0.0.1:${port}/graphql`, webSocketImpl: WebSocket, lazy: true, retryAttempts: 0 });
});

afterEach(async () => {
  await Promise.all(workers.splice(0).map((worker) => worker.stop()));
});

afterAll(async () => {
  await client.dispose();
  await server.stop();
  await closeTestApp({ testDb, api });
});

/** A worker whose `add` waits for the test to open a gate, so WIP can be seen before COMPLETED. */
function gatedWorker(): { worker: Worker; open: () => void } {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  const worker = createWorker(db, api.hub, {
    handlers: {
      add: async (input) => {
        await gate;
        return addDecimals(input.num1, input.num2);
      },
    },
  });
  workers.push(worker);
  return { worker, open };
}

async function addJob(num1: string, num2: string): Promise<string> {
  const response = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: print(AddJobDocument), variables: { input: { num1, num2 } } }),
  });
  const body = (await response.json()) as { data: { addJob: { job: { id: string } } } };
  return body.data.addJob.job.id;
}

/** The next state from a subscription; the deadline only turns a hang into a readable failure. */
async function next(states: AsyncIterator<JobState>): Promise<JobState | 'done'> {
  const result = await Promise.race([
    states.next(),
    new Promise<never>((_resolve, reject) => setTimeout(() => reject(new Error('no event')), 15_000)),
  ]);
  return result.done ? 'done' : result.value;
}

function overWebSocket(id: string): AsyncIterator<JobState> {
  const results = client.iterate({ query: print(JobUpdatedDocument), variables: { id } });
  return (async function* () {
    for await (const result of results) {
      if (result.errors) throw Object.assign(new Error('subscription error'), { errors: result.errors });
      yield (result.data as JobUpdatedSubscription).jobUpdated;
    }
  })();
}

async function overSse(id: string): Promise<AsyncIterator<JobState>> {
  const response = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({ query: print(JobUpdatedDocument), variables: { id } }),
  });
  expect(response.headers.get('content-type')).toMatch(/text\/event-stream/);
  const events = sseEvents(response);
  return (async function* () {
    for await (const event of events) yield (event as { data: JobUpdatedSubscription }).data.jobUpdated;
  })();
}

/** Each transport a customer can subscribe over, by name. */
const TRANSPORTS = [
  ['graphql-ws', async (id: string) => overWebSocket(id)],
  ['SSE', overSse],
] as const;

describe.each(TRANSPORTS)('jobUpdated over %s on a real port', (_transport, subscribe) => {
  it('delivers PENDING, WIP, COMPLETED with the exact result, then RETRIEVED, then ends', async () => {
    const id = await addJob('0.1', '0.2');
    const states = await subscribe(id);
    expect(await next(states)).toMatchObject({ id, status: 'PENDING', result: null });

    const { worker, open } = gatedWorker();
    await worker.start();
    expect(await next(states)).toMatchObject({ status: 'WIP', attempt: 1 });
    open();
    const completed = await next(states);
    expect(completed).toMatchObject({ status: 'COMPLETED', result: '0.3' });

    const read = await fetch(`${base}/api/v1/job/${id}`);
    expect(((await read.json()) as { status: string }).status).toBe('retrieved');
    expect(await next(states)).toMatchObject({ status: 'RETRIEVED', result: '0.3' });
    expect(await next(states)).toBe('done');
  });

  it('gives a subscriber who joins after completion the final state at once', async () => {
    const id = await addJob('2', '3');
    const { worker, open } = gatedWorker();
    open();
    await worker.start();
    const watcher = await subscribe(id);
    let state = await next(watcher);
    while (state !== 'done' && state.status !== 'COMPLETED') state = await next(watcher);

    const late = await subscribe(id);
    expect(await next(late)).toMatchObject({ id, status: 'COMPLETED', result: '5' });
    await late.return?.();
    await watcher.return?.();
  });
});

describe.each(TRANSPORTS)('subscribers of one job over %s', (_transport, subscribe) => {
  it('share one execution, each sees every state, and one leaving ends nobody else', async () => {
    const id = await addJob('1', '2');
    const watches = vi.spyOn(api.jobs, 'watchJob');
    try {
      const leaving = await subscribe(id);
      expect(await next(leaving)).toMatchObject({ id, status: 'PENDING' });
      const staying = await Promise.all([subscribe(id), subscribe(id)]);
      for (const states of staying) expect(await next(states)).toMatchObject({ id, status: 'PENDING' });
      expect(watches).toHaveBeenCalledTimes(1);

      await leaving.return?.();
      const { worker, open } = gatedWorker();
      await worker.start();
      for (const states of staying) expect(await next(states)).toMatchObject({ status: 'WIP' });
      open();
      for (const states of staying) expect(await next(states)).toMatchObject({ status: 'COMPLETED', result: '3' });
      await fetch(`${base}/api/v1/job/${id}`);
      for (const states of staying) {
        expect(await next(states)).toMatchObject({ status: 'RETRIEVED' });
        expect(await next(states)).toBe('done');
      }
      expect(watches).toHaveBeenCalledTimes(1);

      // The shared execution ended with the job; a new subscriber gets one of its own.
      const after = await subscribe(id);
      expect(await next(after)).toMatchObject({ status: 'RETRIEVED' });
      expect(await next(after)).toBe('done');
      expect(watches).toHaveBeenCalledTimes(2);
    } finally {
      watches.mockRestore();
    }
  });

  it('see a change through one read, however many they are', async () => {
    // Heard before anyone subscribes, the insert's own NOTIFY cannot prompt a read of its own.
    const heard = new Set<string>();
    const stopHearing = api.hub.onEvents((events) => events.forEach((event) => heard.add(event.id)));
    const id = await addJob('2', '2');
    await vi.waitFor(() => expect(heard.has(id)).toBe(true));
    stopHearing();
    const subscribers = await Promise.all(Array.from({ length: 20 }, () => subscribe(id)));
    for (const states of subscribers) expect(await next(states)).toMatchObject({ status: 'PENDING' });
    const reads = vi.spyOn(api.jobs, 'getJob');
    try {
      await api.jobs.cancelJob(id, ANONYMOUS);
      for (const states of subscribers) {
        expect(await next(states)).toMatchObject({ status: 'CANCELLED' });
        expect(await next(states)).toBe('done');
      }
      expect(reads).toHaveBeenCalledTimes(1);
    } finally {
      reads.mockRestore();
    }
  });

  it('start afresh once every subscriber has left', async () => {
    const id = await addJob('4', '5');
    const watches = vi.spyOn(api.jobs, 'watchJob');
    try {
      const first = await subscribe(id);
      expect(await next(first)).toMatchObject({ status: 'PENDING' });
      await first.return?.();
      // The server hears of the leaving asynchronously; until then a newcomer may still join.
      await vi.waitFor(() => expect(api.hub.watcherCount).toBe(0));
      const second = await subscribe(id);
      expect(await next(second)).toMatchObject({ status: 'PENDING' });
      expect(watches).toHaveBeenCalledTimes(2);
      await second.return?.();
    } finally {
      watches.mockRestore();
    }
  });
});

describe('one WebSocket following many operations', () => {
  it('gets every message of a burst, each operation\'s in order', async () => {
    const id = await addJob('6', '7');
    const socket = new WebSocket(`${base.replace('http', 'ws')}/graphql`, 'graphql-transport-ws');
    const received: Array<{ id?: string; type: string; payload?: { data?: { jobUpdated?: { status: string } } } }> = [];
    const arrived = (count: number) => vi.waitFor(() => expect(received.length).toBeGreaterThanOrEqual(count), { timeout: 10_000 });
    socket.on('message', (data) => received.push(JSON.parse(String(data))));
    const closed = new Promise<number>((resolve) => socket.on('close', (code) => resolve(code)));
    await new Promise((resolve) => socket.once('open', resolve));
    socket.send(JSON.stringify({ type: 'connection_init' }));
    await arrived(1);
    expect(received.shift()?.type).toBe('connection_ack');

    const operations = Array.from({ length: 100 }, (_, i) => `op${i}`);
    for (const operation of operations) {
      socket.send(JSON.stringify({ id: operation, type: 'subscribe', payload: { query: print(JobUpdatedDocument), variables: { id } } }));
    }
    await arrived(100);
    await api.jobs.cancelJob(id, ANONYMOUS);
    // Per operation: the first state, the cancelled state, then complete; 300 messages in all.
    await arrived(300);
    for (const operation of operations) {
      const mine = received.filter((message) => message.id === operation);
      expect(mine.map((message) => message.payload?.data?.jobUpdated?.status ?? message.type)).toEqual([
        'PENDING',
        'CANCELLED',
        'complete',
      ]);
    }
    expect(received).toHaveLength(300);
    // The close frame goes through the same gathered writes as the messages.
    socket.send(JSON.stringify({ id: 'op0', type: 'next', payload: {} }));
    expect(await closed).toBe(4400);
  });
});

describe('graphql-ws errors', () => {
  it('answers a subscription to an unknown job with NOT_FOUND', async () => {
    const states = overWebSocket('00000000-0000-4000-8000-000000000000');
    const error = await next(states).catch((e: { errors?: Array<{ extensions?: { code?: string } }> }) => e);
    expect((error as { errors: Array<{ extensions: { code: string } }> }).errors[0]!.extensions.code).toBe(
      'NOT_FOUND',
    );
  });
});

describe('a worker in another process', () => {
  let child: ChildProcess | undefined;
  afterEach(() => {
    child?.kill('SIGKILL');
  });

  it('completes a job whose subscriber is on this process, and shuts down cleanly on SIGTERM', async () => {
    child = spawn(process.execPath, SERVICE_ARGS, {
      env: { ...process.env, ROLE: 'worker', DATABASE_URL: testDb.url, LOG_LEVEL: 'warn', PORT: '0', OPS_PORT: '0' },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    const id = await addJob('9007199254740993', '1');
    const states = overWebSocket(id);
    let state = await next(states);
    while (state !== 'done' && state.status !== 'COMPLETED') state = await next(states);
    expect(state).toMatchObject({ status: 'COMPLETED', result: '9007199254740994' });
    await states.return?.();

    const exited = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
