import { GraphQLError } from 'graphql';
import { makeServer } from 'graphql-ws';
import type { Logger } from '../logger.ts';
import type { App } from './app.ts';
import type { Authenticator } from './auth.ts';
import type { SocketExtra } from './graphql-ws-transport.ts';
import { OperationSlots, StreamBudget, type StreamLimits } from './stream-limits.ts';
import { type EnvelopedArgs, prepareOperation, type WsContext } from './ws-operation.ts';

export interface GraphqlWsOptions {
  logger: Logger;
  auth: Authenticator;
  /** Operations one WebSocket may have running at once. */
  maxSubscriptionsPerConnection: number;
  /** WebSockets open at once, per API key and in total; unbounded when not given. */
  connections?: StreamLimits;
}

/**
 * The close code for a connection over WS_MAX_CONNECTIONS_PER_KEY or WS_MAX_CONNECTIONS: 1013, "try
 * again later" (RFC 6455's registry), which graphql-ws clients retry with their backoff.
 */
export const TOO_MANY_CONNECTIONS = 1013;

const UNBOUNDED: StreamLimits = { perKey: Number.POSITIVE_INFINITY, total: Number.POSITIVE_INFINITY };

/**
 * The graphql-ws protocol server of the app: who may connect, how many operations a connection
 * may run, and each operation run through the app's Yoga envelop, so a WebSocket operation gets
 * the same schema, context and error masking as an HTTP one.
 */
export function createGraphqlWsServer(app: App, options: GraphqlWsOptions) {
  // The operations of each connection, to bound what one socket may hold open.
  const active = new WeakMap<object, OperationSlots>();
  const connections = new StreamBudget(options.connections ?? UNBOUNDED, 'WebSocket connections');
  return makeServer<Record<string, unknown> | undefined, SocketExtra>({
    // A socket without a valid key is closed at connection_init (4403), before any operation;
    // one over the connection limits, with TOO_MANY_CONNECTIONS.
    onConnect: (context) => {
      const params = context.connectionParams;
      const fromParams = typeof params?.['authorization'] === 'string' ? params['authorization'] : undefined;
      const caller = options.auth.authenticate(fromParams ?? context.extra.request.headers.authorization);
      if (!caller) return false;
      const slot = connections.acquire(caller.owner);
      const socket = context.extra.socket;
      if (!slot.ok) {
        // graphql-ws's own close (4403) that follows is ignored: the socket is closing.
        socket.close(TOO_MANY_CONNECTIONS, slot.message);
        return false;
      }
      if (socket.readyState === socket.OPEN) socket.once('close', slot.release);
      else slot.release();
      return true;
    },
    onComplete: (context, id) => {
      active.get(context)?.give(id);
    },
    execute: (args) => (args as EnvelopedArgs).rootValue.execute(args) as never,
    subscribe: (args) => (args as EnvelopedArgs).rootValue.subscribe(args) as never,
    onSubscribe: async (context, id, params) => {
      const slots = active.get(context) ?? new OperationSlots(options.maxSubscriptionsPerConnection);
      active.set(context, slots);
      // The slot is taken now, before anything is awaited: checked here and taken later, 40
      // subscribe messages in one write all passed the check (12 ran with a limit of 5). Every
      // refusal below gives it back; graphql-ws calls onComplete for an operation that ran.
      if (!slots.take(id)) {
        return [
          new GraphQLError(`at most ${options.maxSubscriptionsPerConnection} operations per connection`, {
            extensions: { code: 'TOO_MANY_SUBSCRIPTIONS' },
          }),
        ];
      }
      try {
        const prepared = await prepareOperation(app, context as WsContext, id, params);
        if (Array.isArray(prepared)) slots.give(id);
        return prepared as never;
      } catch (error) {
        slots.give(id);
        throw error;
      }
    },
    onError: (_context, _id, _payload, errors) => {
      options.logger.debug({ errors: errors.map((error) => error.message) }, 'graphql-ws operation failed');
    },
  });
}
