import type { PrismaClient } from '../generated/prisma/client.ts';

/**
 * A SQL statement with a stable name. On PostgreSQL the name makes `pg` prepare it once per
 * connection and reuse the plan; the text must never change under the same name.
 */
export interface Statement {
  readonly name: string;
  readonly text: string;
}

export interface Queryable {
  query<Row extends object>(statement: Statement, values?: readonly unknown[]): Promise<Row[]>;
}

export interface TransactionClient extends Queryable {
  /** Runs a whole script as one simple query, so `$$` bodies and several statements survive. */
  exec(script: string): Promise<void>;
}

export interface ListenHandlers {
  onNotification(payload: string): void;
  /**
   * Called after a lost LISTEN connection is back. Notifications sent while it was down are
   * gone, so whoever listens must re-read what it cares about.
   */
  onReconnect(): void;
}

/**
 * The seam between the queue and the database it runs on: a real PostgreSQL server through a
 * `pg` pool, or PGlite in this process. Queue code sees only this interface.
 */
export interface Database extends Queryable {
  readonly kind: 'postgres' | 'pglite';
  readonly prisma: PrismaClient;
  transaction<T>(work: (tx: TransactionClient) => Promise<T>): Promise<T>;
  /** Subscribes to a channel. Every subscription of the process shares one connection. */
  listen(channel: string, handlers: ListenHandlers): Promise<() => Promise<void>>;
  /** Connections in use and idle, for metrics and the connection budget. */
  poolStats(): { total: number; idle: number; waiting: number };
  close(): Promise<void>;
}
