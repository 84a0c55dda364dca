import { setTimeout } from 'node:timers/promises';
import { addDecimals } from './decimal.ts';

export interface JobInput {
  num1: string;
  num2: string;
}

export interface JobContext {
  attempt: number;
  maxAttempts: number;
  /** Fires when the worker gives the job up: at shutdown, or when it lost the job to the stale rule. */
  signal: AbortSignal;
}

/** Computes a job's result. A thrown error fails the attempt; the worker decides on a retry. */
export type JobHandler = (input: JobInput, context: JobContext) => string | Promise<string>;

export type JobHandlers = ReadonlyMap<string, JobHandler>;

/** Thrown by a handler when retrying cannot help: the job fails at once. */
export class PermanentJobError extends Error {
  override name = 'PermanentJobError';
}

/**
 * Adds two exact decimals. `delayMs` simulates slow work, for demos and for the crash test, which
 * needs jobs in flight when it kills a worker; the delay ends early when the job is given up.
 */
export function addHandler(delayMs = 0): JobHandler {
  return async (input, context) => {
    // The signal is made when first read: an AbortController per job was 8 % of a drain's CPU
    // (BENCHMARKS.md, "No AbortController per job"), so a handler that never waits leaves it unmade.
    if (delayMs > 0) await setTimeout(delayMs, undefined, { signal: context.signal });
    return addDecimals(input.num1, input.num2);
  };
}

/** The handlers a worker runs: `add`, and any others the caller plugs in. */
export function createHandlers(extra: Record<string, JobHandler> = {}, options: { addDelayMs?: number } = {}): JobHandlers {
  return new Map<string, JobHandler>([['add', addHandler(options.addDelayMs)], ...Object.entries(extra)]);
}
