import type { Queryable } from '../db/database.ts';
import { type QueueStats, queueStatsStatement } from '../jobs/sql/stats.ts';

export interface QueueStatsReaderOptions {
  /** A read younger than this is served again, so several scrapers cost one query. */
  cacheMs: number;
  /** Up to this many rows (estimated) the statuses are counted exactly; see `queueStatsStatement`. */
  exactCountLimit: number;
  now?: () => number;
}

/**
 * Reads the queue's numbers for the metrics, at most once per `cacheMs`. Callers that arrive
 * while a read is running share it. A failed read is not kept: the next call tries again.
 */
export function createQueueStatsReader(db: Queryable, options: QueueStatsReaderOptions): () => Promise<QueueStats> {
  const now = options.now ?? Date.now;
  let last: { at: number; stats: Promise<QueueStats>; settled: boolean } | undefined;
  return () => {
    if (last && (!last.settled || now() - last.at < options.cacheMs)) return last.stats;
    const read = { at: now(), stats: queueStatsStatement(db, options.exactCountLimit), settled: false };
    last = read;
    read.stats.then(
      () => {
        read.settled = true;
        // The age counts from when the numbers were read, not from when the read was asked for.
        read.at = now();
      },
      () => {
        if (last === read) last = undefined;
      },
    );
    return read.stats;
  };
}
