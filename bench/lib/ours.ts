import { pino } from 'pino';
import { type Config, loadConfig } from '../../src/config.ts';
import type { Database } from '../../src/db/database.ts';
import { migrate, readMigrations } from '../../src/db/migrate.ts';
import { MIGRATIONS_DIR } from '../../src/db/open.ts';
import { openPostgres } from '../../src/db/postgres.ts';
import { JobEventHub } from '../../src/jobs/events.ts';
import { JobService } from '../../src/jobs/service.ts';
import type { JobKind } from '../../src/kinds/define.ts';
import type { KindRegistry } from '../../src/kinds/registry.ts';
import type { Logger } from '../../src/logger.ts';
import { kindsFromConfig } from '../../src/runtime.ts';
import { createFreshDatabase, type FreshDatabase } from './pg.ts';

export interface OursOnAFreshDatabase {
  config: Config;
  logger: Logger;
  fresh: FreshDatabase;
  db: Database;
  hub: JobEventHub;
  kinds: KindRegistry;
  service: JobService;
  /** Stops the hub, closes the pool and drops the database; stop the worker first. */
  close(): Promise<void>;
}

/**
 * Our service's parts as `src/main.ts` builds them, on a fresh database `bench_<label>_<random>`
 * (a copy of `template` when given), migrated: the settings from `env` over the defaults, the
 * built-in kinds plus `extraKinds`, and requests of up to `maxBatchSize` jobs. The hub is not
 * started: a trial starts it when it listens.
 */
export async function openOurs(
  label: string,
  {
    env = {},
    extraKinds = [],
    maxBatchSize,
    poolSize,
    template,
  }: { env?: Record<string, string>; extraKinds?: JobKind[]; maxBatchSize: number; poolSize?: number; template?: string },
): Promise<OursOnAFreshDatabase> {
  const config = loadConfig(env);
  const logger = pino({ level: 'silent' });
  const fresh = await createFreshDatabase(label, template);
  const db = openPostgres({ connectionString: fresh.url, poolSize: poolSize ?? config.DB_POOL_SIZE, logger });
  const hub = new JobEventHub(db, logger);
  const close = async () => {
    await hub.stop();
    await db.close();
    await fresh.drop();
  };
  try {
    await migrate(db, await readMigrations(MIGRATIONS_DIR), logger);
  } catch (error) {
    await close();
    throw error;
  }
  const kinds = kindsFromConfig(config, extraKinds);
  const service = new JobService({
    db,
    hub,
    kinds,
    limits: { maxAttempts: config.MAX_ATTEMPTS, maxBatchSize, maxInputBytes: config.JOB_PAYLOAD_MAX_BYTES },
  });
  return { config, logger, fresh, db, hub, kinds, service, close };
}

/** Resolves once `hub` has heard `jobs` jobs become completed; listen before the work starts. */
export function heardCompleted(hub: JobEventHub, jobs: number): Promise<void> {
  return new Promise((resolve) => {
    let completed = 0;
    hub.onEvents((events) => {
      for (const event of events) if (event.status === 'completed') completed += 1;
      if (completed >= jobs) resolve();
    });
  });
}
