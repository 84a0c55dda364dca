import { createServer, type Socket, connect } from 'node:net';

/** A PostgreSQL protocol message from the server that carries a NOTIFY ('A', NotificationResponse). */
const NOTIFICATION = 0x41;

export interface TcpProxy {
  /** A copy of `url` that goes through the proxy. */
  url: string;
  /** Connections accepted so far. */
  readonly connections: number;
  /**
   * Stops forwarding on the connections open now, both ways, without closing them: what a NAT
   * or load balancer that forgot a connection does. Later connections are forwarded.
   */
  stall(): void;
  close(): Promise<void>;
}

/**
 * A TCP proxy on 127.0.0.1, port 0, in front of the PostgreSQL server of `url`. With
 * `dropNotifications`, it parses the server's messages and leaves out every NotificationResponse:
 * a connection whose LISTEN succeeds and hears nothing, as through PgBouncer in transaction mode.
 */
export async function startTcpProxy(url: string, { dropNotifications = false } = {}): Promise<TcpProxy> {
  const target = new URL(url);
  const pairs = new Set<{ client: Socket; server: Socket; stalled: boolean }>();
  let connections = 0;
  const proxy = createServer((client) => {
    connections += 1;
    const server = connect(Number(target.port || 5432), target.hostname);
    const pair = { client, server, stalled: false };
    pairs.add(pair);
    const filter = dropNotifications ? notificationFilter() : (chunk: Buffer) => chunk;
    client.on('data', (chunk) => void (pair.stalled || server.write(chunk)));
    server.on('data', (chunk) => {
      if (pair.stalled) return;
      const kept = filter(chunk);
      if (kept.length > 0) client.write(kept);
    });
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      server.destroy();
    };
    client.on('close', end).on('error', end);
    server.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const proxied = new URL(url);
  proxied.hostname = '127.0.0.1';
  proxied.port = String((proxy.address() as { port: number }).port);
  return {
    url: proxied.toString(),
    get connections() {
      return connections;
    },
    stall() {
      for (const pair of pairs) pair.stalled = true;
    },
    async close() {
      for (const { client, server } of pairs) {
        client.destroy();
        server.destroy();
      }
      await new Promise((resolve) => proxy.close(resolve));
    },
  };
}

/** Splits the server's byte stream into messages (type byte, int32 length) and drops NOTIFYs. */
function notificationFilter(): (chunk: Buffer) => Buffer {
  let pending = Buffer.alloc(0);
  return (chunk) => {
    pending = Buffer.concat([pending, chunk]);
    const kept: Buffer[] = [];
    let offset = 0;
    while (pending.length - offset >= 5) {
      const size = 1 + pending.readInt32BE(offset + 1);
      if (pending.length - offset < size) break;
      if (pending[offset] !== NOTIFICATION) kept.push(pending.subarray(offset, offset + size));
      offset += size;
    }
    pending = pending.subarray(offset);
    return Buffer.concat(kept);
  };
}
