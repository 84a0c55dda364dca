/**
 * Hashes a text over and over: long work on the event loop that shares it. It works in slices of
 * about SLICE_MS and yields between them, so heartbeats, API answers and other jobs run in
 * between, and a cancel or shutdown stops it within a slice.
 */
import { createHash } from 'node:crypto';
import { setImmediate } from 'node:timers/promises';
import { z } from 'zod';
import { defineKind } from './define.ts';

const SLICE_MS = 10;
/** Rounds between two looks at the clock: a round takes about a microsecond. */
const ROUNDS_PER_CHECK = 256;

export function digestKind() {
  return defineKind({
    name: 'digest',
    description:
      'SHA-256 of a text, then of that digest, and so on, `rounds` times in all; hex of the last. ' +
      'Millions of rounds take seconds.',
    input: z.object({
      text: z.string().max(10_000).describe('The text hashed in the first round, as UTF-8.'),
      rounds: z
        .int()
        .min(1)
        .max(10_000_000)
        .describe('How many times to hash; each round after the first hashes the 32 bytes of the one before.'),
    }),
    result: z.object({ hex: z.string().regex(/^[0-9a-f]{64}$/).describe('The last SHA-256 digest, in lowercase hex.') }),
    progress: z.object({
      percent: z.int().min(0).max(100).describe('Rounds done, in whole percent of `rounds`, rounded down.'),
      rounds: z.int().nonnegative().describe('Rounds done so far.'),
    }),
    handler: ({ text, rounds }, context) =>
      repeatedDigest(text, rounds, context.signal, (done) => context.progress({ percent: Math.floor((done * 100) / rounds), rounds: done })),
  });
}

/**
 * The digest of `text` hashed `rounds` times; rejects with the signal's reason once it aborts.
 * `onSlice` hears the rounds done after each slice: the worker stores at most a few a second.
 */
export async function repeatedDigest(
  text: string,
  rounds: number,
  signal: AbortSignal,
  onSlice?: (done: number) => void,
): Promise<{ hex: string }> {
  let digest = createHash('sha256').update(text, 'utf8').digest();
  let done = 1;
  while (done < rounds) {
    signal.throwIfAborted();
    const sliceEnd = performance.now() + SLICE_MS;
    do {
      const end = Math.min(rounds, done + ROUNDS_PER_CHECK);
      for (; done < end; done += 1) digest = createHash('sha256').update(digest).digest();
    } while (done < rounds && performance.now() < sliceEnd);
    onSlice?.(done);
    if (done < rounds) await setImmediate();
  }
  return { hex: digest.toString('hex') };
}
