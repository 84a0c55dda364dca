/**
 * Rate limits in the claim of a limited kind (src/jobs/sql/claim-limited.ts), by hand: a claim
 * over the limit takes nothing and says when the next start is due; at that time it claims. And
 * the claim loop's skipping of an idle limited kind (src/worker/claim-loop.ts).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { claimLimitedStatement, type LimitedKindScope } from '../src/jobs/sql/claim-limited.ts';
import { defineKind, KindDefinitionError } from '../src/kinds/define.ts';
import { KindRegistry } from '../src/kinds/registry.ts';
import { interceptStatements } from './helpers/intercept.ts';
import { ANONYMOUS, closeJobsDatabase, createWorker, type JobsDatabase, openJobsDatabase, statusOf, waitForJob } from './helpers/jobs.ts';

const input = z.object({ n: z.number() });
const INTERVAL_MS = 400;
const paced = defineKind({ name: 'paced', input, result: z.null(), handler: () => null, options: { rateLimit: { limit: 2, intervalMs: INTERVAL_MS } } });
const perKey = defineKind({
  name: 'perKey',
  input,
  result: z.null(),
  handler: () => null,
  options: { rateLimit: { limit: 1, intervalMs: 60_000, perKey: true } },
});
const base = { concurrency: null, concurrencyPerKey: null, timeoutSeconds: 30, defaultTimeoutSeconds: 30 };
const pacedScope: LimitedKindScope = { ...base, kind: 'paced', rateLimit: { limit: 2, intervalMs: INTERVAL_MS, perKey: false } };
const perKeyScope: LimitedKindScope = { ...base, kind: 'perKey', rateLimit: { limit: 1, intervalMs: 60_000, perKey: true } };

let jobs: JobsDatabase;

beforeAll(async () => {
  jobs = await openJobsDatabase(import.meta.filename, { kinds: new KindRegistry([paced, perKey]) });
});

afterAll(async () => {
  if (jobs) await closeJobsDatabase(jobs);
});

const numbers = (claimed: readonly { input: unknown }[]) => claimed.map((job) => (job.input as { n: number }).n).sort((x, y) => x - y);

describe('a rate-limited claim', () => {
  it('takes at most the limit within the interval, across racing claims; then nothing, with the time the next start is due; then claims at that time', async () => {
    await jobs.service.submitJobs(Array.from({ length: 5 }, (_, n) => ({ kind: 'paced', input: { n } })), ANONYMOUS);
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => claimLimitedStatement(jobs.db, `w${i}`, 5, pacedScope)));
    expect(results.flatMap((result) => result.claimed)).toHaveLength(2);

    const over = await claimLimitedStatement(jobs.db, 'w', 5, pacedScope);
    expect(over.claimed).toEqual([]);
    expect(over.rateDueInMs).toBeGreaterThan(0);
    expect(over.rateDueInMs).toBeLessThanOrEqual(INTERVAL_MS);
    // Left pending, not failed.
    const pending = await jobs.db.query<{ count: number }>({
      name: 'test_rate_pending',
      text: `SELECT count(*)::int AS count FROM job WHERE kind = 'paced' AND status = 'pending'`,
    });
    expect(pending[0]!.count).toBe(3);

    await sleep(over.rateDueInMs!);
    const after = await claimLimitedStatement(jobs.db, 'w', 5, pacedScope);
    expect(after.claimed).toHaveLength(2);
    // Every start is in the window table, at most the limit in any interval.
    const starts = await jobs.db.query<{ ms: number }>({
      name: 'test_rate_starts',
      text: `SELECT (extract(epoch FROM started_at) * 1000)::float8 AS ms FROM job_rate_start WHERE kind = 'paced' ORDER BY started_at`,
    });
    for (const [i, start] of starts.entries()) {
      expect(starts.filter((other, j) => j >= i && other.ms - start.ms < INTERVAL_MS).length).toBeLessThanOrEqual(2);
    }
  });

  it('per key: one start per key in the interval, jobs without a key sharing one', async () => {
    await jobs.service.submitJobs(
      [
        ...[0, 1, 2].map((n) => ({ kind: 'perKey', input: { n }, concurrencyKey: 'a' })),
        ...[10, 11].map((n) => ({ kind: 'perKey', input: { n }, concurrencyKey: 'b' })),
        ...[20, 21].map((n) => ({ kind: 'perKey', input: { n } })),
      ],
      ANONYMOUS,
    );
    const first = await claimLimitedStatement(jobs.db, 'w', 10, perKeyScope);
    // The first of each key, in submission order.
    expect(numbers(first.claimed)).toEqual([0, 10, 20]);
    expect(first.rateDueInMs).toBeGreaterThan(59_000);
    const second = await claimLimitedStatement(jobs.db, 'w', 10, perKeyScope);
    expect(second.claimed).toEqual([]);
    expect(second.rateDueInMs).toBeGreaterThan(59_000);

    // A new key has a token of its own; the window of key a leaves a minute after its start.
    await jobs.service.submitJobs([{ kind: 'perKey', input: { n: 30 }, concurrencyKey: 'c' }], ANONYMOUS);
    expect(numbers((await claimLimitedStatement(jobs.db, 'w', 10, perKeyScope)).claimed)).toEqual([30]);
    await jobs.db.query({
      name: 'test_rate_age',
      text: `UPDATE job_rate_start SET started_at = started_at - interval '61 seconds' WHERE kind = 'perKey' AND key = 'a'`,
    });
    expect(numbers((await claimLimitedStatement(jobs.db, 'w', 10, perKeyScope)).claimed)).toEqual([1]);
  });

  it('does not take a stale job over while its bucket has no token, and counts a takeover as a start', async () => {
    await jobs.db.query({ name: 'test_rate_clear', text: `UPDATE job SET status = 'completed' WHERE kind = 'paced'` });
    const [submitted] = await jobs.service.submitJobs([{ kind: 'paced', input: { n: 99 } }], ANONYMOUS);
    await jobs.db.query({ name: 'test_rate_empty', text: `DELETE FROM job_rate_start WHERE kind = 'paced'` });
    const [claimed] = (await claimLimitedStatement(jobs.db, 'dead', 5, pacedScope)).claimed;
    expect(claimed!.id).toBe(submitted!.job.id);
    // Its worker died: the heartbeat is old. One more start fills the bucket (2).
    await jobs.db.query({
      name: 'test_rate_stale',
      text: `UPDATE job SET last_updated = now() - interval '1 hour' WHERE id = $1`,
    }, [claimed!.id]);
    await jobs.db.query({
      name: 'test_rate_fill',
      text: `INSERT INTO job_rate_start (kind, key, started_at, job_id) VALUES ('paced', '', clock_timestamp(), gen_random_uuid())`,
    });
    const held = await claimLimitedStatement(jobs.db, 'w', 5, pacedScope);
    expect(held.claimed).toEqual([]);
    expect(held.rateDueInMs).toBeGreaterThan(0);

    await sleep(held.rateDueInMs!);
    const taken = await claimLimitedStatement(jobs.db, 'w', 5, pacedScope);
    expect(taken.claimed.map((job) => [job.id, job.attempt])).toEqual([[claimed!.id, 2]]);
    const starts = await jobs.db.query<{ count: number }>(
      { name: 'test_rate_job_starts', text: `SELECT count(*)::int AS count FROM job_rate_start WHERE job_id = $1` },
      [claimed!.id],
    );
    // Its first start may have left the window; the takeover is there.
    expect(starts[0]!.count).toBeGreaterThanOrEqual(1);
  });
});

describe('defining a rate limit', () => {
  const define = (rateLimit: unknown) => () =>
    defineKind({ name: 'bad', input, result: z.null(), handler: () => null, options: { rateLimit: rateLimit as never } });

  it.each([
    [{ limit: 0, intervalMs: 1000 }, /options\.rateLimit\.limit must be an integer from 1 to 10000/],
    [{ limit: 5, intervalMs: 1.5 }, /options\.rateLimit\.intervalMs must be an integer from 1 to 86400000/],
    [{ limit: 5 }, /options\.rateLimit\.intervalMs/],
    [{ limit: 5, intervalMs: 1000, perKey: 'yes' }, /options\.rateLimit\.perKey must be a boolean/],
    [{ limit: 5, seconds: 1 }, /options\.rateLimit has an unknown field "seconds"/],
    [5, /options\.rateLimit must be \{ limit, intervalMs, perKey\? \}/],
  ])('refuses %j', (rateLimit, message) => {
    expect(define(rateLimit)).toThrow(KindDefinitionError);
    expect(define(rateLimit)).toThrow(message);
  });

  it('lists it with the kind, and lets jobs of a per-key kind carry a key', async () => {
    const listed = await jobs.service.kindControl.list();
    expect(listed.find((kind) => kind.name === 'paced')!.rateLimit).toEqual({ limit: 2, intervalMs: INTERVAL_MS, perKey: false });
    expect(listed.find((kind) => kind.name === 'perKey')!.rateLimit).toEqual({ limit: 1, intervalMs: 60_000, perKey: true });
    await expect(jobs.service.submitJobs([{ kind: 'paced', input: { n: 1 }, concurrencyKey: 'k' }], ANONYMOUS)).rejects.toThrow(
      /concurrencyKey is for kinds that limit jobs per key/,
    );
  });
});

describe('a worker with an idle limited kind', () => {
  it('skips its claim until a job may be there: a NOTIFY of a pending job, or the poll for one that was not announced', async () => {
    const capped = defineKind({ name: 'capped', input, result: z.null(), handler: () => null, options: { concurrency: 3 } });
    const plain = defineKind({ name: 'plain', input, result: z.null(), handler: () => null });
    const kinds = new KindRegistry([capped, plain]);
    const own = await openJobsDatabase(`${import.meta.filename}-idle`, { kinds });
    const db = interceptStatements(own.db, {});
    const queued = await own.service.submitJobs(Array.from({ length: 30 }, (_, n) => ({ kind: 'plain', input: { n } })), ANONYMOUS);
    // Two slots and no local queue: fifteen claim cycles at least, none of them after a pending
    // job was heard of. The poll is long, so that it does not run in between.
    let worker = createWorker(db, own.hub, { kinds, concurrency: 2, prefetch: 0, pollIntervalMs: 60_000 });
    await worker.start();
    // `seen` counts by prefix: the lock statement is sent once per claim of the limited kind.
    const limitedClaims = () => db.seen('jobs_claim_limited_lock');
    const otherClaims = () => db.seen('jobs_claim') - 2 * limitedClaims();
    try {
      for (const { job } of queued) await waitForJob(own.service, own.hub, job.id, statusOf('completed'));
      // At most two places a claim: fifteen claims at least. The limited kind's: the first, and
      // one after the NOTIFY of the submissions if the hub heard it after the start.
      expect(otherClaims()).toBeGreaterThanOrEqual(15);
      const limitedBefore = limitedClaims();
      expect(limitedBefore).toBeGreaterThanOrEqual(1);
      expect(limitedBefore).toBeLessThanOrEqual(2);

      // Its NOTIFY ends the skipping.
      const [announced] = await own.service.submitJobs([{ kind: 'capped', input: { n: 1 } }], ANONYMOUS);
      await waitForJob(own.service, own.hub, announced!.job.id, statusOf('completed'));
      expect(limitedClaims()).toBeGreaterThan(limitedBefore);
      await worker.stop();

      // A job no NOTIFY announced (a lost notification, say) is found by the poll.
      worker = createWorker(db, own.hub, { kinds, concurrency: 2, prefetch: 0, pollIntervalMs: 100 });
      await worker.start();
      const before = limitedClaims();
      const id = '0190f5d2-0000-7000-8000-0000000000aa';
      await own.db.query(
        { name: 'test_idle_silent', text: `INSERT INTO job (id, kind, input, max_attempts) VALUES ($1, 'capped', '{"n":2}', 1)` },
        [id],
      );
      await waitForJob(own.service, own.hub, id, statusOf('completed'));
      expect(limitedClaims()).toBeGreaterThan(before);
    } finally {
      await worker.stop();
      await closeJobsDatabase(own);
    }
  });

  it('finds an unannounced job of the idle kind within a poll interval while other kinds keep the loop busy', async () => {
    const capped = defineKind({ name: 'capped', input, result: z.null(), handler: () => null, options: { concurrency: 3 } });
    const slow = defineKind({ name: 'slow', input, result: z.null(), handler: () => sleep(5).then(() => null) });
    const kinds = new KindRegistry([capped, slow]);
    const own = await openJobsDatabase(`${import.meta.filename}-busy`, { kinds });
    // About five seconds of work for two slots: every claim fills them, so the loop never
    // sleeps out its poll while they drain.
    await own.service.submitJobs(Array.from({ length: 2000 }, (_, n) => ({ kind: 'slow', input: { n } })), ANONYMOUS);
    const worker = createWorker(own.db, own.hub, { kinds, concurrency: 2, prefetch: 0, pollIntervalMs: 100 });
    await worker.start();
    try {
      await sleep(300);
      const id = '0190f5d2-0000-7000-8000-0000000000bb';
      await own.db.query(
        { name: 'test_idle_busy_silent', text: `INSERT INTO job (id, kind, input, max_attempts) VALUES ($1, 'capped', '{"n":3}', 1)` },
        [id],
      );
      await waitForJob(own.service, own.hub, id, statusOf('completed'));
      const [left] = await own.db.query<{ count: number }>({
        name: 'test_idle_busy_left',
        text: `SELECT count(*)::int AS count FROM job WHERE kind = 'slow' AND status = 'pending'`,
      });
      // Not after the drain.
      expect(left!.count).toBeGreaterThan(0);
    } finally {
      await worker.stop();
      await closeJobsDatabase(own);
    }
  });
});
