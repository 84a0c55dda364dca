/**
 * The embedded PostgreSQL server (EMBEDDED_DATABASE=postgres, the default without DATABASE_URL):
 * shared by the processes of one data folder, gone once they are, whatever killed them, and
 * durable across a crash. Each test has a data folder of its own and real service processes.
 */
import { spawnSync } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it as plainIt } from 'vitest';
import { runs } from '../src/db/embedded-postgres.ts';
import { SERVICE_ARGS, type ServiceProcess, startService } from './helpers/processes.ts';

/** Each test starts (and initdbs) servers and service processes: slow on a machine the suite shares. */
const it = (name: string, test: () => Promise<void>) => plainIt(name, test, 180_000);

const started: ServiceProcess[] = [];
const folders: string[] = [];

async function newFolder(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'job-service-embedded-'));
  // mkdtemp makes it 0700; as root, the server's own user must be able to enter it (see
  // letPostgresUserIn in src/db/embedded-postgres.ts, and its test below).
  await chmod(dir, 0o755);
  folders.push(dir);
  return dir;
}

async function start(dir: string, env: Record<string, string> = {}): Promise<ServiceProcess> {
  // DATABASE_URL empty counts as unset: the embedded server of DATA_DIR.
  const service = await startService({ DATABASE_URL: '', DATA_DIR: dir, ...env });
  started.push(service);
  return service;
}

afterEach(async () => {
  await Promise.all(started.splice(0).map((service) => service.stop(5_000)));
  for (const dir of folders.splice(0)) {
    await waitUntil(async () => !(await serverRuns(dir)), 'the server of the test to stop');
    await rm(dir, { recursive: true, force: true });
  }
});

async function waitUntil(check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The postmaster's pid, from the data folder's postmaster.pid; null when there is none. */
async function postmasterPid(dir: string): Promise<number | null> {
  const text = await readFile(join(dir, 'pgdata', 'postmaster.pid'), 'utf8').catch(() => null);
  return text ? Number(text.split('\n')[0]) : null;
}

async function serverRuns(dir: string): Promise<boolean> {
  const pid = await postmasterPid(dir);
  return pid !== null && runs(pid);
}

async function supervisorPid(dir: string): Promise<number> {
  return (JSON.parse(await readFile(join(dir, 'server.json'), 'utf8')) as { supervisorPid: number }).supervisorPid;
}

async function submit(service: ServiceProcess, num1: string): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${service.port}/api/v1/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ kind: 'add', input: { num1, num2: '0.5' } }),
  });
  expect(response.status).toBe(202);
  return ((await response.json()) as { jobId: string }).jobId;
}

async function jobOf(service: ServiceProcess, id: string): Promise<{ status: string; result: unknown }> {
  const response = await fetch(`http://127.0.0.1:${service.port}/api/v1/jobs/${id}`);
  expect(response.status).toBe(200);
  return (await response.json()) as { status: string; result: unknown };
}

async function killAndWait(service: ServiceProcess): Promise<void> {
  service.kill('SIGKILL');
  await service.exited;
  started.splice(started.indexOf(service), 1);
}

it('serves an API and a worker process from one data folder, and stops with the last of them, SIGKILLed', async () => {
  const dir = await newFolder();
  const api = await start(dir, { ROLE: 'api' });
  const worker = await start(dir, { ROLE: 'worker' });
  expect(api.logs.some((line) => line['msg'] === 'embedded PostgreSQL created and started')).toBe(true);
  // The second process joined the running server rather than starting another.
  expect(worker.logs.some((line) => String(line['msg']).startsWith('embedded PostgreSQL'))).toBe(false);

  const id = await submit(api, '2.5');
  await waitUntil(async () => ['completed', 'retrieved'].includes((await jobOf(api, id)).status), 'the worker process to run the job');

  const supervisor = await supervisorPid(dir);
  const postmaster = (await postmasterPid(dir))!;
  await killAndWait(api);
  // One process still uses the server.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  expect(runs(postmaster)).toBe(true);
  await killAndWait(worker);
  await waitUntil(async () => !runs(postmaster) && !runs(supervisor), 'the server and its supervisor to stop');

  const again = await start(dir);
  expect(again.logs.some((line) => line['msg'] === 'embedded PostgreSQL started')).toBe(true);
  expect(await jobOf(again, id)).toMatchObject({ result: '3' });
});

it('stops a server whose supervisor was killed too, and recovers every job it acknowledged before a crash', async () => {
  const dir = await newFolder();
  const service = await start(dir);
  const acknowledged: string[] = [];
  // Submissions in flight while the service and its server are killed: each answered one has
  // committed, and must be there after the crash recovery.
  let stop = false;
  const writers = Array.from({ length: 4 }, async (_, w) => {
    for (let n = 0; !stop; n += 1) {
      try {
        acknowledged.push(await submit(service, `${w}${n}`));
      } catch {
        return;
      }
    }
  });
  await waitUntil(async () => acknowledged.length >= 100, '100 acknowledged jobs');
  const supervisor = await supervisorPid(dir);
  const postmaster = (await postmasterPid(dir))!;
  // Supervisor first, so that nobody stops the server: then the server is an orphan, crashed.
  process.kill(supervisor, 'SIGKILL');
  service.kill('SIGKILL');
  stop = true;
  await Promise.all(writers);
  await service.exited;
  started.splice(started.indexOf(service), 1);
  expect(runs(postmaster)).toBe(true);
  const count = acknowledged.length;

  const again = await start(dir);
  expect(runs(postmaster)).toBe(false);
  for (const id of acknowledged.slice(0, count)) expect((await jobOf(again, id)).status).toMatch(/pending|wip|completed|retrieved/);
});

it('as root, names a parent folder the server user cannot enter, instead of failing in initdb', async () => {
  const closed = await mkdtemp(join(tmpdir(), 'job-service-closed-'));
  try {
    const dir = join(closed, 'data');
    if (process.getuid?.() === 0) {
      const run = spawnSync(process.execPath, SERVICE_ARGS, {
        env: { ...process.env, DATABASE_URL: '', DATA_DIR: dir, PORT: '0', LOG_FORMAT: 'json' },
        encoding: 'utf8',
        timeout: 30_000,
      });
      expect(run.status).toBe(1);
      expect(run.stdout + run.stderr).toContain(`cannot enter ${closed}`);
    } else {
      // Another user runs the server as themself, and mkdtemp's folder is theirs.
      started.push(await startService({ DATABASE_URL: '', DATA_DIR: dir }));
      folders.push(dir);
    }
  } finally {
    await rm(closed, { recursive: true, force: true });
  }
});

it('EMBEDDED_DATABASE=pglite: the whole service starts on PGlite in its process and runs a job', async () => {
  const dir = await newFolder();
  const service = await start(dir, { EMBEDDED_DATABASE: 'pglite' });
  expect(service.logs.find((line) => line['msg'] === 'database ready')).toMatchObject({ database: 'embedded PGlite' });
  const id = await submit(service, '1');
  await waitUntil(async () => ['completed', 'retrieved'].includes((await jobOf(service, id)).status), 'the job to run');
  expect(await jobOf(service, id)).toMatchObject({ result: '1.5' });
  // No server process: PGlite lives in the service's.
  expect(await postmasterPid(dir)).toBeNull();
});
