import type { Logger } from '../logger.ts';
import { isRefusal } from './errors.ts';

/** What became of an item that was not written, and why. */
export class NotWritten {
  /**
   * `refused`: the database refused the item on its own (and its substitute, if any).
   * `unreachable`: the statement did not reach the database, and the batcher does not retry.
   * `closed`: the batcher was closed before the item could be written.
   */
  readonly why: 'refused' | 'unreachable' | 'closed';
  readonly reason?: unknown;

  constructor(why: 'refused' | 'unreachable' | 'closed', reason?: unknown) {
    this.why = why;
    this.reason = reason;
  }
}

/** An item's outcome: what `send` answered for it, or why it was not written. */
export type Sent<R> = R | NotWritten;

export interface StatementBatcherOptions<T, R> {
  /** Sends the items as one statement and answers each one's outcome, in the items' order. */
  send: (items: T[]) => Promise<readonly R[]>;
  maxBatch: number;
  /**
   * Whether the first statement waits one microtask, so that items pushed in the same tick join
   * it (a worker's handlers that return together). Otherwise the first item goes out alone at once.
   */
  gatherTick: boolean;
  /**
   * A gate for each new batch, for items that must not share a statement: asked for each waiting
   * item in order, the batch ends before the first it refuses. The first item always goes.
   */
  openBatch?: () => (item: T) => boolean;
  /**
   * The pause before a batch is sent again while the database is unreachable, until `close`.
   * Without it, the batch's items are not written (`unreachable`).
   */
  retryDelayMs?: number;
  /**
   * What to send instead of an item the database refused on its own: for a failure, the same
   * outcome with a message it can store. Asked once per item; undefined gives the item up.
   */
  substitute?: (item: T, refusal: unknown) => T | undefined;
  /** Where refusals and outages are told, naming the items `what`; nothing is logged without it. */
  log?: { logger: Logger; what: string };
}

interface Pending<T, R> {
  item: T;
  resolve: (outcome: Sent<R>) => void;
  /** Set once `substitute` has replaced the item: a refused substitute is given up. */
  substituted: boolean;
}

/**
 * Collects items and sends them as one statement, each caller's promise resolving with its own
 * item's outcome. It waits for nothing: the first item goes out at once, and whatever arrives
 * while a statement is running forms the next batch. An idle caller pays no added latency, and a
 * busy stream shares one round trip (and one commit, one WAL flush) among hundreds of items.
 *
 * A batch the database refuses is split in halves, each sent again at once, until the refused
 * item is alone: one bad item among 1,000 costs about 20 statements and no pause, and holds
 * nothing else back for longer. That item is sent once more as its `substitute`, or else answered
 * `refused`. While the database is unreachable a batch is sent again after `retryDelayMs`.
 */
export class StatementBatcher<T, R> {
  private queue: Pending<T, R>[] = [];
  /** Groups to send before the queue, the next one last: halves of refused batches, retries. */
  private ahead: Pending<T, R>[][] = [];
  private flushing: Promise<void> | undefined;
  private closed: NotWritten | undefined;

  private readonly options: StatementBatcherOptions<T, R>;

  constructor(options: StatementBatcherOptions<T, R>) {
    this.options = options;
  }

  push(item: T): Promise<Sent<R>> {
    if (this.closed) return Promise.resolve(this.closed);
    return new Promise((resolve) => {
      this.queue.push({ item, resolve, substituted: false });
      this.flushing ??= this.flush();
    });
  }

  /** Sends what is queued (one more try each), then answers new items `closed`. */
  async close(): Promise<void> {
    this.closed = new NotWritten('closed');
    await this.flushing;
    for (const pending of this.queue.splice(0)) pending.resolve(this.closed);
  }

  private async flush(): Promise<void> {
    if (this.options.gatherTick) await Promise.resolve();
    for (;;) {
      const batch = this.ahead.pop() ?? this.take();
      // Checked and cleared in one synchronous step: a push after this starts a new flush, and no
      // push can land in between and wait for a flush that has already ended.
      if (batch.length === 0) {
        this.flushing = undefined;
        return;
      }
      try {
        const outcomes = await this.options.send(batch.map((pending) => pending.item));
        for (let i = 0; i < batch.length; i += 1) batch[i]!.resolve(outcomes[i]!);
      } catch (error) {
        if (isRefusal(error)) this.isolate(batch, error);
        else await this.unreachable(batch, error);
      }
    }
  }

  private take(): Pending<T, R>[] {
    const admits = this.options.openBatch?.();
    if (!admits) return this.queue.splice(0, this.options.maxBatch);
    const limit = Math.min(this.queue.length, this.options.maxBatch);
    let count = 0;
    while (count < limit && (admits(this.queue[count]!.item) || count === 0)) count += 1;
    return this.queue.splice(0, count);
  }

  private isolate(batch: Pending<T, R>[], refusal: unknown): void {
    if (batch.length > 1) {
      const half = Math.ceil(batch.length / 2);
      this.ahead.push(batch.slice(half), batch.slice(0, half));
      return;
    }
    const single = batch[0]!;
    const substitute = single.substituted ? undefined : this.options.substitute?.(single.item, refusal);
    const log = this.options.log;
    if (substitute === undefined) {
      log?.logger.error({ err: refusal, item: single.item }, `giving up writing one of the ${log.what}`);
      single.resolve(new NotWritten('refused', refusal));
      return;
    }
    log?.logger.warn({ err: refusal, item: single.item }, `one of the ${log.what} was refused; writing a substitute`);
    single.item = substitute;
    single.substituted = true;
    this.ahead.push([single]);
  }

  private async unreachable(batch: Pending<T, R>[], error: unknown): Promise<void> {
    const { log, retryDelayMs } = this.options;
    log?.logger.warn({ err: error, count: batch.length }, `writing ${log.what} failed`);
    if (this.closed || retryDelayMs === undefined) {
      const outcome = this.closed ?? new NotWritten('unreachable', error);
      for (const pending of batch) pending.resolve(outcome);
      return;
    }
    this.ahead.push(batch);
    await new Promise((resolve) => setTimeout(resolve, retryDelayMs));
  }
}
