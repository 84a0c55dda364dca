/**
 * serveOverWs does for graphql-ws what its `useServer` did; the keep-alive and the dispose are the
 * parts the API tests do not reach. A schema of its own, no database: the transport is tested.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildSchema } from 'graphql';
import { makeServer } from 'graphql-ws';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { serveOverWs, type SocketExtra } from '../src/http/graphql-ws-transport.ts';
import { testLogger } from './helpers/database.ts';

const schema = buildSchema('type Query { ok: Boolean }');

let http: Server;
let dispose: (() => Promise<void>) | undefined;

async function serve(): Promise<string> {
  http = createServer();
  const sockets = new WebSocketServer({ server: http });
  dispose = serveOverWs(makeServer<Record<string, unknown> | undefined, SocketExtra>({ schema }), sockets, testLogger());
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return `ws://127.0.0.1:${(http.address() as AddressInfo).port}`;
}

afterEach(async () => {
  vi.useRealTimers();
  await dispose?.();
  dispose = undefined;
  await new Promise((resolve) => http.close(resolve));
});

/** A client past connection_init, so graphql-ws's wait for it does not close the socket. */
async function acknowledged(url: string, options: { autoPong: boolean }) {
  const client = new WebSocket(url, 'graphql-transport-ws', options);
  const messages: string[] = [];
  client.on('message', (data) => messages.push(String(data)));
  await new Promise((resolve) => client.once('open', resolve));
  client.send(JSON.stringify({ type: 'connection_init' }));
  await vi.waitFor(() => expect(messages).toContain('{"type":"connection_ack"}'));
  const closed = new Promise<number>((resolve) => client.once('close', resolve));
  return { client, closed };
}

describe('the graphql-ws transport on ws', () => {
  it('pings every 12 s, keeps a client that answers, and cuts one that does not by the next ping', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'setTimeout', 'clearInterval', 'clearTimeout'] });
    const url = await serve();
    const answering = await acknowledged(url, { autoPong: true });
    const silent = await acknowledged(url, { autoPong: false });
    const pinged = new Promise((resolve) => silent.client.once('ping', resolve));

    await vi.advanceTimersByTimeAsync(11_900);
    expect(silent.client.readyState).toBe(WebSocket.OPEN);
    await vi.advanceTimersByTimeAsync(200);
    await pinged;
    await vi.advanceTimersByTimeAsync(12_000);
    expect(await silent.closed).toBe(1006);
    expect(answering.client.readyState).toBe(WebSocket.OPEN);
    answering.client.close();
  });

  it('closes every client with 1001 when disposed', async () => {
    const url = await serve();
    const { closed } = await acknowledged(url, { autoPong: true });
    await dispose!();
    dispose = undefined;
    expect(await closed).toBe(1001);
  });
});
