import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './helpers/database.ts';

const run = promisify(execFile);
let testDb: TestDatabase;

beforeAll(async () => {
  testDb = await createTestDatabase(import.meta.filename);
});
afterAll(() => testDb.drop());

/** Runs the Prisma CLI as a developer would, with its offline schema engine and no network. */
function prisma(...args: string[]) {
  return run('npx', ['prisma', ...args], { env: { ...process.env, DATABASE_URL: testDb.url }, timeout: 60_000 });
}

describe('the migrations', () => {
  it('applied by the service are what the Prisma CLI expects', async () => {
    const { stdout } = await prisma('migrate', 'status');
    expect(stdout).toMatch(/Database schema is up to date/);
  });

  it('match the Prisma schema exactly', async () => {
    // --exit-code makes a non-empty diff exit 2, which rejects this promise.
    const { stdout } = await prisma(
      'migrate',
      'diff',
      '--from-migrations',
      'prisma/migrations',
      '--to-schema',
      'prisma/schema.prisma',
      '--exit-code',
    );
    expect(stdout).toMatch(/No difference detected/);
  });
});
