import { type Client, createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { readRssBytes } from '../lib/service.ts';

export interface FanoutArgs {
  base: string;
  servicePid: number;
  connections: number;
  perConnection: number;
  settleMs: number;
}

export interface FanoutResult {
  subscribers: number;
  /** Service RSS with nothing open, with the sockets open, with every subscription open. */
  rssBytes: { idle: number; connected: number; subscribed: number };
  subscribeMs: number;
  /** cancelJob sent → its HTTP answer. */
  writeMs: number;
  /** cancelJob sent → first / median / last subscriber seeing CANCELLED. */
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
const cancelJob = (base: string, id: string) => graphql(base, 'mutation ($id: ID!) { cancelJob(id: $id) { status } }', { id });

async function connect(base: string): Promise<Client> {
  const client = createClient({ url: `${base.replace(/^http/, 'ws')}/graphql`, webSocketImpl: WebSocket, lazy: false, retryAttempts: 0 });
  await new Promise<void>((resolve, reject) => {
    const off = client.on('connected', () => {
      off();
      resolve();
    });
    client.on('error', reject);
  });
  return client;
}

/**
 * Opens `perConnection` subscriptions to one job on each of `connections` sockets, waits until
 * every one has its first message (PENDING), then cancels the job over HTTP and times until the
 * last subscriber has seen CANCELLED. Everything is timed in this process, on one clock.
 */
export async function fanout(args: FanoutArgs): Promise<FanoutResult> {
  const subscribers = args.connections * args.perConnection;
  const clients: Client[] = [];
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  try {
    const watch = (client: Client, id: string, onStatus: (status: string) => void) =>
      client.subscribe<{ jobUpdated: { status: string } }>(
        { query: WATCH, variables: { id } },
        {
          next: (message) => {
            if (message.data) onStatus(message.data.jobUpdated.status);
            else throw new Error(JSON.stringify(message.errors));
          },
          error: (error) => {
            throw error instanceof Error ? error : new Error(JSON.stringify(error));
          },
          complete: () => undefined,
        },
      );

    // Warm-up: the same path at 1% of the size, so first-use costs are not counted per subscriber.
    {
      const warm = await connect(args.base);
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

    for (let c = 0; c < args.connections; c += 1) clients.push(await connect(args.base));
    await sleep(args.settleMs);
    const connected = readRssBytes(args.servicePid);

    const id = await addJob(args.base);
    let pending = 0;
    let cancelled = 0;
    let sentAt = 0;
    const deliveries: number[] = [];
    let allPending!: () => void;
    let allCancelled!: () => void;
    const subscribedAll = new Promise<void>((resolve) => (allPending = resolve));
    const cancelledAll = new Promise<void>((resolve) => (allCancelled = resolve));
    const subscribeStart = performance.now();
    for (const client of clients) {
      for (let k = 0; k < args.perConnection; k += 1) {
        watch(client, id, (status) => {
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
    await cancelJob(args.base, id);
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
