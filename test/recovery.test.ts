/**
 * Real processes against trouble: a SIGTERM under load, and the database going away and coming
 * back. The outage is made per database (ALLOW_CONNECTIONS false, then pg_terminate_backend), so
 * the other test files sharing the server are not touched.
 */
import { print } from 'graphql';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AddJobDocument, JobUpdatedDocument } from './graphql/generated/graphql.ts';
import { sseEvents } from './helpers/api.ts';
import { withAdmin } from './helpers/admin.ts';
import { createTestDatabase, type TestDatabase } from './helpers/database.ts';
import { type ServiceProcess, startService } from './helpers/processes.ts';
import { inLifecycleOrder, subscribe } from './helpers/subscribers.ts';

/** Each test's own database: no test counts jobs another one left. */
let testDb: TestDatabase;
const processes: ServiceProcess[] = [];

beforeEach(async () => {
  testDb = await createTestDatabase(import.meta.filename);
});

afterEach(async () => {
  for (const service of processes.splice(0)) service.child.kill('SIGKILL');
  await withAdmin((admin) => admin.query(`ALTER DATABASE ${testDb.name} ALLOW_CONNECTIONS true`));
  await testDb.drop();
});

async function service(env: Record<string, string>) {
  const started = await startService({ DATABASE_URL: testDb.url, ...env });
  processes.push(started);
  return started;
}

/**
 * Counts by status (of the given jobs, or of all), on a connection of its own, so it never rides
 * a pool the outage broke.
 */
async function statusCounts(ids?: readonly string[]): Promise<Record<string, number>> {
  const client = new pg.Client({ connectionString: testDb.url });
  await client.connect();
  try {
    const { rows } = await client.query<{ status: string; count: number }>(
      'SELECT status, count(*)::int AS count FROM job WHERE $1::uuid[] IS NULL OR id = ANY($1) GROUP BY status',
      [ids ?? null],
    );
    return Object.fromEntries(rows.map((row) => [row.status, row.count]));
  } finally {
    await client.end();
  }
}

/** What a failure report needs: the unfinished jobs, the database sessions, the service's warnings. */
async function diagnose(app: ServiceProcess, accepted: readonly string[]): Promise<string> {
  // Jobs of this test only; the file's other tests leave theirs in the same database.
  const client = new pg.Client({ connectionString: testDb.url });
  await client.connect();
  try {
    const jobs = await client.query(
      "SELECT id, status, attempt, run_at, last_updated, now() AS now FROM job WHERE status <> 'completed' AND id = ANY($1)",
      [accepted],
    );
    const sessions = await client.query(
      `SELECT state, wait_event, left(query, 80) AS query, now() - state_change AS idle
       FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`,
    );
    const ids = new Set((await client.query<{ id: string }>('SELECT id FROM job')).rows.map((row) => row.id));
    const lost = accepted.filter((id) => !ids.has(id));
    const warnings = app.logs.filter((entry) => (entry['level'] as number) >= 40).map((entry) => entry['msg'] ?? entry['err']);
    const process = { exitCode: app.child.exitCode, signal: app.child.signalCode, stderr: app.stderr() };
    return JSON.stringify({ lost, jobs: jobs.rows, sessions: sessions.rows, process, warnings }, null, 1).slice(
      0,
      20_000,
    );
  } finally {
    await client.end();
  }
}

async function until(condition: () => Promise<boolean>, what: string, deadlineMs = 60_000) {
  const deadline = Date.now() + deadlineMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function addJobs(port: number, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i += 1) {
    const response = await fetch(`http://127.0.0.1:${port}/api/v1/add/${i}/1`, { method: 'POST' });
    expect(response.status).toBe(202);
    ids.push(((await response.json()) as { jobId: string }).jobId);
  }
  return ids;
}

/** Every job's attempt count, on a connection of its own. */
async function attempts(): Promise<number[]> {
  const client = new pg.Client({ connectionString: testDb.url });
  await client.connect();
  try {
    return (await client.query<{ attempt: number }>('SELECT attempt FROM job')).rows.map((row) => row.attempt);
  } finally {
    await client.end();
  }
}

describe('SIGTERM under load', () => {
  it('stops claiming, hands unfinished jobs back without using up an attempt, and exits 0', async () => {
    const api = await service({ ROLE: 'api' });
    await addJobs(api.port!, 100);
    const worker = await service({
      ROLE: 'worker',
      JOB_ADD_DELAY_MS: '60000',
      WORKER_CONCURRENCY: '10',
      SHUTDOWN_GRACE_MS: '200',
    });
    await until(async () => (await statusCounts())['wip'] === 10, 'ten jobs in flight');
    expect((await attempts()).filter((attempt) => attempt === 1)).toHaveLength(10);
    worker.child.kill('SIGTERM');
    // A guard, not a measurement: the grace period is 200 ms, so this is generous.
    const code = await Promise.race([worker.exited, new Promise((resolve) => setTimeout(resolve, 20_000, 'hung'))]);
    expect(code).toBe(0);
    expect(await statusCounts()).toEqual({ pending: 100 });
    expect(new Set(await attempts())).toEqual(new Set([0]));
  });

  it('lets jobs in flight finish within the grace period', async () => {
    const api = await service({ ROLE: 'api' });
    const worker = await service({
      ROLE: 'worker',
      JOB_ADD_DELAY_MS: '1000',
      WORKER_CONCURRENCY: '5',
      SHUTDOWN_GRACE_MS: '30000',
    });
    await addJobs(api.port!, 5);
    await until(async () => (await statusCounts())['wip'] === 5, 'five jobs in flight');
    worker.child.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
    expect(await statusCounts()).toEqual({ completed: 5 });
  });

  it('exits at once on a second signal, without waiting out the grace period', async () => {
    const api = await service({ ROLE: 'api' });
    const worker = await service({
      ROLE: 'worker',
      JOB_ADD_DELAY_MS: '60000',
      WORKER_CONCURRENCY: '3',
      SHUTDOWN_GRACE_MS: '600000',
    });
    await addJobs(api.port!, 3);
    await until(async () => (await statusCounts())['wip'] === 3, 'three jobs in flight');
    worker.child.kill('SIGTERM');
    await until(async () => worker.logs.some((entry) => entry['msg'] === 'shutting down'), 'the graceful stop to begin');
    worker.child.kill('SIGTERM');
    // Exit code 1, not the graceful stop's 0 (which would come only after the 10-minute grace).
    expect(await worker.exited).toBe(1);
    expect(worker.logs.some((entry) => entry['msg'] === 'second signal: exiting at once')).toBe(true);
    // Nothing was handed back: the stale rule recovers those jobs, as the README says.
    expect(await statusCounts()).toEqual({ wip: 3 });
  });
});

describe('the database going away and coming back', () => {
  it('reports the outage, answers 503 and UNAVAILABLE, then recovers, loses nothing, and tells subscribers on another process', async () => {
    // The subscribers are on the API process and the jobs run on a worker process, so what the
    // subscribers hear after the outage can only come through the API's restored LISTEN.
    const app = await service({ ROLE: 'api' });
    const base = `http://127.0.0.1:${app.port}`;
    const accepted: string[] = [];

    // Subscribers on jobs that will only finish after the outage: one over SSE, one over graphql-ws.
    const delayed = async () => {
      const response = await fetch(`${base}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          query: print(AddJobDocument),
          variables: { input: { num1: '1', num2: '1', runAt: new Date(Date.now() + 20_000).toISOString() } },
        }),
      });
      const id = ((await response.json()) as { data: { addJob: { job: { id: string } } } }).data.addJob.job.id;
      accepted.push(id);
      return id;
    };
    const watched = await delayed();
    const overWebSocket = subscribe(app.port!, await delayed());
    const closeStream = new AbortController();
    const stream = await fetch(`${base}/graphql`, {
      signal: closeStream.signal,
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query: print(JobUpdatedDocument), variables: { id: watched } }),
    });
    const seen: Array<{ status?: string; errors?: unknown }> = [];
    const reading = (async () => {
      for await (const event of sseEvents(stream)) {
        const message = event as { data?: { jobUpdated: { status: string } }; errors?: unknown };
        seen.push(message.errors ? { errors: message.errors } : { status: message.data!.jobUpdated.status });
      }
    })().catch((error: unknown) => {
      // Closing the stream ourselves ends it with an AbortError; anything else is a failure.
      if (!closeStream.signal.aborted) seen.push({ errors: String(error) });
    });
    await overWebSocket.until((states) => states.length > 0);
    accepted.push(...(await addJobs(app.port!, 400)));
    const worker = await service({ ROLE: 'worker', JOB_ADD_DELAY_MS: '50', WORKER_CONCURRENCY: '5' });
    // The outage comes while jobs run, and before the subscribers' jobs are due.
    await until(async () => ((await statusCounts())['wip'] ?? 0) > 0, 'jobs to be running');
    expect(await statusCounts([watched, overWebSocket.jobId])).toEqual({ pending: 2 });

    await withAdmin(async (admin) => {
      await admin.query(`ALTER DATABASE ${testDb.name} ALLOW_CONNECTIONS false`);
      await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [testDb.name]);
    });

    await until(async () => (await fetch(`${base}/ready`)).status === 503, '/ready to report the outage');
    expect(await (await fetch(`${base}/health`)).json()).toEqual({ status: 'ok' });
    const refused = await fetch(`${base}/api/v1/add/1/2`, { method: 'POST' });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).not.toBeNull();
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('UNAVAILABLE');
    const refusedGraphql = await fetch(`${base}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: print(AddJobDocument), variables: { input: { num1: '1', num2: '2' } } }),
    });
    const refusedBody = (await refusedGraphql.json()) as { errors: Array<{ extensions: { code: string } }> };
    expect(refusedBody.errors[0]!.extensions.code).toBe('UNAVAILABLE');
    // Both processes try to restore their LISTEN connection and fail while the outage lasts.
    const reconnectFailed = (service: ServiceProcess) => service.logs.some((entry) => entry['msg'] === 'LISTEN reconnect failed');
    await until(async () => reconnectFailed(app) && reconnectFailed(worker), 'a failed LISTEN reconnect on each process');
    expect(app.child.exitCode).toBeNull();
    expect(worker.child.exitCode).toBeNull();

    await withAdmin((admin) => admin.query(`ALTER DATABASE ${testDb.name} ALLOW_CONNECTIONS true`));
    await until(async () => (await fetch(`${base}/ready`)).status === 200, '/ready to recover');
    accepted.push(...(await addJobs(app.port!, 10)));

    await until(
      async () => (await statusCounts(accepted))['completed'] === accepted.length,
      'every accepted job to complete',
    ).catch(async (error: Error) => {
      throw new Error(`${error.message}\n${await diagnose(app, accepted)}`);
    });
    expect(await statusCounts(accepted)).toEqual({ completed: accepted.length });

    // The subscribers saw their jobs through, with no error and no state the job never had.
    await until(async () => seen.some((event) => event.status === 'COMPLETED'), 'the SSE subscriber to see COMPLETED');
    expect(seen.filter((event) => event.errors)).toEqual([]);
    const statuses = seen.map((event) => event.status);
    expect(statuses[0]).toBe('PENDING');
    expect(statuses.at(-1)).toBe('COMPLETED');
    expect(statuses.every((status) => ['PENDING', 'WIP', 'COMPLETED'].includes(status!))).toBe(true);
    await overWebSocket.until((states) => states.at(-1)?.status === 'COMPLETED');
    expect(inLifecycleOrder(overWebSocket.states)).toBe(true);
    expect(overWebSocket.error).toBeUndefined();
    await overWebSocket.close();
    closeStream.abort();
    await reading;
  }, 120_000);
});
