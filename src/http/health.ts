import type { Database } from '../db/database.ts';
import { type Migration, pendingMigrations } from '../db/migrate.ts';
import type { Logger } from '../logger.ts';
import { json } from './json.ts';

export interface HealthDeps {
  db: Database;
  migrations: readonly Migration[];
  logger: Logger;
  /** How long one readiness answer is reused; a second unless told. */
  readyCacheMs?: number;
}

interface Readiness {
  body: Record<string, unknown>;
  status: number;
}

const READY_CACHE_MS = 1000;

/**
 * `/health`: the process is alive and serving. `/ready`: it can do its work, meaning the
 * database answers and has every migration this build knows. A load balancer sends traffic only
 * to ready instances; a failing `/ready` is no reason to restart the process.
 *
 * `/ready` is open and costs two queries, on the pool that claims and completions need. So one
 * check runs at a time, every caller meanwhile shares its answer, and the answer is kept for
 * `readyCacheMs`: a flood of probes costs at most two queries a second.
 */
export function createHealthHandler({ db, migrations, logger, readyCacheMs = READY_CACHE_MS }: HealthDeps) {
  let latest: { readiness: Promise<Readiness>; settledAt: number | undefined } | undefined;

  async function check(): Promise<Readiness> {
    try {
      const pending = await pendingMigrations(db, migrations);
      if (pending.length > 0) return { status: 503, body: { status: 'unavailable', reason: 'migrations pending', pending } };
      return { status: 200, body: { status: 'ready', database: db.kind } };
    } catch (error) {
      logger.warn({ err: error }, 'readiness check failed');
      return { status: 503, body: { status: 'unavailable', reason: 'database unreachable' } };
    }
  }

  function readiness(): Promise<Readiness> {
    // A check still running is shared however long it takes, so a database that hangs gets one
    // check at a time, not one more each second.
    const stale = latest?.settledAt !== undefined && Date.now() - latest.settledAt >= readyCacheMs;
    if (!latest || stale) {
      const entry: NonNullable<typeof latest> = { readiness: check(), settledAt: undefined };
      void entry.readiness.then(() => (entry.settledAt = Date.now()));
      latest = entry;
    }
    return latest.readiness;
  }

  return async (pathname: string): Promise<Response | null> => {
    if (pathname === '/health') return json({ status: 'ok' });
    if (pathname !== '/ready') return null;
    const { body, status } = await readiness();
    return json(body, status);
  };
}
