/**
 * Limited kinds whose last claim found nothing to do: it took no job, none of theirs was wip, and
 * no rate limit held any back. Their claims (a transaction of four round trips each) are skipped
 * until something may have changed that: a pending job heard of (events do not name their kind,
 * so of any kind), a due wake-up, a resync, or a poll interval since the last clearing, which
 * catches what a missed NOTIFY left (counted by the clock, not by the loop's sleeps: a loop kept
 * busy by other kinds never sleeps out its poll). Without this, a worker that runs a limited kind
 * beside unlimited ones paid that transaction every claim cycle, idle or not (a quarter of an
 * unlimited kind's drain).
 */
export class IdleLimitedKinds {
  private readonly idle = new Set<string>();
  /**
   * Counts the clearings: a claim that began before one (a job added while it ran, its NOTIFY
   * heard before it returned) may not have seen that job, so it marks no kind idle.
   */
  private clearings = 0;
  private clearedAt = performance.now();

  private readonly pollIntervalMs: number;

  constructor(pollIntervalMs: number) {
    this.pollIntervalMs = pollIntervalMs;
  }

  has(kind: string): boolean {
    return this.idle.has(kind);
  }

  /** Every kind is claimed again, idle or not. */
  clear(): void {
    this.idle.clear();
    this.clearings += 1;
    this.clearedAt = performance.now();
  }

  /** Clears them once a poll interval has passed since the last clearing. */
  clearIfPollDue(): void {
    if (this.idle.size > 0 && performance.now() - this.clearedAt >= this.pollIntervalMs) this.clear();
  }

  /** Taken as a kind's claim begins, and given back to `markIdle` once it has returned. */
  mark(): number {
    return this.clearings;
  }

  /** `kind`'s claim, begun at `mark`, found nothing to do: skipped until the next clearing. */
  markIdle(kind: string, mark: number): void {
    if (mark === this.clearings) this.idle.add(kind);
  }
}
