import { Agent, request } from 'node:http';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { percentile } from '../lib/service.ts';

export interface LatencyArgs {
  /** The API's base URL, e.g. http://127.0.0.1:4000. */
  base: string;
  jobs: number;
  warmup: number;
}

export interface LatencySamples {
  /** addJob sent → first jobUpdated message with status COMPLETED, ms, one per job. */
  total: number[];
  /** addJob sent → its HTTP answer, ms. */
  add: number[];
  /** How many jobs were already COMPLETED in the subscription's first message. */
  completedAtSubscribe: number;
}

export interface LatencySummary {
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

export function summarize(values: readonly number[]): LatencySummary {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1]!,
    mean: sorted.reduce((sum, value) => sum + value, 0) / sorted.length,
  };
}

const ADD = JSON.stringify({ query: 'mutation { addJob(input: {num1: "1", num2: "2"}) { job { id } } }' });
const WATCH = 'subscription ($id: ID!) { jobUpdated(id: $id) { status } }';

/**
 * The client flow a customer has: add over HTTP (one keep-alive socket), then follow the new id
 * over the one graphql-ws connection. A subscription cannot exist before its id does, so this
 * is the shortest honest path from "I want a sum" to "I saw it done".
 */
export async function latencyOurs(args: LatencyArgs): Promise<LatencySamples> {
  const url = new URL('/graphql', args.base);
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const post = () =>
    new Promise<string>((resolve, reject) => {
      const req = request(
        url,
        { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(ADD) } },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.on('end', () => {
            const parsed = JSON.parse(body) as { data?: { addJob?: { job?: { id?: string } } }; errors?: unknown };
            const id = parsed.data?.addJob?.job?.id;
            if (res.statusCode !== 200 || !id) reject(new Error(`addJob answered ${res.statusCode}: ${body}`));
            else resolve(id);
          });
        },
      );
      req.on('error', reject);
      req.end(ADD);
    });

  const ws = createClient({ url: url.href.replace(/^http/, 'ws'), webSocketImpl: WebSocket, lazy: false, retryAttempts: 0 });
  await new Promise<void>((resolve, reject) => {
    const off = ws.on('connected', () => {
      off();
      resolve();
    });
    ws.on('error', reject);
  });

  const samples: LatencySamples = { total: [], add: [], completedAtSubscribe: 0 };
  try {
    for (let n = 0; n < args.warmup + args.jobs; n += 1) {
      const t0 = performance.now();
      const id = await post();
      const added = performance.now();
      let first = true;
      const firstWasCompleted = await new Promise<boolean>((resolve, reject) => {
        const unsubscribe = ws.subscribe<{ jobUpdated: { status: string } }>(
          { query: WATCH, variables: { id } },
          {
            next: (message) => {
              const wasFirst = first;
              first = false;
              if (message.data?.jobUpdated.status === 'COMPLETED') {
                const done = performance.now();
                if (n >= args.warmup) {
                  samples.total.push(done - t0);
                  samples.add.push(added - t0);
                }
                unsubscribe();
                resolve(wasFirst);
              } else if (message.errors) reject(new Error(JSON.stringify(message.errors)));
            },
            error: reject,
            complete: () => undefined,
          },
        );
      });
      if (firstWasCompleted && n >= args.warmup) samples.completedAtSubscribe += 1;
    }
  } finally {
    await ws.dispose();
    agent.destroy();
  }
  return samples;
}
