import type { Database } from '../../src/db/database.ts';
import { JobEventHub } from '../../src/jobs/events.ts';
import type { Metrics } from '../../src/metrics/metrics.ts';
import { createHandlers, type JobHandler } from '../../src/jobs/handlers.ts';
import { type Caller, type Job, JobService } from '../../src/jobs/service.ts';
import { Worker, type WorkerOptions } from '../../src/worker/worker.ts';
import { createTestDatabase, type TestDatabase, testLogger } from './database.ts';

export const ANONYMOUS: Caller = { owner: '' };

export function createService(
  db: Database,
  hub: JobEventHub,
  limits: Partial<ConstructorParameters<typeof JobService>[2]> = {},
  options: ConstructorParameters<typeof JobService>[3] = {},
) {
  return new JobService(db, hub, { maxAttempts: 3, numberMaxDigits: 100, maxBatchSize: 5000, ...limits }, options);
}

export function createWorker(
  db: Database,
  hub: JobEventHub,
  options: Partial<Omit<WorkerOptions, 'handlers'>> & { handlers?: Record<string, JobHandler> } = {},
): Worker {
  const { handlers, ...rest } = options;
  return new Worker({
    db,
    hub,
    handlers: createHandlers(handlers),
    logger: testLogger(),
    concurrency: 20,
    prefetch: 400,
    pollIntervalMs: 200,
    jobTimeoutSeconds: 30,
    retry: { baseDelayMs: 10, maxDelayMs: 50 },
    shutdownGraceMs: 1000,
    ...rest,
  });
}

export function createHub(db: Database, metrics?: Metrics): JobEventHub {
  return new JobEventHub(db, testLogger(), { metrics });
}

/**
 * Resolves with the job once `done` holds. It subscribes before it reads, as a customer's
 * subscription does, so no change can slip between the read and the first event. The deadline
 * only turns a hang into a readable failure; no test asserts how fast anything is.
 */
export function waitForJob(
  service: JobService,
  hub: JobEventHub,
  id: string,
  done: (job: Job) => boolean,
  deadlineMs = 15_000,
): Promise<Job> {
  return new Promise((resolve, reject) => {
    let last: Job | null = null;
    let settled = false;
    const check = async () => {
      if (settled) return;
      try {
        last = await service.getJob(id, ANONYMOUS);
      } catch (error) {
        finish(() => reject(error));
        return;
      }
      if (last && done(last)) finish(() => resolve(last!));
    };
    const unwatch = hub.watch(id, () => void check());
    const timer = setTimeout(
      () => finish(() => reject(new Error(`job ${id} never reached the state; last seen ${JSON.stringify(last)}`))),
      deadlineMs,
    );
    function finish(settle: () => void) {
      settled = true;
      clearTimeout(timer);
      unwatch();
      settle();
    }
    void check();
  });
}

export function statusOf(status: Job['status']) {
  return (job: Job) => job.status === status;
}

export interface JobsDatabase {
  testDb: TestDatabase;
  db: Database;
  hub: JobEventHub;
  service: JobService;
}

/** A test file's own migrated database, with a pool, a started hub and a job service on it. */
export async function openJobsDatabase(file: string, limits?: Parameters<typeof createService>[2]): Promise<JobsDatabase> {
  const testDb = await createTestDatabase(file);
  const db = testDb.open();
  const hub = createHub(db);
  await hub.start();
  return { testDb, db, hub, service: createService(db, hub, limits) };
}

export async function closeJobsDatabase({ testDb, hub }: Pick<JobsDatabase, 'testDb' | 'hub'>): Promise<void> {
  await hub.stop();
  await testDb.drop();
}

/** A promise and the function that resolves it, for a test to decide when something may go on. */
export function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}
