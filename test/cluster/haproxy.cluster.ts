/**
 * deploy/haproxy.cfg in front of two API processes started with `npm run api`, its servers
 * pointed at their ports: requests spread over both; an instance whose /ready answers 503 is
 * left out until it recovers; one stopped with SIGTERM is left out. Part of `npm run test:cluster`,
 * which installs Debian's HAProxy when missing (test/cluster/ensure-tools.sh).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/ports.ts';
import { withAdmin } from '../helpers/admin.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { type ServiceProcess, startService } from '../helpers/processes.ts';

const log = (line: string) => console.info(`[haproxy] ${line}`);
const databases: TestDatabase[] = [];
const apis: ServiceProcess[] = [];
let haproxy: ChildProcess;
let dir: string;
let base: string;

/** Requests this API has answered on the add route, from its own request log. */
function served(api: ServiceProcess): number {
  return api.logs.filter((entry) => entry['msg'] === 'request' && String(entry['path']).startsWith('/api/v1/add/')).length;
}

/** Sends `count` requests through HAProxy; returns how many got their 202. */
async function send(count: number): Promise<number> {
  const statuses = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      fetch(`${base}/api/v1/add/${i}/1`, { method: 'POST' }).then(
        (response) => response.status,
        () => 0,
      ),
    ),
  );
  return statuses.filter((status) => status === 202).length;
}

/**
 * Rounds of 10 requests until `done` holds after one; returns how many requests failed on the way.
 * The deadline only turns a hang into a failure.
 */
async function until(done: (ok: number) => boolean, what: string, deadlineMs = 30_000): Promise<number> {
  const deadline = Date.now() + deadlineMs;
  let failed = 0;
  for (;;) {
    const ok = await send(10);
    failed += 10 - ok;
    if (done(ok)) return failed;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** `served`, once the API's log lines have stopped arriving. */
async function settled(api: ServiceProcess): Promise<number> {
  let count = served(api);
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 300));
    if (served(api) === count) return count;
    count = served(api);
  }
}

async function setAvailable(database: TestDatabase, available: boolean) {
  await withAdmin(async (admin) => {
    await admin.query(`ALTER DATABASE ${database.name} ALLOW_CONNECTIONS ${available}`);
    if (!available) await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [database.name]);
  });
}

beforeAll(async () => {
  // Each API on a database of its own, so that one can lose its database while the other keeps
  // it. Routing is all this test is about.
  for (const label of ['haproxy_1', 'haproxy_2']) databases.push(await createTestDatabase(label));
  for (const database of databases) apis.push(await startService({ DATABASE_URL: database.url }, { npmScript: 'api' }));

  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const shipped = readFileSync('deploy/haproxy.cfg', 'utf8');
  const servers = [...shipped.matchAll(/^\s*server (\S+) .*$/gm)];
  expect(servers.map((server) => server[1])).toEqual(['api-1', 'api-2']);
  let config = shipped.replace(/^(\s*bind) :\d+$/m, `$1 127.0.0.1:${port}`).replace(/^\s*log stdout.*$/m, '');
  servers.forEach((server, i) => {
    config = config.replace(server[0], `  server ${server[1]} 127.0.0.1:${apis[i]!.port} check`);
  });
  dir = mkdtempSync(join(tmpdir(), 'haproxy-'));
  writeFileSync(join(dir, 'haproxy.cfg'), config);
  haproxy = spawn('haproxy', ['-db', '-f', join(dir, 'haproxy.cfg')], { stdio: 'ignore' });
});

afterAll(async () => {
  haproxy?.kill('SIGTERM');
  await Promise.all(apis.map((api) => api.stop()));
  for (const database of databases) {
    await setAvailable(database, true);
    await database.drop();
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('deploy/haproxy.cfg', () => {
  it('routes only to instances whose /ready answers 200', async () => {
    const [one, two] = apis as [ServiceProcess, ServiceProcess];
    await until(() => served(one) > 0 && served(two) > 0, 'requests on both instances');
    log(`both instances serve: ${served(one)} / ${served(two)}`);

    await setAvailable(databases[1]!, false);
    const ready = await fetch(`http://127.0.0.1:${two.port}/ready`);
    expect(ready.status).toBe(503);
    // Two failed checks, 2 s apart, take it out; until then some requests meet its 503.
    const meanwhile = await until((ok) => ok === 10, 'all requests to succeed without the second instance');
    const before = await settled(two);
    expect(await send(50)).toBe(50);
    expect(await settled(two)).toBe(before);
    log(`second instance not ready: ${meanwhile} requests failed until the checks noticed; then 50 of 50 through the first`);

    await setAvailable(databases[1]!, true);
    await until(() => served(two) > before, 'the second instance back in rotation');

    // A graceful stop: the listener closes, and the checks take it out. A request that meets the
    // closed listener is sent to the other instance (redispatch), so none fails: the README says so.
    await one.stop();
    const stopping = await until((ok) => ok === 10, 'all requests to succeed without the first instance');
    expect(stopping).toBe(0);
    const after = await settled(two);
    expect(await send(50)).toBe(50);
    expect(await settled(two)).toBe(after + 50);
    log(`first instance stopped: ${stopping} requests failed meanwhile; then 50 of 50 through the second`);
  }, 120_000);
});
