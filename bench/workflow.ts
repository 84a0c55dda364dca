import { runIsolated } from './lib/isolate.ts';
import { waitForQuiet } from './lib/quiet.ts';
import { type BenchContext, type BenchResult, median } from './lib/types.ts';
import type { WorkflowArgs, WorkflowTrial } from './workflow/trial.ts';

/**
 * Workflows (issue 26): a workflow of 10,000 steps (a root, a fan-out of 9,998, a fan-in on all
 * of them) from submission to the last step, and the hand-over from a parent's completion to its
 * child's claim along a chain of 500 steps. Not yet run by its author (helpers run no benchmarks).
 */
export async function workflowBenchmark(context: BenchContext): Promise<BenchResult> {
  const args: WorkflowArgs = { width: (context.sizes.jobs ?? 10_000) - 2, chain: 500 };
  const module = new URL('./workflow/trial.ts', import.meta.url).href;
  const trials: WorkflowTrial[] = [];
  for (let round = 1; round <= context.runs; round += 1) {
    await waitForQuiet(15, 10_000);
    const trial = await runIsolated<WorkflowTrial>(module, 'runWorkflow', args, { execArgv: context.execArgv, timeoutMs: 600_000 });
    trials.push(trial);
    context.log(`workflow #${round}: fan ${trial.fanMs} ms, chain ${trial.chainMsPerHop} ms/hop, hand-over ${trial.handOverMedianMs} ms (p99 ${trial.handOverP99Ms}); ${trial.verified}`);
  }
  const m = (pick: (trial: WorkflowTrial) => number) => String(median(trials.map(pick)));
  return {
    name: 'workflow',
    measures: `a workflow of ${args.width + 2} steps (fan-out, fan-in) from submission to its last step; a chain of ${args.chain}; medians of ${context.runs}`,
    columns: ['submission → fan-in completed (ms)', 'chain (ms per hop)', 'hand-over median (ms)', 'hand-over p99 (ms)'],
    rows: [[m((t) => t.fanMs), m((t) => t.chainMsPerHop), m((t) => t.handOverMedianMs), m((t) => t.handOverP99Ms)]],
    notes: [
      "one process: the service's worker and event hub at its defaults; a kind whose handler returns at once",
      "hand-over: a parent's completed_on to its child's claim, both from the database's clock (a trigger of the trial's own records the claim)",
    ],
    data: { args, trials },
  };
}
