import { randomUUID } from 'node:crypto';
/**
 * The README's PgBouncer advice, run: the cluster with its pools through PgBouncer in transaction
 * mode and its LISTEN connections straight to PostgreSQL, and the two ways it goes wrong
 * otherwise. Part of `npm run test:cluster`, which installs Debian's PgBouncer when missing
 * (test/cluster/ensure-tools.sh).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/database.ts';
import { type ServiceProcess, startService } from '../helpers/processes.ts';
import { runCluster } from './driver.ts';
import { carriesPreparedStatements, type PgBouncer, startPgBouncer } from './pgbouncer.ts';

const JOBS = Number(process.env.CLUSTER_PGBOUNCER_JOBS ?? 5000);
const SUBSCRIBERS = Number(process.env.CLUSTER_PGBOUNCER_SUBSCRIBERS ?? 100);

const log = (line: string) => console.info(`[pgbouncer] ${line}`);
let bouncer: PgBouncer;
let carries: boolean;
const processes: ServiceProcess[] = [];

beforeAll(async () => {
  bouncer = await startPgBouncer();
  carries = carriesPreparedStatements(bouncer.version);
  log(`PgBouncer ${bouncer.version.join('.')}: ${carries ? 'carries' : 'cannot carry'} named prepared statements`);
});

afterAll(async () => {
  await Promise.all(processes.map((service) => service.stop()));
  await bouncer?.stop();
});

async function service(env: Record<string, string>) {
  const started = await startService(env);
  processes.push(started);
  return started;
}

async function statusOf(port: number, id: string): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${port}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: `{ job(id: "${id}") { status } }` }),
  });
  return ((await response.json()) as { data: { job: { status: string } } }).data.job.status;
}

async function addJob(port: number): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${port}/api/v1/add/1/2`, { method: 'POST' });
  return ((await response.json()) as { jobId: string }).jobId;
}

describe('behind PgBouncer in transaction mode', () => {
  it(`2 APIs and 3 workers run ${JOBS} jobs for ${SUBSCRIBERS} subscribers with LISTEN past PgBouncer`, async () => {
    const testDb = await createTestDatabase('cluster_pgbouncer');
    try {
      const report = await runCluster(testDb, {
        strict: true,
        jobs: JOBS,
        subscribers: SUBSCRIBERS,
        apis: 2,
        workers: 3,
        batchSize: 500,
        poolSize: 10,
        watchDelayMs: 1500,
        pooled: true,
        serviceEnv: {
          DATABASE_URL: bouncer.url(testDb.name),
          LISTEN_DATABASE_URL: testDb.url,
          ...(carries ? {} : { DB_PREPARED_STATEMENTS: 'false' }),
        },
        log,
      });
      const { problems, ...figures } = report;
      log(JSON.stringify(figures));
      expect(problems).toEqual([]);
    } finally {
      await testDb.drop();
    }
  });

  it('named prepared statements through it fail unless PgBouncer is 1.21 or later', async () => {
    const testDb = await createTestDatabase('cluster_pgbouncer_prepared');
    try {
      const app = await service({ ROLE: 'api', DATABASE_URL: bouncer.url(testDb.name), DB_POOL_SIZE: '10' });
      // Concurrent reads of jobs (the named jobs_read each) spread the pool's connections over
      // PgBouncer's server connections, so a statement prepared on one is soon run on another.
      // Concurrent adds would not do (the service folds them into one INSERT), nor would /ready
      // (concurrent checks share one). An unknown id is read all the same: 404 when it worked.
      const statuses = await Promise.all(
        Array.from({ length: 200 }, () =>
          fetch(`http://127.0.0.1:${app.port}/api/v1/job/${randomUUID()}`).then((response) => response.status),
        ),
      );
      const failed = statuses.filter((status) => status !== 404).length;
      const complaints = app.logs.filter((entry) => /prepared statement/.test(JSON.stringify(entry['err'] ?? ''))).length;
      log(`prepared statements on: ${failed} of 200 reads failed, ${complaints} errors about prepared statements`);
      expect(failed > 0).toBe(!carries);
      expect(complaints > 0).toBe(!carries);
    } finally {
      await Promise.all(processes.splice(0).map((started) => started.stop()));
      await testDb.drop();
    }
  });

  it('a LISTEN through it hears nothing, so the worker is never woken', async () => {
    const testDb = await createTestDatabase('cluster_pgbouncer_listen');
    try {
      // No safety-net poll for ten minutes: only a NOTIFY can make this worker claim.
      const env = {
        ROLE: 'all',
        DATABASE_URL: bouncer.url(testDb.name),
        DB_PREPARED_STATEMENTS: 'false',
        WORKER_POLL_INTERVAL_MS: '600000',
      };
      const deaf = await service(env);
      const unheard = await addJob(deaf.port!);
      await new Promise((resolve) => setTimeout(resolve, 3000));
      expect(await statusOf(deaf.port!, unheard)).toBe('PENDING');
      // It said so at start, after waiting 5 s for a NOTIFY of its own (src/db/listen-check.ts).
      const warned = () => deaf.logs.some((entry) => /LISTEN connection did not hear/.test(String(entry['msg'])));
      for (let i = 0; i < 100 && !warned(); i += 1) await new Promise((resolve) => setTimeout(resolve, 100));
      expect(warned()).toBe(true);
      await Promise.all(processes.splice(0).map((started) => started.stop()));

      // The same process with LISTEN_DATABASE_URL hears the next job at once, and claims both.
      const hearing = await service({ ...env, LISTEN_DATABASE_URL: testDb.url });
      const heard = await addJob(hearing.port!);
      for (const id of [unheard, heard]) {
        let status = '';
        for (let i = 0; i < 200 && status !== 'COMPLETED'; i += 1) {
          status = await statusOf(hearing.port!, id);
          if (status !== 'COMPLETED') await new Promise((resolve) => setTimeout(resolve, 50));
        }
        expect(status).toBe('COMPLETED');
      }
    } finally {
      await Promise.all(processes.splice(0).map((started) => started.stop()));
      await testDb.drop();
    }
  });
});
