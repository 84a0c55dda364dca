/**
 * Flow control across processes: three worker processes (ROLE=worker, JOB_KINDS_MODULE
 * test/fixtures/flow-kinds.ts) on one database, and this test submitting jobs and watching the
 * table. Their poll is a minute long, so every start below follows a wake-up: a NOTIFY of a new
 * job, of a freed slot, or of a resume, or the time a rate limit allows the next start.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KindRegistry } from '../src/kinds/registry.ts';
import { limited, paced, sequenced, throttled, throttledPerKey } from './fixtures/flow-kinds.ts';
import { ANONYMOUS, closeJobsDatabase, type JobsDatabase, openJobsDatabase } from './helpers/jobs.ts';
import { type ServiceProcess, startService } from './helpers/processes.ts';

const kinds = new KindRegistry([paced, limited, sequenced, throttled, throttledPerKey]);

let jobs: JobsDatabase;
let workers: ServiceProcess[] = [];

beforeAll(async () => {
  jobs = await openJobsDatabase(import.meta.filename, { kinds });
  const env = {
    DATABASE_URL: jobs.testDb.url,
    ROLE: 'worker',
    JOB_KINDS_MODULE: './test/fixtures/flow-kinds.ts',
    WORKER_CONCURRENCY: '8',
    WORKER_POLL_INTERVAL_MS: '60000',
  };
  workers = await Promise.all([1, 2, 3].map(() => startService(env)));
}, 60_000);

afterAll(async () => {
  await Promise.all(workers.map((worker) => worker.stop()));
  if (jobs) await closeJobsDatabase(jobs);
});

/** Jobs of `kind` by status, as the database has them now. */
async function counts(kind: string): Promise<Record<string, number>> {
  const rows = await jobs.db.query<{ status: string; count: number }>(
    { name: 'test_flow_counts', text: `SELECT status::text, count(*)::int AS count FROM job WHERE kind = $1 GROUP BY status` },
    [kind],
  );
  return Object.fromEntries(rows.map((row) => [row.status, row.count]));
}

async function until(kind: string, done: (counts: Record<string, number>) => boolean, deadlineMs = 60_000) {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const now = await counts(kind);
    if (done(now)) return now;
    if (Date.now() > deadline) throw new Error(`never reached; last ${JSON.stringify(now)}`);
    await sleep(20);
  }
}

/**
 * Runs `drain` while sampling `sample` every millisecond or so; returns the samples. Each sample
 * is one statement, so it sees the table as of one instant. (Back to back, the sampler took a
 * core from the workers on this two-core machine, and the drain took half as long again.)
 */
async function sampling<T>(sample: () => Promise<T>, drain: () => Promise<unknown>): Promise<T[]> {
  const samples: T[] = [];
  let draining = true;
  const sampler = (async () => {
    while (draining) {
      samples.push(await sample());
      await sleep(1);
    }
  })();
  try {
    await drain();
  } finally {
    draining = false;
    await sampler;
  }
  return samples;
}

async function wipCount(kind: string): Promise<number> {
  const [row] = await jobs.db.query<{ count: number }>(
    { name: 'test_flow_wip', text: `SELECT count(*)::int AS count FROM job WHERE kind = $1 AND status = 'wip'` },
    [kind],
  );
  return row!.count;
}

function submit(kind: string, count: number, extra: (n: number) => Record<string, unknown> = () => ({})) {
  const submissions = Array.from({ length: count }, (_, n) => ({ kind, input: { n }, ...extra(n) }));
  return jobs.service.submitJobs(submissions, ANONYMOUS);
}

describe('pause across processes', () => {
  it('running jobs finish, pending ones stay pending in every process until the resume, then drain', async () => {
    await submit('paced', 600);
    await until('paced', (now) => (now['completed'] ?? 0) >= 50);
    await jobs.service.kindControl.pause('paced');
    // Jobs added while paused: on an idle machine the three workers may hold every one of the
    // first 600 (claimed into their local queues) before the pause, and then none stays pending.
    await submit('paced', 100);
    // Claims that began before the pause may still start jobs; after them, nothing starts.
    const settled = await until('paced', (now) => (now['wip'] ?? 0) === 0);
    expect(settled['pending']).toBeGreaterThanOrEqual(100);
    await sleep(500);
    expect(await counts('paced')).toEqual(settled);

    await jobs.service.kindControl.resume('paced');
    expect(await until('paced', (now) => now['completed'] === 700)).toEqual({ completed: 700 });
  });
});

describe('a kind limited to 2 running at once', () => {
  it('never has more than 2 wip across three processes, all through a drain of 2,000 jobs', async () => {
    const samples = await sampling(
      () => wipCount('limited'),
      async () => {
        // In four requests, so that the drain starts while jobs are still being added.
        for (let round = 0; round < 4; round += 1) await submit('limited', 500);
        await until('limited', (now) => now['completed'] === 2000, 120_000);
      },
    );
    expect(samples.length).toBeGreaterThan(100);
    expect(Math.max(...samples)).toBe(2);
  }, 150_000);
});

describe('a concurrency key of 1', () => {
  const KEYS = 40;
  const PER_KEY = 50;

  it('never runs two jobs of one key at once, and completes each key in submission order, across three processes', async () => {
    const maxPerKey = () =>
      jobs.db
        .query<{ most: number }>(
          {
            name: 'test_flow_most_per_key',
            text: `SELECT coalesce(max(count), 0)::int AS most
                   FROM (SELECT count(*) FROM job WHERE kind = 'sequenced' AND status = 'wip' GROUP BY concurrency_key) AS per_key`,
          },
        )
        .then(([row]) => row!.most);
    const samples = await sampling(maxPerKey, async () => {
      // Each request adds the next jobs of every key, so the keys' jobs interleave in the table.
      for (let round = 0; round < 5; round += 1) {
        await submit('sequenced', KEYS * (PER_KEY / 5), (n) => ({
          input: { n: round * (PER_KEY / 5) + Math.floor(n / KEYS) },
          concurrencyKey: `key-${n % KEYS}`,
        }));
      }
      await until('sequenced', (now) => now['completed'] === KEYS * PER_KEY, 120_000);
    });
    expect(samples.length).toBeGreaterThan(100);
    expect(Math.max(...samples)).toBe(1);

    const rows = await jobs.db.query<{ key: string; numbers: number[] }>({
      name: 'test_flow_key_order',
      text: `SELECT concurrency_key AS key, array_agg((input->>'n')::int ORDER BY completed_on) AS numbers
             FROM job WHERE kind = 'sequenced' GROUP BY concurrency_key`,
    });
    expect(rows).toHaveLength(KEYS);
    const inOrder = Array.from({ length: PER_KEY }, (_, n) => n);
    for (const row of rows) expect(row.numbers, row.key).toEqual(inOrder);
  }, 150_000);
});

describe('rate limits', () => {
  /**
   * Every start of a rate-limited job, as the claim recorded it in its window (`job_rate_start`,
   * the database's clock when the claim took the kind's lock), copied by a trigger: the claims
   * delete a start once it has left the window.
   */
  beforeAll(async () => {
    const setup = [
      `CREATE TABLE test_rate_log (LIKE job_rate_start)`,
      `CREATE FUNCTION test_rate_log() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN INSERT INTO test_rate_log VALUES (NEW.*); RETURN NULL; END $$`,
      `CREATE TRIGGER test_rate_log AFTER INSERT ON job_rate_start FOR EACH ROW EXECUTE FUNCTION test_rate_log()`,
    ];
    for (const [n, text] of setup.entries()) await jobs.db.query({ name: `test_flow_rate_log_${n}`, text });
  });

  /** The most starts of `kind` in any interval of `intervalMs`, per bucket; and how many jobs started. */
  async function mostPerInterval(kind: string, intervalMs: number): Promise<{ most: number; jobs: number }> {
    const [row] = await jobs.db.query<{ most: number; jobs: number }>(
      {
        name: 'test_flow_rate_most',
        text: `SELECT coalesce(max((SELECT count(*) FROM test_rate_log AS b
                                   WHERE b.kind = a.kind AND b.key = a.key AND b.started_at >= a.started_at
                                     AND b.started_at < a.started_at + $2::int * interval '1 millisecond')), 0)::int AS most,
                      count(DISTINCT a.job_id)::int AS jobs
               FROM test_rate_log AS a WHERE a.kind = $1`,
      },
      [kind, intervalMs],
    );
    return row!;
  }

  it('starts at most 20 jobs in any second across three processes, all through 300 jobs, and runs them all', async () => {
    for (let round = 0; round < 3; round += 1) await submit('throttled', 100);
    await until('throttled', (now) => now['completed'] === 300, 120_000);
    // Filled to the limit (the jobs were waiting), never past it.
    expect(await mostPerInterval('throttled', 1000)).toEqual({ most: 20, jobs: 300 });
  }, 150_000);

  it('per key: at most 5 starts of one key in any half second, keys not holding each other back', async () => {
    await submit('throttledPerKey', 120, (n) => (n % 4 === 3 ? {} : { concurrencyKey: `key-${n % 4}` }));
    await until('throttledPerKey', (now) => now['completed'] === 120, 120_000);
    expect(await mostPerInterval('throttledPerKey', 500)).toEqual({ most: 5, jobs: 120 });
    const buckets = await jobs.db.query<{ key: string; count: number }>({
      name: 'test_flow_rate_buckets',
      text: `SELECT key, count(*)::int AS count FROM test_rate_log WHERE kind = 'throttledPerKey' GROUP BY key ORDER BY key`,
    });
    // Jobs without a key share the bucket ''.
    expect(buckets).toEqual([
      { key: '', count: 30 },
      { key: 'key-0', count: 30 },
      { key: 'key-1', count: 30 },
      { key: 'key-2', count: 30 },
    ]);
  }, 150_000);
});
