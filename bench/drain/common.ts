import type { CpuReport } from '../lib/cpu.ts';

/** What every drain trial is given and what it reports, whatever the system. */
export interface DrainArgs {
  /** Jobs enqueued before the worker starts. */
  jobs: number;
  /** Jobs per enqueue call. */
  enqueueBatch: number;
  /** Give up after this long; a hang must not eat the whole run. */
  deadlineMs: number;
}

export interface DrainTrial {
  /** Time to enqueue all jobs (not part of the throughput figure). */
  enqueueMs: number;
  /** Worker start → every job completed with its result stored (confirmed in SQL). */
  drainMs: number;
  jobsPerSecond: number;
  /** What the trial checked after the drain, e.g. `20000 completed, 20000 results correct`. */
  verified: string;
  /** Who used the CPU while the drain was timed; null off Linux. */
  cpu: CpuReport | null;
}

/**
 * Inputs whose sums are known without any decimal library: i.25 + (2i).5 = (3i).75. Every
 * system stores or checks against this, so a wrong or missing result fails the trial.
 */
export function input(i: number): { i: number; num1: string; num2: string } {
  return { i, num1: `${i}.25`, num2: `${2 * i}.5` };
}

export function expectedSum(i: number): string {
  return `${3 * i}.75`;
}

export function chunks(total: number, size: number): number[][] {
  const out: number[][] = [];
  for (let start = 0; start < total; start += size) {
    out.push(Array.from({ length: Math.min(size, total - start) }, (_, k) => start + k));
  }
  return out;
}

export function trial(
  jobs: number,
  enqueueMs: number,
  startedAt: number,
  doneAt: number,
  verified: string,
  cpu: CpuReport | null,
): DrainTrial {
  const drainMs = doneAt - startedAt;
  return {
    enqueueMs: Math.round(enqueueMs),
    drainMs: Math.round(drainMs),
    jobsPerSecond: Math.round((jobs / drainMs) * 1000),
    verified,
    cpu,
  };
}

/** A promise with its resolver, for "the trigger fired". */
export function signal<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: not done after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
