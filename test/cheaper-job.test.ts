/**
 * What makes a job cheap in PostgreSQL (the cheaper_job migration, bench/cost.ts): the columns
 * the queue's indexes name are derived from the status by PostgreSQL itself, so that a retrieve
 * and a progress write change no indexed column and are HOT updates, and nothing can let the
 * derived columns disagree with the status.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import type { Database, Queryable, Statement } from '../src/db/database.ts';
import type { JobEventHub } from '../src/jobs/events.ts';
import { completeJobsStatement } from '../src/jobs/sql/outcomes.ts';
import { progressJobsStatement } from '../src/jobs/sql/progress.ts';
import { retrieveJobStatement } from '../src/jobs/sql/customer.ts';
import type { JobService } from '../src/jobs/service.ts';
import { claimJobsStatement } from './helpers/claim.ts';
import type { TestDatabase } from './helpers/database.ts';
import { ANONYMOUS, closeJobsDatabase, openJobsDatabase } from './helpers/jobs.ts';

let testDb: TestDatabase;
let db: Database;
let hub: JobEventHub;
let service: JobService;

beforeAll(async () => {
  ({ testDb, db, hub, service } = await openJobsDatabase(import.meta.filename));
});

afterAll(() => closeJobsDatabase({ testDb, hub }));

/**
 * Runs `write` in a transaction on a connection of its own, and answers with the rows it updated
 * in `job` and how many of those were HOT. These are PostgreSQL's counters of the backend, not yet
 * sent to the database-wide statistics (which a busy backend sends at most once a second, an idle
 * one up to ten seconds late); on a new connection they hold this transaction's writes only.
 */
async function updatesOf<T>(write: (tx: Queryable) => Promise<T>): Promise<{ result: T; updates: number; hot: number }> {
  const client = new pg.Client({ connectionString: testDb.url });
  await client.connect();
  try {
    const tx: Queryable = {
      query: async <Row extends object>(statement: Statement, values?: readonly unknown[]) =>
        (await client.query<Row>({ name: statement.name, text: statement.text, values: values as unknown[] })).rows,
    };
    await client.query('BEGIN');
    const result = await write(tx);
    const { rows } = await client.query<{ updates: number; hot: number }>(
      `SELECT pg_stat_get_xact_tuples_updated('job'::regclass)::int AS updates,
              pg_stat_get_xact_tuples_hot_updated('job'::regclass)::int AS hot`,
    );
    await client.query('COMMIT');
    return { result, ...rows[0]! };
  } finally {
    await client.end();
  }
}

async function completedJob(): Promise<string> {
  const { job } = await service.addJob({ num1: '1', num2: '2' }, ANONYMOUS);
  const claimed = await claimJobsStatement(db, 'cheap', 1000, 30);
  expect(claimed.map((c) => c.id)).toContain(job.id);
  await completeJobsStatement(db, claimed.map((c) => ({ id: c.id, attempt: c.attempt, result: '"3"' })));
  return job.id;
}

describe('a cheaper job', () => {
  it('derives queue_state and heartbeat_at from the status in every state', async () => {
    const rows = await db.query<{ status: string; queueState: number | null; heartbeatIsLastUpdated: boolean | null }>({
      name: 'test_derived_columns',
      text: `
      WITH made AS (
        INSERT INTO job (id, kind, input, max_attempts, status)
        SELECT gen_random_uuid(), 'add', '{}', 1, s FROM unnest(enum_range(NULL::job_status)) AS s
        RETURNING status, queue_state, heartbeat_at, last_updated
      )
      SELECT status::text, queue_state AS "queueState",
             CASE WHEN heartbeat_at IS NOT NULL THEN heartbeat_at = last_updated END AS "heartbeatIsLastUpdated"
      FROM made ORDER BY made.status`,
    });
    expect(rows).toEqual([
      { status: 'pending', queueState: 1, heartbeatIsLastUpdated: null },
      { status: 'wip', queueState: 2, heartbeatIsLastUpdated: true },
      { status: 'completed', queueState: null, heartbeatIsLastUpdated: null },
      { status: 'failed', queueState: 3, heartbeatIsLastUpdated: null },
      { status: 'retrieved', queueState: null, heartbeatIsLastUpdated: null },
      { status: 'cancelled', queueState: 4, heartbeatIsLastUpdated: null },
      // Workflows: a waiting job is in no queue index, as a completed one.
      { status: 'waiting', queueState: null, heartbeatIsLastUpdated: null },
    ]);
  });

  it('lets no statement write the derived columns', async () => {
    const id = await completedJob();
    await expect(
      db.query({ name: 'test_write_queue_state', text: `UPDATE job SET queue_state = 1 WHERE id = $1` }, [id]),
    ).rejects.toThrow(/queue_state/);
    await expect(
      db.query({ name: 'test_write_heartbeat_at', text: `UPDATE job SET heartbeat_at = now() WHERE id = $1` }, [id]),
    ).rejects.toThrow(/heartbeat_at/);
  });

  it('retrieves a job with a HOT update, and its result with it', async () => {
    const id = await completedJob();
    const { result, updates, hot } = await updatesOf((tx) => retrieveJobStatement(tx, id, ANONYMOUS.owner));
    expect({ updates, hot }).toEqual({ updates: 1, hot: 1 });
    expect(result).toMatchObject({ retrieved: true, job: { id, status: 'retrieved', result: '3' } });
  });

  it('stores progress with a HOT update, and the claim with one that is not', async () => {
    const { job } = await service.addJob({ num1: '1', num2: '2' }, ANONYMOUS);
    const claim = await updatesOf((tx) => claimJobsStatement(tx, 'cheap', 1000, 30));
    const attempt = claim.result.find((c) => c.id === job.id)!.attempt;
    expect({ updates: claim.updates, hot: claim.hot }).toEqual({ updates: claim.result.length, hot: 0 });
    const progress = await updatesOf((tx) => progressJobsStatement(tx, [{ id: job.id, attempt, progress: '{"percent":50}' }]));
    expect(progress).toEqual({ result: new Set([job.id]), updates: 1, hot: 1 });
    expect(await service.getJob(job.id, ANONYMOUS)).toMatchObject({ status: 'wip', progress: { percent: 50 } });
  });

  it('lists cancelled jobs, whose index names queue_state, by their status', async () => {
    const { job: cancelled } = await service.addJob({ num1: '5', num2: '6' }, ANONYMOUS);
    await service.cancelJob(cancelled.id, ANONYMOUS);
    const page = await service.listJobs({ status: 'cancelled', first: 10 }, ANONYMOUS);
    expect(page.jobs.map((job) => job.id)).toContain(cancelled.id);
    expect(page.jobs.every((job) => job.status === 'cancelled')).toBe(true);
  });
});
