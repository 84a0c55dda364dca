import { z } from 'zod';
import { addDecimals } from '../../src/jobs/decimal.ts';
import { claimBatchStatement } from '../../src/jobs/sql/claim.ts';
import { defineKind } from '../../src/kinds/define.ts';
import { workerFromConfig } from '../../src/runtime.ts';
import { heardCompleted, openOurs } from '../lib/ours.ts';
import type { Worker } from '../../src/worker/worker.ts';
import { watchCpu } from '../lib/cpu.ts';
import { pollUntil, settle } from '../lib/pg.ts';
import { chunks, type DrainArgs, type DrainTrial, input, trial, withDeadline } from './common.ts';

export interface OursOptions {
  /** Settings as environment strings, e.g. `{ WORKER_CONCURRENCY: '200' }`; the rest are the service's defaults. */
  env?: Record<string, string>;
  /**
   * Jobs of a kind that runs one job per concurrency key at a time (`concurrencyPerKey: 1`), each
   * with a key of its own: what flow control costs when every job has a key, the worst case of
   * its claim (one index probe per key waiting).
   */
  keyed?: boolean;
  /**
   * A database to copy instead of an empty one: jobs already in the table (bench/growth.ts). Only
   * jobs created in the last hour are the drain's; the copy's own are older.
   */
  template?: string;
  /** Before the worker starts, times this many claims of 500 (each rolled back): `claimMs`. */
  claimProbes?: number;
}

/** What a trial with `claimProbes` measured: each claim statement's duration, ms. */
export type DrainTrialWithClaims = DrainTrial & { claimMs: number[] };

class RolledBack extends Error {}

/** `add`, as a kind with a per-key limit. */
const keyedAdd = defineKind({
  name: 'add-keyed',
  input: z.object({ num1: z.string(), num2: z.string() }),
  result: z.string(),
  options: { concurrencyPerKey: 1 },
  handler: ({ num1, num2 }) => addDecimals(num1, num2),
});

/**
 * Our worker, built as `src/main.ts` builds it, at the service's default settings unless `env`
 * overrides them. Done when the hub has heard `completed` for every job and SQL agrees.
 */
export async function drainOurs(args: DrainArgs & OursOptions): Promise<DrainTrialWithClaims> {
  // Only where it runs: a worker that runs a limited kind pays a claim of it on every cycle.
  const ours = await openOurs('ours', {
    env: args.env,
    extraKinds: args.keyed ? [keyedAdd] : [],
    maxBatchSize: args.enqueueBatch,
    template: args.template,
  });
  const { config, logger, fresh, db, hub, kinds, service } = ours;
  let worker: Worker | undefined;
  try {
    const enqueueStart = performance.now();
    for (const chunk of chunks(args.jobs, args.enqueueBatch)) {
      if (args.keyed) {
        await service.submitJobs(
          chunk.map((i) => {
            const { num1, num2 } = input(i);
            return { kind: keyedAdd.name, input: { num1, num2 }, concurrencyKey: `key-${i}` };
          }),
          { owner: '' },
        );
      } else {
        await service.addJobs(chunk.map(input), { owner: '' });
      }
    }
    const enqueueMs = performance.now() - enqueueStart;
    await settle(fresh.url);
    const claimMs: number[] = [];
    const scope = {
      kinds: ['add'],
      defaultTimeoutSeconds: config.JOB_TIMEOUT_SECONDS,
      shortestTimeoutSeconds: config.JOB_TIMEOUT_SECONDS,
    };
    for (let probe = 0; probe < (args.claimProbes ?? 0); probe += 1) {
      await db
        .transaction(async (tx) => {
          const started = performance.now();
          const { claimed } = await claimBatchStatement(tx, 'claim-probe', 500, scope);
          claimMs.push(performance.now() - started);
          if (claimed.length !== Math.min(500, args.jobs)) throw new Error(`a claim probe took ${claimed.length} jobs`);
          throw new RolledBack();
        })
        .catch((error: unknown) => {
          if (!(error instanceof RolledBack)) throw error;
        });
    }

    // The hub runs before the worker, as in main.ts; the drain is timed from worker.start().
    await hub.start();
    const heard = heardCompleted(hub, args.jobs);
    // The drain's jobs, as an id range (ids are UUIDv7, in creation order): on a table that holds
    // other jobs (bench/growth.ts), a condition on created_at read all 10,000,000 of them at every
    // poll, and the timed drain measured that scan.
    const [range] = await db.query<{ first: string }>({
      name: 'bench_first_id',
      text: `SELECT id::text AS first FROM job WHERE created_at > now() - interval '1 hour' ORDER BY id LIMIT 1`,
    });
    const countCompleted = async () => {
      const [row] = await db.query<{ n: number }>({
        name: 'bench_count_completed',
        text: `SELECT count(*)::int AS n FROM job WHERE id >= $1::uuid AND status = 'completed' AND created_at > now() - interval '1 hour'`,
      }, [range!.first]);
      return row!.n;
    };
    worker = workerFromConfig(config, { db, hub, logger, kinds });
    const stopWatch = watchCpu(fresh.name);
    const startedAt = performance.now();
    await worker.start();
    await withDeadline(heard, args.deadlineMs, 'ours');
    const doneAt = await pollUntil(async () => (await countCompleted()) >= args.jobs, 2, 5_000);
    const cpu = stopWatch();
    await worker.stop();

    const [check] = await db.query<{ total: number; completed: number; correct: number; once: number }>({
      name: 'bench_verify',
      text: `SELECT count(*)::int AS total,
                    count(*) FILTER (WHERE status = 'completed')::int AS completed,
                    count(*) FILTER (WHERE status = 'completed' AND (result #>> '{}')::numeric = (input->>'num1')::numeric + (input->>'num2')::numeric)::int AS correct,
                    count(*) FILTER (WHERE attempt = 1)::int AS once
             FROM job WHERE created_at > now() - interval '1 hour'`,
    });
    if (check!.total !== args.jobs || check!.correct !== args.jobs || check!.once !== args.jobs) {
      throw new Error(`ours: verification failed: ${JSON.stringify(check)}`);
    }
    return {
      ...trial(
        args.jobs,
        enqueueMs,
        startedAt,
        doneAt,
        `${check!.completed} completed, ${check!.correct} results = num1 + num2, all on attempt 1`,
        cpu,
      ),
      claimMs,
    };
  } finally {
    await worker?.stop();
    await ours.close();
  }
}
