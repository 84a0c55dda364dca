import { z } from 'zod';
import type { Database } from '../../src/db/database.ts';
import { JobEventHub } from '../../src/jobs/events.ts';
import type { Metrics } from '../../src/metrics/metrics.ts';
import { type Caller, type Job, JobService, type JobServiceLimits, type JobServiceOptions } from '../../src/jobs/service.ts';
import { addKind } from '../../src/kinds/add.ts';
import { defineKind, type JobKind, type KindHandler } from '../../src/kinds/define.ts';
import { KindRegistry } from '../../src/kinds/registry.ts';
import type { NewJob } from '../../src/jobs/sql/insert.ts';
import { Worker, type WorkerOptions } from '../../src/worker/worker.ts';
import { createTestDatabase, type TestDatabase, testLogger } from './database.ts';

export const ANONYMOUS: Caller = { owner: '' };

/** Limits of a test's service; `numberMaxDigits` shapes its `add` kind. */
export type TestServiceLimits = Partial<JobServiceLimits> & { numberMaxDigits?: number; kinds?: KindRegistry };

// biome-ignore lint/suspicious/noExplicitAny: a test's handler may take any kind's input
type AnyHandler = KindHandler<any, unknown>;

/**
 * The kinds a test runs: the `add` kind, with its handler swapped for `handlers.add` when given,
 * and a kind of every other name in `handlers` that takes and returns any JSON.
 */
export function testKinds(handlers: Record<string, AnyHandler> = {}, { numberMaxDigits = 100, extra = [] as JobKind[] } = {}): KindRegistry {
  const add = addKind({ maxDigits: numberMaxDigits });
  const kinds: JobKind[] = [handlers.add ? defineKind({ ...add, handler: handlers.add as typeof add.handler }) : add];
  for (const [name, handler] of Object.entries(handlers)) {
    if (name !== 'add') kinds.push(defineKind({ name, input: z.unknown(), result: z.unknown(), handler }));
  }
  return new KindRegistry([...kinds, ...extra]);
}

export function createService(
  db: Database,
  hub: JobEventHub,
  limits: TestServiceLimits = {},
  options: Pick<JobServiceOptions, 'metrics' | 'logger'> = {},
) {
  const { numberMaxDigits, kinds = testKinds({}, { numberMaxDigits }), ...rest } = limits;
  return new JobService({
    db,
    hub,
    kinds,
    limits: { maxAttempts: 3, maxBatchSize: 5000, maxInputBytes: 262_144, ...rest },
    ...options,
  });
}

export function createWorker(
  db: Database,
  hub: JobEventHub,
  options: Partial<Omit<WorkerOptions, 'kinds'>> & { handlers?: Record<string, AnyHandler>; kinds?: KindRegistry } = {},
): Worker {
  const { handlers, kinds = testKinds(handlers), ...rest } = options;
  return new Worker({
    db,
    hub,
    kinds,
    maxResultBytes: 262_144,
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
  caller: Caller = ANONYMOUS,
): Promise<Job> {
  return new Promise((resolve, reject) => {
    let last: Job | null = null;
    let settled = false;
    const check = async () => {
      if (settled) return;
      try {
        last = await service.getJob(id, caller);
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

/** A row for insertJobsStatement: an `add` of `num1` and `num2` (1 and 1 unless told), one attempt. */
export function newAddJob(fields: Partial<NewJob> & { id: string; num1?: string; num2?: string }): NewJob {
  const { num1 = '1', num2 = '1', ...rest } = fields;
  return {
    kind: 'add',
    input: JSON.stringify({ num1, num2 }),
    maxAttempts: 1,
    timeoutSeconds: null,
    runAt: null,
    priority: 0,
    idempotencyKey: null,
    owner: '',
    ...rest,
  };
}
