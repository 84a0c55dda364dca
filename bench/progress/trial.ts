import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { defineKind } from '../../src/kinds/define.ts';
import { workerFromConfig } from '../../src/runtime.ts';
import { heardCompleted, openOurs } from '../lib/ours.ts';
import { withDeadline } from '../drain/common.ts';
import { watchCpu } from '../lib/cpu.ts';
import { ADMIN_URL, settle, withClient } from '../lib/pg.ts';

export interface ProgressArgs {
  jobs: number;
  /** Each job runs this many steps of `stepMs`, reporting after each when `report` is set. */
  steps: number;
  stepMs: number;
  report: boolean;
}

export interface ProgressTrial {
  report: boolean;
  ms: number;
  /** Transactions the database committed while the jobs ran; each statement is one. */
  statements: number;
  statementsPerSecond: number;
  nodeCpuMs: number;
  postgresCpuMs: number;
  othersPercent: number;
  verified: string;
}

/**
 * `jobs` jobs of a kind that sleeps `steps` × `stepMs`, all running at once (the worker's
 * concurrency is `jobs`), reporting its progress after every step or not at all. The service's
 * defaults otherwise, PROGRESS_MIN_INTERVAL_MS (250 ms) included.
 */
export async function runProgress(args: ProgressArgs): Promise<ProgressTrial> {
  const stepsKind = defineKind({
    name: 'steps',
    input: z.object({ report: z.boolean() }),
    result: z.object({ steps: z.int() }),
    progress: z.object({ percent: z.int().min(0).max(100) }),
    handler: async ({ report }, context) => {
      for (let step = 1; step <= args.steps; step += 1) {
        await sleep(args.stepMs);
        if (report) context.progress({ percent: Math.floor((step * 100) / args.steps) });
      }
      return { steps: args.steps };
    },
  });
  const ours = await openOurs(args.report ? 'progress' : 'progress_silent', {
    env: { WORKER_CONCURRENCY: String(args.jobs) },
    extraKinds: [stepsKind],
    maxBatchSize: args.jobs,
  });
  const { config, logger, fresh, db, hub, kinds, service } = ours;
  const worker = workerFromConfig(config, { db, hub, logger, kinds });
  try {
    await service.submitJobs(Array.from({ length: args.jobs }, () => ({ kind: 'steps', input: { report: args.report } })), { owner: '' });
    await settle(fresh.url);
    await hub.start();
    const done = heardCompleted(hub, args.jobs);
    // Read from the admin database, so the reads are not counted.
    const commits = () =>
      withClient(ADMIN_URL, async (client) => {
        const { rows } = await client.query('SELECT (xact_commit + xact_rollback)::float8 AS n FROM pg_stat_database WHERE datname = $1', [fresh.name]);
        return rows[0].n as number;
      });
    const before = await commits();
    const stopWatch = watchCpu(fresh.name);
    const started = performance.now();
    await worker.start();
    await withDeadline(done, 60_000, 'progress');
    const ms = performance.now() - started;
    const cpu = stopWatch();
    await worker.stop();
    // Backends send their counters at most once a second.
    await sleep(1_100);
    const statements = (await commits()) - before;
    const [check] = await db.query<{ completed: number; last: number }>({
      name: 'bench_progress_verify',
      text: `SELECT count(*) FILTER (WHERE status = 'completed')::int AS completed,
                    count(*) FILTER (WHERE (progress->>'percent')::int = 100)::int AS last
             FROM job`,
    });
    const expectLast = args.report ? args.jobs : 0;
    if (check!.completed !== args.jobs || check!.last !== expectLast) throw new Error(`progress: verification failed: ${JSON.stringify(check)}`);
    return {
      report: args.report,
      ms: Math.round(ms),
      statements,
      statementsPerSecond: Math.round((statements / ms) * 1000),
      nodeCpuMs: cpu?.nodeMs ?? Number.NaN,
      postgresCpuMs: cpu?.postgresMs ?? Number.NaN,
      othersPercent: cpu?.othersPercent ?? Number.NaN,
      verified: `${check!.completed} completed, ${check!.last} with their last progress (100 %) stored`,
    };
  } finally {
    await worker.stop();
    await ours.close();
  }
}
