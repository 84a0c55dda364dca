import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Database, Queryable, Statement } from '../src/db/database.ts';
import { addDecimals } from '../src/jobs/decimal.ts';
import type { JobEventHub } from '../src/jobs/events.ts';
import { PermanentJobError } from '../src/kinds/define.ts';
import { heartbeatStatement } from '../src/jobs/sql/heartbeat.ts';
import type { JobEvent } from '../src/jobs/sql/job-events.ts';
import { completeJobsStatement, failJobsStatement } from '../src/jobs/sql/outcomes.ts';
import type { JobService } from '../src/jobs/service.ts';
import { createMetrics, registerStateGauges } from '../src/metrics/metrics.ts';
import { createQueueStatsReader } from '../src/metrics/queue-stats.ts';
import { retryDelayMs } from '../src/worker/backoff.ts';
import type { Worker } from '../src/worker/worker.ts';
import { claimJobsStatement } from './helpers/claim.ts';
import { type TestDatabase, testLogger } from './helpers/database.ts';
import { interceptStatements } from './helpers/intercept.ts';
import {
  ANONYMOUS,
  closeJobsDatabase,
  createHub,
  createWorker,
  deferred,
  openJobsDatabase,
  statusOf,
  waitForJob,
} from './helpers/jobs.ts';
import { addNumbersOf } from '../src/kinds/add.ts';

let testDb: TestDatabase;
let db: Database;
let hub: JobEventHub;
let service: JobService;
const workers: Worker[] = [];

beforeAll(async () => {
  ({ testDb, db, hub, service } = await openJobsDatabase(import.meta.filename));
});

// A worker left running would claim the next test's jobs; every test stops its own.
afterEach(async () => {
  await Promise.all(workers.splice(0).map((worker) => worker.stop()));
  await db.prisma.job.deleteMany();
});

afterAll(() => closeJobsDatabase({ testDb, hub }));

function track(worker: Worker): Worker {
  workers.push(worker);
  return worker;
}

describe('two workers on one database', () => {
  it('never run the same job twice, and share the work', async () => {
    const running = new Set<string>();
    const runs = new Map<string, number>();
    const byWorker = { a: 0, b: 0 };
    const overlaps: string[] = [];
    const handlerFor = (name: 'a' | 'b') => async (input: { num1: string; num2: string }, context: { attempt: number }) => {
      const key = `${input.num1}`;
      if (running.has(key)) overlaps.push(key);
      running.add(key);
      runs.set(key, (runs.get(key) ?? 0) + 1);
      byWorker[name] += 1;
      // Yield so the other worker gets a chance to claim while this job is held.
      await new Promise((resolve) => setImmediate(resolve));
      running.delete(key);
      return String(Number(input.num1) + Number(input.num2) + context.attempt - 1);
    };
    // Each worker has its own pool and LISTEN connection, as two processes would.
    const dbA = testDb.open();
    const dbB = testDb.open();
    const hubA = createHub(dbA);
    const hubB = createHub(dbB);
    const a = track(createWorker(dbA, hubA, { handlers: { add: handlerFor('a') }, concurrency: 10 }));
    const b = track(createWorker(dbB, hubB, { handlers: { add: handlerFor('b') }, concurrency: 10 }));
    await Promise.all([a.start(), b.start()]);

    const added = await service.addJobs(
      Array.from({ length: 2000 }, (_, i) => ({ num1: String(i), num2: '1' })),
      ANONYMOUS,
    );
    await waitForJob(service, hub, added.at(-1)!.job.id, statusOf('completed'));
    for (const { job } of added) await waitForJob(service, hub, job.id, statusOf('completed'));

    expect(overlaps).toEqual([]);
    expect(runs.size).toBe(2000);
    expect([...runs.values()].every((count) => count === 1)).toBe(true);
    expect(byWorker.a).toBeGreaterThan(0);
    expect(byWorker.b).toBeGreaterThan(0);
    const rows = await db.prisma.job.findMany({ select: { kind: true, input: true, result: true, attempt: true } });
    expect(rows.every((row) => row.attempt === 1 && row.result === addDecimals(addNumbersOf(row)!.num1, '1'))).toBe(true);
    await Promise.all([a.stop(), b.stop()]);
    await Promise.all([hubA.stop(), hubB.stop()]);
  });
});

/**
 * An `add` handler that yields once while it runs, and counts: how many ran at once at most, how
 * many started, and how often each input ran. `onStart` is told each start's number.
 */
function countingHandler(onStart?: (started: number) => void) {
  const counts = { running: 0, most: 0, started: 0, runs: new Map<string, number>() };
  const add = async (input: { num1: string; num2: string }) => {
    counts.running += 1;
    counts.most = Math.max(counts.most, counts.running);
    counts.runs.set(input.num1, (counts.runs.get(input.num1) ?? 0) + 1);
    onStart?.((counts.started += 1));
    await new Promise((resolve) => setImmediate(resolve));
    counts.running -= 1;
    return addDecimals(input.num1, input.num2);
  };
  return { add, counts };
}

describe('concurrency', () => {
  it('bounds running handlers, and claims the next batch while results are still being written', async () => {
    // The worker's poll sleeps on this fake clock, so the test decides when it looks for work again.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const writes = deferred();
    // The LIMIT of each claim as it is sent: with 20 jobs waiting, each takes as many as it asks for.
    const claimLimits: number[] = [];
    // Results wait until the test lets them through, as they would on a slow database.
    const slowWrites = interceptStatements(db, {
      async before(statement, values) {
        if (statement.name === 'jobs_claim') claimLimits.push(Number(values![1]));
        if (statement.name.startsWith('jobs_complete')) await writes.promise;
      },
    });
    const tenStarted = deferred();
    const { add, counts } = countingHandler((started) => started === 10 && tenStarted.resolve());
    const pollIntervalMs = 200;
    const worker = track(
      createWorker(slowWrites, hub, {
        concurrency: 5,
        // Slots only, so each claim's size is known; the local queue has tests of its own.
        prefetch: 0,
        pollIntervalMs,
        handlers: { add },
      }),
    );
    try {
      const added = await service.addJobs(
        Array.from({ length: 20 }, (_, i) => ({ num1: String(i), num2: '1' })),
        ANONYMOUS,
      );
      await worker.start();

      // The second batch ran while the first one's results were still unwritten…
      await tenStarted.promise;
      await vi.waitFor(() => expect(counts.running).toBe(0), { timeout: 10_000 });
      // …and then claiming stopped: at most `concurrency` results may wait for their write, however
      // often the worker polls meanwhile.
      await vi.advanceTimersByTimeAsync(5 * pollIntervalMs);
      expect(claimLimits.reduce((sum, limit) => sum + limit, 0)).toBe(10);
      expect(counts.started).toBe(10);
      expect(await db.prisma.job.count({ where: { status: 'completed' } })).toBe(0);

      writes.resolve();
      for (const { job } of added) await waitForJob(service, hub, job.id, statusOf('completed'));
      expect(counts.started).toBe(20);
      expect(counts.most).toBeLessThanOrEqual(5);
      expect(slowWrites.seen('jobs_complete')).toBeGreaterThan(0);
      await worker.stop();
    } finally {
      writes.resolve();
      vi.useRealTimers();
    }
  });
});

describe('the local queue', () => {
  /** Records the LIMIT of every claim the worker sends, and how many jobs each one took. */
  function recordingClaims(): { db: Database; claims: Array<{ limit: number; took: number }> } {
    const claims: Array<{ limit: number; took: number }> = [];
    const recording = interceptStatements(db, {
      after(statement, values, rows) {
        if (statement.name === 'jobs_claim') claims.push({ limit: Number(values![1]), took: rows.length });
      },
    });
    return { db: recording, claims };
  }

  const addMany = (count: number, num1 = (i: number) => String(i)) =>
    service.addJobs(Array.from({ length: count }, (_, i) => ({ num1: num1(i), num2: '1' })), ANONYMOUS);

  it('claims beyond the slots for fast handlers, up to `prefetch`, and still runs only `concurrency` at once', async () => {
    const added = await addMany(300);
    const { db: recording, claims } = recordingClaims();
    const { add, counts } = countingHandler();
    const worker = track(createWorker(recording, hub, { concurrency: 5, prefetch: 20, handlers: { add } }));
    await worker.start();
    for (const { job } of added) await waitForJob(service, hub, job.id, statusOf('completed'));

    // Before any handler has returned there is no speed to go by: the first claim fills the slots only.
    expect(claims[0]).toEqual({ limit: 5, took: 5 });
    // Later claims take more than the 5 free slots: the rest waits in the local queue.
    expect(Math.max(...claims.map((claim) => claim.took))).toBeGreaterThan(5);
    expect(Math.max(...claims.map((claim) => claim.limit))).toBeLessThanOrEqual(25);
    expect(counts.most).toBeLessThanOrEqual(5);
    expect(counts.runs.size).toBe(300);
    expect([...counts.runs.values()].every((count) => count === 1)).toBe(true);
  });

  it('queues little for slow handlers, so idle workers elsewhere can take the rest', async () => {
    const added = await addMany(8);
    const { db: recording, claims } = recordingClaims();
    const worker = track(
      createWorker(recording, hub, {
        concurrency: 2,
        prefetch: 100,
        handlers: {
          add: async (input) => {
            await new Promise((resolve) => setTimeout(resolve, 150));
            return addDecimals(input.num1, input.num2);
          },
        },
      }),
    );
    await worker.start();
    for (const { job } of added) await waitForJob(service, hub, job.id, statusOf('completed'));
    // 150 ms per job on 2 slots is 1 job per 75 ms: 100 ms of work is one queued job, not 100.
    expect(claims.length).toBeGreaterThan(1);
    expect(Math.max(...claims.map((claim) => claim.limit))).toBeLessThanOrEqual(3);
  });

  it('holds only the live jobs under a long backlog that never lets it run empty', async () => {
    // 10 ms jobs on 10 slots: a 40-job queue, refilled at half, drains slower than a claim comes back.
    const added = await addMany(1500);
    let mostQueued = 0;
    let largestStorage = 0;
    const worker: Worker = track(
      createWorker(db, hub, {
        concurrency: 10,
        prefetch: 40,
        handlers: {
          add: async (input) => {
            mostQueued = Math.max(mostQueued, worker.queuedJobs);
            largestStorage = Math.max(largestStorage, worker.queueCapacity);
            await new Promise((resolve) => setTimeout(resolve, 10));
            return addDecimals(input.num1, input.num2);
          },
        },
      }),
    );
    await worker.start();
    for (const { job } of added) await waitForJob(service, hub, job.id, statusOf('completed'));
    expect(mostQueued).toBeGreaterThan(0);
    expect(mostQueued).toBeLessThanOrEqual(40);
    // The ring holds at most four times the live jobs; the old array grew with every job started.
    expect(largestStorage).toBeLessThanOrEqual(4 * 40);
  });

  /**
   * A worker with one slot that has measured a fast handler. The first job after that holds its
   * slot until released, so the rest of a claim waits in the local queue.
   */
  async function workerWithQueue(options: { jobTimeoutSeconds?: number; pollIntervalMs?: number; db?: Database } = {}) {
    const release = deferred();
    const started = deferred();
    const runs = new Map<string, number>();
    let warmedUp = false;
    const worker = track(
      createWorker(options.db ?? db, hub, {
        concurrency: 1,
        prefetch: 10,
        shutdownGraceMs: 50,
        jobTimeoutSeconds: options.jobTimeoutSeconds ?? 30,
        pollIntervalMs: options.pollIntervalMs ?? 200,
        handlers: {
          add: async (input) => {
            runs.set(input.num1, (runs.get(input.num1) ?? 0) + 1);
            if (warmedUp && runs.size === 2) {
              started.resolve();
              await release.promise;
            }
            warmedUp = true;
            return addDecimals(input.num1, input.num2);
          },
        },
      }),
    );
    await worker.start();
    const { job: warmUp } = await service.addJob({ num1: '1', num2: '0' }, ANONYMOUS);
    await waitForJob(service, hub, warmUp.id, statusOf('completed'));
    return { worker, release, started, runs };
  }

  it('hands queued jobs back at stop at once, unstarted and with their attempt not counted', async () => {
    const { worker, started, runs } = await workerWithQueue();
    const added = await addMany(10, (i) => String(100 + i));
    await started.promise;
    await vi.waitFor(() => expect(worker.queuedJobs).toBe(9));
    const metrics = createMetrics();
    const queueStats = createQueueStatsReader(db, { cacheMs: 0, exactCountLimit: 100_000 });
    registerStateGauges(metrics, { queueStats, db, worker, logger: testLogger() });
    const scraped = await metrics.registry.metrics();
    expect(scraped).toMatch(/^worker_jobs_queued 9$/m);
    expect(scraped).toMatch(/^worker_jobs_running 10$/m);
    await worker.stop();

    // The warm-up job and the one that held the slot; none of the queued nine.
    expect(runs.size).toBe(2);
    const rows = await db.prisma.job.findMany({ where: { id: { in: added.map(({ job }) => job.id) } } });
    expect(rows.map((row) => [row.status, row.attempt, row.lockedBy])).toEqual(rows.map(() => ['pending', 0, null]));
    // Each keeps its run_at, so its place in the claim order (and a schedule's job, its tick).
    const runAtOf = new Map(added.map(({ job }) => [job.id, job.runAt.getTime()]));
    for (const row of rows) expect(row.runAt.getTime()).toBe(runAtOf.get(row.id));

    await track(createWorker(db, hub)).start();
    for (const { job } of added) {
      const completed = await waitForJob(service, hub, job.id, statusOf('completed'));
      expect(completed.attempt).toBe(1);
    }
  });

  it('keeps queued jobs out of the stale rule with its heartbeat', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      const beats = heartbeats(db);
      // Polls only when woken, so the worker never applies the stale rule to its own jobs here.
      const { worker, release, started, runs } = await workerWithQueue({
        jobTimeoutSeconds: TIMEOUT_SECONDS,
        pollIntervalMs: 600_000,
        db: beats.db,
      });
      const added = await addMany(4, (i) => String(200 + i));
      await started.promise;
      await vi.waitFor(() => expect(worker.queuedJobs).toBe(3));
      expect(added.filter(({ job }) => runs.has(addNumbersOf(job)!.num1))).toHaveLength(1);
      const ids = added.map(({ job }) => job.id);

      await survivesStaleRule(ids, worker.id, beats);
      release.resolve();
      for (const { job } of added) {
        const completed = await waitForJob(service, hub, job.id, statusOf('completed'));
        expect(completed.attempt).toBe(1);
      }
      expect([...runs.entries()].filter(([num1]) => Number(num1) >= 200).sort()).toEqual([
        ['200', 1],
        ['201', 1],
        ['202', 1],
        ['203', 1],
      ]);
      await worker.stop();
    } finally {
      vi.useRealTimers();
    }
  });
});

const TIMEOUT_SECONDS = 30;

/**
 * The database for a worker, and two controls over it.
 *
 * `next()` resolves once a heartbeat sent after the call has committed. A beat already in flight
 * when `next()` is called is not counted: it may have read the jobs before the test changed them
 * (`vi.waitFor` moves a faked setInterval on as it polls, so a beat can start at any time before).
 * The deadline only turns a missing beat into a readable failure.
 *
 * `holdClaims()` resolves once no claim of the worker is in flight, and keeps its next claims
 * waiting until the returned function is called. A claim the worker still had to make (a NOTIFY of
 * the jobs just added can come after the claim that took them) would otherwise apply the stale
 * rule to the jobs the test has just made stale, and take them back from the worker itself.
 */
function heartbeats(on: Database) {
  let waiting: { sent: boolean; committed: () => void } | undefined;
  let claimsInFlight = 0;
  let claimsDone = deferred();
  let claimsHeld: Promise<void> | undefined;
  const isClaim = (statement: Statement) => statement.name.startsWith('jobs_claim');
  const watched = interceptStatements(on, {
    async before(statement) {
      if (statement.name === 'jobs_heartbeat' && waiting) waiting.sent = true;
      if (!isClaim(statement)) return;
      while (claimsHeld) await claimsHeld;
      claimsInFlight += 1;
    },
    after(statement) {
      if (statement.name === 'jobs_heartbeat' && waiting?.sent) waiting.committed();
      if (!isClaim(statement)) return;
      claimsInFlight -= 1;
      if (claimsInFlight === 0) claimsDone.resolve();
    },
  });
  const next = () =>
    new Promise<void>((resolve, reject) => {
      const deadline = setTimeout(() => reject(new Error('no heartbeat came')), 10_000);
      waiting = {
        sent: false,
        committed: () => {
          waiting = undefined;
          clearTimeout(deadline);
          resolve();
        },
      };
    });
  const holdClaims = async (): Promise<() => void> => {
    const release = deferred();
    claimsHeld = release.promise;
    if (claimsInFlight > 0) {
      claimsDone = deferred();
      await claimsDone.promise;
    }
    return () => {
      claimsHeld = undefined;
      release.resolve();
    };
  };
  return { db: watched, next, holdClaims };
}

/**
 * Three times over: the jobs' last heartbeat is made older than the timeout, as if their worker
 * had died, and the worker's heartbeat clock (setInterval, faked) moves on by a third of the
 * timeout. The beat that comes must have refreshed every job, and a rival that claims with the
 * same timeout right after must get none of them. Neither a stalled machine nor a slow rival can
 * change the outcome: the rival claims only when told to, a beat comes only when the clock is
 * moved, and the worker's own claims wait until the round is over.
 */
async function survivesStaleRule(ids: string[], workerId: string, beats: ReturnType<typeof heartbeats>): Promise<void> {
  for (let round = 1; round <= 3; round += 1) {
    const releaseClaims = await beats.holdClaims();
    const silentSince = new Date(Date.now() - 3_600_000);
    await db.prisma.job.updateMany({ where: { id: { in: ids } }, data: { lastUpdated: silentSince } });
    const beat = beats.next();
    await vi.advanceTimersByTimeAsync((TIMEOUT_SECONDS * 1000) / 3);
    await beat;
    const refreshed = await db.prisma.job.findMany({ where: { id: { in: ids }, lastUpdated: { gt: silentSince } } });
    expect({ round, refreshed: refreshed.length }).toEqual({ round, refreshed: ids.length });
    expect({ round, claimed: await claimJobsStatement(db, 'rival', 10, TIMEOUT_SECONDS) }).toEqual({ round, claimed: [] });
    const rows = await db.prisma.job.findMany({ where: { id: { in: ids } }, select: { status: true, attempt: true, lockedBy: true } });
    expect(rows).toEqual(ids.map(() => ({ status: 'wip', attempt: 1, lockedBy: workerId })));
    releaseClaims();
  }
}

describe('results for a watcher in this process', () => {
  it('are handed to it whole; with nobody watching, the write answers with ids only', async () => {
    const handedOver = vi.spyOn(hub, 'deliverLocally');
    // The second job's handler waits until its watcher is in place, so the hand-over cannot miss it.
    const watching = deferred();
    const worker = track(
      createWorker(db, hub, {
        handlers: {
          add: async (input) => {
            if (input.num1 === '1.5') await watching.promise;
            return addDecimals(input.num1, input.num2);
          },
        },
      }),
    );
    try {
      await worker.start();
      const { job: unwatched } = await service.addJob({ num1: '7', num2: '8' }, ANONYMOUS);
      await vi.waitFor(async () => expect((await db.prisma.job.findUnique({ where: { id: unwatched.id } }))?.status).toBe('completed'));
      expect(handedOver).not.toHaveBeenCalled();

      const { job } = await service.addJob({ num1: '1.5', num2: '2' }, ANONYMOUS);
      const completed = waitForJob(service, hub, job.id, statusOf('completed'));
      await vi.waitFor(() => expect(hub.isWatched(job.id)).toBe(true));
      watching.resolve();
      const watched = await completed;
      // The NOTIFY and the subscriber's own read can beat the statement's answer to this process,
      // so the hand-over may come just after the watcher has seen the job.
      await vi.waitFor(() => expect(handedOver).toHaveBeenCalledTimes(1));
      expect(handedOver.mock.calls[0]![0]).toEqual([expect.objectContaining({ id: watched.id, status: 'completed', version: watched.version })]);
      expect(handedOver.mock.calls[0]![0][0]!.result?.toString()).toBe('3.5');
    } finally {
      handedOver.mockRestore();
    }
  });
});

describe('a dead worker', () => {
  it('loses its job to the stale rule, and its late result is fenced off', async () => {
    const { job } = await service.addJob({ num1: '20', num2: '22' }, ANONYMOUS);
    const [claimed] = await claimJobsStatement(db, 'dead-worker', 1, 30);
    expect(claimed?.id).toBe(job.id);
    expect(claimed?.attempt).toBe(1);
    // The dead worker stops heartbeating; make its last beat older than the timeout.
    await db.prisma.job.update({ where: { id: job.id }, data: { lastUpdated: new Date(Date.now() - 3_600_000) } });

    await track(createWorker(db, hub, { jobTimeoutSeconds: 30 })).start();
    const completed = await waitForJob(service, hub, job.id, statusOf('completed'));
    expect(completed.attempt).toBe(2);
    expect(completed.result?.toString()).toBe('42');

    const accepted = await completeJobsStatement(db, [{ id: job.id, attempt: 1, result: '-1' }]);
    expect(accepted.size).toBe(0);
    const rejectedFailure = await failJobsStatement(db, [{ id: job.id, attempt: 1, error: 'late', retryInMs: null }]);
    expect(rejectedFailure.size).toBe(0);
    const after = await service.getJob(job.id, ANONYMOUS);
    expect(after?.status).toBe('completed');
    expect(after?.result?.toString()).toBe('42');
    expect(after?.version).toBe(completed.version);
  });

  it('claims and heartbeats without waiting for the WAL flush; nothing else is made lazy', async () => {
    const setting = { name: 'test_show_synchronous_commit', text: 'SHOW synchronous_commit' };
    const inTransaction = (work: (tx: Queryable) => Promise<unknown>) =>
      db.transaction(async (tx) => {
        await work(tx);
        const [row] = await tx.query<{ synchronous_commit: string }>(setting);
        return row!.synchronous_commit;
      });
    const { job } = await service.addJob({ num1: '1', num2: '2' }, ANONYMOUS);
    expect(await inTransaction((tx) => claimJobsStatement(tx, 'lazy-worker', 1, 30))).toBe('off');
    expect(await inTransaction((tx) => heartbeatStatement(tx, [{ id: job.id, attempt: 1 }]))).toBe('off');
    expect(await inTransaction((tx) => completeJobsStatement(tx, [{ id: job.id, attempt: 1, result: '3' }]))).toBe('on');
    // The setting is each statement's transaction's own; other commits still wait for the flush.
    const [after] = await db.query<{ synchronous_commit: string }>(setting);
    expect(after!.synchronous_commit).toBe('on');
    expect((await service.getJob(job.id, ANONYMOUS))?.result?.toString()).toBe('3');
  });

  it('fails a job whose last attempt timed out instead of running it again', async () => {
    const { job } = await service.addJob({ num1: '1', num2: '1' }, ANONYMOUS);
    await db.prisma.job.update({ where: { id: job.id }, data: { maxAttempts: 1 } });
    await claimJobsStatement(db, 'dead-worker', 1, 30);
    await db.prisma.job.update({ where: { id: job.id }, data: { lastUpdated: new Date(Date.now() - 3_600_000) } });

    expect(await claimJobsStatement(db, 'rescuer', 10, 30)).toEqual([]);
    const failed = await service.getJob(job.id, ANONYMOUS);
    expect(failed?.status).toBe('failed');
    expect(failed?.attempt).toBe(1);
    expect(failed?.lastError).toMatch(/timed out/);
    expect(failed?.completedOn).toBeInstanceOf(Date);
  });

  it('does not lose a live long job: its heartbeat keeps the stale rule away', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      const release = deferred();
      const started = deferred();
      let runs = 0;
      const slow = async () => {
        runs += 1;
        started.resolve();
        await release.promise;
        return '2';
      };
      const beats = heartbeats(testDb.open());
      // One slot, taken by the job: the worker claims nothing else, so only the rival applies the stale rule.
      const worker = track(
        createWorker(beats.db, hub, { handlers: { add: slow }, jobTimeoutSeconds: TIMEOUT_SECONDS, concurrency: 1, prefetch: 0 }),
      );
      await worker.start();
      const { job } = await service.addJob({ num1: '1', num2: '1' }, ANONYMOUS);
      await started.promise;

      await survivesStaleRule([job.id], worker.id, beats);
      release.resolve();
      const completed = await waitForJob(service, hub, job.id, statusOf('completed'));
      expect(runs).toBe(1);
      expect(completed.attempt).toBe(1);
      await worker.stop();
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('retries', () => {
  it('back off and then succeed', async () => {
    const errors: number[] = [];
    const flaky = (_input: unknown, context: { attempt: number }) => {
      if (context.attempt < 3) {
        errors.push(context.attempt);
        throw new Error(`flaked on attempt ${context.attempt}`);
      }
      return '2';
    };
    await track(createWorker(db, hub, { handlers: { add: flaky } })).start();
    const { job } = await service.addJob({ num1: '1', num2: '1' }, ANONYMOUS);
    const completed = await waitForJob(service, hub, job.id, statusOf('completed'));
    expect(errors).toEqual([1, 2]);
    expect(completed.attempt).toBe(3);
    expect(completed.lastError).toBe('flaked on attempt 2');
  });

  it('end in failed with the last error once attempts run out', async () => {
    const broken = (_input: unknown, context: { attempt: number }) => {
      throw new Error(`broken on attempt ${context.attempt}`);
    };
    await track(createWorker(db, hub, { handlers: { add: broken } })).start();
    const { job } = await service.addJob({ num1: '1', num2: '1' }, ANONYMOUS);
    const failed = await waitForJob(service, hub, job.id, statusOf('failed'));
    expect(failed.attempt).toBe(3);
    expect(failed.maxAttempts).toBe(3);
    expect(failed.lastError).toBe('broken on attempt 3');
    expect(failed.completedOn).toBeInstanceOf(Date);
    expect(failed.result).toBeNull();
  });

  it('fail a job whose handler returns something that is not a number, and only that job', async () => {
    const sloppy = (input: { num1: string }) => (input.num1 === '13' ? 'thirteen' : input.num1);
    await track(createWorker(db, hub, { handlers: { add: sloppy } })).start();
    const added = await service.addJobs(
      ['12', '13', '14'].map((num1) => ({ num1, num2: '0' })),
      ANONYMOUS,
    );
    const [twelve, thirteen, fourteen] = await Promise.all(
      added.map(({ job }) => waitForJob(service, hub, job.id, (j) => j.status !== 'pending' && j.status !== 'wip')),
    );
    expect(thirteen?.status).toBe('failed');
    expect(thirteen?.attempt).toBe(1);
    expect(thirteen?.lastError).toMatch(/returned "thirteen", which fails the result schema of add: must be a decimal number/);
    expect([twelve?.result?.toString(), fourteen?.result?.toString()]).toEqual(['12', '14']);
  });

  it('stop at once on a permanent error', async () => {
    const permanent = () => {
      throw new PermanentJobError('cannot ever work');
    };
    await track(createWorker(db, hub, { handlers: { add: permanent } })).start();
    const { job } = await service.addJob({ num1: '1', num2: '1' }, ANONYMOUS);
    const failed = await waitForJob(service, hub, job.id, statusOf('failed'));
    expect(failed.attempt).toBe(1);
    expect(failed.lastError).toBe('cannot ever work');
  });

  it('wait out their delay before the next claim', async () => {
    const { job } = await service.addJob({ num1: '1', num2: '1' }, ANONYMOUS);
    const [claimed] = await claimJobsStatement(db, 'w', 1, 30);
    await failJobsStatement(db, [{ id: job.id, attempt: claimed!.attempt, error: 'x', retryInMs: 60_000 }]);
    const pending = await service.getJob(job.id, ANONYMOUS);
    expect(pending?.status).toBe('pending');
    expect(pending!.runAt.getTime() - pending!.lastUpdated.getTime()).toBeGreaterThanOrEqual(59_000);
    expect(await claimJobsStatement(db, 'w', 10, 30)).toEqual([]);
  });

  it('grow exponentially with jitter, up to the cap', () => {
    const policy = { baseDelayMs: 1000, maxDelayMs: 10_000 };
    expect([1, 2, 3, 4, 5].map((attempt) => retryDelayMs(attempt, policy, () => 0))).toEqual([
      500, 1000, 2000, 4000, 5000,
    ]);
    expect([1, 2, 3, 4, 5].map((attempt) => retryDelayMs(attempt, policy, () => 1))).toEqual([
      1000, 2000, 4000, 8000, 10_000,
    ]);
  });
});

describe('delayed jobs and retries', () => {
  /**
   * The pending events heard for the versions of the jobs `act` returns, once all of them are. An
   * earlier version's event (the insert of a job claimed before) may still arrive meanwhile, so
   * each is matched by version. The deadline only turns a hang into a failure.
   */
  async function pendingEvents(act: () => Promise<Array<[string, number]>>): Promise<Array<JobEvent | undefined>> {
    const heard = new Map<string, JobEvent>();
    const stop = hub.onEvents((events) => {
      for (const event of events) if (event.status === 'pending') heard.set(`${event.id}@${event.version}`, event);
    });
    try {
      const wanted = (await act()).map(([id, version]) => `${id}@${version}`);
      await vi.waitFor(() => expect(wanted.filter((key) => !heard.has(key))).toEqual([]), { timeout: 10_000, interval: 20 });
      return wanted.map((key) => heard.get(key));
    } finally {
      stop();
    }
  }

  it('are announced with the time until they are due; a job due now is announced without one', async () => {
    const { job: retried } = await service.addJob({ num1: '1', num2: '1', priority: 9 }, ANONYMOUS);
    const [claimed] = await claimJobsStatement(db, 'w', 1, 30);
    expect(claimed?.id).toBe(retried.id);
    const [dueNow, later, retry] = await pendingEvents(async () => {
      const { job: dueNow } = await service.addJob({ num1: '1', num2: '1' }, ANONYMOUS);
      const { job: later } = await service.addJob({ num1: '1', num2: '1', runAt: new Date(Date.now() + 60_000) }, ANONYMOUS);
      await failJobsStatement(db, [{ id: retried.id, attempt: 1, error: 'x', retryInMs: 30_000 }]);
      // Inserted, claimed, failed back to pending: the retry is the job's third version.
      return [
        [dueNow.id, dueNow.version],
        [later.id, later.version],
        [retried.id, retried.version + 2],
      ];
    });
    expect(dueNow).toMatchObject({ status: 'pending' });
    expect(dueNow!.dueInMs).toBeUndefined();
    expect(later!.dueInMs).toBeGreaterThan(59_000);
    expect(later!.dueInMs).toBeLessThanOrEqual(60_000);
    expect(retry!.dueInMs).toBeGreaterThan(29_000);
    expect(retry!.dueInMs).toBeLessThanOrEqual(30_000);
  });

  /**
   * Runs `submit` with the worker's timers on a fake clock, so the test, not the machine's speed,
   * decides when the announced due time comes. The database's clock is real: once the job's due
   * announcement is heard, the job is made due there by SQL, which announces nothing, so only the
   * worker's own wake-up can find it. Asserts no claim before the due time, and the job's end after.
   */
  async function expectStartedOnlyWhenDue(options: Parameters<typeof createWorker>[2], submit: () => Promise<string>) {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const watched = interceptStatements(db, {});
    const worker = track(createWorker(watched, hub, { pollIntervalMs: 600_000, ...options }));
    // When each delayed pending event was heard on the fake clock: the worker hears it in the same dispatch.
    const heard = new Map<string, { dueInMs: number; at: number }>();
    const stopListening = hub.onEvents((events) => {
      for (const event of events) {
        if (event.status === 'pending' && event.dueInMs) heard.set(event.id, { dueInMs: event.dueInMs, at: performance.now() });
      }
    });
    try {
      await worker.start();
      const id = await submit();
      await vi.waitFor(() => expect(heard.get(id)).toBeDefined(), { timeout: 10_000 });
      await db.prisma.job.update({ where: { id }, data: { runAt: new Date(Date.now() - 1000) } });
      const claims = watched.seen('jobs_claim');
      const dueAt = heard.get(id)!.at + heard.get(id)!.dueInMs;

      await vi.advanceTimersByTimeAsync(dueAt - 1 - performance.now());
      expect(watched.seen('jobs_claim')).toBe(claims);
      expect((await service.getJob(id, ANONYMOUS))?.status).toBe('pending');

      await vi.advanceTimersByTimeAsync(1000);
      await vi.waitFor(async () => expect((await service.getJob(id, ANONYMOUS))?.status).toBe('completed'), { timeout: 10_000 });
      await worker.stop();
      return (await service.getJob(id, ANONYMOUS))!;
    } finally {
      stopListening();
      vi.useRealTimers();
    }
  }

  it('start when due, with no poll to find them', async () => {
    const completed = await expectStartedOnlyWhenDue({}, async () => {
      const { job } = await service.addJob({ num1: '2', num2: '3', runAt: new Date(Date.now() + 60_000) }, ANONYMOUS);
      return job.id;
    });
    expect(completed.result?.toString()).toBe('5');
    expect(completed.attempt).toBe(1);
  });

  it('retry when due, with no poll to find them', async () => {
    const flaky = (_input: unknown, context: { attempt: number }) => {
      if (context.attempt === 1) throw new Error('once');
      return '2';
    };
    const retry = { baseDelayMs: 60_000, maxDelayMs: 60_000 };
    const completed = await expectStartedOnlyWhenDue({ retry, handlers: { add: flaky } }, async () => {
      const { job } = await service.addJob({ num1: '1', num2: '1' }, ANONYMOUS);
      return job.id;
    });
    expect(completed.attempt).toBe(2);
    expect(completed.lastError).toBe('once');
  });
});

describe('start and stop', () => {
  it('are idempotent, and stop before start is harmless', async () => {
    const worker = track(createWorker(db, hub));
    await worker.stop();
    await Promise.all([worker.start(), worker.start()]);
    await Promise.all([worker.stop(), worker.stop()]);
    await worker.stop();
    // A stopped worker can start again and still works.
    await worker.start();
    const { job } = await service.addJob({ num1: '2', num2: '2' }, ANONYMOUS);
    expect((await waitForJob(service, hub, job.id, statusOf('completed'))).result?.toString()).toBe('4');
    await worker.stop();
  });

  it('lets running jobs finish within the grace period', async () => {
    const release = deferred();
    const started = deferred();
    const handler = async () => {
      started.resolve();
      await release.promise;
      return '7';
    };
    const worker = track(createWorker(db, hub, { handlers: { add: handler }, shutdownGraceMs: 10_000 }));
    await worker.start();
    const { job } = await service.addJob({ num1: '3', num2: '4' }, ANONYMOUS);
    await started.promise;
    const stopped = worker.stop();
    release.resolve();
    await stopped;
    const done = await service.getJob(job.id, ANONYMOUS);
    expect(done?.status).toBe('completed');
    expect(done?.result?.toString()).toBe('7');
  });

  it('hands unfinished jobs back as pending after the grace period', async () => {
    let aborted = false;
    const started = deferred();
    const stuck = (_input: unknown, context: { signal: AbortSignal }) =>
      new Promise<string>((_resolve, reject) => {
        started.resolve();
        context.signal.addEventListener('abort', () => {
          aborted = true;
          reject(context.signal.reason);
        });
      });
    const worker = track(createWorker(db, hub, { handlers: { add: stuck }, shutdownGraceMs: 50 }));
    await worker.start();
    const { job } = await service.addJob({ num1: '5', num2: '5' }, ANONYMOUS);
    // Not the `wip` status: a job claimed as stop() begins is handed back without being started.
    await started.promise;
    await worker.stop();
    expect(aborted).toBe(true);
    const handedBack = await service.getJob(job.id, ANONYMOUS);
    expect(handedBack?.status).toBe('pending');
    expect(handedBack?.attempt).toBe(0);
    expect(handedBack?.lockedBy).toBeNull();
    expect(handedBack?.lastError).toBeNull();

    await track(createWorker(db, hub)).start();
    const completed = await waitForJob(service, hub, job.id, statusOf('completed'));
    expect(completed.result?.toString()).toBe('10');
    expect(completed.attempt).toBe(1);
  });

  it('gives a handler that looks at its signal only after the abort an aborted signal', async () => {
    const started = deferred();
    const release = deferred();
    const seen = deferred();
    let reason: unknown;
    const late = async (_input: unknown, context: { signal: AbortSignal }) => {
      started.resolve();
      await release.promise;
      reason = context.signal.aborted ? context.signal.reason : 'not aborted';
      seen.resolve();
      return '0';
    };
    const worker = track(createWorker(db, hub, { handlers: { add: late }, shutdownGraceMs: 50 }));
    await worker.start();
    await service.addJob({ num1: '1', num2: '2' }, ANONYMOUS);
    await started.promise;
    await worker.stop();
    release.resolve();
    await seen.promise;
    expect(reason).toEqual(new Error('worker is shutting down'));
  });

  it('gives a restart all its slots, even while a handler abandoned at the last stop still runs', async () => {
    const never = new Promise<string>(() => undefined);
    const firstStarted = deferred();
    let calls = 0;
    const worker = track(
      createWorker(db, hub, {
        concurrency: 1,
        shutdownGraceMs: 50,
        // The first call ignores its signal and never settles; later ones add.
        handlers: {
          add: (input) => {
            if ((calls += 1) > 1) return String(Number(input.num1) + Number(input.num2));
            firstStarted.resolve();
            return never;
          },
        },
      }),
    );
    await worker.start();
    const first = await service.addJob({ num1: '1', num2: '1' }, ANONYMOUS);
    await firstStarted.promise;
    await worker.stop();
    expect(await service.getJob(first.job.id, ANONYMOUS)).toMatchObject({ status: 'pending', attempt: 0 });
    await worker.start();
    const second = await service.addJob({ num1: '2', num2: '2' }, ANONYMOUS);
    const [secondDone, firstDone] = await Promise.all([
      waitForJob(service, hub, second.job.id, statusOf('completed')),
      waitForJob(service, hub, first.job.id, statusOf('completed')),
    ]);
    expect([firstDone.result?.toString(), firstDone.attempt]).toEqual(['2', 1]);
    expect([secondDone.result?.toString(), secondDone.attempt]).toEqual(['4', 1]);
    // The abandoned call, then one for each job: the one slot was free for both.
    expect(calls).toBe(3);
  });
});
