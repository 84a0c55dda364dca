import { fileURLToPath } from 'node:url';
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { Database } from './database.ts';
import { type Migration, migrate } from './migrate.ts';
import { openPglite } from './pglite.ts';
import { openPostgres } from './postgres.ts';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../prisma/migrations', import.meta.url));

/**
 * Opens the database the config names (PostgreSQL at DATABASE_URL, else PGlite in DATA_DIR) and
 * brings its schema up to date before anything else touches it.
 */
export async function openDatabase(
  config: Pick<Config, 'DATABASE_URL' | 'DATA_DIR' | 'DB_POOL_SIZE'> &
    Partial<Pick<Config, 'LISTEN_DATABASE_URL' | 'LISTEN_PROBE_INTERVAL_MS' | 'DB_PREPARED_STATEMENTS' | 'ROLE'>>,
  migrations: readonly Migration[],
  logger: Logger,
): Promise<Database> {
  const db = config.DATABASE_URL
    ? openPostgres({
        connectionString: config.DATABASE_URL,
        listenConnectionString: config.LISTEN_DATABASE_URL,
        poolSize: config.DB_POOL_SIZE,
        preparedStatements: config.DB_PREPARED_STATEMENTS,
        listenProbeIntervalMs: config.LISTEN_PROBE_INTERVAL_MS,
        // The pid tells the processes of one host apart; pg_stat_activity.client_addr, the hosts.
        applicationName: `job-service/${config.ROLE ?? 'all'}/${process.pid}`,
        logger,
      })
    : await openPglite(config.DATA_DIR);
  try {
    await migrate(db, migrations, logger);
  } catch (error) {
    await db.close();
    throw error;
  }
  logger.info(
    db.kind === 'pglite' ? { database: 'embedded PGlite', dataDir: config.DATA_DIR } : { database: 'PostgreSQL' },
    'database ready',
  );
  return db;
}
