import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../src/db/database.ts';
import type { JobEventHub } from '../src/jobs/events.ts';
import { PermanentJobError } from '../src/kinds/define.ts';
import {
  completeJobsStatement,
  failJobsStatement,
  storedCompletionsStatement,
  storedFailuresStatement,
} from '../src/jobs/sql/outcomes.ts';
import type { JobService } from '../src/jobs/service.ts';
import { createMetrics } from '../src/metrics/metrics.ts';
import { MAX_STORED_TEXT, storableError, storableText } from '../src/worker/storable-text.ts';
import type { Worker } from '../src/worker/worker.ts';
import { claimJobsStatement } from './helpers/claim.ts';
import { capturingLogger, type TestDatabase } from './helpers/database.ts';
import { interceptStatements } from './helpers/intercept.ts';
import { ANONYMOUS, closeJobsDatabase, createWorker, openJobsDatabase, statusOf, waitForJob } from './helpers/jobs.ts';

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

function track(worker: Worker): Worker {
  workers.push(worker);
  return worker;
}


async function counterValues(counter: { get(): Promise<{ values: Array<{ value: number; labels: object }> }> }) {
  return (await counter.get()).values.map(({ value, labels }) => ({ value, ...labels }));
}

describe('storableText', () => {
  it('replaces NUL and unpaired surrogates, and keeps pairs', () => {
    expect(storableText('a\u0000b')).toBe('a\uFFFDb');
    expect(storableText('lone \uD800 high, lone \uDC00 low, end \uD83D')).toBe('lone \uFFFD high, lone \uFFFD low, end \uFFFD');
    expect(storableText('pair \uD83D\uDE00 kept')).toBe('pair \uD83D\uDE00 kept');
    const plain = 'nothing to do';
    expect(storableText(plain)).toBe(plain);
  });

  it(`cuts a text to ${MAX_STORED_TEXT} code units, ending in an ellipsis, without splitting a pair`, () => {
    const long = storableText('x'.repeat(20_000));
    expect(long).toHaveLength(MAX_STORED_TEXT);
    expect(long.endsWith('x…')).toBe(true);
    const emoji = storableText('\uD83D\uDE00'.repeat(10_000));
    expect(emoji.length).toBeLessThanOrEqual(MAX_STORED_TEXT);
    expect(emoji.endsWith('\uDE00…')).toBe(true);
  });
});

describe('storableError', () => {
  it('turns anything a handler throws into storable text', () => {
    expect(storableError(new Error('bad\u0000'))).toBe('bad\uFFFD');
    expect(storableError(new TypeError(''))).toBe('TypeError');
    expect(storableError('plain \uDC00')).toBe('plain \uFFFD');
    expect(storableError(Object.create(null))).toBe('the handler threw a value that cannot be turned into text');
  });
});

describe('a handler error the database could not store as it is', () => {
  it('fails a permanent error with NUL at once, as permanent, with the NUL replaced', async () => {
    const metrics = createMetrics();
    await track(
      createWorker(db, hub, {
        metrics,
        handlers: {
          add: () => {
            throw new PermanentJobError('bad\u0000byte');
          },
        },
      }),
    ).start();
    const { job } = await service.addJob({ num1: '1', num2: '1' }, ANONYMOUS);
    const failed = await waitForJob(service, hub, job.id, statusOf('failed'));
    expect(failed.attempt).toBe(1);
    expect(failed.lastError).toBe('bad\uFFFDbyte');
    // Counted once the write's answer is back, which may be after the job's change was heard.
    await expect.poll(() => counterValues(metrics.jobsFailed)).toEqual([{ value: 1, kind: 'add', reason: 'permanent' }]);
  });

  it('retries an error with NUL and with a lone surrogate, and stores its last one', async () => {
    await track(
      createWorker(db, hub, {
        handlers: {
          add: (input, context) => {
            throw new Error(input.num1 === '1' ? `nul\u0000on ${context.attempt}` : `half \uD800 on ${context.attempt}`);
          },
        },
      }),
    ).start();
    const added = await service.addJobs([{ num1: '1', num2: '0' }, { num1: '2', num2: '0' }], ANONYMOUS);
    const [nul, half] = await Promise.all(added.map(({ job }) => waitForJob(service, hub, job.id, statusOf('failed'))));
    expect([nul!.attempt, nul!.lastError]).toEqual([3, 'nul\uFFFDon 3']);
    expect([half!.attempt, half!.lastError]).toEqual([3, 'half \uFFFD on 3']);
  });
});

describe('a result the database refuses', () => {
  it('ends each attempt as a failure that says so, not as a job left wip to time out', async () => {
    // A numeric overflow, as PostgreSQL would answer a result it cannot hold.
    const refusingDb = interceptStatements(db, {
      before(statement) {
        if (statement.name.startsWith('jobs_complete')) throw Object.assign(new Error('numeric field overflow'), { code: '22003' });
      },
    });
    await track(createWorker(refusingDb, hub)).start();
    const { job } = await service.addJob({ num1: '1', num2: '1' }, ANONYMOUS);
    const failed = await waitForJob(service, hub, job.id, statusOf('failed'));
    expect(failed.attempt).toBe(3);
    expect(failed.lastError).toBe('the result could not be stored; see the worker log');
    expect(refusingDb.seen('jobs_complete')).toBeGreaterThanOrEqual(3);
  });
});

describe('a write that committed but whose answer was lost', () => {
  it('is recognised when sent again: the row holds that attempt’s own outcome, and nothing else’s', async () => {
    const added = await service.addJobs([{ num1: '1', num2: '1' }, { num1: '2', num2: '2' }], ANONYMOUS);
    const [first, second] = await claimJobsStatement(db, 'lost-answers', 2, 30);
    const completion = { id: first!.id, attempt: first!.attempt, result: '2' };
    expect(await completeJobsStatement(db, [completion])).toEqual(new Set([first!.id]));
    const versionAfter = (await service.getJob(first!.id, ANONYMOUS))!.version;

    // Sent again: the fence refuses it, changing nothing, and the job holds exactly this outcome.
    expect(await completeJobsStatement(db, [completion])).toEqual(new Set());
    expect((await service.getJob(first!.id, ANONYMOUS))!.version).toBe(versionAfter);
    expect(await storedCompletionsStatement(db, [completion, { ...completion, id: second!.id }])).toEqual(new Set([first!.id]));
    // Another result, or another attempt, is not this write.
    expect(await storedCompletionsStatement(db, [{ ...completion, result: '3' }])).toEqual(new Set());
    expect(await storedCompletionsStatement(db, [{ ...completion, attempt: 2 }])).toEqual(new Set());
    await service.retrieveJob(first!.id, ANONYMOUS);
    expect(await storedCompletionsStatement(db, [completion])).toEqual(new Set([first!.id]));

    const failure = { id: second!.id, attempt: second!.attempt, error: 'nope', retryInMs: 60_000 };
    expect(await failJobsStatement(db, [failure])).toEqual(new Set([second!.id]));
    expect(await failJobsStatement(db, [failure])).toEqual(new Set());
    expect(await storedFailuresStatement(db, [failure])).toEqual(new Set([second!.id]));
    expect(await storedFailuresStatement(db, [{ ...failure, retryInMs: null }])).toEqual(new Set());
    expect(await storedFailuresStatement(db, [{ ...failure, error: 'other' }])).toEqual(new Set());
    expect(added).toHaveLength(2);
  });

  it('is counted once by the worker, as stored, and not logged as taken over', async () => {
    let lost = false;
    // The first result's statement commits, then its connection drops before the answer arrives.
    const losingDb = interceptStatements(db, {
      after(statement) {
        if (!statement.name.startsWith('jobs_complete') || lost) return;
        lost = true;
        throw new Error('Connection terminated unexpectedly');
      },
    });
    const metrics = createMetrics();
    const { logger, lines } = capturingLogger();
    const worker = track(createWorker(losingDb, hub, { metrics, logger }));
    await worker.start();
    const { job } = await service.addJob({ num1: '20', num2: '22' }, ANONYMOUS);
    const completed = await waitForJob(service, hub, job.id, statusOf('completed'));
    expect(completed.result?.toString()).toBe('42');
    // Wait for the resend to be settled: the worker lets go of the job once its outcome is.
    await expect.poll(() => worker.activeJobs).toBe(0);

    expect(lost).toBe(true);
    expect(await counterValues(metrics.jobsCompleted)).toEqual([{ value: 1, kind: 'add' }]);
    expect(lines.filter((line) => /another attempt owns/.test(line.msg))).toEqual([]);
    expect(lines.filter((line) => line.jobId === job.id && /already stored by this attempt/.test(line.msg))).toHaveLength(1);
    // One change from wip to completed: the resend bumped no version and announced nothing.
    expect(completed.version).toBe(job.version + 2);
    expect((await service.getJob(job.id, ANONYMOUS))!.version).toBe(completed.version);
  });
});
