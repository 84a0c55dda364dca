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

async function start(role: string) {
  const service = await startService({ ROLE: role, DATABASE_URL: testDb.url });
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
});
