/**
 * ws-frames.ts patches a private part of ws (the pinned 8.23.0). These tests run it on real
 * sockets and fail when a new ws changes what it relies on, or when the fallback stops working.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Duplex, PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { FRAMES_PER_WRITE, gatherFrameWrites } from '../src/http/ws-frames.ts';

let server: Server;
let sockets: WebSocketServer;
let url: string;

beforeAll(async () => {
  server = createServer();
  sockets = new WebSocketServer({ server });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const client of sockets.clients) client.terminate();
  await new Promise((resolve) => sockets.close(resolve));
  await new Promise((resolve) => server.close(resolve));
});

/** A client connected to the test server, and the server's end of it with its TCP socket. */
async function connect() {
  const accepted = new Promise<[WebSocket, Duplex]>((resolve) =>
    sockets.once('connection', (socket, request) => resolve([socket, request.socket])),
  );
  const client = new WebSocket(url);
  const received: string[] = [];
  client.on('message', (data) => received.push(String(data)));
  const [socket, tcp] = await accepted;
  if (client.readyState !== client.OPEN) await new Promise((resolve) => client.once('open', resolve));
  // Counts the TCP writes; each still goes through to the real socket.
  const writes: unknown[] = [];
  const write = tcp.write.bind(tcp);
  tcp.write = ((...args: Parameters<typeof write>) => {
    writes.push(args[0]);
    return write(...args);
  }) as typeof tcp.write;
  return { client, socket, tcp, received, writes };
}

describe('gathered frame writes on ws 8.23', () => {
  it("finds ws's sender on a connected socket, with sendFrame where it is expected", async () => {
    const { client, socket, tcp } = await connect();
    const sender = (socket as unknown as { _sender?: { sendFrame?: unknown } })._sender;
    expect(typeof sender?.sendFrame).toBe('function');
    expect(gatherFrameWrites(socket, tcp)).toBe(true);
    client.terminate();
  });

  it('writes a burst of messages, a ping among them, in one TCP write, in order, and then calls back', async () => {
    const { client, socket, tcp, received, writes } = await connect();
    gatherFrameWrites(socket, tcp);
    const pinged = new Promise((resolve) => client.once('ping', resolve));
    const sent: Array<Promise<void>> = [];
    for (let i = 0; i < 10; i++) {
      if (i === 5) socket.ping();
      sent.push(new Promise((resolve, reject) => socket.send(`message ${i}`, (error) => (error ? reject(error) : resolve()))));
    }
    expect(writes).toHaveLength(0);
    await Promise.all(sent);
    expect(writes).toHaveLength(1);
    await pinged;
    await expect.poll(() => received.length).toBe(10);
    expect(received).toEqual(Array.from({ length: 10 }, (_, i) => `message ${i}`));
    client.terminate();
  });

  it(`writes without waiting for the next tick once ${FRAMES_PER_WRITE} frames are gathered`, async () => {
    const { client, socket, tcp, received, writes } = await connect();
    gatherFrameWrites(socket, tcp);
    for (let i = 0; i < FRAMES_PER_WRITE + 1; i++) socket.send(String(i));
    expect(writes).toHaveLength(1);
    await expect.poll(() => received.length).toBe(FRAMES_PER_WRITE + 1);
    expect(writes).toHaveLength(2);
    client.terminate();
  });

  it('leaves a socket without the sender as it is, and it still sends', async () => {
    // A client that is still connecting is a real ws socket without a sender yet.
    const connecting = new WebSocket(url);
    const accepted = new Promise<WebSocket>((resolve) => sockets.once('connection', resolve));
    expect(gatherFrameWrites(connecting, new PassThrough())).toBe(false);
    await new Promise((resolve) => connecting.once('open', resolve));
    const far = await accepted;
    const heard = new Promise((resolve) => far.once('message', (data) => resolve(String(data))));
    connecting.send('still sent');
    expect(await heard).toBe('still sent');
    connecting.terminate();
  });
});
