import { print } from 'graphql';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Database } from '../src/db/database.ts';
import { addDecimals } from '../src/jobs/decimal.ts';
import { PermanentJobError } from '../src/kinds/define.ts';
import { queueStatsStatement } from '../src/jobs/sql/stats.ts';
import { createMetrics, registerStateGauges } from '../src/metrics/metrics.ts';
import { createQueueStatsReader } from '../src/metrics/queue-stats.ts';
import { JobUpdatedDocument } from './graphql/generated/graphql.ts';
import { closeTestApp, openTestApp, sseEvents, type TestApp } from './helpers/api.ts';
import { claimJobsStatement } from './helpers/claim.ts';
import { capturingLogger, type TestDatabase, testLogger } from './helpers/database.ts';
import { ANONYMOUS, createWorker, statusOf, waitForJob } from './helpers/jobs.ts';
import { cancelAndExpectEnded } from './helpers/subscribers.ts';

let testDb: TestDatabase;
let db: Database;
let api: TestApp;

/**
 * Each block gets a database and an app of its own: counters add up over an app's life and the
 * queue numbers cover the whole table, so a block that saw another's jobs would depend on order.
 */
function withOwnDatabase(): void {
  beforeAll(async () => {
    ({ testDb, db, api } = await openTestApp(import.meta.filename));
  });
  afterAll(() => closeTestApp({ testDb, api }));
}

type Samples = Map<string, number>;

/** Parses the exposition format into `name{label="value",…}` → value, labels in their order. */
function parse(text: string): Samples {
  const samples: Samples = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(\{.*\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`not an exposition line: ${line}`);
    samples.set(`${match[1]}${match[2] ?? ''}`, Number(match[3]));
  }
  return samples;
}

async function scrape(): Promise<Samples> {
  const response = await api.app.fetch('http://yoga/metrics');
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
  return parse(await response.text());
}

/** Adds a job through the service, as the API does. */
async function add(num1: string, options: { runAt?: Date; idempotencyKey?: string } = {}) {
  const { job } = await api.jobs.addJob({ num1, num2: '1', ...options }, ANONYMOUS);
  return job.id;
}

describe('/metrics after a known workload', () => {
  withOwnDatabase();

  let samples: Samples;

  beforeAll(async () => {
    // A job of a crashed worker, on its last attempt, that the next claim fails as timed out.
    const timedOut = await add('0');
    await db.prisma.job.update({ where: { id: timedOut }, data: { maxAttempts: 1 } });
    await claimJobsStatement(db, 'dead-worker', 1, 30);
    await db.prisma.job.update({ where: { id: timedOut }, data: { lastUpdated: new Date(Date.now() - 3_600_000) } });

    const ok = await Promise.all(['1', '2', '3', '4', '5'].map((n) => add(n, { idempotencyKey: `ok-${n}` })));
    await add('1', { idempotencyKey: 'ok-1' }); // an idempotent retry: no new job
    const flaky = await add('7');
    const permanent = await add('13');
    const exhausted = await add('99');
    const later = new Date('2099-01-01T00:00:00Z');
    await add('8', { runAt: later });
    for (const n of ['9', '10']) await api.jobs.cancelJob(await add(n, { runAt: later }), ANONYMOUS);

    const worker = createWorker(db, api.hub, {
      metrics: api.metrics,
      handlers: {
        add: (input, context) => {
          if (input.num1 === '7' && context.attempt === 1) throw new Error('flaky, once');
          if (input.num1 === '13') throw new PermanentJobError('never');
          if (input.num1 === '99') throw new Error('always');
          return addDecimals(input.num1, input.num2);
        },
      },
    });
    await worker.start();
    await Promise.all([
      ...[...ok, flaky].map((id) => waitForJob(api.jobs, api.hub, id, statusOf('completed'))),
      ...[permanent, exhausted, timedOut].map((id) => waitForJob(api.jobs, api.hub, id, statusOf('failed'))),
    ]);
    // stop() waits for every job in hand to finish recording, so the counts below are final.
    await worker.stop();
    for (const id of ok.slice(0, 2)) await api.jobs.retrieveJob(id, ANONYMOUS);
    samples = await scrape();
  });

  it('counts jobs created, claimed, completed, retried and failed, by reason', () => {
    expect(samples.get('jobs_created_total{kind="add"}')).toBe(12);
    // 5 + 2 (flaky) + 1 (permanent) + 3 (exhausted); the timed-out job was never run again.
    expect(samples.get('jobs_claimed_total{kind="add"}')).toBe(11);
    expect(samples.get('jobs_completed_total{kind="add"}')).toBe(6);
    expect(samples.get('jobs_retried_total{kind="add"}')).toBe(3);
    expect(samples.get('jobs_failed_total{kind="add",reason="permanent"}')).toBe(1);
    expect(samples.get('jobs_failed_total{kind="add",reason="exhausted"}')).toBe(1);
    expect(samples.get('jobs_failed_total{kind="add",reason="timeout"}')).toBe(1);
  });

  it('records the attempts each finished job used', () => {
    expect(samples.get('job_attempts_count{kind="add",outcome="completed"}')).toBe(6);
    expect(samples.get('job_attempts_sum{kind="add",outcome="completed"}')).toBe(7);
    expect(samples.get('job_attempts_bucket{le="1",kind="add",outcome="completed"}')).toBe(5);
    expect(samples.get('job_attempts_count{kind="add",outcome="failed"}')).toBe(3);
    expect(samples.get('job_attempts_sum{kind="add",outcome="failed"}')).toBe(5);
  });

  it('has one latency observation per completed job', () => {
    for (const name of ['job_claim_to_complete_seconds', 'job_create_to_complete_seconds']) {
      expect(samples.get(`${name}_count{kind="add"}`)).toBe(6);
      expect(samples.get(`${name}_bucket{le="+Inf",kind="add"}`)).toBe(6);
      expect(samples.get(`${name}_sum{kind="add"}`)).toBeGreaterThanOrEqual(0);
    }
  });

  it('reports jobs by status, counted exactly on a small table', () => {
    expect(samples.get('jobs_counts_exact')).toBe(1);
    expect(samples.get('job_queue_stats_up')).toBe(1);
    expect({
      pending: samples.get('jobs{status="pending"}'),
      wip: samples.get('jobs{status="wip"}'),
      completed: samples.get('jobs{status="completed"}'),
      retrieved: samples.get('jobs{status="retrieved"}'),
      failed: samples.get('jobs{status="failed"}'),
      cancelled: samples.get('jobs{status="cancelled"}'),
    }).toEqual({ pending: 1, wip: 0, completed: 4, retrieved: 2, failed: 3, cancelled: 2 });
  });

  it('reports an empty queue: the only pending job is not due yet', () => {
    expect(samples.get('job_queue_depth')).toBe(0);
    expect(samples.get('job_queue_oldest_due_age_seconds')).toBe(0);
  });

  it('reports the LISTEN events it received and the pool', () => {
    expect(samples.get('job_events_received_total')).toBeGreaterThan(0);
    expect(samples.get('job_event_dispatch_seconds_count')).toBeGreaterThan(0);
    expect(samples.get('db_pool_connections{state="idle"}')).toBeGreaterThanOrEqual(0);
    expect(samples.get('db_pool_connections{state="in_use"}')).toBeGreaterThanOrEqual(0);
    expect(samples.get('db_pool_waiting_requests')).toBeGreaterThanOrEqual(0);
  });
});

describe('/metrics while work waits', () => {
  withOwnDatabase();

  it('shows the depth of the queue and how long its oldest due job has waited', async () => {
    await add('1', { runAt: new Date(Date.now() - 120_000) });
    await add('2');
    const samples = await scrape();
    expect(samples.get('job_queue_depth')).toBe(2);
    // The first job has been due for two minutes: its wait counts from runAt, not from now.
    expect(samples.get('job_queue_oldest_due_age_seconds')).toBeGreaterThanOrEqual(110);
    expect(samples.get('job_queue_oldest_due_age_seconds')).toBeLessThan(3600);
  });

  /** A jobUpdated subscription over SSE, once its first message has arrived. */
  async function subscribed(id: string) {
    const response = await api.app.fetch('http://yoga/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query: print(JobUpdatedDocument), variables: { id } }),
    });
    const events = sseEvents(response);
    await events.next();
    return events;
  }

  it('counts open subscriptions, and how late a change reached one', async () => {
    const id = await add('5', { runAt: new Date('2099-01-01T00:00:00Z') });
    const events = await subscribed(id);
    const during = await scrape();
    expect(during.get('job_subscriptions_open')).toBe(1);
    expect(during.get('graphql_subscriptions_open')).toBe(1);
    // Other tests of this block may have delivered changes before: the count grows by one here.
    const delivered = during.get('job_update_delivery_seconds_count')!;

    await cancelAndExpectEnded(() => api.jobs.cancelJob(id, ANONYMOUS), events);
    const after = await scrape();
    expect(after.get('job_update_delivery_seconds_count')).toBe(delivered + 1);
    expect(after.get('job_subscriptions_open')).toBe(0);
    expect(after.get('graphql_subscriptions_open')).toBe(0);
  });

  it('counts every subscriber, though subscribers of one job share one watcher', async () => {
    const id = await add('6', { runAt: new Date('2099-01-01T00:00:00Z') });
    const streams = await Promise.all([subscribed(id), subscribed(id), subscribed(id)]);
    const during = await scrape();
    expect(during.get('graphql_subscriptions_open')).toBe(3);
    expect(during.get('job_subscriptions_open')).toBe(1);
    await streams[0]!.return(undefined);
    await vi.waitFor(async () => expect((await scrape()).get('graphql_subscriptions_open')).toBe(2));
    await cancelAndExpectEnded(() => api.jobs.cancelJob(id, ANONYMOUS), ...streams.slice(1));
    const after = await scrape();
    expect(after.get('graphql_subscriptions_open')).toBe(0);
    expect(after.get('job_subscriptions_open')).toBe(0);
  });
});

describe('queue numbers on a big table', () => {
  withOwnDatabase();

  beforeAll(async () => {
    // 12 jobs: 6 cancelled, 6 pending, one of those due for a minute.
    await add('0', { runAt: new Date(Date.now() - 60_000) });
    for (let n = 1; n < 12; n += 1) {
      const id = await add(String(n), { runAt: new Date('2099-01-01T00:00:00Z') });
      if (n > 5) await api.jobs.cancelJob(id, ANONYMOUS);
    }
  });

  it('estimate finished statuses from the planner statistics and count the live ones', async () => {
    await db.query({ name: 'test_analyze_job', text: 'ANALYZE job' });
    const exact = await queueStatsStatement(db, 100_000);
    // A limit of 10 makes this table of 12 rows big. ANALYZE sampled every row of it, so the
    // estimates come out exact; pending and wip are counted up to 10.
    const estimated = await queueStatsStatement(db, 10);
    expect(exact.exactCounts).toBe(true);
    expect(estimated.exactCounts).toBe(false);
    expect(estimated.byStatus).toEqual(exact.byStatus);
    expect(estimated.queueDepth).toBe(exact.queueDepth);
    expect(estimated.oldestDueAgeSeconds).toBeGreaterThan(0);
  });

  it('are read at most once per cache period, and again after it', async () => {
    let now = 1_000;
    const read = createQueueStatsReader(db, { cacheMs: 5_000, exactCountLimit: 100_000, now: () => now });
    const first = await read();
    await add('3');
    expect(await read()).toBe(first);
    now += 5_000;
    const second = await read();
    expect(second.byStatus.pending).toBe(first.byStatus.pending + 1);
  });
});

describe('a transaction left open', () => {
  withOwnDatabase();

  it('shows as the age of the oldest transaction, and is warned about once a minute, naming it', async () => {
    const { logger, lines } = capturingLogger();
    const metrics = createMetrics();
    const queueStats = createQueueStatsReader(db, { cacheMs: 0, exactCountLimit: 100_000 });
    let now = 0;
    registerStateGauges(metrics, { queueStats, db, logger, oldTransactionWarnSeconds: 1, now: () => now });
    const calm = parse(await metrics.registry.metrics());
    expect(calm.get('db_oldest_transaction_age_seconds')).toBe(0);

    const open = new pg.Client({ connectionString: testDb.url, application_name: 'test/old-transaction' });
    await open.connect();
    try {
      await open.query('BEGIN');
      await open.query('SELECT txid_current()');
      const warned = () => lines.filter((line) => line.msg === 'a transaction has been open for long: it holds back vacuum of the job table');
      await vi.waitFor(async () => {
        expect(parse(await metrics.registry.metrics()).get('db_oldest_transaction_age_seconds')).toBeGreaterThanOrEqual(1);
      }, { timeout: 10_000, interval: 200 });
      expect(warned()).toHaveLength(1);
      expect(warned()[0]).toMatchObject({ level: 40, applicationName: 'test/old-transaction', state: 'idle in transaction' });
      await metrics.registry.metrics();
      expect(warned()).toHaveLength(1);
      now += 60_000;
      await metrics.registry.metrics();
      expect(warned()).toHaveLength(2);
    } finally {
      await open.end();
    }
    // The backend goes a moment after the client has said goodbye.
    await vi.waitFor(async () => {
      expect(parse(await metrics.registry.metrics()).get('db_oldest_transaction_age_seconds')).toBe(0);
    }, { timeout: 10_000, interval: 100 });
  });
});

describe('metrics without a database', () => {
  withOwnDatabase();

  it('say the queue numbers are unknown rather than zero', async () => {
    const gone = testDb.open({ poolSize: 1 });
    await gone.close();
    const metrics = createMetrics();
    const queueStats = createQueueStatsReader(gone, { cacheMs: 0, exactCountLimit: 100_000 });
    registerStateGauges(metrics, { queueStats, db: gone, logger: testLogger() });
    const samples = parse(await metrics.registry.metrics());
    expect(samples.get('job_queue_stats_up')).toBe(0);
    expect(samples.get('job_queue_depth')).toBeNaN();
    expect([...samples.keys()].some((key) => key.startsWith('jobs{'))).toBe(false);
  });

  it('include the process metrics when asked', async () => {
    const text = await createMetrics({ processMetrics: true }).registry.metrics();
    expect(text).toMatch(/^process_cpu_seconds_total /m);
    expect(text).toMatch(/^nodejs_eventloop_lag_seconds /m);
  });
});
