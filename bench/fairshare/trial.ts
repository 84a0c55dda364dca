import { setTimeout as sleep } from 'node:timers/promises';
import { workerFromConfig } from '../../src/runtime.ts';
import { withDeadline } from '../drain/common.ts';
import { settle } from '../lib/pg.ts';
import { openOurs } from '../lib/ours.ts';

export interface FairShareArgs {
  /** Key A's backlog, queued before the worker starts. */
  backlog: number;
  /** Key B's jobs, submitted one at a time while A's backlog drains. */
  samples: number;
}

export interface FairShareTrial {
  /** Each of B's jobs: its submission (the service's insert, as the API calls it) to its completion heard. */
  latenciesMs: number[];
  /** A's jobs still pending when each of B's jobs completed. */
  backlogLeft: number[];
  /** Worker start → A's backlog drained, ms. */
  drainMs: number;
}

const A = { owner: 'bench-key-a' };
const B = { owner: 'bench-key-b' };
/** The service's largest request: A queues its backlog in requests of this many, as a bulk client would. */
const BATCH = 5_000;

/**
 * Fair share between API keys (README, "Fair share"): key A queues `backlog` `add` jobs, a worker
 * at its defaults starts draining them, and key B submits `samples` jobs, one at a time, each
 * once the previous one completed and after a pause. Each of B's jobs is timed from its
 * submission to the NOTIFY of its completion; the worker then drains the rest of A's backlog.
 */
export async function runFairShare(args: FairShareArgs): Promise<FairShareTrial> {
  const ours = await openOurs('fairshare', { maxBatchSize: BATCH });
  const { config, logger, fresh, db, hub, kinds, service } = ours;
  const worker = workerFromConfig(config, { db, hub, logger, kinds });
  try {
    for (let queued = 0; queued < args.backlog; queued += BATCH) {
      const count = Math.min(BATCH, args.backlog - queued);
      await service.addJobs(Array.from({ length: count }, (_, i) => ({ num1: String(queued + i), num2: '1' })), A);
    }
    await settle(fresh.url);
    // While one of B's jobs is in flight, every completion heard is noted with its time: the
    // NOTIFY of B's job may arrive before its insert has answered with the job's id.
    let heard: Map<string, number> | undefined;
    let waiting: { id: string; resolve: (at: number) => void } | undefined;
    let aCompleted = 0;
    let resolveDrained!: () => void;
    const aDrained = new Promise<void>((resolve) => {
      resolveDrained = resolve;
    });
    hub.onEvents((events) => {
      const at = performance.now();
      for (const event of events) {
        if (event.status !== 'completed') continue;
        if (waiting?.id === event.id) waiting.resolve(at);
        else if (heard) heard.set(event.id, at);
        else aCompleted += 1;
      }
      if (aCompleted >= args.backlog) resolveDrained();
    });
    await hub.start();
    const started = performance.now();
    await worker.start();
    const latenciesMs: number[] = [];
    const backlogLeft: number[] = [];
    for (let sample = 0; sample < args.samples; sample += 1) {
      // A's drain under way, and a pause between B's jobs.
      await sleep(100);
      heard = new Map();
      const submitted = performance.now();
      const { job } = await service.submitJob({ kind: 'add', input: { num1: '1', num2: '1' } }, B);
      const completedAt = heard.get(job.id) ?? (await withDeadline(new Promise<number>((resolve) => {
        waiting = { id: job.id, resolve };
      }), 30_000, 'fairshare: key B job'));
      latenciesMs.push(Math.round(completedAt - submitted));
      // A's jobs completed meanwhile still count toward its drain.
      aCompleted += [...heard.keys()].filter((id) => id !== job.id).length;
      if (aCompleted >= args.backlog) resolveDrained();
      heard = undefined;
      waiting = undefined;
      const [left] = await db.query<{ pending: number }>(
        { name: 'bench_fairshare_left', text: `SELECT count(*)::int AS pending FROM job WHERE owner = $1 AND status = 'pending'` },
        [A.owner],
      );
      backlogLeft.push(left!.pending);
    }
    await withDeadline(aDrained, 600_000, 'fairshare: key A backlog');
    return { latenciesMs, backlogLeft, drainMs: Math.round(performance.now() - started) };
  } finally {
    await worker.stop();
    await ours.close();
  }
}
