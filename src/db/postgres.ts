import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaClient } from '../generated/prisma/client.ts';
import type { Logger } from '../logger.ts';
import type { Database, ListenHandlers, Queryable, Statement, TransactionClient } from './database.ts';

export interface PostgresOptions {
  connectionString: string;
  /** Where the LISTEN connection goes; defaults to `connectionString`. See `Listener`. */
  listenConnectionString?: string;
  poolSize: number;
  logger: Logger;
  /**
   * Shown in `pg_stat_activity.application_name`, with `/pool` or `/listen` appended, so an
   * operator can tell which process holds which connection. An `application_name` in the URL wins.
   */
  applicationName?: string;
  /**
   * False sends every statement unnamed: parsed and planned on each call, but it works through
   * a PgBouncer in transaction mode that cannot track prepared statements (before 1.21, or
   * `max_prepared_statements = 0`).
   */
  preparedStatements?: boolean;
  /** Pauses between attempts to restore a lost LISTEN connection. */
  reconnectDelayMs?: { initial: number; max: number };
}

function queryable(client: pg.Pool | pg.PoolClient, prepared: boolean): Queryable {
  return {
    async query<Row extends object>(statement: Statement, values: readonly unknown[] = []) {
      const name = prepared ? statement.name : undefined;
      const result = await client.query<Row>({ name, text: statement.text, values: [...values] });
      return result.rows;
    },
  };
}

/**
 * Holds the one LISTEN connection of the process, whatever the number of subscribers. It lives
 * outside the pool: a pooled client would be handed to other queries, and PgBouncer in
 * transaction mode would drop the LISTEN. Hence its own URL, which may point past PgBouncer.
 */
class Listener {
  private readonly channels = new Map<string, Set<ListenHandlers>>();
  private client: pg.Client | undefined;
  private connecting: Promise<void> | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private closed = false;

  constructor(
    private readonly connectionString: string,
    private readonly applicationName: string,
    private readonly logger: Logger,
    private readonly delays: { initial: number; max: number },
  ) {}

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
      await this.client.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
    }
    return async () => {
      subscribers.delete(handlers);
      if (subscribers.size === 0 && this.channels.get(channel) === subscribers) {
        this.channels.delete(channel);
        await this.client?.query(`UNLISTEN ${pg.escapeIdentifier(channel)}`).catch(() => undefined);
      }
    };
  }

  private connect(): Promise<void> {
    this.connecting ??= this.open().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async open(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.connectionString,
      application_name: this.applicationName,
      keepAlive: true,
    });
    client.on('error', (error) => this.lost(client, error));
    client.on('end', () => this.lost(client, new Error('LISTEN connection ended')));
    client.on('notification', (message) => {
      for (const handlers of this.channels.get(message.channel) ?? []) {
        handlers.onNotification(message.payload ?? '');
      }
    });
    await client.connect();
    for (const channel of this.channels.keys()) {
      await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
    }
    if (this.closed) {
      await client.end();
      return;
    }
    this.client = client;
  }

  private lost(client: pg.Client, error: Error): void {
    if (this.client !== client) return;
    this.client = undefined;
    client.removeAllListeners('end');
    client.end().catch(() => undefined);
    if (this.closed) return;
    this.logger.warn({ err: error }, 'LISTEN connection lost; reconnecting');
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    const delay = Math.min(this.delays.max, this.delays.initial * 2 ** this.failures);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.connect().then(
        () => {
          if (this.closed) return;
          this.failures = 0;
          this.logger.info('LISTEN connection restored');
          for (const subscribers of this.channels.values()) {
            for (const handlers of subscribers) handlers.onReconnect();
          }
        },
        (error: unknown) => {
          this.failures += 1;
          this.logger.warn({ err: error, failures: this.failures }, 'LISTEN reconnect failed');
          if (!this.closed) this.scheduleReconnect();
        },
      );
    }, delay);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    await this.connecting?.catch(() => undefined);
    const client = this.client;
    this.client = undefined;
    if (client) {
      client.removeAllListeners('end');
      await client.end().catch(() => undefined);
    }
  }
}

export function openPostgres(options: PostgresOptions): Database {
  const { logger } = options;
  const applicationName = options.applicationName ?? 'job-service';
  const prepared = options.preparedStatements ?? true;
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    application_name: `${applicationName}/pool`,
    max: options.poolSize,
    connectionTimeoutMillis: 5_000,
    keepAlive: true,
  });
  // An idle client that loses its server emits here; without a listener the process would crash.
  pool.on('error', (error) => logger.warn({ err: error }, 'idle database connection failed'));
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
  const listener = new Listener(
    options.listenConnectionString ?? options.connectionString,
    `${applicationName}/listen`,
    logger,
    options.reconnectDelayMs ?? { initial: 100, max: 5_000 },
  );
  let closing: Promise<void> | undefined;

  return {
    kind: 'postgres',
    prisma,
    ...queryable(pool, prepared),
    async transaction(work) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const tx: TransactionClient = {
          ...queryable(client, prepared),
          async exec(script) {
            await client.query(script);
          },
        };
        const result = await work(tx);
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    },
    listen: (channel, handlers) => listener.add(channel, handlers),
    poolStats: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),
    close() {
      closing ??= (async () => {
        await listener.close();
        await prisma.$disconnect();
        await pool.end();
      })();
      return closing;
    },
  };
}
