import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './helpers/database.ts';
import { type ServiceProcess, startService } from './helpers/processes.ts';

let testDb: TestDatabase;
const processes: ServiceProcess[] = [];

beforeAll(async () => {
  testDb = await createTestDatabase(import.meta.filename);
});

afterAll(async () => {
  for (const service of processes) service.child.kill('SIGKILL');
  await testDb.drop();
});

async function start(role: string, env: Record<string, string> = {}) {
  const service = await startService({ ROLE: role, DATABASE_URL: testDb.url, ...env });
  processes.push(service);
  return service;
}

describe('roles', () => {
  it('an api process runs no worker; a worker process serves only health, readiness and metrics', async () => {
    const api = await start('api');
    expect(api.logs.some((entry) => entry['msg'] === 'worker started')).toBe(false);
    const added = await fetch(`http://127.0.0.1:${api.port}/api/v1/add/20/22`, { method: 'POST' });
    const { jobId } = (await added.json()) as { jobId: string };

    const worker = await start('worker');
    expect(worker.logs.some((entry) => entry['msg'] === 'worker started')).toBe(true);
    const ops = `http://127.0.0.1:${worker.port}`;
    expect(await (await fetch(`${ops}/health`)).json()).toEqual({ status: 'ok' });
    expect((await fetch(`${ops}/ready`)).status).toBe(200);
    const missing = await fetch(`${ops}/graphql`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');

    // The worker in the other process runs the job the api process accepted.
    let status = '';
    for (let i = 0; i < 300 && status !== 'retrieved'; i += 1) {
      const read = await fetch(`http://127.0.0.1:${api.port}/api/v1/job/${jobId}`);
      status = ((await read.json()) as { status: string }).status;
      if (status !== 'retrieved') await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(status).toBe('retrieved');
    const scrape = await (await fetch(`${ops}/metrics`)).text();
    expect(scrape).toMatch(/^jobs_completed_total(\{[^}]*\})? 1$/m);
  });

  it('an api process serves /metrics on its ops port, and on the API port only with METRICS_ON_API_PORT', async () => {
    const opsOf = (service: ServiceProcess) =>
      (service.logs.find((entry) => entry['ops']) as { ops: { metrics: string } } | undefined)?.ops.metrics;
    // The test helper sets OPS_PORT=0 for every process it starts, so this one has an ops server.
    const quiet = await start('api');
    const warning = quiet.logs.find((entry) => String(entry['msg']).startsWith('API_KEYS is not set'));
    expect(warning).toMatchObject({ host: '127.0.0.1', msg: expect.stringMatching(/listens on 127\.0\.0\.1 only/) });
    const hidden = await fetch(`http://127.0.0.1:${quiet.port}/metrics`);
    expect(hidden.status).toBe(404);
    expect(await (await fetch(opsOf(quiet)!)).text()).toMatch(/^job_subscriptions_open 0$/m);

    const open = await start('api', { METRICS_ON_API_PORT: 'true' });
    expect(await (await fetch(`http://127.0.0.1:${open.port}/metrics`)).text()).toMatch(/^job_subscriptions_open 0$/m);
  });
});
