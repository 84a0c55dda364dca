import { isRefusal } from '../db/errors.ts';
import type { Logger } from '../logger.ts';

interface Pending<T> {
  item: T;
  resolve: (written: boolean) => void;
  rejections: number;
}

/** How often the database may reject one item (not a lost connection) before it is given up. */
const MAX_REJECTIONS = 3;

/**
 * Collects writes and sends them as one statement. It waits for nothing: the first write goes out
 * at once, and whatever arrives while a statement is running forms the next batch. An idle
 * worker pays no added latency, and a busy one writes hundreds of rows per round trip.
 *
 * While the database is unreachable a batch is retried after a pause, until `close`. A batch the
 * database refuses is split into single writes, so one bad item cannot hold the others back;
 * that item is given up after a few refusals. Giving up is safe: its job stays `wip`, and the
 * stale rule runs it again.
 */
export class WriteBatcher<T> {
  private queue: Pending<T>[] = [];
  private flushing: Promise<void> | undefined;
  private closed = false;
  /** Items left to write one at a time, after a refused batch. */
  private isolating = 0;

  constructor(
    private readonly write: (items: T[]) => Promise<void>,
    private readonly options: { maxBatch: number; retryDelayMs: number; logger: Logger; what: string },
  ) {}

  /** Resolves true once written, false if given up. */
  push(item: T): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      this.queue.push({ item, resolve, rejections: 0 });
      this.flushing ??= this.flush();
    });
  }

  /** Writes what is queued (one more try each), then refuses new items. */
  async close(): Promise<void> {
    this.closed = true;
    await this.flushing;
    for (const pending of this.queue.splice(0)) pending.resolve(false);
  }

  private async flush(): Promise<void> {
    // Let the writes of the current tick join the first batch.
    await Promise.resolve();
    for (;;) {
      // Checked and cleared in one synchronous step: a push after this starts a new flush, and no
      // push can land in between and wait for a flush that has already ended.
      if (this.queue.length === 0) {
        this.flushing = undefined;
        return;
      }
      const batch = this.queue.splice(0, this.isolating > 0 ? 1 : this.options.maxBatch);
      try {
        await this.write(batch.map((pending) => pending.item));
        for (const pending of batch) pending.resolve(true);
        this.isolating = Math.max(0, this.isolating - 1);
      } catch (error) {
        await this.failed(batch, error);
      }
    }
  }

  private async failed(batch: Pending<T>[], error: unknown): Promise<void> {
    if (isRefusal(error) && batch.length > 1) {
      this.queue.unshift(...batch);
      this.isolating = batch.length;
      return;
    }
    const [single] = batch;
    if (single && isRefusal(error) && (single.rejections += 1) >= MAX_REJECTIONS) {
      this.options.logger.error({ err: error, item: single.item }, `giving up writing one of the ${this.options.what}`);
      single.resolve(false);
      this.isolating = Math.max(0, this.isolating - 1);
      return;
    }
    this.options.logger.warn({ err: error, count: batch.length }, `writing ${this.options.what} failed`);
    if (this.closed) {
      for (const pending of batch) pending.resolve(false);
      return;
    }
    this.queue.unshift(...batch);
    await new Promise((resolve) => setTimeout(resolve, this.options.retryDelayMs));
  }
}
