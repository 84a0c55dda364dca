import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventEmitter } from 'node:events';
import pg from 'pg';
import { Logger, makeWorkerUtils, run, runMigrations, type WorkerEvents } from 'graphile-worker';
import { PgBoss } from 'pg-boss';
import { addDecimals } from '../../src/jobs/decimal.ts';
import { claimBatchStatement, type FairClaimResult } from '../../src/jobs/sql/claim.ts';
import { completeJobsStatement } from '../../src/jobs/sql/outcomes.ts';
import { workerFromConfig } from '../../src/runtime.ts';
import { heardCompleted, openOurs } from '../lib/ours.ts';
import { chunks, input, signal, withDeadline } from '../drain/common.ts';
import { createFreshDatabase, settle } from '../lib/pg.ts';
import { CostMeter, type PhaseCost } from './meter.ts';

export interface CostArgs {
  jobs: number;
  /** Jobs per insert statement, per claim and per completion. */
  batch: number;
  /** Whose jobs they are: '' (the open service's), or an API key's SHA-256 digest in hex. */
  owner?: string;
}

export interface CostTrial {
  phases: PhaseCost[];
  /** For the SQL floor: jobs/s of the two statements alone. */
  jobsPerSecond?: number;
}

/**
 * Our service, one transition at a time through the queue's own statements (insert through the
 * job service, claim and completion in batches of `batch` as the worker sends them, retrieval one
 * job per call as a customer does), then the worker itself draining a second set of jobs, which
 * adds what the worker does around those statements (NOTIFY, the hand-over of results).
 */
export async function costOurs(args: CostArgs): Promise<CostTrial> {
  const ours = await openOurs('cost_ours', { maxBatchSize: args.batch });
  const { config, logger, fresh, db, hub, kinds, service } = ours;
  let meter: CostMeter | undefined;
  try {
    const caller = { owner: args.owner ?? '' };
    const enqueue = async () => {
      for (const chunk of chunks(args.jobs, args.batch)) await service.addJobs(chunk.map(input), caller);
    };
    await settle(fresh.url);
    meter = await CostMeter.open(fresh.url, fresh.name);
    const phases: PhaseCost[] = [];
    phases.push(await meter.measure('insert', args.jobs, enqueue));

    const scope = { kinds: ['add'], defaultTimeoutSeconds: config.JOB_TIMEOUT_SECONDS, shortestTimeoutSeconds: config.JOB_TIMEOUT_SECONDS };
    const claimed: Array<{ id: string; attempt: number; input: { num1: string; num2: string } }> = [];
    phases.push(
      await meter.measure('claim', args.jobs, async () => {
        // Each claim passes on the owners' turn, as the worker's claim loop does.
        let ownerCursor: FairClaimResult['ownerCursor'] | undefined;
        for (;;) {
          const result = await claimBatchStatement(db, 'cost-bench', args.batch, scope, ownerCursor);
          const batch = result.claimed;
          ownerCursor = result.ownerCursor;
          if (batch.length === 0) break;
          for (const job of batch) claimed.push(job as (typeof claimed)[number]);
        }
      }),
    );
    if (claimed.length !== args.jobs) throw new Error(`ours: claimed ${claimed.length} of ${args.jobs}`);
    const completions = claimed.map((job) => ({
      id: job.id,
      attempt: job.attempt,
      result: JSON.stringify(addDecimals(job.input.num1, job.input.num2)),
    }));
    phases.push(
      await meter.measure('complete', args.jobs, async () => {
        for (let start = 0; start < completions.length; start += args.batch) {
          const written = await completeJobsStatement(db, completions.slice(start, start + args.batch));
          if (written.size !== Math.min(args.batch, completions.length - start)) throw new Error('ours: a completion was refused');
        }
      }),
    );
    phases.push(
      await meter.measure('retrieve', args.jobs, async () => {
        const ids = completions.map((completion) => completion.id);
        let next = 0;
        const customer = async () => {
          while (next < ids.length) {
            const job = await service.retrieveJob(ids[next++]!, caller);
            if (job?.status !== 'retrieved') throw new Error(`ours: retrieve answered ${job?.status}`);
          }
        };
        await Promise.all(Array.from({ length: 8 }, customer));
      }),
    );

    await enqueue();
    await settle(fresh.url);
    await hub.start();
    const heard = heardCompleted(hub, args.jobs);
    const worker = workerFromConfig(config, { db, hub, logger, kinds });
    try {
      phases.push(
        await meter.measure('worker drain (claim + complete)', args.jobs, async () => {
          await worker.start();
          await withDeadline(heard, 60_000, 'ours');
        }),
      );
    } finally {
      await worker.stop();
    }
    return { phases };
  } finally {
    await meter?.close();
    await ours.close();
  }
}

const silent = new Logger(() => () => undefined);

/**
 * graphile-worker batched as in the drain benchmark. Its claim and completion are internal, so
 * they are measured together; a completed job is deleted, and there is nothing to retrieve.
 */
export async function costGraphile(args: CostArgs): Promise<CostTrial> {
  const fresh = await createFreshDatabase('cost_graphile');
  const pgPool = new pg.Pool({ connectionString: fresh.url, max: 10 });
  pgPool.on('error', () => undefined);
  const preset = {
    worker: { concurrentJobs: 24, logger: silent, localQueue: { size: args.batch }, completeJobBatchDelay: 0, failJobBatchDelay: 0 },
  };
  let runner: Awaited<ReturnType<typeof run>> | undefined;
  let meter: CostMeter | undefined;
  try {
    await runMigrations({ preset, pgPool });
    const utils = await makeWorkerUtils({ preset, pgPool });
    await settle(fresh.url);
    meter = await CostMeter.open(fresh.url, fresh.name);
    const phases: PhaseCost[] = [];
    try {
      phases.push(
        await meter.measure('insert', args.jobs, async () => {
          for (const chunk of chunks(args.jobs, args.batch)) {
            await utils.addJobs(chunk.map((i) => ({ identifier: 'add', payload: input(i) })));
          }
        }),
      );
    } finally {
      await utils.release();
    }
    let done = 0;
    const heard = signal();
    const events: WorkerEvents = new EventEmitter();
    events.on('job:complete', ({ error }) => {
      if (!error) done += 1;
      if (done >= args.jobs) heard.resolve();
    });
    const taskList = {
      add: async (payload: unknown) => {
        const { num1, num2 } = payload as ReturnType<typeof input>;
        addDecimals(num1, num2);
      },
    };
    phases.push(
      await meter.measure('worker drain (claim + complete)', args.jobs, async () => {
        runner = await run({ preset, pgPool, concurrency: 24, noHandleSignals: true, taskList, events });
        await withDeadline(heard.promise, 60_000, 'graphile-worker');
        // job:complete fires when the completion is queued; stop() writes the last batch.
        await runner.stop();
        runner = undefined;
      }),
    );
    return { phases };
  } finally {
    await runner?.stop().catch(() => undefined);
    await meter?.close();
    await pgPool.end();
    await fresh.drop();
  }
}

const QUEUE = 'add';

/** pg-boss through its public calls: insert, fetch (the claim) and complete, each in batches. */
export async function costPgBoss(args: CostArgs): Promise<CostTrial> {
  const fresh = await createFreshDatabase('cost_pgboss');
  const boss = new PgBoss({ connectionString: fresh.url, supervise: false, schedule: false });
  boss.on('error', (error) => console.error('pg-boss:', error));
  let meter: CostMeter | undefined;
  let started = false;
  try {
    await boss.start();
    started = true;
    await boss.createQueue(QUEUE);
    await settle(fresh.url);
    meter = await CostMeter.open(fresh.url, fresh.name);
    const phases: PhaseCost[] = [];
    phases.push(
      await meter.measure('insert', args.jobs, async () => {
        for (const chunk of chunks(args.jobs, args.batch)) await boss.insert(QUEUE, chunk.map((i) => ({ data: input(i) })));
      }),
    );
    const fetched: Array<{ id: string; data: ReturnType<typeof input> }> = [];
    phases.push(
      await meter.measure('claim', args.jobs, async () => {
        for (;;) {
          const batch = await boss.fetch<ReturnType<typeof input>>(QUEUE, { batchSize: args.batch });
          if (batch.length === 0) break;
          fetched.push(...batch);
        }
      }),
    );
    if (fetched.length !== args.jobs) throw new Error(`pg-boss: fetched ${fetched.length} of ${args.jobs}`);
    phases.push(
      await meter.measure('complete', args.jobs, async () => {
        for (let start = 0; start < fetched.length; start += args.batch) {
          const batch = fetched.slice(start, start + args.batch);
          // One output per call is what complete() stores; the sum of the first job stands for all.
          const sum = addDecimals(batch[0]!.data.num1, batch[0]!.data.num2);
          await boss.complete(QUEUE, batch.map((job) => job.id), { sum });
        }
      }),
    );
    return { phases };
  } finally {
    await meter?.close();
    if (started) await boss.stop({ graceful: false, timeout: 1_000 }).catch(() => undefined);
    await fresh.drop();
  }
}

/**
 * The SQL floor: our table, filled through the service's insert, then drained by pgbench with no
 * Node at all. Each transaction claims up to `batch` due jobs with SKIP LOCKED (the claim's own
 * index and order) and completes them in a second statement; two clients, no NOTIFY.
 */
export async function costFloor(args: CostArgs & { clients: number }): Promise<CostTrial> {
  const ours = await openOurs('cost_floor', { maxBatchSize: args.batch, poolSize: 2 });
  const { fresh, db, service } = ours;
  const dir = mkdtempSync(join(tmpdir(), 'cost-floor-'));
  let meter: CostMeter | undefined;
  try {
    for (const chunk of chunks(args.jobs, args.batch)) await service.addJobs(chunk.map(input), { owner: '' });
    await settle(fresh.url);
    // The claim's own condition, which its partial index names: queue_state since the cheaper_job
    // migration, the status before it (so the floor runs on either version of the schema).
    const [derived] = await db.query<{ has: boolean; hashed: boolean }>({
      name: 'cost_floor_schema',
      text: `SELECT EXISTS (SELECT FROM information_schema.columns WHERE table_name = 'job' AND column_name = 'queue_state') AS has,
                    EXISTS (SELECT FROM information_schema.columns WHERE table_name = 'job' AND column_name = 'owner_hash') AS hashed`,
    });
    // The jobs are all the anonymous owner's: naming it lets the claim index that leads with the
    // owner (since the fair_share_claim migration; its hash since the owner_hash one) give the
    // claim order, and costs the older one only a filter.
    const owner = derived!.hashed ? `owner_hash = hashtext('') AND owner = ''` : `owner = ''`;
    const pending = `${owner} AND ${derived!.has ? 'queue_state = 1' : `status = 'pending'`}`;
    const script = join(dir, 'drain.sql');
    writeFileSync(
      script,
      `WITH due AS (
  SELECT id FROM job WHERE ${pending} AND run_at <= now()
  ORDER BY priority DESC, run_at, id LIMIT ${args.batch} FOR UPDATE SKIP LOCKED
), claimed AS (
  UPDATE job SET status = 'wip', attempt = attempt + 1, locked_by = 'pgbench', last_updated = now(), version = version + 1
  WHERE id = ANY (ARRAY(SELECT id FROM due)) RETURNING id, input
) SELECT coalesce(array_agg(id), '{}')::text AS ids FROM claimed
\\gset
UPDATE job SET status = 'completed', result = '"0"', completed_on = now(), last_updated = now(), locked_by = NULL, version = version + 1
WHERE id = ANY (:ids::uuid[]) AND status = 'wip';
`,
    );
    const transactions = Math.ceil(args.jobs / args.batch / args.clients);
    meter = await CostMeter.open(fresh.url, fresh.name);
    let output = '';
    const phase = await meter.measure('drain by pgbench (claim + complete)', args.jobs, async () => {
      output = await pgbench(fresh.url, ['-n', '-M', 'prepared', '-f', script, '-c', String(args.clients), '-j', String(args.clients), '-t', String(transactions)]);
    }, { backendsExit: true });
    const done = await db.query<{ n: number }>({ name: 'cost_floor_done', text: `SELECT count(*)::int AS n FROM job WHERE status = 'completed'` });
    if (done[0]!.n !== args.jobs) throw new Error(`floor: ${done[0]!.n} of ${args.jobs} completed\n${output}`);
    return { phases: [phase], jobsPerSecond: Math.round((args.jobs / phase.ms) * 1000) };
  } finally {
    await meter?.close();
    await ours.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function pgbench(url: string, options: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.env.PGBENCH ?? 'pgbench', [...options, url], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(output) : reject(new Error(`pgbench exited with ${code}:\n${output}`))));
  });
}
