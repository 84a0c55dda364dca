import type { ExecutionResult } from 'graphql';
import { createGraphQLError, type Plugin, processRegularResult } from 'graphql-yoga';
import type { GraphQLContext } from '../graphql/builder.ts';
import type { StreamBudget } from './stream-limits.ts';

type Result = ExecutionResult;

/**
 * Whether Yoga will stream a subscription to this request: only as server-sent events, and only
 * when `accept` names them (read as Yoga reads it: case and spaces ignored, UTF-8 only). Yoga also
 * streams to a request that accepts any type (curl's default), which left a client that expected
 * JSON waiting; so a subscription must ask for the stream by name.
 */
function acceptsEventStream(accept: string | null): boolean {
  return (accept ?? '')
    .replace(/\s/g, '')
    .toLowerCase()
    .split(',')
    .some((entry) => {
      const [type, ...params] = entry.split(';');
      const charset = params.find((param) => param.startsWith('charset='));
      return type === 'text/event-stream' && (charset === undefined || charset === 'charset=utf-8');
    });
}

function isAsyncIterable(value: unknown): value is AsyncIterable<Result> {
  return typeof value === 'object' && value !== null && Symbol.asyncIterator in value;
}

/** Yields what `source` yields, and calls `release` once when it ends, however it ends. */
function releasingOnEnd(source: AsyncIterable<Result>, release: () => void): AsyncIterableIterator<Result> {
  const iterator = source[Symbol.asyncIterator]();
  return {
    async next() {
      try {
        const step = await iterator.next();
        if (step.done) release();
        return step;
      } catch (error) {
        release();
        throw error;
      }
    },
    async return() {
      release();
      return (await iterator.return?.()) ?? { value: undefined, done: true };
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

/**
 * Subscriptions over HTTP. One that does not ask for server-sent events got an event stream that
 * never ends (no accept, or any type), or an empty 406 (JSON only): a single JSON result cannot
 * carry a stream. It is refused with a 406 that names the two transports that can. An SSE stream
 * takes a slot of `streams` for as long as it is open; beyond the limits it is refused with 429
 * and TOO_MANY_SUBSCRIPTIONS.
 */
export function createHttpSubscriptionsPlugin(streams: StreamBudget): Plugin<GraphQLContext> {
  // Requests refused before their stream began: answered as JSON whatever they accept, so the
  // status and the error reach a client that would not read an event stream's body.
  const refused = new WeakSet<Request>();
  return {
    onResultProcess({ request, setResultProcessor }) {
      if (refused.has(request)) setResultProcessor(processRegularResult, 'application/json');
    },
    onSubscribe({ args, subscribeFn, setSubscribeFn }) {
      const context = args.contextValue as Partial<GraphQLContext> & { request?: Request };
      // A WebSocket operation is bounded by graphql-ws-server.ts, per connection and by connections.
      if (context.webSocketOperation || !context.request || !context.caller) return;
      const request = context.request;
      if (!acceptsEventStream(request.headers.get('accept'))) {
        refused.add(request);
        throw createGraphQLError(
          'a subscription needs a stream: send it with "accept: text/event-stream" (SSE), or over a WebSocket (graphql-transport-ws) at /graphql',
          { extensions: { code: 'BAD_REQUEST', http: { status: 406 } } },
        );
      }
      const owner = context.caller.owner;
      setSubscribeFn(async (subscribeArgs) => {
        const slot = streams.acquire(owner);
        if (!slot.ok) {
          refused.add(request);
          throw createGraphQLError(slot.message, {
            extensions: { code: 'TOO_MANY_SUBSCRIPTIONS', http: { status: 429, headers: { 'retry-after': '1' } } },
          });
        }
        let outcome: unknown;
        try {
          outcome = await subscribeFn(subscribeArgs);
        } catch (error) {
          slot.release();
          throw error;
        }
        if (!isAsyncIterable(outcome)) {
          slot.release();
          return outcome as Result;
        }
        return releasingOnEnd(outcome, slot.release);
      });
    },
  };
}
