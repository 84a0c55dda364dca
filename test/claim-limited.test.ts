/**
 * The claim of a kind with a concurrency limit (src/jobs/sql/claim-limited.ts), by hand: claims
 * racing on separate connections never take more than the limit between them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { claimLimitedStatement, type LimitedKindScope } from '../src/jobs/sql/claim-limited.ts';
import { defineKind } from '../src/kinds/define.ts';
import { KindRegistry } from '../src/kinds/registry.ts';
import { ANONYMOUS, closeJobsDatabase, type JobsDatabase, openJobsDatabase } from './helpers/jobs.ts';

const capped = defineKind({ name: 'capped', input: z.object({ n: z.number() }), result: z.null(), handler: () => null, options: { concurrency: 3 } });
const scope: LimitedKindScope = { kind: 'capped', concurrency: 3, timeoutSeconds: 30, defaultTimeoutSeconds: 30 };

let jobs: JobsDatabase;

beforeAll(async () => {
  jobs = await openJobsDatabase(import.meta.filename, { kinds: new KindRegistry([capped]) });
});

afterAll(async () => {
  if (jobs) await closeJobsDatabase(jobs);
});

async function finish(ids: readonly string[]): Promise<void> {
  await jobs.db.query({ name: 'test_limited_finish', text: `UPDATE job SET status = 'completed', completed_on = now() WHERE id = ANY($1::uuid[])` }, [ids]);
}

describe('claiming a limited kind', () => {
  it('ten claims at once take 3 jobs between them, and after two finish, two more', async () => {
    await jobs.service.submitJobs(Array.from({ length: 40 }, (_, n) => ({ kind: 'capped', input: { n } })), ANONYMOUS);
    const race = () => Promise.all(Array.from({ length: 10 }, (_, i) => claimLimitedStatement(jobs.db, `w${i}`, 5, scope)));

    const first = (await race()).flatMap((result) => result.claimed);
    expect(first).toHaveLength(3);

    await finish(first.slice(0, 2).map((job) => job.id));
    const results = await race();
    expect(results.flatMap((result) => result.claimed)).toHaveLength(2);
    // A claim that found the kind full names the jobs that hold it.
    const full = results.find((result) => result.claimed.length === 0)!;
    expect(full.holders).toHaveLength(3);
    expect(full.holders).toContain(first[2]!.id);
  });

  it('claims nothing while the kind is paused', async () => {
    await jobs.db.query({ name: 'test_limited_reset', text: `UPDATE job SET status = 'completed' WHERE status = 'wip'` });
    await jobs.service.pauseKind('capped');
    expect((await claimLimitedStatement(jobs.db, 'w', 5, scope)).claimed).toEqual([]);
    await jobs.service.resumeKind('capped');
    expect((await claimLimitedStatement(jobs.db, 'w', 5, scope)).claimed).toHaveLength(3);
  });
});
