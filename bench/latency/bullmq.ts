import type { IQueueBackend } from 'bullmq';
import { addDecimals } from '../../src/jobs/decimal.ts';
import { type BullmqBackend, type BullmqSetup, withBullmq } from '../lib/bullmq.ts';
import type { LatencySamples } from './ours.ts';

export interface BullmqLatencyArgs {
  jobs: number;
  warmup: number;
  backend: BullmqBackend;
  /** As in the drain benchmark. */
  concurrency: number;
  poolSize?: number;
}

type Input = { num1: string; num2: string };

/**
 * BullMQ in this process, as in the drain benchmark and idle (blocked on Redis, LISTENing on
 * PostgreSQL) when each job is added: `Queue.add` sent → the Worker's `completed` event for it,
 * which fires once the result is stored. No HTTP, no WebSocket; the same shape as
 * graphile-worker's row.
 */
export async function latencyBullmq(args: BullmqLatencyArgs): Promise<LatencySamples> {
  return withBullmq(args.backend, 'latency_bullmq', args.poolSize, (setup) => measure(setup, args));
}

async function measure<B extends IQueueBackend, C>(
  { classes, queueOptions, workerOptions }: BullmqSetup<B, C>,
  args: BullmqLatencyArgs,
): Promise<LatencySamples> {
  const queue = new classes.Queue<Input, string>('add', queueOptions);
  const worker = new classes.Worker<Input, string>('add', async (job) => addDecimals(job.data.num1, job.data.num2), {
    ...workerOptions,
    concurrency: args.concurrency,
  });
  const completedAt = new Map<string, number>();
  let waiting: { id: string; resolve: () => void } | undefined;
  let failure: Error | undefined;
  worker.on('completed', (job) => {
    completedAt.set(job.id!, performance.now());
    if (waiting && waiting.id === job.id) waiting.resolve();
  });
  worker.on('failed', (job, error) => {
    failure ??= new Error(`bullmq: job ${job?.id} failed: ${error.message}`);
    waiting?.resolve();
  });
  worker.on('error', (error) => {
    failure ??= error;
    waiting?.resolve();
  });
  try {
    await queue.waitUntilReady();
    await worker.waitUntilReady();
    // Let the worker reach its idle, blocked state before the first job.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const samples: LatencySamples = { total: [], add: [], completedAtSubscribe: 0 };
    for (let n = 0; n < args.warmup + args.jobs; n += 1) {
      const t0 = performance.now();
      const job = await queue.add('add', { num1: '1', num2: '2' });
      const added = performance.now();
      if (!completedAt.has(job.id!) && !failure) {
        await new Promise<void>((resolve) => {
          waiting = { id: job.id!, resolve };
        });
      }
      if (failure) throw failure;
      if (n >= args.warmup) {
        samples.total.push(completedAt.get(job.id!)! - t0);
        samples.add.push(added - t0);
      }
      completedAt.delete(job.id!);
    }
    return samples;
  } finally {
    await worker.close().catch(() => undefined);
    await queue.close().catch(() => undefined);
  }
}
