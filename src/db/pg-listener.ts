import { randomBytes, randomUUID } from 'node:crypto';
import { Socket } from 'node:net';
import pg from 'pg';
import type { Logger } from '../logger.ts';
import type { ListenHandlers, Queryable, Statement } from './database.ts';

export interface ListenerOptions {
  connectionString: string;
  applicationName: string;
  logger: Logger;
  /** Pauses between attempts to restore a lost LISTEN connection. */
  reconnectDelayMs: { initial: number; max: number };
  /** How often the connection must hear a NOTIFY of its own, and how long it may take. */
  probeIntervalMs: number;
  /** Where the probe's NOTIFY is sent from: the pool, never the connection it tests. */
  pool: Queryable;
}

const probeNotify: Statement = { name: 'listen_probe_notify', text: 'SELECT pg_notify($1, $2)' };

/**
 * TCP keepalive on the LISTEN connection starts this long after its last packet (the OS default
 * is two hours). The probe below is what finds a silent connection; keepalive is for the time
 * between probes, and lets the kernel drop a peer that is gone.
 */
const KEEPALIVE_IDLE_MS = 10_000;
const CLOSE_WAIT_MS = 1_000;

/**
 * Holds the one LISTEN connection of the process, whatever the number of subscribers. It lives
 * outside the pool: a pooled client would be handed to other queries, and PgBouncer in
 * transaction mode would drop the LISTEN. Hence its own URL, which may point past PgBouncer.
 *
 * A connection can die without a word: a NAT or load balancer that forgets it sends no reset, and
 * a connection that only listens never writes, so TCP has nothing to time out. Subscriptions would
 * then stop updating for hours. So every `probeIntervalMs` a NOTIFY on a channel of this process
 * alone goes out through the pool, and a connection that has not heard it within another
 * `probeIntervalMs` is dropped and replaced, exactly as if it had closed: its listeners are told
 * to resync. A probe the pool cannot send (the database is away) proves nothing and is skipped.
 */
export class Listener {
  private readonly channels = new Map<string, Set<ListenHandlers>>();
  private readonly probeChannel = `job_listen_probe_${randomBytes(6).toString('hex')}`;
  private client: pg.Client | undefined;
  private socket: Socket | undefined;
  private connecting: Promise<void> | undefined;
  /**
   * The connection's LISTENs and UNLISTENs, one after another. Two parts that subscribe at once
   * (the scheduler while the LISTEN check runs) would otherwise send two queries on one client,
   * which pg 8 queues with a deprecation warning and pg 9 will refuse. A new connection starts
   * a new chain, so a command that a lost one never answers holds nothing up.
   */
  private commands: Promise<unknown> = Promise.resolve();
  private reconnectTimer: NodeJS.Timeout | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  /** The token of the probe in flight, and what to call when it is heard. */
  private probe: { token: string; heard: () => void } | undefined;
  /** Failed connects and missed probes since a probe was last heard; sets the reconnect pause. */
  private failures = 0;
  private closed = false;

  private readonly options: ListenerOptions;

  constructor(options: ListenerOptions) {
    this.options = options;
  }

  async add(channel: string, handlers: ListenHandlers): Promise<() => Promise<void>> {
    let subscribers = this.channels.get(channel);
    const isNewChannel = !subscribers;
    if (!subscribers) {
      subscribers = new Set();
      this.channels.set(channel, subscribers);
    }
    subscribers.add(handlers);
    if (!this.client) {
      await this.connect();
    } else if (isNewChannel) {
      await this.command(this.client, `LISTEN ${pg.escapeIdentifier(channel)}`);
    }
    return async () => {
      subscribers.delete(handlers);
      if (subscribers.size === 0 && this.channels.get(channel) === subscribers) {
        this.channels.delete(channel);
        // Not awaited: nothing reaches the handlers now, and on a connection gone silent (not yet
        // found by the probe) the answer would never come, holding up a shutdown.
        if (this.client) void this.command(this.client, `UNLISTEN ${pg.escapeIdentifier(channel)}`).catch(() => undefined);
      }
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    this.stopProbing();
    await this.connecting?.catch(() => undefined);
    const client = this.client;
    const socket = this.socket;
    this.client = undefined;
    this.socket = undefined;
    if (client) {
      client.removeAllListeners('end');
      // A deaf connection never answers the goodbye; it gets a second, then is cut.
      const cut = setTimeout(() => socket?.destroy(), CLOSE_WAIT_MS);
      await client.end().catch(() => undefined);
      clearTimeout(cut);
    }
  }

  private connect(): Promise<void> {
    this.connecting ??= this.open().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async open(): Promise<void> {
    const socket = new Socket();
    const client = new pg.Client({
      connectionString: this.options.connectionString,
      application_name: this.options.applicationName,
      keepAlive: true,
      keepAliveInitialDelayMillis: KEEPALIVE_IDLE_MS,
      // Our own socket, so a connection found deaf can be cut at once: ending it politely would
      // wait for a goodbye that never comes.
      stream: () => socket,
    });
    client.on('error', (error) => this.lost(client, error));
    client.on('end', () => this.lost(client, new Error('LISTEN connection ended')));
    client.on('notification', (message) => {
      if (message.channel === this.probeChannel) {
        const probe = this.probe;
        if (probe && message.payload === probe.token) probe.heard();
        return;
      }
      for (const handlers of this.channels.get(message.channel) ?? []) {
        handlers.onNotification(message.payload ?? '');
      }
    });
    try {
      await client.connect();
      for (const channel of [...this.channels.keys(), this.probeChannel]) {
        await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
      }
    } catch (error) {
      socket.destroy();
      throw error;
    }
    if (this.closed) {
      await client.end();
      return;
    }
    this.client = client;
    this.socket = socket;
    this.commands = Promise.resolve();
    this.scheduleProbe(client);
  }

  private command(client: pg.Client, sql: string): Promise<unknown> {
    const sent = this.commands.then(() => client.query(sql));
    this.commands = sent.catch(() => undefined);
    return sent;
  }

  private lost(client: pg.Client, error: Error): void {
    if (this.client !== client) return;
    this.client = undefined;
    this.stopProbing();
    client.removeAllListeners('end');
    this.socket?.destroy();
    this.socket = undefined;
    if (this.closed) return;
    this.options.logger.warn({ err: error }, 'LISTEN connection lost; reconnecting');
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    const { initial, max } = this.options.reconnectDelayMs;
    const delay = Math.min(max, initial * 2 ** this.failures);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.connect().then(
        () => {
          if (this.closed) return;
          this.options.logger.info('LISTEN connection restored');
          for (const subscribers of this.channels.values()) {
            for (const handlers of subscribers) handlers.onReconnect();
          }
        },
        (error: unknown) => {
          this.failures += 1;
          this.options.logger.warn({ err: error, failures: this.failures }, 'LISTEN reconnect failed');
          if (!this.closed) this.scheduleReconnect();
        },
      );
    }, delay);
  }

  private scheduleProbe(client: pg.Client): void {
    this.probeTimer = setTimeout(() => void this.sendProbe(client), this.options.probeIntervalMs);
    this.probeTimer.unref();
  }

  private async sendProbe(client: pg.Client): Promise<void> {
    let heard = false;
    const probe = { token: randomUUID(), heard: () => void (heard = true) };
    this.probe = probe;
    try {
      await this.options.pool.query(probeNotify, [this.probeChannel, probe.token]);
    } catch {
      if (this.client === client) this.scheduleProbe(client);
      return;
    }
    if (this.client !== client) return;
    const waitedMs = this.options.probeIntervalMs;
    const deadline = setTimeout(() => {
      this.failures += 1;
      this.lost(client, new Error(`the LISTEN connection did not hear its probe NOTIFY within ${waitedMs} ms`));
    }, waitedMs);
    deadline.unref();
    this.probeTimer = deadline;
    probe.heard = () => {
      clearTimeout(deadline);
      this.probe = undefined;
      this.failures = 0;
      this.scheduleProbe(client);
    };
    // It may have arrived before the pool's answer did.
    if (heard) probe.heard();
  }

  private stopProbing(): void {
    clearTimeout(this.probeTimer);
    this.probeTimer = undefined;
    this.probe = undefined;
  }
}
