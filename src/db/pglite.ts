import { mkdirSync } from 'node:fs';
import { PGlite, type Transaction } from '@electric-sql/pglite';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { PrismaClient } from '../generated/prisma/client.ts';
import { lockDataDir } from './data-dir-lock.ts';
import type { Database, Queryable, Statement } from './database.ts';

function queryable(db: PGlite | Transaction): Queryable {
  return {
    async query<Row extends object>(statement: Statement, values: readonly unknown[] = []) {
      const result = await db.query<Row>(statement.text, [...values]);
      return result.rows;
    },
  };
}

/**
 * PostgreSQL compiled to WebAssembly, running in this process: the default when no DATABASE_URL
 * is given. It has one connection, so SKIP LOCKED never skips and only one process may open a
 * data folder (a lock file enforces it); LISTEN/NOTIFY works within the process.
 */
export async function openPglite(dataDir: string): Promise<Database> {
  let unlock = () => {};
  if (!dataDir.startsWith('memory://')) {
    mkdirSync(dataDir, { recursive: true });
    unlock = lockDataDir(dataDir);
  }
  let db: PGlite;
  try {
    db = await PGlite.create({ dataDir });
  } catch (error) {
    unlock();
    throw error;
  }
  const prisma = new PrismaClient({ adapter: new PrismaPGlite(db) });
  let closing: Promise<void> | undefined;

  return {
    kind: 'pglite',
    prisma,
    ...queryable(db),
    transaction: (work) =>
      db.transaction((tx) =>
        work({
          ...queryable(tx),
          async exec(script) {
            await tx.exec(script);
          },
        }),
      ),
    async listen(channel, handlers) {
      const unlisten = await db.listen(channel, (payload) => handlers.onNotification(payload));
      return () => unlisten();
    },
    poolStats: () => ({ total: 1, idle: 0, waiting: 0 }),
    close() {
      closing ??= (async () => {
        try {
          await prisma.$disconnect();
          await db.close();
        } finally {
          unlock();
        }
      })();
      return closing;
    },
  };
}
