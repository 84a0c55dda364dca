import { readFileSync } from 'node:fs';

/** Busy share of all CPUs over `ms`, from /proc/stat; null where there is no /proc. */
async function busyPercent(ms: number): Promise<number | null> {
  const read = () => {
    try {
      const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
      const idle = fields[3]! + fields[4]!;
      return { idle, total: fields.reduce((sum, value) => sum + value, 0) };
    } catch {
      return null;
    }
  };
  const before = read();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const after = read();
  if (!before || !after || after.total === before.total) return null;
  return Math.round(100 - (100 * (after.idle - before.idle)) / (after.total - before.total));
}

/**
 * Waits (up to `maxWaitMs`) until the machine is quiet: on a 2-core box a test suite or another
 * benchmark running alongside halves a trial's figure. Returns the last busy reading, which each
 * trial records, so a noisy figure can be recognized afterwards.
 */
export async function waitForQuiet(thresholdPercent = 15, maxWaitMs = 30_000): Promise<number | null> {
  const deadline = Date.now() + maxWaitMs;
  for (;;) {
    const busy = await busyPercent(300);
    if (busy === null || busy <= thresholdPercent || Date.now() > deadline) return busy;
  }
}
