/**
 * The chaos suite's load and its bookkeeping: a steady stream of `POST /api/v1/add/:a/:b`, every
 * acknowledged job remembered with the sum it must end with, a live subscriber on a share of them,
 * and a trickle of bad requests that must never be answered 500, whatever the database is doing.
 */
import { Decimal } from 'decimal.js';
import { subscribe, type Subscriber } from '../helpers/subscribers.ts';

export interface AcknowledgedJob {
  id: string;
  expected: string;
  /** ms since the epoch, when the 2xx answer arrived. */
  at: number;
}

export interface LoadOptions {
  port: number;
  /** Requests a second, over all loops together. */
  rate: number;
  loops: number;
  /** Every n-th acknowledged job gets a live subscriber. */
  subscribeEvery: number;
  /** Any answer slower than this counts as a hang. */
  requestTimeoutMs: number;
}

/** One subscribed job: who watches it, and how often it had to subscribe again. */
export interface Watch {
  job: AcknowledgedJob;
  subscriber: Subscriber;
  resubscribed: number;
  /** When the subscriber saw COMPLETED (ms since the epoch). */
  sawCompletedAt?: number;
}

export interface Load {
  acknowledged: AcknowledgedJob[];
  watches: Watch[];
  /** Answers that were not 2xx, by status (`timeout` and `network` for no answer). */
  refusals: Map<string, number>;
  /** Why subscribers had to subscribe again (the error they got), and how often. */
  resubscribeReasons: Map<string, number>;
  /** What is wrong with an answer: a 500, or a 503 without a JSON error. */
  problems: string[];
  stop(): Promise<void>;
  closeSubscribers(): Promise<void>;
}

/** Inputs whose sums are easy to get wrong: fractions, negatives, carries. */
function input(i: number): [string, string] {
  return [`${i}.${String(i % 97).padStart(2, '0')}`, `-${i % 13}.5`];
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function startLoad(options: LoadOptions): Load {
  const load: Load = {
    acknowledged: [],
    watches: [],
    refusals: new Map(),
    resubscribeReasons: new Map(),
    problems: [],
    stop: async () => {
      stopped = true;
      await Promise.all(running);
    },
    closeSubscribers: async () => {
      closed = true;
      await Promise.all(load.watches.map((watch) => watch.subscriber.close()));
    },
  };
  let stopped = false;
  /** Set once the suite is done with the subscribers: none subscribes again after it. */
  let closed = false;
  let next = 0;
  const base = `http://127.0.0.1:${options.port}`;
  const refuse = (what: string) => load.refusals.set(what, (load.refusals.get(what) ?? 0) + 1);

  /** Never a 500, nor an error masked as INTERNAL_SERVER_ERROR (GraphQL answers those with 200). */
  const judge = async (response: Response, what: string): Promise<void> => {
    const text = await response.text().catch(() => '');
    if ((response.status >= 500 && response.status !== 503) || text.includes('INTERNAL_SERVER_ERROR')) {
      load.problems.push(`${what} answered ${response.status}: ${text.slice(0, 300)}`);
    }
    if (response.status === 503 && !/"code":"UNAVAILABLE"/.test(text)) {
      load.problems.push(`${what} answered 503 without an UNAVAILABLE error: ${text.slice(0, 300)}`);
    }
  };

  const addOne = async () => {
    const i = (next += 1);
    const [a, b] = input(i);
    const what = `POST /api/v1/add/${a}/${b}`;
    let response: Response;
    try {
      response = await fetch(`${base}/api/v1/add/${a}/${b}`, { method: 'POST', signal: AbortSignal.timeout(options.requestTimeoutMs) });
    } catch (error) {
      refuse((error as Error).name === 'TimeoutError' ? 'timeout' : 'network');
      return;
    }
    if (response.status !== 202) {
      refuse(String(response.status));
      await judge(response, what);
      return;
    }
    const { jobId } = (await response.json()) as { jobId: string };
    const job = { id: jobId, expected: new Decimal(a).plus(b).toFixed(), at: Date.now() };
    load.acknowledged.push(job);
    if (load.acknowledged.length % options.subscribeEvery === 0) watch(job);
  };

  /**
   * Subscribes, and subscribes again after an error, as a client would: a subscription started
   * while the database is away is refused with UNAVAILABLE, which is no missed state.
   */
  const watch = (job: AcknowledgedJob) => {
    const entry: Watch = { job, subscriber: subscribe(options.port, job.id), resubscribed: 0 };
    load.watches.push(entry);
    const follow = async (): Promise<void> => {
      try {
        await entry.subscriber.until((states) => states.at(-1)?.status === 'COMPLETED', 600_000);
        entry.sawCompletedAt = Date.now();
        await entry.subscriber.close();
      } catch {
        if (closed) return;
        const reason = String(entry.subscriber.error ?? 'completed before COMPLETED').slice(0, 200);
        load.resubscribeReasons.set(reason, (load.resubscribeReasons.get(reason) ?? 0) + 1);
        await entry.subscriber.close();
        await sleep(500);
        if (closed) return;
        entry.resubscribed += 1;
        entry.subscriber = subscribe(options.port, job.id);
        return follow();
      }
    };
    void follow();
  };

  const unknownJob = '01a22805-e870-757b-b859-45cb6f780402';
  const graphql = (query: string) => ({ 'content-type': 'application/json', body: JSON.stringify({ query }) });
  const probes: Array<[string, string, { 'content-type': string; body: string }?]> = [
    ['POST', '/api/v1/add/abc/1'],
    ['GET', '/api/v1/job/nope'],
    ['GET', `/api/v1/job/${unknownJob}`],
    ['POST', '/api/v1/add/1e999/2'],
    ['GET', '/no/such/route'],
    ['POST', '/graphql', graphql(`{ job(id: "${unknownJob}") { id } }`)],
    ['POST', '/graphql', graphql('mutation { addJob(input: { num1: "x", num2: "1" }) { job { id } } }')],
    ['POST', '/graphql', graphql('{ nope')],
  ];
  const probeBadInput = async () => {
    for (let n = 0; !stopped; n += 1) {
      const [method, path, request] = probes[n % probes.length]!;
      try {
        const response = await fetch(`${base}${path}`, {
          method,
          headers: request ? { 'content-type': request['content-type'] } : {},
          body: request?.body,
          signal: AbortSignal.timeout(options.requestTimeoutMs),
        });
        await judge(response, `${method} ${path} ${request?.body ?? ''}`);
      } catch {
        // A timeout here shows in the load's own refusals too.
      }
      await sleep(500);
    }
  };

  const loop = async () => {
    const gap = (1000 * options.loops) / options.rate;
    while (!stopped) {
      const started = Date.now();
      await addOne();
      await sleep(Math.max(0, gap - (Date.now() - started)));
    }
  };
  const running = [...Array.from({ length: options.loops }, loop), probeBadInput()];
  return load;
}
