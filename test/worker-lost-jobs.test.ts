import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Database } from '../src/db/database.ts';
import { addDecimals } from '../src/jobs/decimal.ts';
import type { JobEventHub } from '../src/jobs/events.ts';
import type { JobService } from '../src/jobs/service.ts';
import { claimJobsStatement } from './helpers/claim.ts';
import type { TestDatabase } from './helpers/database.ts';
import { interceptStatements } from './helpers/intercept.ts';
import { ANONYMOUS, closeJobsDatabase, createWorker, deferred, openJobsDatabase, statusOf, waitForJob } from './helpers/jobs.ts';

let testDb: TestDatabase;
let db: Database;
let hub: JobEventHub;
let service: JobService;

beforeAll(async () => {
  ({ testDb, db, hub, service } = await openJobsDatabase(import.meta.filename));
});

afterAll(() => closeJobsDatabase({ testDb, hub }));

const TIMEOUT_SECONDS = 30;

describe('jobs taken over by another worker', () => {
  it('are never started when queued; a running one is told to stop, and no outcome of theirs is written', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      // A beat that fired early (vi.waitFor moves the faked clock) must not pass for the one after the takeover.
      let stolen = false;
      const sentAfterSteal = new Set<unknown>();
      let beaten: (() => void) | undefined;
      const watched = interceptStatements(db, {
        before(statement, values) {
          if (statement.name === 'jobs_heartbeat' && stolen) sentAfterSteal.add(values);
        },
        after(statement, values) {
          if (statement.name === 'jobs_heartbeat' && sentAfterSteal.has(values)) beaten?.();
        },
      });
      const release = deferred();
      const started = deferred();
      const runs = new Map<string, number>();
      let abortedWith: unknown;
      let warmedUp = false;
      // One slot and a measured fast handler: of the next claim, one job runs (and waits) and the rest queue.
      const worker = createWorker(watched, hub, {
        concurrency: 1,
        prefetch: 10,
        jobTimeoutSeconds: TIMEOUT_SECONDS,
        pollIntervalMs: 600_000,
        handlers: {
          add: async (input, context) => {
            runs.set(input.num1, (runs.get(input.num1) ?? 0) + 1);
            if (warmedUp) {
              started.resolve();
              await release.promise;
              abortedWith = context.signal.reason;
            }
            warmedUp = true;
            return addDecimals(input.num1, input.num2);
          },
        },
      });
      await worker.start();
      const { job: warmUp } = await service.addJob({ num1: '1', num2: '0' }, ANONYMOUS);
      await waitForJob(service, hub, warmUp.id, statusOf('completed'));
      const added = await service.addJobs(Array.from({ length: 4 }, (_, i) => ({ num1: String(10 + i), num2: '1' })), ANONYMOUS);
      await started.promise;
      await expect.poll(() => worker.queuedJobs).toBe(3);

      // The four go stale, as if this worker had died, and a rival takes them over.
      const ids = added.map(({ job }) => job.id);
      await db.prisma.job.updateMany({ where: { id: { in: ids } }, data: { lastUpdated: new Date(Date.now() - 3_600_000) } });
      expect(await claimJobsStatement(db, 'rival', 10, TIMEOUT_SECONDS)).toHaveLength(4);
      stolen = true;
      const writesBefore = watched.seen('jobs_complete') + watched.seen('jobs_fail');
      const beat = new Promise<void>((resolve) => {
        beaten = resolve;
      });
      await vi.advanceTimersByTimeAsync((TIMEOUT_SECONDS * 1000) / 3);
      await beat;
      // The beat's answer has come; once the worker has acted on it, it holds the running job alone.
      await expect.poll(() => worker.activeJobs).toBe(1);

      release.resolve();
      await expect.poll(() => worker.activeJobs).toBe(0);
      expect([...runs.keys()].filter((num1) => num1 !== '1')).toHaveLength(1);
      expect(abortedWith).toEqual(new Error('the job was taken over by another worker'));
      expect(watched.seen('jobs_complete') + watched.seen('jobs_fail')).toBe(writesBefore);
      const rows = await db.prisma.job.findMany({ where: { id: { in: ids } }, select: { status: true, lockedBy: true } });
      expect(rows).toEqual(ids.map(() => ({ status: 'wip', lockedBy: 'rival' })));
      await worker.stop();
    } finally {
      vi.useRealTimers();
    }
  });
});
