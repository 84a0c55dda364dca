import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../src/db/database.ts';
import type { JobEventHub } from '../src/jobs/events.ts';
import type { JobService } from '../src/jobs/service.ts';
import type { Worker } from '../src/worker/worker.ts';
import type { TestDatabase } from './helpers/database.ts';
import { interceptStatements } from './helpers/intercept.ts';
import { ANONYMOUS, closeJobsDatabase, createWorker, deferred, openJobsDatabase, statusOf, waitForJob } from './helpers/jobs.ts';

let testDb: TestDatabase;
let db: Database;
let hub: JobEventHub;
let service: JobService;
const workers: Worker[] = [];

beforeAll(async () => {
  ({ testDb, db, hub, service } = await openJobsDatabase(import.meta.filename));
});

afterEach(async () => {
  await Promise.all(workers.splice(0).map((worker) => worker.stop()));
  await db.prisma.job.deleteMany();
});

afterAll(() => closeJobsDatabase({ testDb, hub }));

// The poll is ten minutes away in these tests: only the loop's own wake-ups can find a job.
const NO_POLL = { pollIntervalMs: 600_000 };

describe('the claim loop', () => {
  it('sleeps after a claim that took all there was, and claims nothing more until woken', async () => {
    const counted = interceptStatements(db, {});
    const worker = createWorker(counted, hub, NO_POLL);
    workers.push(worker);
    await worker.start();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(counted.seen('jobs_claim')).toBe(1);

    const { job } = await service.addJob({ num1: '1', num2: '2' }, ANONYMOUS);
    expect((await waitForJob(service, hub, job.id, statusOf('completed'))).result?.toString()).toBe('3');
    expect(counted.seen('jobs_claim')).toBe(2);
  });

  it('claims again as soon as a claim returns, when a job was announced while it ran', async () => {
    // The first claim finds nothing, and its answer is held back until the job it missed is announced.
    const firstClaimed = deferred();
    const announced = deferred();
    let claims = 0;
    const held = interceptStatements(db, {
      async after(statement) {
        if (statement.name !== 'jobs_claim' || (claims += 1) > 1) return;
        firstClaimed.resolve();
        await announced.promise;
      },
    });
    const stopListening = hub.onEvents((events) => {
      if (events.some((event) => event.status === 'pending')) announced.resolve();
    });
    try {
      const worker = createWorker(held, hub, NO_POLL);
      workers.push(worker);
      await worker.start();
      await firstClaimed.promise;
      const { job } = await service.addJob({ num1: '2', num2: '2' }, ANONYMOUS);
      expect((await waitForJob(service, hub, job.id, statusOf('completed'))).result?.toString()).toBe('4');
      expect(claims).toBe(2);
    } finally {
      stopListening();
    }
  });
});
