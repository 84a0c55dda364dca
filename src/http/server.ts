// Over the ~300-line guide: the ws frame batching and the graphql-ws wiring are to move into
// adapters of their own with the structure work (issue 14, item 5); until then they stay beside the server.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { type ExecutionArgs, getOperationAST, GraphQLError } from 'graphql';
import { CloseCode, type Context, MessageType, type SubscribePayload } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import { type RawData, type WebSocket, WebSocketServer } from 'ws';
import type { WebSocketOperation } from '../graphql/builder.ts';
import { withCode } from '../graphql/errors.ts';
import { StartStop } from '../lifecycle.ts';
import type { Logger } from '../logger.ts';
import { type App, GRAPHQL_PATH } from './app.ts';
import type { Authenticator } from './auth.ts';
import { listen } from './listen.ts';
import { createOriginPolicy } from './origins.ts';
import { OperationSlots, StreamBudget, type StreamLimits } from './stream-limits.ts';

export interface HttpServerOptions {
  host: string;
  port: number;
  logger: Logger;
  auth: Authenticator;
  /** Operations one WebSocket may have running at once. */
  maxSubscriptionsPerConnection: number;
  /** WebSockets open at once, per API key and in total; unbounded when not given. */
  connections?: StreamLimits;
  /** CORS_ORIGINS: a browser's upgrade from any other site's page is refused. */
  corsOrigins?: readonly string[];
  /** Largest WebSocket message accepted; a larger one closes the socket. */
  maxMessageBytes: number;
  /** How long open requests may finish at stop before their sockets are cut. */
  closeGraceMs?: number;
}

/**
 * The close code for a connection over WS_MAX_CONNECTIONS_PER_KEY or WS_MAX_CONNECTIONS: 1013, "try
 * again later" (RFC 6455's registry), which graphql-ws clients retry with their backoff.
 */
export const TOO_MANY_CONNECTIONS = 1013;

const UNBOUNDED: StreamLimits = { perKey: Number.POSITIVE_INFINITY, total: Number.POSITIVE_INFINITY };

/** Messages only a server may send. graphql-ws takes one from a client for a fault of its own. */
const SERVER_MESSAGES = new Set<unknown>([MessageType.ConnectionAck, MessageType.Next, MessageType.Error]);

function isServerMessage(data: RawData): boolean {
  try {
    const message: unknown = JSON.parse(String(data));
    return typeof message === 'object' && message !== null && SERVER_MESSAGES.has((message as { type?: unknown }).type);
  } catch {
    return false;
  }
}

/**
 * One change can make many messages for one socket (a client that follows 100 operations on it).
 * Written one by one, each frame cost a syscall: 10,000 subscribers of one job meant 20,000
 * writes (`next` and `complete`). Corking the TCP socket made that one syscall per burst, but
 * each frame was still two writes through Node's stream machinery (ws writes a header and a
 * payload), each with its own buffered entry and callback: a quarter of the service's time for
 * that change, and much of its garbage.
 *
 * So the frames ws makes for a socket are gathered and copied into one buffer, written once on the
 * next tick (which Node runs after the burst's promise callbacks), or sooner, after
 * FRAMES_PER_WRITE frames, so the client can start reading while the rest of the burst is made.
 * Every frame ws sends (messages, pings, the close frame) passes through `sendFrame`, so their
 * order is kept, and each frame's callback runs once the write that carried it is done. Nothing
 * waits on a timer.
 */
const FRAMES_PER_WRITE = 64;

type FrameCallback = ((error?: Error | null) => void) | undefined;
interface FrameSender {
  sendFrame(list: Array<Buffer | string>, callback?: FrameCallback): void;
}

function sendInBursts(socket: WebSocket, tcp: Duplex): void {
  // ws 8's sender, not a public API: checked, so a ws that changed it only loses the batching.
  const sender = (socket as unknown as { _sender?: Partial<FrameSender> })._sender;
  if (typeof sender?.sendFrame !== 'function') return;
  let parts: Array<Buffer | string> = [];
  let callbacks: FrameCallback[] = [];
  let frames = 0;
  const flush = () => {
    if (frames === 0) return;
    const written = parts;
    const waiting = callbacks;
    parts = [];
    callbacks = [];
    frames = 0;
    let size = 0;
    for (const part of written) size += typeof part === 'string' ? Buffer.byteLength(part) : part.length;
    const buffer = Buffer.allocUnsafe(size);
    let offset = 0;
    for (const part of written) offset += typeof part === 'string' ? buffer.write(part, offset) : part.copy(buffer, offset);
    tcp.write(buffer, (error) => {
      for (const callback of waiting) callback?.(error);
    });
  };
  sender.sendFrame = (list, callback) => {
    if (frames === 0) process.nextTick(flush);
    frames += 1;
    for (const part of list) parts.push(part);
    if (callback) callbacks.push(callback);
    if (frames >= FRAMES_PER_WRITE) flush();
  };
}

type WsContext = Context<Record<string, unknown> | undefined, { socket: WebSocket; request: IncomingMessage }>;

type EnvelopedArgs = ExecutionArgs & {
  rootValue: { execute: (args: ExecutionArgs) => unknown; subscribe: (args: ExecutionArgs) => unknown };
};

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

  constructor(
    private readonly app: App,
    private readonly options: HttpServerOptions,
  ) {
    super();
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
      void app(request, response);
    });
    this.server = server;
    this.bound = await listen(server, options.port, options.host);
    const origins = createOriginPolicy(options.corsOrigins ?? []);
    // After the listen: ws re-emits a bind error of the server, which graphql-ws prints as its own.
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
    this.disposeGraphqlWs = this.serveGraphqlWs(this.sockets);
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

  private serveGraphqlWs(sockets: WebSocketServer) {
    const { options } = this;
    // The operations of each connection, to bound what one socket may hold open.
    const active = new WeakMap<object, OperationSlots>();
    const connections = new StreamBudget(options.connections ?? UNBOUNDED, 'WebSocket connections');
    const disposable = useServer(
      {
        // A socket without a valid key is closed at connection_init (4403), before any operation;
        // one over the connection limits, with TOO_MANY_CONNECTIONS.
        onConnect: (context) => {
          const params = context.connectionParams as Record<string, unknown> | undefined;
          const fromParams = typeof params?.['authorization'] === 'string' ? params['authorization'] : undefined;
          const fromUpgrade = (context.extra.request as IncomingMessage).headers.authorization;
          const caller = options.auth.authenticate(fromParams ?? fromUpgrade);
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
            const prepared = await this.prepareOperation(context as WsContext, id, params);
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
      },
      sockets,
    );
    // ws answers a client's broken frame (over maxPayload, or text that is not UTF-8) by closing
    // the socket with the fitting code (1009, 1007) and emitting 'error'. graphql-ws would print
    // that to the console as an internal error of ours, once per bad frame; it is the client's.
    sockets.on('connection', (socket, request) => {
      sendInBursts(socket, request.socket);
      socket.removeAllListeners('error');
      socket.on('error', (error) => options.logger.debug({ err: error }, 'WebSocket client sent a broken frame'));
      // Likewise a message only a server sends (connection_ack, next, error): graphql-ws would
      // print it as its internal error and close with 4500. It is a bad request (4400).
      const deliver = socket.listeners('message');
      socket.removeAllListeners('message');
      socket.on('message', (data, isBinary) => {
        if (isServerMessage(data)) return socket.close(CloseCode.BadRequest, 'Invalid message received');
        for (const listener of deliver) listener.call(socket, data, isBinary);
      });
    });
    return () => disposable.dispose();
  }

  /**
   * Parses, validates and builds the context of one graphql-ws operation through the app's
   * envelop: its execution arguments, or the errors that refuse it.
   */
  private async prepareOperation(
    context: WsContext,
    id: string,
    params: SubscribePayload,
  ): Promise<EnvelopedArgs | readonly GraphQLError[]> {
    const request = context.extra.request as IncomingMessage;
    const { schema, execute, subscribe, contextFactory, parse, validate } = this.app.getEnveloped({
      ...context,
      req: request,
      socket: context.extra.socket,
      params,
    });
    // Errors returned from here skip Yoga's error masking, so they are labelled as Yoga
    // labels them over HTTP.
    let document;
    try {
      document = parse(params.query);
    } catch (error) {
      if (error instanceof GraphQLError) return [withCode(error, 'GRAPHQL_PARSE_FAILED')];
      throw error;
    }
    let errors;
    try {
      errors = validate(schema, document);
    } catch (error) {
      // GraphQL Armor's depth, cost, alias and directive limits throw instead of reporting.
      if (error instanceof GraphQLError) return [withCode(error, 'GRAPHQL_VALIDATION_FAILED')];
      throw error;
    }
    if (errors.length > 0) return errors.map((error: GraphQLError) => withCode(error, 'GRAPHQL_VALIDATION_FAILED'));
    if (!getOperationAST(document, params.operationName)) {
      return [
        new GraphQLError('Could not determine what operation to execute.', {
          extensions: { code: 'OPERATION_RESOLUTION_FAILURE' },
        }),
      ];
    }
    let contextValue;
    try {
      contextValue = await contextFactory();
    } catch (error) {
      return [error as GraphQLError];
    }
    // A shared subscription sends its `next` messages itself (see shared-subscriptions.ts).
    const socket = context.extra.socket;
    const webSocketOperation: WebSocketOperation = { id, send: (message) => socket.send(message) };
    contextValue = Object.assign(contextValue, { webSocketOperation });
    return {
      schema,
      document,
      operationName: params.operationName,
      variableValues: params.variables,
      contextValue,
      rootValue: { execute, subscribe },
    } satisfies EnvelopedArgs;
  }
}
