import type { DocumentNode, ExecutionResult } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Gauge } from 'prom-client';
import type { GraphQLContext, WebSocketOperation } from './builder.ts';

type Result = ExecutionResult;

/** Followers handed a result in one turn of the event loop (see SharedStream.offerAll). */
const FOLLOWERS_PER_TURN = 500;
type SubscribeOutcome = AsyncIterable<Result> | Result;

function isAsyncIterable(value: unknown): value is AsyncIterable<Result> {
  return typeof value === 'object' && value !== null && Symbol.asyncIterator in value;
}

/**
 * One subscriber's view of a shared stream. It holds at most one undelivered result, the latest:
 * a consumer slower than the changes gets the newest state, as `watchJob` promises, and never a
 * growing backlog.
 *
 * Over graphql-ws, a result is sent on the socket by the follower itself, as the `next` message
 * graphql-ws would have made: the result's JSON is made once for all followers, and the
 * follower's iterator yields nothing until the stream ends. Through graphql-ws each of 10,000
 * followers resumed its own loop, ran the result hooks, stringified the same result and awaited
 * its send; sent here, the last of them heard of a change after 70–96 ms instead of 137–283 ms.
 * graphql-ws still sends `complete` when the iterator ends, after every `next` sent here. A
 * result with errors goes through graphql-ws (its errors are masked on the way), and so does
 * everything after it, so no message overtakes another.
 */
class Follower implements AsyncIterableIterator<Result> {
  private undelivered: Result | undefined;
  private failure: { error: unknown } | undefined;
  private ended = false;
  private waiting: { resolve: (step: IteratorResult<Result>) => void; reject: (error: unknown) => void } | undefined;

  private readonly leave: (follower: Follower) => void;
  private readonly open: Gauge | undefined;
  /** Set while results are sent on the socket directly. */
  private webSocket: WebSocketOperation | undefined;

  constructor(
    leave: (follower: Follower) => void,
    open: Gauge | undefined,
    webSocket: WebSocketOperation | undefined,
  ) {
    this.leave = leave;
    this.open = open;
    this.webSocket = webSocket;
    open?.inc();
  }

  /** `json` gives the result as JSON, made once however many followers ask. */
  offer(result: Result, json: () => string): void {
    if (this.ended) return;
    if (this.webSocket && !result.errors?.length) {
      this.webSocket.send(`{"id":${JSON.stringify(this.webSocket.id)},"type":"next","payload":${json()}}`);
      return;
    }
    this.webSocket = undefined;
    if (this.waiting) {
      const { resolve } = this.waiting;
      this.waiting = undefined;
      resolve({ value: result, done: false });
    } else {
      this.undelivered = result;
    }
  }

  /** The stream is over: what is undelivered still goes out first. */
  finish(failure?: { error: unknown }): void {
    if (this.ended) return;
    this.ended = true;
    this.open?.dec();
    if (!this.waiting) {
      this.failure = failure;
      return;
    }
    // Handed to the waiting call, the failure is told: a later call hears only that it is over.
    const { resolve, reject } = this.waiting;
    this.waiting = undefined;
    if (failure) reject(failure.error);
    else resolve({ value: undefined, done: true });
  }

  next(): Promise<IteratorResult<Result>> {
    if (this.undelivered) {
      const value = this.undelivered;
      this.undelivered = undefined;
      return Promise.resolve({ value, done: false });
    }
    if (this.ended) {
      const failure = this.failure;
      this.failure = undefined;
      return failure ? Promise.reject(failure.error) : Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => (this.waiting = { resolve, reject }));
  }

  return(): Promise<IteratorResult<Result>> {
    this.undelivered = undefined;
    this.finish();
    this.leave(this);
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<Result> {
    return this;
  }
}

/** One execution of a subscription, and everyone following it. */
class SharedStream {
  readonly followers = new Set<Follower>();
  /** What the execution last produced: a new follower starts from it. */
  private latest: Result | undefined;
  private latestJson: string | undefined;
  private readonly jsonOfLatest = () => (this.latestJson ??= JSON.stringify(this.latest));
  private over = false;
  private upstream: AsyncIterator<Result> | undefined;

  private readonly forget: () => void;
  private readonly open: Gauge | undefined;

  constructor(forget: () => void, open: Gauge | undefined) {
    this.forget = forget;
    this.open = open;
  }

  follow(webSocket: WebSocketOperation | undefined): Follower {
    const follower = new Follower((gone) => this.unfollow(gone), this.open, webSocket);
    this.followers.add(follower);
    if (this.latest) follower.offer(this.latest, this.jsonOfLatest);
    return follower;
  }

  async pump(source: AsyncIterable<Result>): Promise<void> {
    this.upstream = source[Symbol.asyncIterator]();
    let failure: { error: unknown } | undefined;
    try {
      for (;;) {
        const step = await this.upstream.next();
        if (step.done || this.over) break;
        this.latest = step.value;
        this.latestJson = undefined;
        await this.offerAll();
      }
    } catch (error) {
      failure = { error };
    } finally {
      this.end();
      for (const follower of this.followers) follower.finish(failure);
      this.followers.clear();
    }
  }

  /**
   * Hands a result to the followers a slice at a time, each slice in its own turn of the event
   * loop. Handed to all at once, 10,000 followers went through each step of sending (resume,
   * format, frame, write) together, so the first message left only when the last was formatted,
   * and the promises of all 10,000 were alive at once for the garbage collector to copy. A slice
   * is sent before the next begins, so the client reads while the service formats.
   */
  private async offerAll(): Promise<void> {
    const result = this.latest!;
    let offered = 0;
    for (const follower of [...this.followers]) {
      follower.offer(result, this.jsonOfLatest);
      offered += 1;
      if (offered % FOLLOWERS_PER_TURN === 0) await new Promise((resolve) => setImmediate(resolve));
    }
  }

  private unfollow(follower: Follower): void {
    this.followers.delete(follower);
    if (this.followers.size > 0 || this.over) return;
    // Nobody is left: stop the execution (and its database watch), and let the next subscriber
    // start a fresh one.
    this.end();
    // Ending it cannot fail anyone now; a failure here has nobody to tell.
    Promise.resolve(this.upstream?.return?.()).catch(() => undefined);
  }

  private end(): void {
    if (this.over) return;
    this.over = true;
    this.forget();
  }
}

/**
 * Subscribers of the same operation, with the same variables and the same owner, share one
 * execution. Their messages are identical (a subscription's results depend on nothing else), so
 * one change costs one read and one GraphQL execution, not one per subscriber. Measured here with
 * 10,000 subscribers of one job (with the gathered writes of ws-frames.ts and the slices below): the
 * last delivery came 514 ms after the change before, 127–244 ms after (over several runs); the
 * first, 384 → 13 ms; memory per subscriber 20 → 7 KiB. Sending over graphql-ws directly (see
 * Follower) then brought the last delivery under 100 ms.
 *
 * A subscriber that joins a running execution gets its latest result first, then what follows:
 * the same promise a fresh execution makes (the job as it is now, then every later state, each
 * a real state, versions only growing). Documents are told apart by identity; Yoga's parse cache
 * hands out one document per query text, and a document it has evicted only shares less.
 * `open` counts the subscribers, which the event hub's watchers no longer do.
 *
 * This is the one place where subscribers of a job share work. Below it nothing is shared: the
 * event hub passes every event on, and each execution's watch (jobs/watch.ts) reads for itself.
 * Subscribers whose queries differ (another selection, another spelling of the id) run
 * executions of their own, each with its reads: as many as the distinct queries, not the
 * subscribers. A shared read below could save those few reads, never the execution and the
 * serialization that this saves for every subscriber.
 */
export function createSharedSubscriptionsPlugin(open?: Gauge): Plugin<GraphQLContext> {
  const streams = new WeakMap<DocumentNode, Map<string, Promise<SubscribeOutcome> | SharedStream>>();

  return {
    onSubscribe({ args, subscribeFn, setSubscribeFn }) {
      const owner = (args.contextValue as Partial<GraphQLContext>).caller?.owner;
      if (owner === undefined) return;
      const key = `${args.operationName ?? ''}\u0000${owner}\u0000${JSON.stringify(args.variableValues ?? {})}`;
      let byKey = streams.get(args.document);
      if (!byKey) {
        byKey = new Map();
        streams.set(args.document, byKey);
      }
      const shared = byKey;

      setSubscribeFn(async (subscribeArgs) => {
        const webSocket = (subscribeArgs.contextValue as Partial<GraphQLContext>).webSocketOperation;
        const existing = shared.get(key);
        // A stream leaves the map as it ends, so one found there is still running.
        if (existing instanceof SharedStream) return existing.follow(webSocket);
        if (existing instanceof Promise) {
          // Another subscriber is starting this execution right now: wait for it and join.
          const outcome = await existing;
          const started = shared.get(key);
          if (!isAsyncIterable(outcome)) return outcome;
          if (started instanceof SharedStream) return started.follow(webSocket);
        }
        const starting = Promise.resolve(subscribeFn(subscribeArgs) as Promise<SubscribeOutcome>);
        shared.set(key, starting);
        let outcome: SubscribeOutcome;
        try {
          outcome = await starting;
        } catch (error) {
          if (shared.get(key) === starting) shared.delete(key);
          throw error;
        }
        // A refusal (not found, unauthenticated…) is not shared beyond the subscribers already
        // waiting for it: the next one asks again.
        if (!isAsyncIterable(outcome)) {
          if (shared.get(key) === starting) shared.delete(key);
          return outcome;
        }
        const stream: SharedStream = new SharedStream(() => {
          if (shared.get(key) === stream) shared.delete(key);
        }, open);
        shared.set(key, stream);
        const follower = stream.follow(webSocket);
        void stream.pump(outcome);
        return follower;
      });
    },
  };
}
