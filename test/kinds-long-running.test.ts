import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { JobContext, KindHandler } from '../src/kinds/define.ts';
import { digestKind } from '../src/kinds/digest.ts';
import { primesKind } from '../src/kinds/primes.ts';
import countPrimes from '../src/kinds/primes.thread.ts';

function jobContext(signal = new AbortController().signal): JobContext {
  return { jobId: '0190f7a0-0000-7000-8000-000000000002', attempt: 1, maxAttempts: 3, signal, progress: () => undefined, parents: async () => ({}) };
}

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest();

describe('the primes kind', () => {
  it('counts the primes below a number', () => {
    const belows = [2, 3, 4, 10, 100, 7920, 1_000_000];
    expect(belows.map((below) => countPrimes({ below }).count)).toEqual([0, 1, 2, 4, 25, 1000, 78_498]);
    // 7921 = 89², and 89 is the largest divisor tried below 7922: a divisor list one short would count it.
    expect(countPrimes({ below: 7922 }).count).toBe(1000);
  });

  it('names a module for the thread pool and takes integers from 2 to 50 million', () => {
    const kind = primesKind();
    expect(kind.handler).toEqual({ module: new URL('../src/kinds/primes.thread.ts', import.meta.url) });
    expect(kind.input.safeParse({ below: 50_000_000 }).success).toBe(true);
    for (const below of [1, 50_000_001, 2.5, '100']) expect(kind.input.safeParse({ below }).success).toBe(false);
    expect(kind.result.safeParse({ count: 25 }).success).toBe(true);
  });
});

describe('the digest kind', () => {
  const kind = digestKind();
  const handler = kind.handler as KindHandler<{ text: string; rounds: number }, { hex: string }>;

  it('hashes the text once, then the digest before, round after round', async () => {
    await expect(handler({ text: 'héllo', rounds: 1 }, jobContext())).resolves.toEqual({ hex: sha256('héllo').toString('hex') });
    const third = sha256(sha256(sha256('abc')));
    await expect(handler({ text: 'abc', rounds: 3 }, jobContext())).resolves.toEqual({ hex: third.toString('hex') });
    // Enough rounds for several slices, so the yields between them lose none.
    let digest = sha256('x');
    for (let round = 1; round < 50_000; round += 1) digest = sha256(digest);
    await expect(handler({ text: 'x', rounds: 50_000 }, jobContext())).resolves.toEqual({ hex: digest.toString('hex') });
  });

  it('takes a text of at most 10 000 characters and 1 to 10 million rounds', () => {
    expect(kind.input.safeParse({ text: 'a'.repeat(10_000), rounds: 10_000_000 }).success).toBe(true);
    expect(kind.input.safeParse({ text: 'a'.repeat(10_001), rounds: 1 }).success).toBe(false);
    for (const rounds of [0, 10_000_001, 1.5]) expect(kind.input.safeParse({ text: '', rounds }).success).toBe(false);
    expect(kind.result.safeParse({ hex: 'ab' }).success).toBe(false);
  });

  it('yields between slices, so a cancel stops it within a slice, with the reason', async () => {
    const abort = new AbortController();
    const reason = new Error('cancelled');
    const started = performance.now();
    let abortedAt = 0;
    setTimeout(() => {
      abortedAt = performance.now();
      abort.abort(reason);
    }, 200);
    const outcome = await Promise.resolve(handler({ text: 'long', rounds: 10_000_000 }, jobContext(abort.signal))).then(
      () => 'finished',
      (error: unknown) => error,
    );
    const stoppedAt = performance.now();
    expect(outcome).toBe(reason);
    // The timer that aborts runs on the same event loop: late only if a slice overran.
    expect(abortedAt - started).toBeLessThan(300);
    expect(stoppedAt - abortedAt).toBeLessThan(100);
  });

  it('does not start on a signal that has already aborted', async () => {
    const reason = new Error('shutting down');
    await expect(handler({ text: 'a', rounds: 1000 }, jobContext(AbortSignal.abort(reason)))).rejects.toBe(reason);
  });
});
