/**
 * The settings reach the parts they set: real processes started with non-default values, each
 * observed by its effect where that is cheap to see, and by the part's own start-up line where the
 * effect is a matter of time (a poll interval, a timeout).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './helpers/database.ts';
import { SERVICE_ARGS, type ServiceProcess, startService } from './helpers/processes.ts';

let testDb: TestDatabase;
let api: ServiceProcess;
let worker: ServiceProcess;
let client: pg.Client;

const WORKER_SETTINGS = {
  ROLE: 'worker',
  WORKER_CONCURRENCY: '3',
  WORKER_PREFETCH: '0',
  JOB_ADD_DELAY_MS: '300',
  WORKER_POLL_INTERVAL_MS: '150',
  JOB_TIMEOUT_SECONDS: '7',
  SHUTDOWN_GRACE_MS: '1234',
  PRUNE_INTERVAL_SECONDS: '1',
  PRUNE_BATCH_SIZE: '2',
  // About 0.9 s: a retrieved job is pruned at the first pass after that.
  RETENTION_DAYS: '0.00001',
  COMPLETED_RETENTION_DAYS: '3650',
  METRICS_EXACT_COUNT_LIMIT: '1',
  METRICS_CACHE_MS: '0',
};

beforeAll(async () => {
  testDb = await createTestDatabase(import.meta.filename);
  client = new pg.Client({ connectionString: testDb.url });
  await client.connect();
  [api, worker] = await Promise.all([
    startService({
      DATABASE_URL: testDb.url,
      ROLE: 'api',
      NUMBER_MAX_DIGITS: '5',
      MAX_ATTEMPTS: '2',
      BATCH_MAX_JOBS: '3',
      MAX_BODY_BYTES: '2048',
    }),
    startService({ DATABASE_URL: testDb.url, ...WORKER_SETTINGS }),
  ]);
});

afterAll(async () => {
  await Promise.all([api?.stop(), worker?.stop()]);
  await client.end();
  await testDb.drop();
});

const base = () => `http://127.0.0.1:${api.port}`;

async function addJob(num1: string, num2: string): Promise<{ jobId: string; maxAttempts: number }> {
  const response = await fetch(`${base()}/api/v1/add/${num1}/${num2}`, { method: 'POST' });
  expect(response.status).toBe(202);
  return (await response.json()) as { jobId: string; maxAttempts: number };
}

async function until(condition: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function logLine(service: ServiceProcess, msg: string): Record<string, unknown> | undefined {
  return service.logs.find((entry) => entry['msg'] === msg);
}

describe('API settings', () => {
  it('NUMBER_MAX_DIGITS, MAX_ATTEMPTS, BATCH_MAX_JOBS and MAX_BODY_BYTES take effect', async () => {
    const tooLong = await fetch(`${base()}/api/v1/add/123456/1`, { method: 'POST' });
    expect(tooLong.status).toBe(400);
    expect(await tooLong.json()).toMatchObject({ error: { field: 'num1', message: expect.stringContaining('at most 5') } });
    expect((await addJob('12345', '1')).maxAttempts).toBe(2);

    const batch = await fetch(`${base()}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        query: 'mutation ($inputs: [AddJobInput!]!) { addJobs(inputs: $inputs) { job { id } } }',
        variables: { inputs: Array.from({ length: 4 }, () => ({ num1: '1', num2: '2' })) },
      }),
    });
    const answer = (await batch.json()) as { errors?: Array<{ extensions: { code: string } }> };
    expect(answer.errors?.[0]?.extensions.code).toBe('BAD_USER_INPUT');

    const big = await fetch(`${base()}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: `{ __typename }`, padding: 'x'.repeat(3000) }),
    });
    expect(big.status).toBe(413);
  });
});

describe('where the API serves metrics', () => {
  it('on its ops port, and on the API port only with METRICS_ON_API_PORT', async () => {
    const opsOf = (service: ServiceProcess) =>
      (service.logs.find((entry) => entry['ops']) as { ops: { metrics: string } } | undefined)?.ops.metrics;
    // The test helper sets OPS_PORT=0 for every process it starts, so the API has an ops server.
    const warning = api.logs.find((entry) => String(entry['msg']).startsWith('API_KEYS is not set'));
    expect(warning).toMatchObject({ host: '127.0.0.1', msg: expect.stringMatching(/listens on 127\.0\.0\.1 only/) });
    const hidden = await fetch(`${base()}/metrics`);
    expect(hidden.status).toBe(404);
    expect(await (await fetch(opsOf(api)!)).text()).toMatch(/^job_subscriptions_open 0$/m);

    const open = await startService({ DATABASE_URL: testDb.url, ROLE: 'api', METRICS_ON_API_PORT: 'true' });
    try {
      expect(await (await fetch(`http://127.0.0.1:${open.port}/metrics`)).text()).toMatch(/^job_subscriptions_open 0$/m);
    } finally {
      await open.stop();
    }
  });
});

describe('worker and pruner settings', () => {
  it('reach the worker and the pruner, which run in worker processes and not in API ones', () => {
    expect(logLine(api, 'worker started')).toBeUndefined();
    expect(logLine(api, 'pruner started')).toBeUndefined();
    expect(logLine(worker, 'worker started')).toMatchObject({
      concurrency: 3,
      prefetch: 0,
      pollIntervalMs: 150,
      jobTimeoutSeconds: 7,
      shutdownGraceMs: 1234,
    });
    expect(logLine(worker, 'pruner started')).toMatchObject({
      intervalMs: 1000,
      batchSize: 2,
      retentionDays: 0.00001,
      completedRetentionDays: 3650,
    });
  });

  it('WORKER_CONCURRENCY with WORKER_PREFETCH=0: 3 jobs claimed at once', async () => {
    const ids = await Promise.all(Array.from({ length: 9 }, (_, i) => addJob(String(i), '1').then((job) => job.jobId)));
    // Each handler takes 300 ms, so for that long the worker holds its 3 slots and leaves the other
    // 6 jobs pending; a worker with more slots, or one that queued beyond them, would take them.
    // (Later a finished job's slot is reused while its result is written, so `wip` may briefly
    // count one job more than run.)
    const seen: string[] = [];
    await until(async () => {
      const { rows } = await client.query<{ status: string; count: number }>(
        'SELECT status, count(*)::int AS count FROM job WHERE id = ANY($1) GROUP BY status',
        [ids],
      );
      const counts = Object.fromEntries(rows.map((row) => [row.status, row.count]));
      seen.push(`${counts['wip'] ?? 0} wip, ${counts['pending'] ?? 0} pending`);
      return counts['completed'] === ids.length;
    }, 'nine jobs to complete');
    expect(seen).toContain('3 wip, 6 pending');
    expect(seen).not.toContain('9 wip, 0 pending');
  });

  it('the poll finds a job that was never announced', async () => {
    const { rows } = await client.query<{ id: string }>(
      `INSERT INTO job (id, kind, input, max_attempts) VALUES (gen_random_uuid(), 'add', '{"num1": "20", "num2": "22"}', 1) RETURNING id`,
    );
    const id = rows[0]!.id;
    await until(async () => {
      const job = await client.query<{ status: string }>('SELECT status FROM job WHERE id = $1', [id]);
      return job.rows[0]?.status === 'completed';
    }, 'the unannounced job to complete');
  });

  it('PRUNE_INTERVAL_SECONDS and RETENTION_DAYS: a retrieved job is pruned soon after', async () => {
    const { jobId } = await addJob('2', '2');
    await until(async () => {
      const read = (await (await fetch(`${base()}/api/v1/job/${jobId}`)).json()) as { status?: string };
      return read.status === 'retrieved';
    }, 'the job to be retrieved');
    await until(async () => (await fetch(`${base()}/api/v1/job/${jobId}`)).status === 404, 'the job to be pruned');
    // The worker's pruner did it, as its log says (its lines arrive through a pipe, a little later).
    await until(async () => worker.logs.some((entry) => entry['msg'] === 'pruned old jobs'), "the pruner's log line");
  });

  it('METRICS_EXACT_COUNT_LIMIT: a table over the limit is estimated, not counted', async () => {
    // Over the limit of 1 whatever ran before; the table's size comes from the planner's
    // statistics, and autovacuum may be off.
    await Promise.all([addJob('1', '1'), addJob('2', '2')]);
    await client.query('ANALYZE job');
    const scrape = await (await fetch(`http://127.0.0.1:${worker.port}/metrics`)).text();
    expect(scrape).toMatch(/^jobs_counts_exact 0$/m);
  });
});

describe('settings that stop or change the process itself', () => {
  it('API_KEYS: a key under 16 characters stops the process at start, naming the setting', async () => {
    const child = spawn(process.execPath, SERVICE_ARGS, {
      env: { ...process.env, DATABASE_URL: testDb.url, PORT: '0', API_KEYS: 'short-key-15-ch' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code).toBe(1);
    expect(stderr).toContain('API_KEYS: each API key needs at least 16 characters');
  });
});
