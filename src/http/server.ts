import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type ExecutionArgs, GraphQLError } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import type { Logger } from '../logger.ts';
import { type App, GRAPHQL_PATH } from './app.ts';
import type { Authenticator } from './auth.ts';

export interface HttpServerOptions {
  host: string;
  port: number;
  logger: Logger;
  auth: Authenticator;
  /** Operations one WebSocket may have running at once. */
  maxSubscriptionsPerConnection: number;
  /** Largest WebSocket message accepted; a larger one closes the socket. */
  maxMessageBytes: number;
  /** How long open requests may finish at stop before their sockets are cut. */
  closeGraceMs?: number;
}

type EnvelopedArgs = ExecutionArgs & {
  rootValue: { execute: (args: ExecutionArgs) => unknown; subscribe: (args: ExecutionArgs) => unknown };
};

/**
 * Puts the app on a port: HTTP (GraphQL over POST/GET and SSE, GraphiQL, REST, health) and
 * graphql-ws on the same /graphql path. Both run through the same Yoga instance, so a WebSocket
 * operation gets the same schema, context and error masking as an HTTP one.
 */
export class HttpServer {
  private readonly server: Server;
  private readonly sockets: WebSocketServer;
  private disposeGraphqlWs: (() => void | Promise<void>) | undefined;
  private starting: Promise<AddressInfo> | undefined;
  private stopping: Promise<void> | undefined;

  constructor(
    private readonly app: App,
    private readonly options: HttpServerOptions,
  ) {
    this.server = createServer(app);
    this.sockets = new WebSocketServer({ server: this.server, path: GRAPHQL_PATH, maxPayload: options.maxMessageBytes });
  }

  /** Listens, once. Resolves with the bound address (useful with port 0). */
  start(): Promise<AddressInfo> {
    this.starting ??= new Promise<AddressInfo>((resolve, reject) => {
      this.disposeGraphqlWs = this.serveGraphqlWs();
      this.server.once('error', reject);
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.off('error', reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
    return this.starting;
  }

  /**
   * Stops taking connections, ends the WebSocket subscriptions, lets open HTTP requests finish
   * for the grace period, then closes what is left. Safe to call twice, or before start.
   */
  stop(): Promise<void> {
    if (!this.starting) return Promise.resolve();
    this.stopping ??= (async () => {
      await this.starting?.catch(() => undefined);
      await this.disposeGraphqlWs?.();
      for (const socket of this.sockets.clients) socket.close(1001, 'server shutting down');
      const closed = new Promise<void>((resolve) => this.sockets.close(() => this.server.close(() => resolve())));
      this.server.closeIdleConnections();
      const grace = setTimeout(() => this.server.closeAllConnections(), this.options.closeGraceMs ?? 5_000);
      await closed;
      clearTimeout(grace);
    })();
    return this.stopping;
  }

  private serveGraphqlWs() {
    const { app, options } = this;
    // Operation ids per connection, to bound what one socket may hold open.
    const active = new WeakMap<object, Set<string>>();
    const disposable = useServer(
      {
        // A socket without a valid key is closed at connection_init (4403), before any operation.
        onConnect: (context) => {
          const params = context.connectionParams as Record<string, unknown> | undefined;
          const fromParams = typeof params?.['authorization'] === 'string' ? params['authorization'] : undefined;
          const fromUpgrade = (context.extra.request as IncomingMessage).headers.authorization;
          return options.auth.authenticate(fromParams ?? fromUpgrade) !== null;
        },
        onComplete: (context, id) => {
          active.get(context)?.delete(id);
        },
        execute: (args) => (args as EnvelopedArgs).rootValue.execute(args) as never,
        subscribe: (args) => (args as EnvelopedArgs).rootValue.subscribe(args) as never,
        onSubscribe: async (context, id, params) => {
          const ids = active.get(context) ?? new Set<string>();
          active.set(context, ids);
          if (ids.size >= options.maxSubscriptionsPerConnection) {
            return [
              new GraphQLError(`at most ${options.maxSubscriptionsPerConnection} operations per connection`, {
                extensions: { code: 'TOO_MANY_SUBSCRIPTIONS' },
              }),
            ];
          }
          const request = context.extra.request as IncomingMessage;
          const { schema, execute, subscribe, contextFactory, parse, validate } = app.getEnveloped({
            ...context,
            req: request,
            socket: context.extra.socket,
            params,
          });
          let document;
          try {
            document = parse(params.query);
          } catch (error) {
            return [error as never];
          }
          const errors = validate(schema, document);
          if (errors.length > 0) return errors;
          let contextValue;
          try {
            contextValue = await contextFactory();
          } catch (error) {
            return [error as GraphQLError];
          }
          ids.add(id);
          return {
            schema,
            document,
            operationName: params.operationName,
            variableValues: params.variables,
            contextValue,
            rootValue: { execute, subscribe },
          } satisfies EnvelopedArgs;
        },
        onError: (_context, _id, _payload, errors) => {
          options.logger.debug({ errors: errors.map((error) => error.message) }, 'graphql-ws operation failed');
        },
      },
      this.sockets,
    );
    return () => disposable.dispose();
  }
}
