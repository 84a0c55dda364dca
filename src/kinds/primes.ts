/** Counts the primes below a number: CPU-bound work, so it runs in the worker-thread pool. */
import { z } from 'zod';
import { siblingModule } from '../sibling-module.ts';
import { defineKind } from './define.ts';

export const PRIMES_MAX_BELOW = 50_000_000;

export function primesKind() {
  return defineKind({
    name: 'primes',
    description:
      `Counts the prime numbers below a number (at most ${PRIMES_MAX_BELOW}), in a worker thread; ` +
      'tens of millions take seconds.',
    input: z.object({
      below: z.int().min(2).max(PRIMES_MAX_BELOW).describe('Primes smaller than this are counted.'),
    }),
    result: z.object({ count: z.int().nonnegative().describe('How many primes are below `below`.') }),
    progress: z.object({
      percent: z.int().min(0).max(100).describe('Numbers checked, in whole percent of `below`, rounded down.'),
      checked: z.int().nonnegative().describe('Numbers below this one have been checked.'),
    }),
    handler: { module: siblingModule('primes.thread', import.meta.url) },
  });
}
