/**
 * The connection budget, seen from PostgreSQL: every connection names its process and purpose in
 * `application_name`, so `pg_stat_activity` shows that a process holds one LISTEN connection
 * however many subscribers it serves, and never more pool connections than DB_POOL_SIZE.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { Statement } from '../src/db/database.ts';
import { checkListenHears } from '../src/db/listen-check.ts';
import { checkAutovacuum } from '../src/db/vacuum-check.ts';
import { openPostgres } from '../src/db/postgres.ts';
import { withAdmin } from './helpers/admin.ts';
import { createTestDatabase, type TestDatabase, testLogger } from './helpers/database.ts';
import { type ServiceProcess, startService } from './helpers/processes.ts';
import { subscribe, type Subscriber } from './helpers/subscribers.ts';
import { startTcpProxy } from './helpers/tcp-proxy.ts';

const SUBSCRIBERS = 50;

/** Each test's own database: the sessions a test counts are those of its own processes alone. */
let testDb: TestDatabase;
const processes: ServiceProcess[] = [];
const subscribers: Subscriber[] = [];

beforeEach(async () => {
  testDb = await createTestDatabase(import.meta.filename);
});

afterEach(async () => {
  await Promise.all(subscribers.splice(0).map((subscriber) => subscriber.close()));
  for (const service of processes.splice(0)) service.child.kill('SIGKILL');
  await testDb.drop();
});

async function start(env: Record<string, string>) {
  const service = await startService({ DATABASE_URL: testDb.url, ...env });
  processes.push(service);
  return service;
}

interface Session {
  name: string;
  query: string;
}

/** The database's sessions, read from outside it. */
async function sessions(): Promise<Session[]> {
  return withAdmin(async (admin) => {
    const { rows } = await admin.query<Session>(
      `SELECT application_name AS name, query FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend'`,
      [testDb.name],
    );
    return rows;
  });
}

async function graphql<T>(port: number, query: string, variables: object = {}): Promise<T> {
  const response = await fetch(`http://127.0.0.1:${port}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data: T; errors?: unknown };
  expect(body.errors).toBeUndefined();
  return body.data;
}

async function addJobs(port: number, count: number): Promise<string[]> {
  const inputs = Array.from({ length: count }, (_, i) => ({ num1: String(i), num2: '0.5' }));
  const data = await graphql<{ addJobs: Array<{ job: { id: string } }> }>(
    port,
    'mutation($inputs: [AddJobInput!]!) { addJobs(inputs: $inputs) { job { id } } }',
    { inputs },
  );
  return data.addJobs.map(({ job }) => job.id);
}

describe('connections', () => {
  it(`a process with ${SUBSCRIBERS} graphql-ws subscribers holds one LISTEN connection`, async () => {
    const api = await start({ ROLE: 'api', DB_POOL_SIZE: '4', METRICS_ON_API_PORT: 'true' });
    const ids = await addJobs(api.port!, SUBSCRIBERS);
    const watching = ids.map((id) => subscribe(api.port!, id));
    subscribers.push(...watching);
    await Promise.all(watching.map((subscriber) => subscriber.until((states) => states.length > 0)));

    const worker = await start({ ROLE: 'worker', DB_POOL_SIZE: '2' });
    await Promise.all(
      watching.map((subscriber) => subscriber.until((states) => states.at(-1)?.status === 'COMPLETED')),
    );
    // COMPLETED is not final: every subscription is still open while the sessions are read.
    const scrape = await (await fetch(`http://127.0.0.1:${api.port}/metrics`)).text();
    expect(scrape).toMatch(new RegExp(`^job_subscriptions_open ${SUBSCRIBERS}$`, 'm'));

    const seen = await sessions();
    const named = (name: string) => seen.filter((session) => session.name === name);
    const apiListen = named(`job-service/api/${api.pid}/listen`);
    expect(apiListen).toHaveLength(1);
    // Its last statement: LISTEN job_events, or UNLISTEN of the start-up probe after it.
    expect(apiListen[0]!.query).toMatch(/^(UN)?LISTEN "job_/);
    expect(named(`job-service/worker/${worker.pid}/listen`)).toHaveLength(1);
    const apiPool = named(`job-service/api/${api.pid}/pool`).length;
    const workerPool = named(`job-service/worker/${worker.pid}/pool`).length;
    expect(apiPool).toBeGreaterThan(0);
    expect(apiPool).toBeLessThanOrEqual(4);
    expect(workerPool).toBeGreaterThan(0);
    expect(workerPool).toBeLessThanOrEqual(2);
    // Nobody else is on this database: every session is one of the two processes'.
    expect(seen).toHaveLength(2 + apiPool + workerPool);
    // Both heard their own NOTIFY at start (src/db/listen-check.ts).
    for (const service of [api, worker]) {
      expect(service.logs.filter((entry) => /LISTEN connection did not hear/.test(String(entry['msg'])))).toEqual([]);
    }

    for (const id of ids) await graphql(api.port!, 'mutation($id: ID!) { retrieveJob(id: $id) { id } }', { id });
    await Promise.all(watching.map((subscriber) => subscriber.until((_, ended) => ended)));
    expect(watching.every((subscriber) => subscriber.states.at(-1)?.status === 'RETRIEVED')).toBe(true);
  }, 60_000);

  it('LISTEN_DATABASE_URL takes the LISTEN connection elsewhere; unnamed statements serve the rest', async () => {
    // The name in the URL marks the connection made from it (a URL's application_name wins).
    const listenUrl = new URL(testDb.url);
    listenUrl.searchParams.set('application_name', 'listen-from-its-own-url');
    const api = await start({
      ROLE: 'all',
      LISTEN_DATABASE_URL: listenUrl.toString(),
      DB_PREPARED_STATEMENTS: 'false',
      DB_POOL_SIZE: '2',
    });
    const [id] = await addJobs(api.port!, 1);
    const subscriber = subscribe(api.port!, id!);
    subscribers.push(subscriber);
    await subscriber.until((states) => states.at(-1)?.status === 'COMPLETED');

    const mine = (await sessions()).filter(
      (session) => session.name.startsWith(`job-service/all/${api.pid}/`) || session.name === 'listen-from-its-own-url',
    );
    expect(mine.filter((session) => session.name === 'listen-from-its-own-url')).toEqual([
      { name: 'listen-from-its-own-url', query: expect.stringMatching(/^(UN)?LISTEN "(job_|schedule_changes)/) },
    ]);
    expect(mine.filter((session) => session.name.endsWith('/listen'))).toEqual([]);
    expect(mine.filter((session) => session.name.endsWith('/pool')).length).toBeGreaterThan(0);
  }, 60_000);

  it('a job table that autovacuum does not visit is reported with a warning, whichever setting keeps it away', async () => {
    const lines: Array<{ level: number; msg: string; autovacuum: string; jobTableAutovacuum: string }> = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const db = testDb.open();
    const serverOn = (await db.query<{ on: boolean }>({ name: 'test_autovacuum_setting', text: `SELECT current_setting('autovacuum') = 'on' AS on` }))[0]!.on;
    // The server's setting is the machine's (off on the CI machine's PostgreSQL, on in PostgreSQL's
    // default configuration); the table's own is this test's.
    expect(await checkAutovacuum(db, logger)).toBe(serverOn);
    expect(lines).toEqual(serverOn ? [] : [expect.objectContaining({ level: 40, autovacuum: 'off', jobTableAutovacuum: 'on' })]);
    lines.length = 0;
    await db.query({ name: 'test_autovacuum_table_off', text: 'ALTER TABLE job SET (autovacuum_enabled = false)' });
    try {
      expect(await checkAutovacuum(db, logger)).toBe(false);
      expect(lines).toEqual([
        expect.objectContaining({ level: 40, jobTableAutovacuum: 'off', msg: expect.stringMatching(/autovacuum does not visit the job table/) }),
      ]);
    } finally {
      await db.query({ name: 'test_autovacuum_table_reset', text: 'ALTER TABLE job RESET (autovacuum_enabled)' });
    }
  });

  it('a LISTEN connection that hears nothing is reported with a warning that names the likely cause', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) });
    const db = testDb.open();
    expect(await checkListenHears(db, logger)).toBe(true);
    expect(lines).toEqual([]);
    // What a LISTEN through PgBouncer in transaction mode amounts to: it succeeds, and hears
    // nothing. Here a proxy in front of PostgreSQL leaves every notification out.
    const proxy = await startTcpProxy(testDb.url, { dropNotifications: true });
    try {
      const deaf = testDb.open({ listenConnectionString: proxy.url });
      expect(await checkListenHears(deaf, logger, 200)).toBe(false);
      expect(lines.map((line) => (JSON.parse(line) as { level: number; msg: string }))).toEqual([
        expect.objectContaining({ level: 40, msg: expect.stringMatching(/LISTEN_DATABASE_URL/) }),
      ]);
      await deaf.close();
    } finally {
      await proxy.close();
    }
  });

  it('DB_PREPARED_STATEMENTS=false prepares nothing on the server', async () => {
    const probe: Statement = { name: 'connections_probe', text: 'SELECT 1 AS one' };
    const preparedCount: Statement = {
      name: 'connections_prepared_count',
      text: 'SELECT count(*)::int AS count FROM pg_prepared_statements',
    };
    for (const preparedStatements of [true, false]) {
      // One connection, so the count reads the session that ran the probe.
      const db = openPostgres({ connectionString: testDb.url, poolSize: 1, logger: testLogger(), preparedStatements });
      try {
        await db.query(probe);
        const [row] = await db.query<{ count: number }>(preparedCount);
        expect(row!.count).toBe(preparedStatements ? 2 : 0);
      } finally {
        await db.close();
      }
    }
  });
});
