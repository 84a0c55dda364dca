import { runIsolated } from './lib/isolate.ts';
import { waitForQuiet } from './lib/quiet.ts';
import { type BenchContext, type BenchResult, median } from './lib/types.ts';
import type { ProgressArgs, ProgressTrial } from './progress/trial.ts';

const JOBS = 1_000;
const STEPS = 200;
const STEP_MS = 10;

/**
 * What live progress costs: 1,000 jobs run at once for 2 s each, reporting progress every 10 ms,
 * against the same jobs reporting nothing, in turns. The difference in statements and CPU is
 * what the reports cost; PROGRESS_MIN_INTERVAL_MS (250 ms) coalesces them per job.
 */
export async function progressBenchmark(context: BenchContext): Promise<BenchResult> {
  const base = { jobs: context.sizes.jobs ?? JOBS, steps: STEPS, stepMs: STEP_MS };
  const module = new URL('./progress/trial.ts', import.meta.url).href;
  const trials: Record<'reporting' | 'silent', ProgressTrial[]> = { reporting: [], silent: [] };
  for (let round = 1; round <= context.runs; round += 1) {
    for (const report of [true, false]) {
      await waitForQuiet(15, 10_000);
      const args: ProgressArgs = { ...base, report };
      const trial = await runIsolated<ProgressTrial>(module, 'runProgress', args, { execArgv: context.execArgv, timeoutMs: 120_000 });
      trials[report ? 'reporting' : 'silent'].push(trial);
      context.log(
        `progress ${report ? 'reporting' : 'silent'} #${round}: ${trial.ms} ms, ${trial.statements} statements ` +
          `(${trial.statementsPerSecond}/s), CPU: Node ${trial.nodeCpuMs} ms, PostgreSQL ${trial.postgresCpuMs} ms, others ${trial.othersPercent}%; ${trial.verified}`,
      );
    }
  }
  const row = (name: 'reporting' | 'silent') => {
    const list = trials[name];
    const m = (pick: (trial: ProgressTrial) => number) => Math.round(median(list.map(pick)));
    return [name, String(m((t) => t.ms)), String(m((t) => t.statements)), String(m((t) => t.statementsPerSecond)), String(m((t) => t.nodeCpuMs)), String(m((t) => t.postgresCpuMs))];
  };
  const reports = (base.jobs * base.steps).toLocaleString('en');
  return {
    name: 'progress',
    measures: `${base.jobs} jobs running at once for ${(base.steps * base.stepMs) / 1000} s, reporting progress every ${base.stepMs} ms (${reports} reports) or not at all; medians of ${context.runs}`,
    columns: ['jobs', 'worker start → all completed (ms)', 'statements', 'statements/s', 'service CPU (ms)', 'PostgreSQL CPU (ms)'],
    rows: [row('reporting'), row('silent')],
    notes: [
      'one process: the service\'s worker and event hub, at its defaults but WORKER_CONCURRENCY=1000; PROGRESS_MIN_INTERVAL_MS=250',
      'statements: xact_commit + xact_rollback of the trial database from pg_stat_database (each autocommit statement is one transaction), read from the admin database',
      'CPU: the Node process and the trial database\'s PostgreSQL backends, while the jobs ran',
      'verified: every job completed; with reports, every job stores its last value (100 %), the one written before the outcome',
    ],
    data: { args: base, trials },
  };
}
