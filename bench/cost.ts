import { createHash } from 'node:crypto';
import { runIsolated } from './lib/isolate.ts';
import { waitForQuiet } from './lib/quiet.ts';
import { type BenchContext, type BenchResult, median } from './lib/types.ts';
import type { CostArgs, CostTrial } from './cost/systems.ts';
import type { PhaseCost } from './cost/meter.ts';

const JOBS = 20_000;
const BATCH = 500;

interface System {
  name: string;
  run: string;
  args: Record<string, unknown>;
}

/** The owner of ours-keyed's jobs: an API key's digest, as the service stores it. */
const KEYED_OWNER = createHash('sha256').update('cost-benchmark-key').digest('hex');

const SYSTEMS: System[] = [
  { name: 'ours', run: 'costOurs', args: {} },
  // Off unless named (`--systems ours-keyed`): what an API key's owner adds to the same job.
  { name: 'ours-keyed', run: 'costOurs', args: { owner: KEYED_OWNER } },
  { name: 'sql-floor', run: 'costFloor', args: { clients: 2 } },
  { name: 'graphile-batched', run: 'costGraphile', args: {} },
  { name: 'pg-boss', run: 'costPgBoss', args: {} },
];

/** The figures of the table, each the median over the trials of one system and phase. */
const FIGURES: Array<[title: string, pick: (cost: PhaseCost) => number | null, digits: number]> = [
  ['PG CPU µs/job', (cost) => cost.postgresCpuUsPerJob, 1],
  ['WAL B/job', (cost) => cost.walBytesPerJob, 0],
  ['FPI B/job', (cost) => cost.fpiBytesPerJob, 0],
  ['heap records/job', (cost) => cost.heapRecordsPerJob, 2],
  ['row locks/job', (cost) => cost.lockRecordsPerJob, 2],
  ['index inserts/job', (cost) => cost.indexInsertsPerJob, 2],
  ['HOT %', (cost) => cost.hotUpdatePercent, 0],
  ['dead tuples/job', (cost) => cost.deadTuplesPerJob, 2],
  ['buffers/job', (cost) => cost.buffersPerJob, 1],
  ['jobs/s', (cost) => (cost.jobs / cost.ms) * 1000, 0],
];

/**
 * What one job costs PostgreSQL, transition by transition, for us, graphile-worker and pg-boss,
 * and for the SQL floor (our claim and completion run by pgbench, no Node). Each trial runs in a
 * fresh process on a fresh database, after a CHECKPOINT; systems take turns.
 */
export async function costBenchmark(context: BenchContext): Promise<BenchResult> {
  const chosen = SYSTEMS.filter((system) =>
    context.systems.length === 0 ? system.name !== 'ours-keyed' : context.systems.includes(system.name),
  );
  const args: CostArgs = { jobs: context.sizes.jobs ?? JOBS, batch: BATCH };
  const module = new URL('./cost/systems.ts', import.meta.url).href;
  const trials = new Map<string, CostTrial[]>(chosen.map((system) => [system.name, []]));
  for (let round = 1; round <= context.runs; round += 1) {
    for (const system of chosen) {
      await waitForQuiet(15, 10_000);
      const trial = await runIsolated<CostTrial>(module, system.run, { ...args, ...system.args }, {
        execArgv: context.execArgv,
        // Five minutes per 20,000 jobs: at 100,000 a fixed five minutes cut the trial short.
        timeoutMs: Math.max(300_000, args.jobs * 15),
      });
      trials.get(system.name)!.push(trial);
      for (const phase of trial.phases) {
        context.log(
          `cost ${system.name} #${round} ${phase.phase}: ${phase.postgresCpuUsPerJob.toFixed(1)} µs CPU, ` +
            `${Math.round(phase.walBytesPerJob)} B WAL, ${phase.indexInsertsPerJob.toFixed(2)} index inserts per job, ${phase.ms} ms`,
        );
      }
    }
  }

  const rows: string[][] = [];
  for (const system of chosen) {
    const runs = trials.get(system.name)!;
    for (const [index, phase] of runs[0]!.phases.entries()) {
      const costs = runs.map((run) => run.phases[index]!);
      rows.push([
        system.name,
        phase.phase,
        ...FIGURES.map(([, pick, digits]) => {
          const values = costs.map(pick).filter((value): value is number => value !== null);
          return values.length === 0 ? '-' : median(values).toFixed(digits);
        }),
      ]);
    }
  }
  return {
    name: 'cost',
    measures: `what one job costs PostgreSQL per transition, ${args.jobs} add jobs, batches of ${args.batch} (medians of ${context.runs})`,
    columns: ['system', 'phase', ...FIGURES.map(([title]) => title)],
    rows,
    notes: [
      'PG CPU: utime + stime of the trial database\'s backends (/proc, 10 ms ticks), not the server\'s shared background processes',
      'WAL: pg_walinspect, the records that touch this database\'s relations plus their transactions\' commit records, without full-page images; FPI: those images, which depend on when the last checkpoint ran (a CHECKPOINT precedes each trial and the worker drain; the server\'s own may fall anywhere)',
      'index inserts: B-tree INSERT_LEAF, INSERT_POST, SPLIT_L and SPLIT_R records; HOT %: n_tup_hot_upd / n_tup_upd; dead tuples: n_dead_tup (autovacuum is off on this server)',
      'ours: insert through the job service; claim and complete through the worker\'s statements in batches of 500; retrieve one job per call, 8 customers at once; "worker drain" is the worker itself on a second set of jobs',
      'ours-keyed (when named): ours with every job an API key\'s (the owner a 64-character SHA-256 digest), as a service with API_KEYS stores them',
      'sql-floor: the same table filled by our insert, drained by pgbench (2 clients, -M prepared): claim up to 500 with SKIP LOCKED, then complete them; no NOTIFY, no Node',
      'graphile-batched: addJobs in batches of 500, then the runner (concurrency 24, localQueue 500, batched completions); a completed job is deleted',
      'pg-boss: insert, fetch (batchSize 500) and complete (500 ids per call) through its public API',
    ],
    data: { args, systems: chosen.map((system) => ({ name: system.name, trials: trials.get(system.name) })) },
  };
}
