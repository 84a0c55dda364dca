import { mkdirSync } from 'node:fs';
import { PGlite, type Transaction } from '@electric-sql/pglite';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { PrismaClient } from '../generated/prisma/client.ts';
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
 * data folder; LISTEN/NOTIFY works within the process.
 */
export async function openPglite(dataDir: string): Promise<Database> {
  if (!dataDir.startsWith('memory://')) mkdirSync(dataDir, { recursive: true });
  const db = await PGlite.create({ dataDir });
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
        await prisma.$disconnect();
        await db.close();
      })();
      return closing;
    },
  };
}
