import { fileURLToPath } from 'node:url';
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { Database } from './database.ts';
import { type Migration, migrate } from './migrate.ts';
import { joinEmbeddedServer } from './embedded-postgres.ts';
import { openPglite } from './pglite.ts';
import { openPostgres } from './postgres.ts';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../prisma/migrations', import.meta.url));

/**
 * Opens the database the config names (PostgreSQL at DATABASE_URL, else the embedded one of
 * EMBEDDED_DATABASE in DATA_DIR) and brings its schema up to date before anything else touches it.
 */
export async function openDatabase(
  config: Pick<Config, 'DATABASE_URL' | 'EMBEDDED_DATABASE' | 'DATA_DIR' | 'DB_POOL_SIZE'> &
    Partial<Pick<Config, 'LISTEN_DATABASE_URL' | 'LISTEN_PROBE_INTERVAL_MS' | 'DB_PREPARED_STATEMENTS' | 'ROLE'>>,
  migrations: readonly Migration[],
  logger: Logger,
): Promise<Database> {
  const server = (connectionString: string) =>
    openPostgres({
      connectionString,
      listenConnectionString: config.DATABASE_URL ? config.LISTEN_DATABASE_URL : undefined,
      poolSize: config.DB_POOL_SIZE,
      preparedStatements: config.DB_PREPARED_STATEMENTS,
      listenProbeIntervalMs: config.LISTEN_PROBE_INTERVAL_MS,
      // The pid tells the processes of one host apart; pg_stat_activity.client_addr, the hosts.
      applicationName: `job-service/${config.ROLE ?? 'all'}/${process.pid}`,
      logger,
    });
  let db: Database;
  if (config.DATABASE_URL) db = server(config.DATABASE_URL);
  else if (config.EMBEDDED_DATABASE === 'pglite') db = await openPglite(config.DATA_DIR);
  else {
    const embedded = await joinEmbeddedServer(config.DATA_DIR, logger);
    db = leavingOnClose(server(embedded.url), embedded.leave);
  }
  try {
    await migrate(db, migrations, logger);
  } catch (error) {
    await db.close();
    throw error;
  }
  logger.info(
    config.DATABASE_URL
      ? { database: 'PostgreSQL' }
      : { database: config.EMBEDDED_DATABASE === 'pglite' ? 'embedded PGlite' : 'embedded PostgreSQL', dataDir: config.DATA_DIR },
    'database ready',
  );
  return db;
}

/** `db`, whose close() then tells the embedded server's supervisor this process has gone. */
function leavingOnClose(db: Database, leave: () => void): Database {
  const close = db.close.bind(db);
  return Object.assign(db, {
    async close() {
      try {
        await close();
      } finally {
        leave();
      }
    },
  });
}
