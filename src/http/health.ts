import type { Database } from '../db/database.ts';
import { type Migration, pendingMigrations } from '../db/migrate.ts';
import type { Logger } from '../logger.ts';
import { json } from './json.ts';

export interface HealthDeps {
  db: Database;
  migrations: readonly Migration[];
  logger: Logger;
}

/**
 * `/health`: the process is alive and serving. `/ready`: it can do its work, meaning the
 * database answers and has every migration this build knows. A load balancer sends traffic only
 * to ready instances; a failing `/ready` is no reason to restart the process.
 */
export function createHealthHandler({ db, migrations, logger }: HealthDeps) {
  return async (pathname: string): Promise<Response | null> => {
    if (pathname === '/health') return json({ status: 'ok' });
    if (pathname !== '/ready') return null;
    try {
      const pending = await pendingMigrations(db, migrations);
      if (pending.length > 0) return json({ status: 'unavailable', reason: 'migrations pending', pending }, 503);
      return json({ status: 'ready', database: db.kind });
    } catch (error) {
      logger.warn({ err: error }, 'readiness check failed');
      return json({ status: 'unavailable', reason: 'database unreachable' }, 503);
    }
  };
}
