import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaClient } from '../generated/prisma/client.ts';
import type { Logger } from '../logger.ts';
import type { Database, Queryable, Statement, TransactionClient } from './database.ts';
import { Listener } from './pg-listener.ts';

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
  /** How often the LISTEN connection must hear a NOTIFY of its own (see `Listener`). */
  listenProbeIntervalMs?: number;
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
  const listener = new Listener({
    connectionString: options.listenConnectionString ?? options.connectionString,
    applicationName: `${applicationName}/listen`,
    logger,
    reconnectDelayMs: options.reconnectDelayMs ?? { initial: 100, max: 5_000 },
    probeIntervalMs: options.listenProbeIntervalMs ?? 5_000,
    pool: queryable(pool, prepared),
  });
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
