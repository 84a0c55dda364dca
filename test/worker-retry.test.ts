import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../src/db/database.ts';
import type { JobEventHub } from '../src/jobs/events.ts';
import type { JobService } from '../src/jobs/service.ts';
import { createMetrics } from '../src/metrics/metrics.ts';
import type { TestDatabase } from './helpers/database.ts';
import { interceptStatements } from './helpers/intercept.ts';
import { ANONYMOUS, closeJobsDatabase, createWorker, openJobsDatabase, statusOf, waitForJob } from './helpers/jobs.ts';

let testDb: TestDatabase;
let db: Database;
let hub: JobEventHub;
let service: JobService;

beforeAll(async () => {
  ({ testDb, db, hub, service } = await openJobsDatabase(import.meta.filename));
});

afterAll(() => closeJobsDatabase({ testDb, hub }));

function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

describe('a retry claimed before the failed attempt’s write returns', () => {
  it('is still tracked, and the failed attempt is still counted', async () => {
    const secondAttemptRunning = gate();
    const finishSecondAttempt = gate();
    // The failure's row is committed (and announced) at once, but its answer reaches the worker
    // only after the retry was claimed and started: the order a busy machine can produce.
    const slowDb = interceptStatements(db, {
      async after(statement) {
        if (statement.name === 'jobs_fail') await secondAttemptRunning.opened;
      },
    });
    const metrics = createMetrics();
    const worker = createWorker(slowDb, hub, {
      metrics,
      retry: { baseDelayMs: 0, maxDelayMs: 0 },
      handlers: {
        add: async (_input, context) => {
          if (context.attempt === 1) throw new Error('first attempt fails');
          secondAttemptRunning.open();
          await finishSecondAttempt.opened;
          return '2';
        },
      },
    });
    const { job } = await service.addJob({ num1: '1', num2: '1' }, ANONYMOUS);
    await worker.start();
    await secondAttemptRunning.opened;
    // The first attempt's write has returned once its retry is counted; the retry must still be held.
    await expect.poll(async () => (await metrics.jobsRetried.get()).values.map((value) => value.value)).toEqual([1]);
    expect(worker.activeJobs).toBe(1);
    expect(slowDb.seen('jobs_fail')).toBe(1);

    finishSecondAttempt.open();
    await waitForJob(service, hub, job.id, statusOf('completed'));
    await worker.stop();
    expect((await metrics.jobsCompleted.get()).values.map((value) => value.value)).toEqual([1]);
  });
});
