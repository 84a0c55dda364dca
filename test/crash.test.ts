/**
 * The crash test: a real API process and a real worker process on PostgreSQL. 5,000 jobs go in
 * over HTTP; the worker is SIGKILLed three times while jobs run and restarted each time. Then the
 * database must show every job completed once, with the right sum, and nothing stuck in wip.
 *
 * CRASH_JOBS and CRASH_KILLS size it; the defaults are the full test, which takes ~20 s.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../src/db/database.ts';
import type { JobEventHub } from '../src/jobs/events.ts';
import type { TestDatabase } from './helpers/database.ts';
import { closeJobsDatabase, openJobsDatabase } from './helpers/jobs.ts';
import { type ServiceProcess, startService } from './helpers/processes.ts';

const JOBS = Number(process.env.CRASH_JOBS ?? 5000);
const KILLS = Number(process.env.CRASH_KILLS ?? 3);
const TIMEOUT_SECONDS = 2;

let testDb: TestDatabase;
let db: Database;
let hub: JobEventHub;
const processes: ServiceProcess[] = [];

beforeAll(async () => {
  ({ testDb, db, hub } = await openJobsDatabase(import.meta.filename));
});

afterAll(async () => {
  for (const service of processes) service.child.kill('SIGKILL');
  await closeJobsDatabase({ testDb, hub });
});

function startWorker() {
  return startService({
    ROLE: 'worker',
    DATABASE_URL: testDb.url,
    JOB_TIMEOUT_SECONDS: String(TIMEOUT_SECONDS),
    JOB_ADD_DELAY_MS: '20',
    WORKER_CONCURRENCY: '50',
    WORKER_POLL_INTERVAL_MS: '200',
    RETRY_BASE_DELAY_MS: '50',
    LOG_LEVEL: 'warn',
  }).then((service) => {
    processes.push(service);
    return service;
  });
}

async function count(status: string): Promise<number> {
  const [row] = await db.query<{ count: number }>(
    { name: 'crash_count', text: 'SELECT count(*)::int AS count FROM job WHERE status = $1::job_status' },
    [status],
  );
  return row!.count;
}

async function until(condition: () => Promise<boolean>, what: string, deadlineMs = 60_000) {
  const deadline = Date.now() + deadlineMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('crashing workers', () => {
  it(`lose no job and complete each once, through ${KILLS} SIGKILLs`, async () => {
    const completions = new Map<string, number>();
    hub.onEvents((events) => {
      for (const event of events) {
        if (event.status === 'completed') completions.set(event.id, (completions.get(event.id) ?? 0) + 1);
      }
    });

    const api = await startService({ ROLE: 'api', DATABASE_URL: testDb.url, LOG_LEVEL: 'warn' });
    processes.push(api);
    let worker = await startWorker();

    const ids: string[] = [];
    for (let start = 0; start < JOBS; start += 500) {
      const inputs = Array.from({ length: Math.min(500, JOBS - start) }, (_, i) => ({
        num1: `${start + i}.${(start + i) % 97}`,
        num2: `-${(start + i) % 13}.5`,
      }));
      const response = await fetch(`http://127.0.0.1:${api.port}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          query: 'mutation($inputs: [AddJobInput!]!) { addJobs(inputs: $inputs) { job { id } } }',
          variables: { inputs },
        }),
      });
      const body = (await response.json()) as { data: { addJobs: Array<{ job: { id: string } }> } };
      ids.push(...body.data.addJobs.map(({ job }) => job.id));
    }
    expect(ids).toHaveLength(JOBS);

    for (let kill = 1; kill <= KILLS; kill += 1) {
      // Kill only with work in flight, spread over the run.
      const target = Math.floor((JOBS * kill) / (KILLS + 2));
      await until(async () => (await count('completed')) >= target, `${target} completions`);
      await until(async () => (await count('wip')) > 0, 'jobs in flight');
      worker.child.kill('SIGKILL');
      expect(await worker.exited).toBeNull();
      worker = await startWorker();
    }

    await until(async () => (await count('completed')) === JOBS, 'every job to complete');

    const [summary] = await db.query<{
      total: number;
      wrong: number;
      unfinished: number;
      rerun: number;
      attempts: number;
    }>({
      name: 'crash_summary',
      text: `SELECT count(*)::int AS total,
                    count(*) FILTER (WHERE (result #>> '{}')::numeric IS DISTINCT FROM (input->>'num1')::numeric + (input->>'num2')::numeric)::int AS wrong,
                    count(*) FILTER (WHERE status <> 'completed' OR locked_by IS NULL)::int AS unfinished,
                    count(*) FILTER (WHERE attempt > 1)::int AS rerun,
                    sum(attempt)::int AS attempts
             FROM job`,
    });
    expect(summary).toMatchObject({ total: JOBS, wrong: 0, unfinished: 0 });
    // The kills interrupted jobs: their re-runs show as extra attempts.
    expect(summary!.rerun).toBeGreaterThan(0);
    expect(summary!.attempts).toBeGreaterThan(JOBS);

    // Every completion was announced, and none twice: the fence let exactly one attempt write.
    await until(async () => completions.size === JOBS, 'every completion event');
    expect([...completions.values()].every((times) => times === 1)).toBe(true);
    console.info(
      `crash test: ${JOBS} jobs, ${KILLS} kills, ${summary!.rerun} jobs re-run, ${summary!.attempts} attempts in all`,
    );
  }, 180_000);
});
