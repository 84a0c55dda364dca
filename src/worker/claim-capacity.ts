import type { Executor } from './executor.ts';

/**
 * How much work, at the handlers' observed speed, the local queue may hold. A queued job is
 * claimed but not started: another worker that falls idle cannot take it, and a more urgent job
 * that arrives meanwhile starts after it. Bounding the queue by time rather than by count keeps
 * that wait this short whatever the job type: `add` (microseconds) fills the whole `prefetch`,
 * a one-second job queues a few jobs at most.
 */
const PREFETCH_HORIZON_MS = 100;

export interface ClaimCapacityOptions {
  executor: Pick<Executor, 'queuedJobs' | 'runningHandlers' | 'heldJobs' | 'handlerMs'>;
  concurrency: number;
  prefetch: number;
}

/**
 * How many jobs the next claim may take; 0 while the local queue is still deep enough.
 *
 * Capacity is the slots plus the local queue's depth. The queue is refilled in bulk, once it is
 * down to half its depth, so a drain costs one claim per few hundred jobs rather than one per
 * freed slot. A job whose handler has returned gives its place back while its outcome is being
 * written, so the next claim overlaps that write instead of waiting for it; up to a capacity's
 * worth of jobs may wait for their write, and beyond that a slow database holds claims back.
 */
export function claimableJobs(options: ClaimCapacityOptions): number {
  const { executor, concurrency } = options;
  const depth = queueDepth(options);
  const queued = executor.queuedJobs;
  if (queued > 0 && queued >= depth / 2) return 0;
  const capacity = concurrency + depth;
  return Math.min(capacity - executor.runningHandlers - queued, 2 * capacity - executor.heldJobs);
}

/** Jobs to queue beyond the slots: `PREFETCH_HORIZON_MS` of work for all slots, up to `prefetch`. */
function queueDepth({ prefetch, concurrency, executor }: ClaimCapacityOptions): number {
  const handlerMs = executor.handlerMs;
  // Before any handler has returned there is nothing to go by, so the first claim fills the slots only.
  if (prefetch === 0 || handlerMs === undefined) return 0;
  const perSlot = PREFETCH_HORIZON_MS / Math.max(handlerMs, 0.001);
  return Math.min(prefetch, Math.floor(concurrency * perSlot));
}
