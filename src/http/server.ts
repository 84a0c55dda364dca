import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Tracer } from '@opentelemetry/api';
import { WebSocketServer } from 'ws';
import { StartStop } from '../lifecycle.ts';
import { type App, GRAPHQL_PATH } from './app.ts';
import { createGraphqlWsServer, type GraphqlWsOptions } from './graphql-ws-server.ts';
import { serveOverWs } from './graphql-ws-transport.ts';
import { listen } from './listen.ts';
import { createOriginPolicy } from './origins.ts';
import { handleTraced } from './request-span.ts';

export { TOO_MANY_CONNECTIONS } from './graphql-ws-server.ts';

export interface HttpServerOptions extends GraphqlWsOptions {
  host: string;
  port: number;
  /** CORS_ORIGINS: a browser's upgrade from any other site's page is refused. */
  corsOrigins?: readonly string[];
  /** Largest WebSocket message accepted; a larger one closes the socket. */
  maxMessageBytes: number;
  /** How long open requests may finish at stop before their sockets are cut. */
  closeGraceMs?: number;
  /** Set while tracing is on: each request is a span (see request-span.ts). */
  tracer?: Tracer;
}

/**
 * Puts the app on a port: HTTP (GraphQL over POST/GET and SSE, GraphiQL, REST, health) and
 * graphql-ws on the same /graphql path. Both run through the same Yoga instance, so a WebSocket
 * operation gets the same schema, context and error masking as an HTTP one.
 */
export class HttpServer extends StartStop {
  private server: Server | undefined;
  private sockets: WebSocketServer | undefined;
  private disposeGraphqlWs: (() => void | Promise<void>) | undefined;
  private bound: AddressInfo | undefined;

  private readonly app: App;
  private readonly options: HttpServerOptions;

  constructor(app: App, options: HttpServerOptions) {
    super();
    this.app = app;
    this.options = options;
  }

  /** Where the server listens; set once it has started (useful with port 0). */
  get address(): AddressInfo {
    if (!this.bound) throw new Error('the HTTP server is not listening');
    return this.bound;
  }

  /** A new server and WebSocket server each time, so a start after stop() listens afresh. */
  protected async onStart(): Promise<void> {
    const { app, options } = this;
    const server = createServer((request, response) => {
      // The app's adapter builds the request's URL from the Host header and the raw target. When
      // that is no URL (Host 'a b', target '*' or 'http://…' after a Host with a port), it
      // answered 500 with a stack trace in the body. The request is malformed.
      if (!URL.canParse(`http://${request.headers.host ?? 'localhost'}${request.url ?? ''}`)) {
        response.writeHead(400, { 'content-type': 'application/json; charset=utf-8' });
        response.end(JSON.stringify({ error: { code: 'BAD_REQUEST', message: 'the Host header or request target is not valid' } }));
        return;
      }
      const { tracer } = options;
      if (tracer) handleTraced(tracer, request, response, () => void app(request, response));
      else void app(request, response);
    });
    this.server = server;
    this.bound = await listen(server, options.port, options.host);
    const origins = createOriginPolicy(options.corsOrigins ?? []);
    // After the listen: ws re-emits a bind error of the server, which serveOverWs would print as its own.
    this.sockets = new WebSocketServer({
      server,
      path: GRAPHQL_PATH,
      maxPayload: options.maxMessageBytes,
      // A browser lets any page open a WebSocket to any host, and sends no preflight: the
      // Origin it always sets is the only sign of a foreign page. No Origin: no browser.
      verifyClient: ({ req }, done) => {
        const foreign = origins.isForeign({
          origin: req.headers.origin,
          host: req.headers.host,
          fetchSite: req.headers['sec-fetch-site'] as string | undefined,
        });
        if (foreign) done(false, 403, 'cross-origin WebSocket refused; list the origin in CORS_ORIGINS to allow it');
        else done(true);
      },
    });
    this.disposeGraphqlWs = serveOverWs(createGraphqlWsServer(app, options), this.sockets, options.logger);
  }

  /**
   * Stops taking connections, ends the WebSocket subscriptions, lets open HTTP requests finish
   * for the grace period, then closes what is left.
   */
  protected async onStop(): Promise<void> {
    const { server, sockets } = this;
    this.server = undefined;
    this.sockets = undefined;
    this.bound = undefined;
    await this.disposeGraphqlWs?.();
    this.disposeGraphqlWs = undefined;
    if (!server) return;
    if (!sockets) {
      // The listen failed: nothing to close but the server object (its callback gets ERR_SERVER_NOT_RUNNING).
      await new Promise((resolve) => server.close(resolve));
      return;
    }
    for (const socket of sockets.clients) socket.close(1001, 'server shutting down');
    const closed = new Promise<void>((resolve) => sockets.close(() => server.close(() => resolve())));
    server.closeIdleConnections();
    const grace = setTimeout(() => server.closeAllConnections(), this.options.closeGraceMs ?? 5_000);
    await closed;
    clearTimeout(grace);
  }
}
