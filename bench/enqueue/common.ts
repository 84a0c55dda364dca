import type { CpuReport } from '../lib/cpu.ts';
import { percentile } from '../lib/service.ts';

/** What every enqueue trial is given, whatever the system. */
export interface EnqueueArgs {
  /** Async callers in the one process, each with one call in flight at a time. */
  callers: number;
  /** Jobs per call: 1 (one add at a time) or a bulk call's size. */
  batch: number;
  seconds: number;
  warmupSeconds: number;
}

export interface EnqueueTrial {
  /** Jobs whose call returned inside the timed window, per second of it. */
  jobsPerSecond: number;
  /** Per call (one job, or one bulk call), for calls started inside the timed window. */
  callP50Ms: number;
  callP99Ms: number;
  /** Jobs whose call returned: warm-up, timed window and the calls in flight at its end. */
  added: number;
  /** Jobs found in the store afterwards; anything but `added` is a loss (or a duplicate). */
  stored: number;
  /** Over the warm-up, the timed window and the tail; the store is PostgreSQL's backends of the trial's database, or redis-server. */
  cpu: CpuReport | null;
  /** What the store promises of an added job where the machine's header does not say it, e.g. Redis's persistence. */
  durability?: string;
}

/** One input for every job of every system, as the HTTP ingest sends it. */
export const INPUT = { num1: '1', num2: '2' };

/**
 * Runs `call` from `args.callers` async callers at once, each awaiting its call before the next:
 * `args.warmupSeconds` not counted, then `args.seconds` timed. A call that fails ends the trial:
 * a refused add is a defect of the setup, not a figure. `watch` starts the CPU meter (the warm-up
 * is metered too, as the HTTP ingest meters it); `count` reads the store once every call is back.
 */
export async function drive(
  call: () => Promise<unknown>,
  args: EnqueueArgs,
  watch: () => () => CpuReport | null,
  count: () => Promise<number>,
): Promise<EnqueueTrial> {
  const latencies: number[] = [];
  let calls = 0;
  let timedCalls = 0;
  const stopWatch = watch();
  const startedAt = performance.now();
  const timedFrom = startedAt + args.warmupSeconds * 1000;
  const until = timedFrom + args.seconds * 1000;
  const caller = async () => {
    for (;;) {
      const sent = performance.now();
      if (sent >= until) return;
      await call();
      const answered = performance.now();
      calls += 1;
      if (sent >= timedFrom) latencies.push(answered - sent);
      if (answered >= timedFrom && answered < until) timedCalls += 1;
    }
  };
  await Promise.all(Array.from({ length: args.callers }, caller));
  const cpu = stopWatch();
  latencies.sort((a, b) => a - b);
  return {
    jobsPerSecond: Math.round((timedCalls * args.batch) / args.seconds),
    callP50Ms: round(percentile(latencies, 50)),
    callP99Ms: round(percentile(latencies, 99)),
    added: calls * args.batch,
    stored: await count(),
    cpu,
  };
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
