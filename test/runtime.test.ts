import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { StoppedDuringStartError } from '../src/lifecycle.ts';
import { Runtime } from '../src/runtime.ts';
import { withAdmin } from './helpers/admin.ts';
import { createTestApp, testServer } from './helpers/api.ts';
import { capturingLogger, testLogger } from './helpers/database.ts';
import { ANONYMOUS, closeJobsDatabase, createWorker, type JobsDatabase, openJobsDatabase, statusOf, waitForJob } from './helpers/jobs.ts';
import { SERVICE_ARGS } from './helpers/processes.ts';

let jobs: JobsDatabase;
/** A port something else holds, so a start that needs it fails half-way. */
let taken: Server;
let takenPort: number;

beforeAll(async () => {
  jobs = await openJobsDatabase(import.meta.filename);
  taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  takenPort = (taken.address() as { port: number }).port;
});

afterAll(async () => {
  await new Promise((resolve) => taken.close(resolve));
  await closeJobsDatabase(jobs);
});

/** Connections open to the test's database other than the test's own pool. */
async function connectionsFrom(applicationName: string): Promise<number> {
  return withAdmin(async (admin) => {
    const { rows } = await admin.query<{ count: string }>(
      'SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = $2',
      [jobs.testDb.name, applicationName],
    );
    return Number(rows[0]!.count);
  });
}

/** Waits until the runtime's connections are gone: a closed pool ends them asynchronously. */
async function expectNoConnections(applicationName: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while ((await connectionsFrom(applicationName)) > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  expect(await connectionsFrom(applicationName)).toBe(0);
}

function runtimeConfig(applicationName: string, env: Record<string, string> = {}) {
  const url = new URL(jobs.testDb.url);
  url.searchParams.set('application_name', applicationName);
  return loadConfig({ DATABASE_URL: url.toString(), HOST: '127.0.0.1', PORT: '0', OPS_PORT: '0', LOG_LEVEL: 'silent', ...env });
}

describe('the worker under the start/stop contract', () => {
  it('runs one loop when start is called twice at once', async () => {
    const { logger, lines } = capturingLogger();
    const worker = createWorker(jobs.db, jobs.hub, { logger });
    await Promise.all([worker.start(), worker.start()]);
    await worker.stop();
    expect(lines.filter((line) => line.msg === 'worker started')).toHaveLength(1);
  });

  it('stays stopped when a stop arrives during its start, and claims nothing', async () => {
    const late = createWorker(jobs.db, jobs.hub, { pollIntervalMs: 10 });
    const starting = late.start();
    await late.stop();
    await expect(starting).rejects.toBeInstanceOf(StoppedDuringStartError);
    expect(late.state).toBe('stopped');

    const added = await Promise.all(Array.from({ length: 20 }, () => jobs.service.addJob({ num1: '1', num2: '2' }, ANONYMOUS)));
    const other = createWorker(jobs.db, jobs.hub);
    await other.start();
    try {
      await Promise.all(added.map(({ job }) => waitForJob(jobs.service, jobs.hub, job.id, statusOf('completed'))));
    } finally {
      await other.stop();
    }
    const [taken] = await jobs.db.query<{ n: number }>(
      { name: 'test_locked_by', text: 'SELECT count(*)::int AS n FROM job WHERE locked_by = $1' },
      [late.id],
    );
    expect(taken?.n).toBe(0);
  });

  it('runs jobs again when started after a stop', async () => {
    const worker = createWorker(jobs.db, jobs.hub);
    await worker.start();
    await worker.stop();
    await worker.start();
    try {
      const { job } = await jobs.service.addJob({ num1: '2', num2: '3' }, ANONYMOUS);
      expect((await waitForJob(jobs.service, jobs.hub, job.id, statusOf('completed'))).result?.toString()).toBe('5');
    } finally {
      await worker.stop();
    }
  });
});

describe('the HTTP server under the start/stop contract', () => {
  it('listens afresh when started after a stop, and answers there', async () => {
    const api = await createTestApp(jobs.db);
    const server = testServer(api, { maxSubscriptionsPerConnection: 5 });
    try {
      await server.start();
      const first = server.address.port;
      await server.stop();
      await expect(fetch(`http://127.0.0.1:${first}/health`)).rejects.toThrow();
      await server.start();
      const answer = await fetch(`http://127.0.0.1:${server.address.port}/health`);
      expect(answer.status).toBe(200);
    } finally {
      await server.stop();
      await api.close();
    }
  });
});

describe('the runtime', () => {
  it('stops what it started when a later part fails (a port in use), with a message naming the port', async () => {
    const runtime = new Runtime(runtimeConfig('rt_port_in_use', { PORT: String(takenPort) }), testLogger());
    await expect(runtime.start()).rejects.toThrow(`cannot listen on 127.0.0.1:${takenPort}: the address is already in use`);
    expect(runtime.state).toBe('stopped');
    await expectNoConnections('rt_port_in_use');
  });

  it('stops what it started when a stop arrives during its start', async () => {
    const runtime = new Runtime(runtimeConfig('rt_stop_during_start'), testLogger());
    const starting = runtime.start();
    await runtime.stop();
    await expect(starting).rejects.toBeInstanceOf(StoppedDuringStartError);
    await expectNoConnections('rt_stop_during_start');
  });

  it('serves, then stops everything it started', async () => {
    const runtime = new Runtime(runtimeConfig('rt_full'), testLogger());
    await runtime.start();
    expect((await fetch(`http://127.0.0.1:${runtime.api!.port}/health`)).status).toBe(200);
    expect(await connectionsFrom('rt_full')).toBeGreaterThan(0);
    await runtime.stop();
    await runtime.stop();
    await expectNoConnections('rt_full');
  });

  it('exits non-zero with a clear message when the process cannot take its port', async () => {
    const child = spawn(process.execPath, SERVICE_ARGS, {
      env: { ...process.env, DATABASE_URL: jobs.testDb.url, HOST: '127.0.0.1', PORT: String(takenPort), OPS_PORT: '0' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code).toBe(1);
    expect(stderr).toContain(`the service could not start: cannot listen on 127.0.0.1:${takenPort}: the address is already in use`);
  });
});
