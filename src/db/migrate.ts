import { createHash, randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../logger.ts';
import type { Database, Queryable } from './database.ts';

export interface Migration {
  name: string;
  script: string;
  /** The same checksum Prisma records, so `prisma migrate status` agrees with this runner. */
  checksum: string;
}

export async function readMigrations(directory: string): Promise<Migration[]> {
  const entries = await readdir(directory, { withFileTypes: true });
  const names = entries
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();
  return Promise.all(
    names.map(async (name) => {
      const script = await readFile(join(directory, name, 'migration.sql'), 'utf8');
      return { name, script, checksum: createHash('sha256').update(script).digest('hex') };
    }),
  );
}

// Prisma's own bookkeeping table, so the CLI and this runner can take turns on one database.
const CREATE_HISTORY = `
CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
  "id"                  VARCHAR(36) PRIMARY KEY NOT NULL,
  "checksum"            VARCHAR(64) NOT NULL,
  "finished_at"         TIMESTAMPTZ,
  "migration_name"      VARCHAR(255) NOT NULL,
  "logs"                TEXT,
  "rolled_back_at"      TIMESTAMPTZ,
  "started_at"          TIMESTAMPTZ NOT NULL DEFAULT now(),
  "applied_steps_count" INTEGER NOT NULL DEFAULT 0
)`;

const historyExists = {
  name: 'migrations_history_exists',
  text: `SELECT to_regclass('"_prisma_migrations"') IS NOT NULL AS "exists"`,
};
const appliedMigrations = {
  name: 'migrations_applied',
  text: `SELECT migration_name AS name, checksum FROM "_prisma_migrations"
         WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`,
};
const recordMigration = {
  name: 'migrations_record',
  text: `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, finished_at, applied_steps_count)
         VALUES ($1, $2, $3, now(), now(), 1)`,
};
// Any constant works; it only has to be the same in every process that migrates this database.
const migrationLock = { name: 'migrations_lock', text: 'SELECT pg_advisory_xact_lock(7482031998) AS locked' };

async function applied(db: Queryable): Promise<Map<string, string>> {
  const [history] = await db.query<{ exists: boolean }>(historyExists);
  if (!history?.exists) return new Map();
  const rows = await db.query<{ name: string; checksum: string }>(appliedMigrations);
  return new Map(rows.map((row) => [row.name, row.checksum]));
}

/** Names of the migrations in `directory` that the database has not applied yet. */
export async function pendingMigrations(db: Queryable, migrations: readonly Migration[]): Promise<string[]> {
  const done = await applied(db);
  return migrations.filter((migration) => !done.has(migration.name)).map((migration) => migration.name);
}

/**
 * Applies the pending migrations in one transaction. The advisory lock lets several processes
 * start at once on one database: the first migrates, the others wait and then find nothing to do.
 * A migration whose file changed after it was applied stops the start, as it does in Prisma.
 */
export async function migrate(db: Database, migrations: readonly Migration[], logger: Logger): Promise<string[]> {
  return db.transaction(async (tx) => {
    await tx.query(migrationLock);
    await tx.exec(CREATE_HISTORY);
    const done = await applied(tx);
    const newlyApplied: string[] = [];
    for (const migration of migrations) {
      const checksum = done.get(migration.name);
      if (checksum !== undefined) {
        if (checksum !== migration.checksum) {
          throw new Error(`Migration ${migration.name} was changed after it was applied`);
        }
        continue;
      }
      await tx.exec(migration.script);
      await tx.query(recordMigration, [randomUUID(), migration.checksum, migration.name]);
      newlyApplied.push(migration.name);
      logger.info({ migration: migration.name }, 'applied migration');
    }
    return newlyApplied;
  });
}
