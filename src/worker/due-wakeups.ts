import TinyQueue from 'tinyqueue';

/** setTimeout fires at once for a delay past 2³¹−1 ms (24.8 days); longer waits are re-armed. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** A timer may fire a fraction of a millisecond early by the clock the times were set on. */
const TIMER_SLACK_MS = 1;

/**
 * Wake-ups at the moments delayed jobs come due. A pending job announced with a `runAt` in the
 * future cannot be claimed before then, and without a wake-up of its own it would wait for the
 * next safety-net poll, up to a poll interval late. The times heard of are kept in a priority
 * queue with one timer, for the earliest; `wake` is called once per expiry however many jobs share it.
 *
 * At most `limit` times are held: past that, a job is left to the poll, as it is after a restart
 * (the times live in this process only). The worker's claim decides what is really due; a wake-up
 * for a job that another worker took, or that was cancelled, only costs an empty claim.
 */
export class DueWakeups {
  private times = new TinyQueue<number>();
  private timer: NodeJS.Timeout | undefined;
  private armedFor = Number.POSITIVE_INFINITY;

  private readonly wake: () => void;
  private readonly limit: number;
  private readonly now: () => number;

  constructor(wake: () => void, limit: number, now: () => number = () => performance.now()) {
    this.wake = wake;
    this.limit = limit;
    this.now = now;
  }

  get size(): number {
    return this.times.length;
  }

  /** A job comes due `inMs` from now. */
  add(inMs: number): void {
    if (this.times.length >= this.limit) return;
    const at = this.now() + inMs;
    this.times.push(at);
    if (at < this.armedFor) this.arm();
  }

  clear(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.armedFor = Number.POSITIVE_INFINITY;
    this.times = new TinyQueue<number>();
  }

  private arm(): void {
    clearTimeout(this.timer);
    const next = this.times.peek();
    if (next === undefined) {
      this.timer = undefined;
      this.armedFor = Number.POSITIVE_INFINITY;
      return;
    }
    this.armedFor = next;
    const delay = Math.min(Math.max(0, next - this.now()) + TIMER_SLACK_MS, MAX_TIMER_MS);
    this.timer = setTimeout(() => this.fire(), delay);
    // A pending wake-up must not keep a stopping process alive.
    this.timer.unref();
  }

  private fire(): void {
    const now = this.now();
    let due = false;
    while (this.times.length > 0 && this.times.peek()! <= now) {
      this.times.pop();
      due = true;
    }
    this.arm();
    if (due) this.wake();
  }
}
