/**
 * A session the server ends (any FATAL error) means "unavailable, retry": a 503, a write sent
 * again, not a 500 or a refusal of the rows. The errors are real ones, raised by the test server;
 * on a full disk the chaos suite (test/chaos.test.ts) met a FATAL XX000 answered 500. The
 * statement-level states (disk full on an insert, class 53) are test/api.test.ts's.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgres } from '../src/db/postgres.ts';
import { isConnectionError, isRefusal, isTransient } from '../src/db/errors.ts';
import { databaseUrl, withAdmin, withClient } from './helpers/admin.ts';
import { createTestApp } from './helpers/api.ts';
import { createTestDatabase, type TestDatabase, testLogger } from './helpers/database.ts';

async function errorOf(work: () => Promise<unknown>): Promise<unknown> {
  try {
    await work();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error');
}

describe('errors that end the session', () => {
  let testDb: TestDatabase;
  const role = `test_no_slots_${randomBytes(4).toString('hex')}`;

  beforeAll(async () => {
    testDb = await createTestDatabase(import.meta.filename);
    // A role whose slots can run out: a connection it opens then is refused with 53300, FATAL,
    // as on a server whose max_connections is used up.
    await withAdmin((admin) => admin.query(`CREATE ROLE ${role} LOGIN`));
  });

  afterAll(async () => {
    await testDb.drop();
    await withAdmin((admin) => admin.query(`DROP ROLE IF EXISTS ${role}`));
  });

  it('a connection the server refuses with FATAL is unavailable, whatever its code', async () => {
    const error = await errorOf(() => withClient(databaseUrl(`no_such_database_${randomBytes(4).toString('hex')}`), async () => undefined));
    expect((error as { code: string; severity: string }).severity).toBe('FATAL');
    expect((error as { code: string }).code).toBe('3D000');
    expect(isConnectionError(error)).toBe(true);
    expect(isTransient(error)).toBe(true);
    expect(isRefusal(error)).toBe(false);
  });

  it('answers 503 UNAVAILABLE when no connection slot is left (FATAL 53300, at connect)', async () => {
    const url = new URL(testDb.url);
    url.username = role;
    const db = openPostgres({ connectionString: url.toString(), poolSize: 1, logger: testLogger() });
    const api = await createTestApp(db);
    try {
      // The slots run out while the app runs: its pool must connect again, and is refused.
      await withAdmin(async (admin) => {
        await admin.query(`ALTER ROLE ${role} CONNECTION LIMIT 0`);
        await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, [role]);
      });
      const response = await api.app.fetch('http://api/api/v1/add/1/2', { method: 'POST' });
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe('UNAVAILABLE');
      expect(response.status).toBe(503);
    } finally {
      await api.close();
      await db.close();
    }
  });
});
