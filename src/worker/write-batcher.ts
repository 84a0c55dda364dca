import { isRefusal } from '../db/errors.ts';
import type { Logger } from '../logger.ts';

interface Pending<T> {
  item: T;
  resolve: (written: boolean) => void;
  /** Set once `substitute` has replaced the item: a refused substitute is given up. */
  substituted: boolean;
}

export interface WriteBatcherOptions<T> {
  maxBatch: number;
  /** The pause before a batch is sent again while the database is unreachable. */
  retryDelayMs: number;
  logger: Logger;
  what: string;
  /**
   * What to write instead of an item the database refused on its own: for a failure, the same
   * outcome with a message it can store. Asked once per item; undefined gives the item up.
   */
  substitute?: (item: T, refusal: unknown) => T | undefined;
}

/**
 * Collects writes and sends them as one statement. It waits for nothing: the first write goes out
 * at once, and whatever arrives while a statement is running forms the next batch. An idle
 * worker pays no added latency, and a busy one writes hundreds of rows per round trip.
 *
 * While the database is unreachable a batch is retried after a pause, until `close`. A batch the
 * database refuses is split in halves, each sent again at once, until the refused item is alone:
 * one bad item among 1,000 costs about 20 statements and no pause, and holds nothing else back
 * for longer. That item is written once more as its `substitute`, or else given up. Giving up
 * leaves its job `wip` until the stale rule runs it again: the last resort, for an item whose
 * substitute is refused too.
 */
export class WriteBatcher<T> {
  private queue: Pending<T>[] = [];
  /** Groups to send before the queue, the next one last: halves of refused batches, retries. */
  private ahead: Pending<T>[][] = [];
  private flushing: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly write: (items: T[]) => Promise<void>,
    private readonly options: WriteBatcherOptions<T>,
  ) {}

  /** Resolves true once written (itself or its substitute), false if given up. */
  push(item: T): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      this.queue.push({ item, resolve, substituted: false });
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
      const batch = this.ahead.pop() ?? this.queue.splice(0, this.options.maxBatch);
      // Checked and cleared in one synchronous step: a push after this starts a new flush, and no
      // push can land in between and wait for a flush that has already ended.
      if (batch.length === 0) {
        this.flushing = undefined;
        return;
      }
      try {
        await this.write(batch.map((pending) => pending.item));
        for (const pending of batch) pending.resolve(true);
      } catch (error) {
        if (isRefusal(error)) this.isolate(batch, error);
        else await this.unreachable(batch, error);
      }
    }
  }

  private isolate(batch: Pending<T>[], refusal: unknown): void {
    if (batch.length > 1) {
      const half = Math.ceil(batch.length / 2);
      this.ahead.push(batch.slice(half), batch.slice(0, half));
      return;
    }
    const single = batch[0]!;
    const substitute = single.substituted ? undefined : this.options.substitute?.(single.item, refusal);
    if (substitute === undefined) {
      this.options.logger.error({ err: refusal, item: single.item }, `giving up writing one of the ${this.options.what}`);
      single.resolve(false);
      return;
    }
    const line = { err: refusal, item: single.item };
    this.options.logger.warn(line, `one of the ${this.options.what} was refused; writing a substitute`);
    single.item = substitute;
    single.substituted = true;
    this.ahead.push([single]);
  }

  private async unreachable(batch: Pending<T>[], error: unknown): Promise<void> {
    this.options.logger.warn({ err: error, count: batch.length }, `writing ${this.options.what} failed`);
    if (this.closed) {
      for (const pending of batch) pending.resolve(false);
      return;
    }
    this.ahead.push(batch);
    await new Promise((resolve) => setTimeout(resolve, this.options.retryDelayMs));
  }
}
