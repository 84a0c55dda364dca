import { randomBytes } from 'node:crypto';
import { basename } from 'node:path';
import { pino } from 'pino';
import { inject } from 'vitest';
import type { Database } from '../../src/db/database.ts';
import { type Migration, readMigrations } from '../../src/db/migrate.ts';
import { MIGRATIONS_DIR } from '../../src/db/open.ts';
import { openPostgres } from '../../src/db/postgres.ts';
import type { Logger } from '../../src/logger.ts';
import { databaseUrl, withAdmin } from './admin.ts';

export function testLogger(): Logger {
  return pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
}

/** A line a capturing logger wrote, parsed. */
export type LogLine = { level: number; msg: string } & Record<string, unknown>;

/** A debug-level logger whose lines the test reads from `lines`. */
export function capturingLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
  return { logger, lines };
}

export interface TestDatabase {
  name: string;
  url: string;
  /** Opens a connection pool of the service's own kind on this database. */
  open(options?: {
    poolSize?: number;
    logger?: Logger;
    /** Where the LISTEN connection goes instead (a proxy, say). */
    listenConnectionString?: string;
    listenProbeIntervalMs?: number;
  }): Database;
  drop(): Promise<void>;
}

/** A fresh, migrated database for one test file, cloned from the run's template. */
export async function createTestDatabase(file: string): Promise<TestDatabase> {
  const label = basename(file).replace(/\.test\.ts$/, '').replace(/[^a-z0-9]/gi, '_').toLowerCase();
  const name = `test_${label}_${randomBytes(4).toString('hex')}`;
  const template = inject('templateDatabase');
  await withAdmin((admin) => admin.query(`CREATE DATABASE ${name} TEMPLATE ${template}`));
  const url = databaseUrl(name);
  const opened: Database[] = [];
  return {
    name,
    url,
    open(options = {}) {
      const db = openPostgres({
        connectionString: url,
        poolSize: options.poolSize ?? 5,
        logger: options.logger ?? testLogger(),
        reconnectDelayMs: { initial: 50, max: 500 },
        listenConnectionString: options.listenConnectionString,
        listenProbeIntervalMs: options.listenProbeIntervalMs,
      });
      opened.push(db);
      return db;
    },
    async drop() {
      await Promise.all(opened.map((db) => db.close()));
      await withAdmin((admin) => admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}

/** A database of its own with no migration applied, for a migration's test to apply them up to and past it. */
export interface UnmigratedDatabase {
  db: Database;
  /** Every migration of this build, in order. */
  migrations: Migration[];
  /** The migrations before `name`: what the database held before it. */
  before(name: string): Migration[];
  drop(): Promise<void>;
}

export async function createUnmigratedDatabase(prefix: string): Promise<UnmigratedDatabase> {
  const name = `${prefix}_${randomBytes(4).toString('hex')}`;
  await withAdmin((admin) => admin.query(`CREATE DATABASE ${name}`));
  const db = openPostgres({ connectionString: databaseUrl(name), poolSize: 2, logger: testLogger() });
  const migrations = await readMigrations(MIGRATIONS_DIR);
  return {
    db,
    migrations,
    before(migration) {
      const index = migrations.findIndex((candidate) => candidate.name === migration);
      if (index < 1) throw new Error(`no migration ${migration} after the first`);
      return migrations.slice(0, index);
    },
    async drop() {
      await db.close();
      await withAdmin((admin) => admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}
