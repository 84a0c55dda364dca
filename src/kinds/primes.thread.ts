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

export default function countPrimes({ below }: PrimesInput): PrimesResult {
  if (below <= 2) return { count: 0 };
  const divisors = oddPrimesUpTo(Math.floor(Math.sqrt(below - 1)));
  let count = 1; // 2, the one even prime
  for (let n = 3; n < below; n += 2) {
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
