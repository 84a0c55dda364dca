import type { IncomingMessage } from 'node:http';
import { CloseCode, DEPRECATED_GRAPHQL_WS_PROTOCOL, handleProtocols, MessageType, type Server } from 'graphql-ws';
import type { RawData, WebSocket, WebSocketServer } from 'ws';
import type { Logger } from '../logger.ts';
import { gatherFrameWrites } from './ws-frames.ts';

/** What graphql-ws hands our hooks besides the connection: the socket and its upgrade request. */
export interface SocketExtra {
  socket: WebSocket;
  request: IncomingMessage;
}

/** graphql-ws's own default in `useServer`: a ping every 12 s, and a socket with no pong by the next is cut. */
const KEEP_ALIVE_MS = 12_000;

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
 * Puts a graphql-ws server (`makeServer`, its public API for a transport of one's own) on ws's
 * sockets. It does what graphql-ws's `useServer` does, with two differences that `useServer`
 * allowed only by taking off and replacing the listeners it had put on each socket, and a third:
 * - ws answers a client's broken frame (over maxPayload, or text that is not UTF-8) by closing
 *   the socket with the fitting code (1009, 1007) and emitting 'error'. `useServer` printed that
 *   to the console as an internal error of ours, once per bad frame; it is the client's.
 * - Likewise a message only a server sends (connection_ack, next, error): graphql-ws would print
 *   it as its internal error and close with 4500. It is a bad request (4400).
 * - Each socket's frames are gathered into few writes (see ws-frames.ts).
 * The returned dispose resolves once the WebSocket server is closed.
 */
export function serveOverWs(server: Server<SocketExtra>, sockets: WebSocketServer, logger: Logger) {
  const isProd = process.env.NODE_ENV === 'production';
  const transport: Transport = {
    server,
    logger,
    isProd,
    internalError: (error) => (isProd ? 'Internal server error' : limitCloseReason(error instanceof Error ? error.message : String(error))),
  };
  sockets.options.handleProtocols = handleProtocols;
  // ws re-emits an error of the HTTP server it is attached to.
  sockets.once('error', (error) => {
    console.error('Internal error emitted on the WebSocket server. Please check your implementation.', error);
    // Every client is told before the first failure to close one is thrown.
    let failure: { error: unknown } | undefined;
    for (const client of sockets.clients) {
      try {
        client.close(CloseCode.InternalServerError, transport.internalError(error));
      } catch (closeError) {
        failure ??= { error: closeError };
      }
    }
    if (failure) throw failure.error;
  });
  sockets.on('connection', (socket, request) => openConnection(transport, socket, request));
  return async function dispose(): Promise<void> {
    for (const client of sockets.clients) client.close(1001, 'Going away');
    sockets.removeAllListeners();
    await new Promise<void>((resolve, reject) => sockets.close((error) => (error ? reject(error) : resolve())));
  };
}

interface Transport {
  server: Server<SocketExtra>;
  logger: Logger;
  isProd: boolean;
  /** The close reason for a fault of ours: its message, unless in production. */
  internalError(error: unknown): string;
}

function openConnection({ server, logger, isProd, internalError }: Transport, socket: WebSocket, request: IncomingMessage): void {
  gatherFrameWrites(socket, request.socket);
  socket.on('error', (error) => logger.debug({ err: error }, 'WebSocket client sent a broken frame'));
  const stopKeepAlive = keepAlive(socket);
  const closed = server.opened(
    {
      protocol: socket.protocol,
      send: (data) =>
        new Promise<void>((resolve, reject) => {
          if (socket.readyState !== socket.OPEN) return resolve();
          socket.send(data, (error) => (error ? reject(error) : resolve()));
        }),
      close: (code, reason) => socket.close(code, reason),
      onMessage: (deliver) =>
        socket.on('message', async (data) => {
          if (isServerMessage(data)) return socket.close(CloseCode.BadRequest, 'Invalid message received');
          try {
            await deliver(String(data));
          } catch (error) {
            console.error('Internal error occurred during message handling. Please check your implementation.', error);
            socket.close(CloseCode.InternalServerError, internalError(error));
          }
        }),
    },
    { socket, request },
  );
  socket.once('close', (code, reason) => {
    stopKeepAlive();
    if (!isProd && code === CloseCode.SubprotocolNotAcceptable && socket.protocol === DEPRECATED_GRAPHQL_WS_PROTOCOL) {
      console.warn(
        `Client provided the unsupported and deprecated subprotocol "${socket.protocol}" used by subscriptions-transport-ws.` +
          'Please see https://www.apollographql.com/docs/apollo-server/data/subscriptions/#switching-from-subscriptions-transport-ws.',
      );
    }
    void closed(code, String(reason));
  });
}

/** Pings the client every KEEP_ALIVE_MS and cuts a socket whose pong does not come by the next. */
function keepAlive(socket: WebSocket): () => void {
  let pongWait: NodeJS.Timeout | undefined;
  const pings = setInterval(() => {
    if (socket.readyState !== socket.OPEN) return;
    pongWait = setTimeout(() => socket.terminate(), KEEP_ALIVE_MS);
    socket.once('pong', () => {
      clearTimeout(pongWait);
      pongWait = undefined;
    });
    socket.ping();
  }, KEEP_ALIVE_MS);
  return () => {
    clearTimeout(pongWait);
    clearInterval(pings);
  };
}

/** A close reason must fit in 123 bytes; as graphql-ws does, a longer one gives way to a generic one. */
function limitCloseReason(reason: string): string {
  return reason.length < 124 ? reason : 'Internal server error';
}
