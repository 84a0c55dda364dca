import WebSocket from 'ws';
import { readRssBytes } from '../lib/service.ts';

export interface FanoutArgs {
  base: string;
  servicePid: number;
  connections: number;
  perConnection: number;
  /** Jobs the subscriptions are spread over, evenly: 1 for the classic fan-out to one job. */
  jobs: number;
  settleMs: number;
}

export interface FanoutResult {
  subscribers: number;
  /** Service RSS with nothing open, with the sockets open, with every subscription open. */
  rssBytes: { idle: number; connected: number; subscribed: number };
  subscribeMs: number;
  /** First cancelJob sent → the last one's HTTP answer. */
  writeMs: number;
  /** First cancelJob sent → first / median / last subscriber seeing CANCELLED. */
  firstDeliveryMs: number;
  medianDeliveryMs: number;
  lastDeliveryMs: number;
}

const WATCH = 'subscription ($id: ID!) { jobUpdated(id: $id) { status } }';

async function graphql<T>(base: string, query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const response = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: T; errors?: unknown };
  if (!body.data || body.errors) throw new Error(`GraphQL answered ${JSON.stringify(body)}`);
  return body.data;
}

const addJob = async (base: string) =>
  (await graphql<{ addJob: { job: { id: string } } }>(base, 'mutation { addJob(input: {num1: "1", num2: "2"}) { job { id } } }')).addJob.job.id;

/** `count` jobs, added 1,000 to a request. */
async function addJobs(base: string, count: number): Promise<string[]> {
  const ids: string[] = [];
  while (ids.length < count) {
    const inputs = Array.from({ length: Math.min(1000, count - ids.length) }, () => ({ num1: '1', num2: '2' }));
    const data = await graphql<{ addJobs: Array<{ job: { id: string } }> }>(
      base,
      'mutation ($inputs: [AddJobInput!]!) { addJobs(inputs: $inputs) { job { id } } }',
      { inputs },
    );
    ids.push(...data.addJobs.map((payload) => payload.job.id));
  }
  return ids;
}

/** Cancels every job, 32 requests at a time: a burst of changes, as a busy worker makes. */
async function cancelAll(base: string, ids: readonly string[]): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(32, ids.length) }, async () => {
      while (next < ids.length) await cancelJob(base, ids[next++]!);
    }),
  );
}
const cancelJob = (base: string, id: string) => graphql(base, 'mutation ($id: ID!) { cancelJob(id: $id) { status } }', { id });

type Handler = (message: { type: string; payload?: { data?: { jobUpdated: { status: string } }; errors?: unknown } }) => void;

/**
 * A thin graphql-transport-ws client: one socket, a map from operation id to its handler. The
 * graphql-ws client hands every message of a socket to every operation on it, so with 100
 * operations a socket a burst of 20,000 messages made 2,000,000 calls, and the load process,
 * not the service, set the time to the last delivery.
 */
class Client {
  private readonly handlers = new Map<string, Handler>();
  private nextId = 0;

  private readonly socket: WebSocket;

  private constructor(socket: WebSocket) {
    this.socket = socket;
    socket.on('message', (data) => {
      const message = JSON.parse(String(data)) as Parameters<Handler>[0] & { id?: string };
      if (message.id === undefined) return;
      this.handlers.get(message.id)?.(message);
      if (message.type === 'complete' || message.type === 'error') this.handlers.delete(message.id);
    });
  }

  static async connect(base: string): Promise<Client> {
    const socket = new WebSocket(`${base.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws');
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => socket.send(JSON.stringify({ type: 'connection_init' })));
      socket.once('message', (data) => {
        const { type } = JSON.parse(String(data)) as { type: string };
        if (type === 'connection_ack') resolve();
        else reject(new Error(`expected connection_ack, got ${type}`));
      });
      socket.once('error', reject);
    });
    return new Client(socket);
  }

  subscribe(query: string, variables: Record<string, unknown>, handler: Handler): void {
    const id = String(this.nextId++);
    this.handlers.set(id, handler);
    this.socket.send(JSON.stringify({ id, type: 'subscribe', payload: { query, variables } }));
  }

  async dispose(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.socket.once('close', () => resolve());
      this.socket.close(1000);
    });
  }
}

/**
 * Opens `perConnection` subscriptions on each of `connections` sockets, to one job or spread
 * over `jobs` jobs, waits until every one has its first message (PENDING), then cancels the jobs
 * over HTTP and times until the last subscriber has seen CANCELLED. Everything is timed in this process, on one clock.
 */
export async function fanout(args: FanoutArgs): Promise<FanoutResult> {
  const subscribers = args.connections * args.perConnection;
  const clients: Client[] = [];
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  try {
    const watch = (client: Client, id: string, onStatus: (status: string) => void) =>
      client.subscribe(WATCH, { id }, (message) => {
        if (message.type === 'complete') return;
        const data = message.payload?.data;
        if (message.type !== 'next' || !data) throw new Error(JSON.stringify(message));
        onStatus(data.jobUpdated.status);
      });

    // Warm-up: the same path at 1% of the size, so first-use costs are not counted per subscriber.
    {
      const warm = await Client.connect(args.base);
      const id = await addJob(args.base);
      let done = 0;
      const all = new Promise<void>((resolve) => {
        for (let k = 0; k < 100; k += 1) watch(warm, id, (status) => status === 'CANCELLED' && ++done === 100 && resolve());
      });
      await sleep(200);
      await cancelJob(args.base, id);
      await all;
      await warm.dispose();
    }
    await sleep(args.settleMs);
    const idle = readRssBytes(args.servicePid);

    for (let c = 0; c < args.connections; c += 1) clients.push(await Client.connect(args.base));
    await sleep(args.settleMs);
    const connected = readRssBytes(args.servicePid);

    const ids = args.jobs === 1 ? [await addJob(args.base)] : await addJobs(args.base, args.jobs);
    let pending = 0;
    let cancelled = 0;
    let sentAt = 0;
    const deliveries: number[] = [];
    let allPending!: () => void;
    let allCancelled!: () => void;
    const subscribedAll = new Promise<void>((resolve) => (allPending = resolve));
    const cancelledAll = new Promise<void>((resolve) => (allCancelled = resolve));
    const subscribeStart = performance.now();
    let subscriber = 0;
    for (const client of clients) {
      for (let k = 0; k < args.perConnection; k += 1) {
        watch(client, ids[subscriber++ % ids.length]!, (status) => {
          if (status === 'PENDING' && ++pending === subscribers) allPending();
          if (status === 'CANCELLED') {
            deliveries.push(performance.now() - sentAt);
            if (++cancelled === subscribers) allCancelled();
          }
        });
      }
    }
    await subscribedAll;
    const subscribeMs = performance.now() - subscribeStart;
    await sleep(args.settleMs);
    const subscribed = readRssBytes(args.servicePid);

    sentAt = performance.now();
    await cancelAll(args.base, ids);
    const writeMs = performance.now() - sentAt;
    await Promise.race([cancelledAll, sleep(60_000).then(() => Promise.reject(new Error(`${cancelled} of ${subscribers} saw CANCELLED after 60 s`)))]);
    const sorted = deliveries.sort((a, b) => a - b);
    return {
      subscribers,
      rssBytes: { idle, connected, subscribed },
      subscribeMs,
      writeMs,
      firstDeliveryMs: sorted[0]!,
      medianDeliveryMs: sorted[Math.floor(sorted.length / 2)]!,
      lastDeliveryMs: sorted[sorted.length - 1]!,
    };
  } finally {
    await Promise.all(clients.map((client) => client.dispose()));
  }
}
