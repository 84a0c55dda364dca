/**
 * The long-running kinds run by a real worker on PostgreSQL: a thread's CPU-bound job keeps its
 * heartbeat, and a shutdown hands the job back and stops its thread.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addKind } from '../src/kinds/add.ts';
import { defineKind } from '../src/kinds/define.ts';
import { digestKind } from '../src/kinds/digest.ts';
import { primesKind } from '../src/kinds/primes.ts';
import { KindRegistry } from '../src/kinds/registry.ts';
import { ThreadPool } from '../src/worker/thread-pool.ts';
import { testLogger } from './helpers/database.ts';
import { ANONYMOUS, closeJobsDatabase, createWorker, type JobsDatabase, openJobsDatabase, statusOf, waitForJob } from './helpers/jobs.ts';

// A one-second stale timeout: the heartbeat beats every third of it, or the job is taken back.
const primes = defineKind({ ...primesKind(), options: { timeoutSeconds: 1 } });
const kinds = new KindRegistry([addKind({ maxDigits: 100 }), primes, digestKind()]);

let jobs: JobsDatabase;
let pool: ThreadPool;

beforeAll(async () => {
  jobs = await openJobsDatabase(import.meta.filename, { kinds });
  pool = new ThreadPool({ size: 1, logger: testLogger() });
  await pool.start();
});

afterAll(async () => {
  await pool.stop();
  await closeJobsDatabase(jobs);
});

/** The distinct heartbeats the job shows, sampled until it is no longer wip. */
async function beatsWhileRunning(id: string): Promise<Set<number>> {
  const seen = new Set<number>();
  for (;;) {
    const job = await jobs.service.getJob(id, ANONYMOUS);
    if (job?.status === 'pending') {
      await sleep(20);
      continue;
    }
    if (job?.status !== 'wip') return seen;
    seen.add(job.lastUpdated.getTime());
    await sleep(50);
  }
}

describe('a CPU-bound kind in the thread pool', () => {
  it('keeps its heartbeat while the thread counts, and completes on its first attempt', async () => {
    const worker = createWorker(jobs.db, jobs.hub, { kinds, threads: pool });
    await worker.start();
    try {
      // Large enough to count for well over a second on a fast machine: 12,000,000 took 0.7 s on
      // an idle one, two beats, and the assertion below failed for want of time, not of beats.
      const { job } = await jobs.service.submitJob({ kind: 'primes', input: { below: 30_000_000 } }, ANONYMOUS);
      const beats = await beatsWhileRunning(job.id);
      const done = await waitForJob(jobs.service, jobs.hub, job.id, statusOf('completed'));
      expect(done).toMatchObject({ attempt: 1, result: { count: 1_857_859 } });
      // Claimed, then a beat every third of a second for the second or more the count takes.
      expect(beats.size).toBeGreaterThanOrEqual(3);
    } finally {
      await worker.stop();
    }
  });

  it('on shutdown, hands the job back without using up an attempt, and frees the thread', async () => {
    const worker = createWorker(jobs.db, jobs.hub, { kinds, threads: pool, shutdownGraceMs: 100 });
    await worker.start();
    const { job } = await jobs.service.submitJob({ kind: 'primes', input: { below: 50_000_000 } }, ANONYMOUS);
    await waitForJob(jobs.service, jobs.hub, job.id, statusOf('wip'));
    await worker.stop();
    expect(await jobs.service.getJob(job.id, ANONYMOUS)).toMatchObject({ status: 'pending', attempt: 0, lastError: null });
    // The aborted count's thread was replaced: the pool runs the next job at once.
    await jobs.service.cancelJob(job.id, ANONYMOUS);
    const next = createWorker(jobs.db, jobs.hub, { kinds, threads: pool });
    await next.start();
    try {
      const { job: small } = await jobs.service.submitJob({ kind: 'primes', input: { below: 100 } }, ANONYMOUS);
      expect((await waitForJob(jobs.service, jobs.hub, small.id, statusOf('completed'))).result).toEqual({ count: 25 });
    } finally {
      await next.stop();
    }
  });

  it('a digest job on the event loop is cancelled by shutdown within a slice', async () => {
    const worker = createWorker(jobs.db, jobs.hub, { kinds, shutdownGraceMs: 100 });
    await worker.start();
    const { job } = await jobs.service.submitJob({ kind: 'digest', input: { text: 'x', rounds: 10_000_000 } }, ANONYMOUS);
    await waitForJob(jobs.service, jobs.hub, job.id, statusOf('wip'));
    await worker.stop();
    expect(await jobs.service.getJob(job.id, ANONYMOUS)).toMatchObject({ status: 'pending', attempt: 0 });
    await jobs.service.cancelJob(job.id, ANONYMOUS);
  });
});
