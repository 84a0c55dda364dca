import { pino } from 'pino';
import type { TestProject } from 'vitest/node';
import { migrate, readMigrations } from '../src/db/migrate.ts';
import { MIGRATIONS_DIR } from '../src/db/open.ts';
import { openPostgres } from '../src/db/postgres.ts';
import { chooseTestServer, type TestServer } from './embedded-postgres/server.ts';
import { databaseUrl, withClient } from './helpers/admin.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    templateDatabase: string;
  }
}

/**
 * Chooses the run's server (test/embedded-postgres/server.ts), then migrates one template
 * database per run with the service's own migration runner; every test file then clones it
 * (CREATE DATABASE … TEMPLATE), which takes milliseconds.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const server = await chooseTestServer();
  let template: string;
  try {
    template = await migratedTemplate(server);
  } catch (error) {
    await server.stop();
    throw error;
  }
  // Test files, and the processes they start, find the server here (test/helpers/admin.ts): vitest
  // starts its workers after this setup, with this process's environment.
  process.env.TEST_DATABASE_URL = server.url;
  project.provide('templateDatabase', template);
  return async () => {
    try {
      await withClient(server.url, (admin) => admin.query(`DROP DATABASE IF EXISTS ${template} WITH (FORCE)`));
    } finally {
      await server.stop();
    }
  };
}

async function migratedTemplate(server: TestServer): Promise<string> {
  const template = `jobs_template_${process.pid}`;
  const version = await withClient(server.url, async (admin) => {
    await admin.query(`DROP DATABASE IF EXISTS ${template}`);
    await admin.query(`CREATE DATABASE ${template}`);
    return (await admin.query<{ server_version: string }>('SHOW server_version')).rows[0]!.server_version;
  });
  console.log(`Tests run on PostgreSQL ${version}: ${server.origin}`);
  const db = openPostgres({ connectionString: databaseUrl(template, server.url), poolSize: 1, logger: pino({ level: 'silent' }) });
  try {
    await migrate(db, await readMigrations(MIGRATIONS_DIR), pino({ level: 'silent' }));
  } finally {
    await db.close();
  }
  return template;
}
