/**
 * Cost as work grows: the drain, and one claim statement, on a table that already holds 1,000,000
 * or 10,000,000 finished jobs, or 100,000 delayed ones not yet due, against an empty table. A
 * queue whose claim walks finished or future rows slows down as it ages; ours should not, since
 * every index the claim reads holds pending or wip jobs only.
 *
 *   npm run bench -- --only growth [--runs 2] [--jobs 20000] [--size maxFinished=1000000]
 *
 * Each table is built once (one INSERT … SELECT per million rows, then VACUUM ANALYZE, as
 * autovacuum would have left a table that old) and copied for each trial.
 */
import { runIsolated } from './lib/isolate.ts';
import { createFreshDatabase, type FreshDatabase, withClient } from './lib/pg.ts';
import { waitForQuiet } from './lib/quiet.ts';
import { ms } from './lib/service.ts';
import { type BenchContext, type BenchResult, median } from './lib/types.ts';
import type { DrainTrialWithClaims } from './drain/ours.ts';

interface Scenario {
  label: string;
  finished: number;
  delayed: number;
}

const SCENARIOS: Scenario[] = [
  { label: 'empty table', finished: 0, delayed: 0 },
  { label: '1,000,000 finished jobs', finished: 1_000_000, delayed: 0 },
  { label: '10,000,000 finished jobs', finished: 10_000_000, delayed: 0 },
  { label: '100,000 delayed jobs (due tomorrow)', finished: 0, delayed: 100_000 },
];
const JOBS = 20_000;
const CLAIM_PROBES = 20;
const ROWS_PER_STATEMENT = 1_000_000;

/**
 * Finished jobs of two days ago and before, with UUIDv7 ids of their creation time as the service
 * makes them: 90 % retrieved, 8 % completed (never fetched), 2 % failed.
 */
const INSERT_FINISHED = `
  INSERT INTO job (id, kind, input, result, status, attempt, max_attempts, last_error, run_at, created_at,
                   last_updated, completed_on, retrieved_at)
  SELECT (substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-7' || substr(r, 1, 3) || '-8' || substr(r, 4, 3) || '-' || substr(r, 7, 12))::uuid,
         'add', jsonb_build_object('num1', i::text, 'num2', '1'),
         CASE WHEN i % 50 = 0 THEN NULL ELSE to_jsonb((i + 1)::text) END,
         CASE WHEN i % 50 = 0 THEN 'failed' WHEN i % 12 = 0 THEN 'completed' ELSE 'retrieved' END::job_status,
         1, 3, CASE WHEN i % 50 = 0 THEN 'Error: boom' END, t, t, t, t,
         CASE WHEN i % 50 <> 0 AND i % 12 <> 0 THEN t END
  FROM generate_series($1::bigint, $2::bigint) AS i,
       LATERAL (SELECT now() - interval '2 days' - make_interval(secs => ($3 - i) / 1000.0) AS t) AS created,
       LATERAL (SELECT lpad(to_hex((extract(epoch FROM t) * 1000)::bigint), 12, '0') AS h, md5(i::text) AS r) AS parts`;

const INSERT_DELAYED = `
  INSERT INTO job (id, kind, input, status, max_attempts, run_at, created_at, last_updated)
  SELECT gen_random_uuid(), 'add', jsonb_build_object('num1', i::text, 'num2', '1'), 'pending', 3,
         now() + interval '1 day' + make_interval(secs => i / 100.0), now() - interval '2 days', now() - interval '2 days'
  FROM generate_series(1, $1::bigint) AS i`;

async function buildTable(scenario: Scenario, log: (line: string) => void): Promise<FreshDatabase> {
  const { migrate, readMigrations } = await import('../src/db/migrate.ts');
  const { MIGRATIONS_DIR } = await import('../src/db/open.ts');
  const { openPostgres } = await import('../src/db/postgres.ts');
  const { pino } = await import('pino');
  const table = await createFreshDatabase('growth_template');
  const logger = pino({ level: 'silent' });
  const db = openPostgres({ connectionString: table.url, poolSize: 1, logger });
  try {
    await migrate(db, await readMigrations(MIGRATIONS_DIR), logger);
  } finally {
    await db.close();
  }
  const started = performance.now();
  await withClient(table.url, async (client) => {
    for (let from = 1; from <= scenario.finished; from += ROWS_PER_STATEMENT) {
      const to = Math.min(scenario.finished, from + ROWS_PER_STATEMENT - 1);
      await client.query(INSERT_FINISHED, [from, to, scenario.finished]);
    }
    if (scenario.delayed > 0) await client.query(INSERT_DELAYED, [scenario.delayed]);
    await client.query('VACUUM (ANALYZE) job');
    await client.query('CHECKPOINT');
  });
  log(`growth: ${scenario.label} built in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  return table;
}

export async function growthBenchmark(context: BenchContext): Promise<BenchResult> {
  const jobs = context.sizes.jobs ?? JOBS;
  const maxFinished = context.sizes.maxFinished ?? Number.POSITIVE_INFINITY;
  const scenarios = SCENARIOS.filter((scenario) => scenario.finished <= maxFinished);
  const trials = new Map<string, DrainTrialWithClaims[]>();
  for (const scenario of scenarios) {
    const table = await buildTable(scenario, context.log);
    try {
      for (let run = 0; run < context.runs; run += 1) {
        await waitForQuiet(15, 10_000);
        const trial = await runIsolated<DrainTrialWithClaims>(new URL('./drain/ours.ts', import.meta.url).href, 'drainOurs', {
          jobs,
          enqueueBatch: 4_000,
          deadlineMs: 300_000,
          env: context.oursEnv,
          template: table.name,
          claimProbes: CLAIM_PROBES,
        }, { execArgv: context.execArgv, timeoutMs: 600_000 });
        context.log(`growth: ${scenario.label}: ${trial.jobsPerSecond} jobs/s, claim of 500 median ${ms(median(trial.claimMs))} ms`);
        trials.set(scenario.label, [...(trials.get(scenario.label) ?? []), trial]);
      }
    } finally {
      await table.drop();
    }
  }
  const rows = scenarios.map((scenario) => {
    const list = trials.get(scenario.label) ?? [];
    const claims = list.flatMap((trial) => trial.claimMs);
    return [
      scenario.label,
      list.map((trial) => String(trial.jobsPerSecond)).join(', '),
      String(median(list.map((trial) => trial.jobsPerSecond))),
      ms(median(claims)),
      ms(Math.max(...claims)),
    ];
  });
  const empty = median((trials.get(SCENARIOS[0]!.label) ?? []).map((trial) => trial.jobsPerSecond));
  return {
    name: 'growth',
    measures: `${jobs} add jobs drained by our worker (service defaults) on a table already holding other jobs; and ${CLAIM_PROBES} claims of 500 from that backlog, each rolled back, before the worker starts`,
    columns: ['table holds', 'drain jobs/s (each trial)', 'median', 'claim of 500 ms (median)', 'claim max ms'],
    rows,
    notes: [
      `target (issue 21): with 10,000,000 finished jobs, drain and claim within 10 % of the empty table (median drain there: ${empty} jobs/s)`,
      'finished jobs: 90 % retrieved, 8 % completed, 2 % failed, created two days ago and before, UUIDv7 ids; the table is VACUUM ANALYZEd once built, as autovacuum would have left it',
    ],
    data: Object.fromEntries(trials),
  };
}
