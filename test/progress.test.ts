/**
 * Live progress (JobContext.progress), end to end on PostgreSQL with a real worker: watchers over
 * graphql-ws and SSE see the values in the order reported and then the outcome with the last one;
 * the fence refuses a stale attempt's; an invalid value fails nothing; the interval coalesces.
 */
import { print } from 'graphql';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Database } from '../src/db/database.ts';
import type { HttpServer } from '../src/http/server.ts';
import { progressJobsStatement } from '../src/jobs/sql/progress.ts';
import { addKind } from '../src/kinds/add.ts';
import { defineKind, type JobKind, type KindHandler } from '../src/kinds/define.ts';
import { digestKind } from '../src/kinds/digest.ts';
import { primesKind } from '../src/kinds/primes.ts';
import { KindRegistry } from '../src/kinds/registry.ts';
import type { Logger } from '../src/logger.ts';
import { ThreadPool } from '../src/worker/thread-pool.ts';
import type { Worker } from '../src/worker/worker.ts';
import { JobUpdatedDocument } from './graphql/generated/graphql.ts';
import { closeTestApp, openTestApp, sseEvents, type TestApp, testServer } from './helpers/api.ts';
import { capturingLogger, type TestDatabase, testLogger } from './helpers/database.ts';
import { ANONYMOUS, createWorker, deferred, statusOf, waitForJob } from './helpers/jobs.ts';
import { type JobState, subscribe } from './helpers/subscribers.ts';

const Steps = z.object({ steps: z.int().min(1), sleepMs: z.int().min(0) });
const StepProgress = z.object({ step: z.int(), of: z.int() });

/** A kind whose handler reports each of `steps` steps, sleeping `sleepMs` after each. */
const stepsKind = defineKind({
  name: 'steps',
  input: Steps,
  result: z.object({ done: z.int() }),
  progress: StepProgress,
  handler: async ({ steps, sleepMs }, context) => {
    for (let step = 1; step <= steps; step += 1) {
      context.progress({ step, of: steps });
      if (sleepMs > 0) await sleep(sleepMs);
    }
    return { done: steps };
  },
});

let gate = deferred();

// A kind each test gives its own handler through `behaviour`, for the cases one handler shows.
let behaviour: KindHandler<unknown, unknown> = () => ({});
const scriptedKind = defineKind({
  name: 'scripted',
  input: z.unknown(),
  result: z.unknown(),
  progress: z.looseObject({ percent: z.number().max(100) }),
  handler: (input, context) => behaviour(input, context),
});
const looseKind = defineKind({ name: 'loose', input: z.unknown(), result: z.unknown(), handler: (input, context) => behaviour(input, context) });
const quietKind = defineKind({ name: 'quiet', input: z.unknown(), result: z.object({ ok: z.boolean() }), handler: () => ({ ok: true }) });

const kindList: JobKind[] = [addKind({ maxDigits: 100 }), stepsKind, scriptedKind, looseKind, quietKind, digestKind(), primesKind()];
const kinds = new KindRegistry(kindList);

let testDb: TestDatabase;
let db: Database;
let api: TestApp;
let server: HttpServer;
let base: string;
let pool: ThreadPool;
const workers: Worker[] = [];

beforeAll(async () => {
  ({ testDb, db, api } = await openTestApp(import.meta.filename, { service: { kinds } }));
  server = testServer(api);
  await server.start();
  base = `http://127.0.0.1:${server.address.port}`;
  pool = new ThreadPool({ size: 1, logger: testLogger() });
  await pool.start();
});

afterEach(async () => {
  gate.resolve();
  gate = deferred();
  await Promise.all(workers.splice(0).map((worker) => worker.stop()));
});

afterAll(async () => {
  await pool.stop();
  await server.stop();
  await closeTestApp({ testDb, api });
});

async function startWorker(options: { progressMinIntervalMs?: number; logger?: Logger } = {}): Promise<Worker> {
  const worker = createWorker(db, api.hub, { kinds, threads: pool, metrics: api.metrics, ...options });
  workers.push(worker);
  await worker.start();
  return worker;
}

async function submit(kind: string, input: unknown): Promise<string> {
  return (await api.jobs.submitJob({ kind, input }, ANONYMOUS)).job.id;
}

async function counted(metric: 'progressWrites' | 'progressDropped', labels: Record<string, string>): Promise<number> {
  const { values } = await api.metrics[metric].get();
  const matches = values.filter((value) =>
    Object.entries(labels).every(([key, wanted]) => (value.labels as Record<string, string | number | undefined>)[key] === wanted),
  );
  return matches.reduce((sum, value) => sum + value.value, 0);
}

/**
 * The step numbers a watcher was shown, one per state that had progress. Each is a newer version
 * of the job than the one before, so a value may repeat (a state that changed something else)
 * but never go back.
 */
function stepsShown(states: readonly { progress?: unknown; version: number }[]): number[] {
  for (let i = 1; i < states.length; i += 1) expect(states[i]!.version).toBeGreaterThan(states[i - 1]!.version);
  return states.filter((state) => state.progress != null).map((state) => StepProgress.parse(state.progress).step);
}

function nonDecreasing(values: readonly number[]): boolean {
  return values.every((value, i) => i === 0 || value >= values[i - 1]!);
}

describe('a job that reports its progress', () => {
  it('is watched over graphql-ws and SSE: values in order, then COMPLETED with the last one stored', async () => {
    const id = await submit('steps', { steps: 20, sleepMs: 30 });
    const ws = subscribe(server.address.port, id);
    const response = await fetch(`${base}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query: print(JobUpdatedDocument), variables: { id } }),
    });
    const sse: JobState[] = [];
    const sseDone = (async () => {
      for await (const event of sseEvents(response)) {
        const state = (event as { data: { jobUpdated: JobState } }).data.jobUpdated;
        sse.push(state);
        if (state.status === 'COMPLETED') return;
      }
    })();
    try {
      // Both saw the job pending before it ran, so they watch every write that follows.
      await ws.until((states) => states.length > 0);
      while (sse.length === 0) await sleep(10);
      await startWorker();
      await ws.until((states) => states.some((state) => state.status === 'COMPLETED'));
      await sseDone;
      for (const states of [ws.states, sse]) {
        const shown = stepsShown(states);
        expect(nonDecreasing(shown), `steps shown: ${shown.join(', ')}`).toBe(true);
        const last = states.at(-1)!;
        expect(last).toMatchObject({ status: 'COMPLETED', progress: { step: 20, of: 20 }, result: { done: 20 } });
        // The first report is written at once, long before the last: a watcher sees it while the job runs.
        expect(states.some((state) => state.status === 'WIP' && state.progress != null)).toBe(true);
      }
    } finally {
      await ws.close();
    }
    const stored = await api.jobs.getJob(id, ANONYMOUS);
    expect(stored).toMatchObject({ status: 'completed', progress: { step: 20, of: 20 } });
    // Twenty reports 30 ms apart, at most one write every 250 ms: coalesced, and the last one written.
    const writes = await counted('progressWrites', { kind: 'steps' });
    expect(writes).toBeGreaterThanOrEqual(2);
    expect(writes).toBeLessThan(20);
    // And shown over REST and at /metrics.
    const rest = (await (await fetch(`${base}/api/v1/jobs/${id}`)).json()) as { progress: unknown };
    expect(rest.progress).toEqual({ step: 20, of: 20 });
    expect(await (await fetch(`${base}/metrics`)).text()).toMatch(/job_progress_writes_total\{kind="steps"\} [1-9]/);
  });

  it('coalesces reports within the minimum interval: 20 quick reports make the first write and the last', async () => {
    await startWorker({ progressMinIntervalMs: 600_000 });
    const before = await counted('progressWrites', { kind: 'steps' });
    const coalescedBefore = await counted('progressDropped', { kind: 'steps', reason: 'coalesced' });
    const id = await submit('steps', { steps: 20, sleepMs: 1 });
    const done = await waitForJob(api.jobs, api.hub, id, statusOf('completed'));
    expect(done.progress).toEqual({ step: 20, of: 20 });
    expect((await counted('progressWrites', { kind: 'steps' })) - before).toBe(2);
    expect((await counted('progressDropped', { kind: 'steps', reason: 'coalesced' })) - coalescedBefore).toBe(18);
  });

  it('without a minimum interval, one write per job is in flight: values still arrive in order', async () => {
    await startWorker({ progressMinIntervalMs: 0 });
    const before = await counted('progressWrites', { kind: 'steps' });
    const id = await submit('steps', { steps: 50, sleepMs: 1 });
    const ws = subscribe(server.address.port, id);
    try {
      await ws.until((states) => states.some((state) => state.status === 'COMPLETED'));
      const shown = stepsShown(ws.states);
      expect(nonDecreasing(shown), `steps shown: ${shown.join(', ')}`).toBe(true);
      expect(ws.states.at(-1)).toMatchObject({ status: 'COMPLETED', progress: { step: 50, of: 50 } });
    } finally {
      await ws.close();
    }
    const writes = (await counted('progressWrites', { kind: 'steps' })) - before;
    expect(writes).toBeGreaterThanOrEqual(2);
    expect(writes).toBeLessThanOrEqual(50);
  });

  it('a kind that never reports has progress null, and writes none', async () => {
    await startWorker();
    const id = await submit('quiet', {});
    const done = await waitForJob(api.jobs, api.hub, id, statusOf('completed'));
    expect(done).toMatchObject({ result: { ok: true }, progress: null });
    expect(await counted('progressWrites', { kind: 'quiet' })).toBe(0);
    const rest = (await (await fetch(`${base}/api/v1/jobs/${id}`)).json()) as Record<string, unknown>;
    expect(rest).toHaveProperty('progress', null);
  });

  it('an invalid value is dropped with one warning, and the job completes with its valid ones', async () => {
    const { logger, lines } = capturingLogger();
    await startWorker({ logger, progressMinIntervalMs: 0 });
    behaviour = (_input, context) => {
      context.progress({ percent: 500 }); // fails the kind's schema
      context.progress([1, 2]);
      context.progress({ percent: 1, big: 'x'.repeat(5000) }); // over PROGRESS_MAX_BYTES
      context.progress({ percent: 2, count: 10n }); // not JSON
      context.progress({ percent: 3, text: 'a\u0000b' }); // jsonb cannot store it
      context.progress({ percent: 40, message: 'page 4 of 10' });
      return { fine: true };
    };
    const id = await submit('scripted', {});
    const done = await waitForJob(api.jobs, api.hub, id, statusOf('completed'));
    expect(done).toMatchObject({ result: { fine: true }, progress: { percent: 40, message: 'page 4 of 10' }, attempt: 1 });
    const warnings = lines.filter((line) => line.level === 40 && line['jobId'] === id);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.msg).toMatch(/progress value was dropped: it fails the progress schema of scripted at percent/);
    expect(await counted('progressDropped', { kind: 'scripted', reason: 'invalid' })).toBe(5);
  });

  it('without a schema, any JSON object is taken, and nothing else', async () => {
    await startWorker({ progressMinIntervalMs: 0 });
    behaviour = (_input, context) => {
      const { progress } = context; // bound: a handler may pass it on
      progress({ phase: 'one' });
      progress('text');
      progress(null);
      progress(42);
      return {};
    };
    const id = await submit('loose', {});
    const done = await waitForJob(api.jobs, api.hub, id, statusOf('completed'));
    expect(done.progress).toEqual({ phase: 'one' });
    expect(await counted('progressDropped', { kind: 'loose', reason: 'invalid' })).toBe(3);
  });

  it('a stale attempt cannot report: the fence refuses its write', async () => {
    await startWorker({ progressMinIntervalMs: 0 });
    const reported = deferred();
    behaviour = async (_input, context) => {
      context.progress({ percent: 10 });
      reported.resolve();
      await gate.promise;
      context.progress({ percent: 90 });
      return { late: true };
    };
    const id = await submit('scripted', {});
    await reported.promise;
    await waitForJob(api.jobs, api.hub, id, (job) => job.progress !== null);
    // Another worker's claim, as the stale rule would have let it: the running attempt is stale now.
    await db.query({ name: 'test_take_over', text: `UPDATE job SET attempt = attempt + 1, locked_by = 'other' WHERE id = $1` }, [id]);
    const fencedBefore = await counted('progressDropped', { kind: 'scripted', reason: 'fenced' });
    const [worker] = workers;
    gate.resolve();
    while (worker!.activeJobs > 0) await sleep(10);
    expect(await api.jobs.getJob(id, ANONYMOUS)).toMatchObject({ status: 'wip', attempt: 2, progress: { percent: 10 }, result: null });
    expect((await counted('progressDropped', { kind: 'scripted', reason: 'fenced' })) - fencedBefore).toBe(1);
    // The statement itself: the old attempt matches no row, the owner's does.
    expect(await progressJobsStatement(db, [{ id, attempt: 1, progress: '{"percent":99}' }])).toEqual(new Set());
    expect(await progressJobsStatement(db, [{ id, attempt: 2, progress: '{"percent":20}' }])).toEqual(new Set([id]));
    await db.query({ name: 'test_finish', text: `UPDATE job SET status = 'failed', locked_by = NULL WHERE id = $1` }, [id]);
    // Nor can anyone once the job is no longer wip.
    expect(await progressJobsStatement(db, [{ id, attempt: 2, progress: '{"percent":30}' }])).toEqual(new Set());
  });

  it("keeps a failed attempt's progress until the next attempt reports its own", async () => {
    await startWorker({ progressMinIntervalMs: 0 });
    behaviour = async (_input, context) => {
      if (context.attempt === 1) {
        context.progress({ percent: 30, attempt: 1 });
        throw new Error('the first attempt fails');
      }
      await gate.promise;
      context.progress({ percent: 100, attempt: 2 });
      return {};
    };
    const id = await submit('scripted', {});
    const retrying = await waitForJob(api.jobs, api.hub, id, (job) => job.status === 'wip' && job.attempt === 2);
    expect(retrying.progress).toEqual({ percent: 30, attempt: 1 });
    gate.resolve();
    const done = await waitForJob(api.jobs, api.hub, id, statusOf('completed'));
    expect(done.progress).toEqual({ percent: 100, attempt: 2 });
  });
});

describe('the built-in long-running kinds report progress', () => {
  it('digest, on the event loop: rounds done, 100 % by the end', async () => {
    await startWorker();
    const id = await submit('digest', { text: 'x', rounds: 200_000 });
    const done = await waitForJob(api.jobs, api.hub, id, statusOf('completed'));
    expect(done.progress).toEqual({ percent: 100, rounds: 200_000 });
  });

  it('primes, in a worker thread: its values cross to the main thread, the last one kept', async () => {
    await startWorker();
    const below = 3_000_000;
    const id = await submit('primes', { below });
    const done = await waitForJob(api.jobs, api.hub, id, statusOf('completed'), 60_000);
    expect(done.result).toEqual({ count: 216_816 });
    // The last whole percent the thread reached before it returned, taken from the port before the outcome.
    const progress = z.object({ percent: z.int(), checked: z.int() }).parse(done.progress);
    expect(progress.percent).toBeGreaterThanOrEqual(90);
    expect(progress.checked).toBeLessThan(below);
    expect(await counted('progressWrites', { kind: 'primes' })).toBeGreaterThanOrEqual(1);
  });
});
