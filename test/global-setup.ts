import { pino } from 'pino';
import type { TestProject } from 'vitest/node';
import { migrate, readMigrations } from '../src/db/migrate.ts';
import { MIGRATIONS_DIR } from '../src/db/open.ts';
import { openPostgres } from '../src/db/postgres.ts';
import { databaseUrl, withAdmin } from './helpers/admin.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    templateDatabase: string;
  }
}

/**
 * Migrates one template database per run with the service's own migration runner; every test
 * file then clones it (CREATE DATABASE … TEMPLATE), which takes milliseconds.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const template = `jobs_template_${process.pid}`;
  await withAdmin(async (admin) => {
    await admin.query(`DROP DATABASE IF EXISTS ${template}`);
    await admin.query(`CREATE DATABASE ${template}`);
  });
  const db = openPostgres({ connectionString: databaseUrl(template), poolSize: 1, logger: pino({ level: 'silent' }) });
  try {
    await migrate(db, await readMigrations(MIGRATIONS_DIR), pino({ level: 'silent' }));
  } finally {
    await db.close();
  }
  project.provide('templateDatabase', template);
  return () => withAdmin(async (admin) => void (await admin.query(`DROP DATABASE IF EXISTS ${template} WITH (FORCE)`)));
}
