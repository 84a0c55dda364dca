import { print } from 'graphql';
import { type Client, createClient } from 'graphql-ws';
import { expect } from 'vitest';
import WebSocket from 'ws';
import { JobUpdatedDocument, type JobUpdatedSubscription } from '../graphql/generated/graphql.ts';

export type JobState = JobUpdatedSubscription['jobUpdated'];

/** One `jobUpdated` subscription on its own graphql-ws connection, recording what it is sent. */
export interface Subscriber {
  jobId: string;
  /** The API port it subscribed on. */
  port: number;
  states: JobState[];
  /** Set when the server completed the subscription (after a final state). */
  ended: boolean;
  /** A GraphQL or socket error, if one came; a healthy subscriber has none. */
  error: unknown;
  /** Resolves once `predicate` holds for the states so far; rejects on an error or at `deadlineMs`. */
  until(predicate: (states: JobState[], ended: boolean) => boolean, deadlineMs?: number): Promise<void>;
  close(): Promise<void>;
}

export function subscribe(port: number, jobId: string): Subscriber {
  const client: Client = createClient({
    url: `ws://127.0.0.1:${port}/graphql`,
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    lazy: true,
  });
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const waiter of waiters) waiter();
  };
  const subscriber: Subscriber = {
    jobId,
    port,
    states: [],
    ended: false,
    error: undefined,
    until(predicate, deadlineMs = 60_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (predicate(subscriber.states, subscriber.ended)) finish(resolve);
          else if (subscriber.error !== undefined) finish(() => reject(new Error(`subscriber of ${jobId}: ${String(subscriber.error)}`)));
          else if (subscriber.ended) finish(() => reject(new Error(`subscriber of ${jobId} ended after ${describeStates(subscriber.states)}`)));
        };
        const timer = setTimeout(
          () => finish(() => reject(new Error(`subscriber of ${jobId} on :${port} still waits; saw ${describeStates(subscriber.states)}`))),
          deadlineMs,
        );
        function finish(settle: () => void) {
          clearTimeout(timer);
          waiters.delete(check);
          settle();
        }
        waiters.add(check);
        check();
      });
    },
    close: () => client.dispose() as Promise<void>,
  };
  client.subscribe<JobUpdatedSubscription>(
    { query: print(JobUpdatedDocument), variables: { id: jobId } },
    {
      next: (message) => {
        if (message.errors) subscriber.error = JSON.stringify(message.errors);
        else if (message.data) subscriber.states.push(message.data.jobUpdated);
        notify();
      },
      error: (error) => {
        // An `error` message brings the GraphQL errors as an array; a closed socket, an event.
        subscriber.error = Array.isArray(error)
          ? JSON.stringify(error)
          : error instanceof Error
            ? error.message
            : ((error as { reason?: string }).reason ?? String(error));
        notify();
      },
      complete: () => {
        subscriber.ended = true;
        notify();
      },
    },
  );
  return subscriber;
}

export function describeStates(states: readonly JobState[]): string {
  return states.map((state) => `${state.status}@${state.version}`).join(' → ') || 'nothing';
}

const ORDER = ['PENDING', 'WIP', 'COMPLETED', 'RETRIEVED'];

/**
 * What a subscriber of a job that ran once, without retries, may see: states of the lifecycle in
 * order, each with a higher version, starting with PENDING (it subscribed before the job ran).
 * Intermediate states may be coalesced away (see watchJob); the last one never is.
 */
export function inLifecycleOrder(states: readonly JobState[]): boolean {
  if (states[0]?.status !== 'PENDING') return false;
  for (let i = 1; i < states.length; i += 1) {
    if (ORDER.indexOf(states[i]!.status) <= ORDER.indexOf(states[i - 1]!.status)) return false;
    if (states[i]!.version <= states[i - 1]!.version) return false;
  }
  return true;
}

/** A jobUpdated subscription read one result at a time: graphql-ws's `iterate`, or SSE events. */
type JobUpdates = AsyncIterator<unknown>;

/**
 * The end every subscription of a pending job must see when it is cancelled: CANCELLED as the next
 * state, and then the end of the stream (the server completes it, which frees its slot).
 */
export async function cancelAndExpectEnded(cancel: () => Promise<unknown>, ...subscriptions: JobUpdates[]): Promise<void> {
  await cancel();
  for (const updates of subscriptions) {
    const next = await updates.next();
    expect((next.value as { data?: { jobUpdated?: { status?: string } } } | undefined)?.data?.jobUpdated?.status).toBe('CANCELLED');
    expect((await updates.next()).done).toBe(true);
  }
}
