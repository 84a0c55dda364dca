import { z } from 'zod';
import { defineKind } from '../../src/kinds/define.ts';
import { workerFromConfig } from '../../src/runtime.ts';
import { withDeadline } from '../drain/common.ts';
import { heardCompleted, openOurs } from '../lib/ours.ts';
import { settle } from '../lib/pg.ts';

export interface WorkflowArgs {
  /** Steps of the fan-out between the root and the fan-in; the workflow has two more. */
  width: number;
  /** Steps of the chain, each waiting for the one before. */
  chain: number;
}

export interface WorkflowTrial {
  /** Submission (one request) → the fan-in step completed. */
  fanMs: number;
  /** The chain's first step claimed → its last completed, per hop. */
  chainMsPerHop: number;
  /** Parent's completed_on → child's first claim, from the database's clock (median, p99), in the chain. */
  handOverMedianMs: number;
  handOverP99Ms: number;
  verified: string;
}

const noop = defineKind({
  name: 'noop',
  input: z.object({}),
  result: z.object({}),
  handler: () => ({}),
});

/**
 * One workflow of `width` + 2 steps (a root, a fan-out of `width`, a fan-in on all of them), then
 * a chain of `chain` steps, each run by one worker at the service's defaults. The hand-over is
 * measured on the chain, where each step waits for exactly one parent: a trigger of the trial's
 * own records when each step was claimed (the row keeps no claim time once completed).
 */
export async function runWorkflow(args: WorkflowArgs): Promise<WorkflowTrial> {
  const ours = await openOurs('workflow', { extraKinds: [noop], maxBatchSize: args.width + 2 });
  const { config, logger, fresh, db, hub, kinds, service } = ours;
  const worker = workerFromConfig(config, { db, hub, logger, kinds });
  const owner = { owner: '' };
  try {
    await settle(fresh.url);
    await hub.start();
    await worker.start();

    const mids = Array.from({ length: args.width }, (_, i) => `m${i}`);
    const fanDone = heardCompleted(hub, args.width + 2);
    const fanStarted = performance.now();
    const fan = await service.workflows.submit(
      {
        steps: [
          { name: 'root', kind: 'noop', input: {} },
          ...mids.map((name) => ({ name, kind: 'noop', input: {}, dependsOn: ['root'] })),
          { name: 'final', kind: 'noop', input: {}, dependsOn: mids },
        ],
      },
      owner,
    );
    await withDeadline(fanDone, 300_000, 'workflow fan');
    const fanMs = performance.now() - fanStarted;
    await finished(service, fan.id);

    // Only for the chain: the trigger would slow the fan's claims down.
    await db.transaction(async (tx) => {
      await tx.exec(`
        CREATE TABLE bench_claimed (job_id uuid PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp());
        CREATE FUNCTION bench_record_claim() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          INSERT INTO bench_claimed (job_id) VALUES (NEW.id) ON CONFLICT DO NOTHING;
          RETURN NULL;
        END $$;
        CREATE TRIGGER bench_record_claim AFTER UPDATE OF status ON job
          FOR EACH ROW WHEN (NEW.status = 'wip') EXECUTE FUNCTION bench_record_claim();`);
    });
    const chainDone = heardCompleted(hub, args.chain);
    const chain = await service.workflows.submit(
      { steps: Array.from({ length: args.chain }, (_, i) => ({ name: `c${i}`, kind: 'noop', input: {}, dependsOn: i === 0 ? [] : [`c${i - 1}`] })) },
      owner,
    );
    await withDeadline(chainDone, 300_000, 'workflow chain');
    const done = await finished(service, chain.id);
    const ids = done.steps.map((step) => step.job.id);
    const rows = await db.query<{ id: string; claimed: number; completed: number }>(
      {
        name: 'bench_workflow_chain',
        text: `SELECT job.id, extract(epoch FROM c.at) * 1000 AS claimed, extract(epoch FROM job.completed_on) * 1000 AS completed
               FROM job JOIN bench_claimed c ON c.job_id = job.id WHERE job.id = ANY ($1::uuid[])`,
      },
      [ids],
    );
    const byId = new Map(rows.map((row) => [row.id, row]));
    const handOvers = ids.slice(1).map((id, i) => Number(byId.get(id)!.claimed) - Number(byId.get(ids[i]!)!.completed)).sort((a, b) => a - b);
    const first = byId.get(ids[0]!)!;
    const last = byId.get(ids.at(-1)!)!;
    const unclaimed = args.chain - rows.length;
    return {
      fanMs: Math.round(fanMs),
      chainMsPerHop: Math.round(((Number(last.completed) - Number(first.claimed)) / args.chain) * 100) / 100,
      handOverMedianMs: Math.round(handOvers[Math.floor(handOvers.length / 2)]! * 100) / 100,
      handOverP99Ms: Math.round(handOvers[Math.floor(handOvers.length * 0.99)]! * 100) / 100,
      verified: `${args.width + 2} + ${args.chain} steps completed${unclaimed === 0 ? '' : `, ${unclaimed} chain steps without a claim time`}`,
    };
  } finally {
    await worker.stop();
    await ours.close();
  }
}

/** Polls the workflow until every step completed; throws when one did not. */
async function finished(service: Awaited<ReturnType<typeof openOurs>>['service'], id: string) {
  for (;;) {
    const workflow = (await service.workflows.get(id, { owner: '' }))!;
    const open = workflow.steps.filter((step) => step.job.status !== 'completed');
    if (open.length === 0) return workflow;
    const bad = open.find((step) => step.job.status === 'failed' || step.job.status === 'cancelled');
    if (bad) throw new Error(`workflow: step ${bad.name} is ${bad.job.status}: ${bad.job.lastError}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
