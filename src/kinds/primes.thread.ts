/**
 * The primes kind's handler, run in a worker thread (see primes.ts). Trial division by the primes
 * up to √n, on purpose rather than a sieve: it needs almost no memory per thread, and it keeps a
 * core busy for seconds at tens of millions (4 s below 20 million, 15 s below 50 million, on the machine it was written on),
 * which is what the kind is for: exercising CPU-bound work off the event loop.
 */
export interface PrimesInput {
  below: number;
}

export interface PrimesResult {
  count: number;
}

/** What the thread's context offers this handler: progress goes to the main thread by message. */
export interface PrimesContext {
  progress?: (value: { percent: number; checked: number }) => void;
}

/** Odd numbers between two looks at the progress: a few milliseconds' work. */
const NUMBERS_PER_REPORT_CHECK = 1 << 16;

export default function countPrimes({ below }: PrimesInput, context: PrimesContext = {}): PrimesResult {
  if (below <= 2) return { count: 0 };
  const divisors = oddPrimesUpTo(Math.floor(Math.sqrt(below - 1)));
  const { progress } = context;
  let reported = -1;
  let count = 1; // 2, the one even prime
  for (let n = 3; n < below; n += 2) {
    if (progress && (n & (2 * NUMBERS_PER_REPORT_CHECK - 1)) === 1) {
      // Only a new whole percent is sent: at most 100 messages, however large `below` is.
      const percent = Math.floor((n * 100) / below);
      if (percent > reported) {
        reported = percent;
        progress({ percent, checked: n });
      }
    }
    let prime = true;
    for (let i = 0; i < divisors.length; i += 1) {
      const p = divisors[i] as number;
      if (p * p > n) break;
      if (n % p === 0) {
        prime = false;
        break;
      }
    }
    if (prime) count += 1;
  }
  return { count };
}

/** The odd primes up to `limit` (at most √50 000 000 ≈ 7072 here), by a small sieve. */
function oddPrimesUpTo(limit: number): Int32Array {
  const composite = new Uint8Array(limit + 1);
  const primes: number[] = [];
  for (let i = 3; i <= limit; i += 2) {
    if (composite[i]) continue;
    primes.push(i);
    for (let j = i * i; j <= limit; j += 2 * i) composite[j] = 1;
  }
  return Int32Array.from(primes);
}
