import type { Database } from '../db/database.ts';
import type { JobStatus } from '../generated/prisma/client.ts';
import { StartStop } from '../lifecycle.ts';
import type { Logger } from '../logger.ts';
import { pruneJobsStatement } from './sql/prune.ts';

const DAY_MS = 86_400_000;

export interface PrunerOptions {
  db: Database;
  logger: Logger;
  /** Days a retrieved, failed or cancelled job is kept after its last change. */
  retentionDays: number;
  /** Days a completed job nobody has retrieved is kept: longer, since its result is still owed. */
  completedRetentionDays: number;
  intervalMs: number;
  batchSize: number;
  now?: () => Date;
}

/**
 * Deletes finished jobs once they are old enough, in small batches, on a timer. Several processes
 * may run one each: SKIP LOCKED makes them share the work instead of waiting on each other.
 */
export class Pruner extends StartStop {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;
  /** Set by stop(), so a long pass ends after its current batch. */
  private stopRequested = false;

  private readonly options: PrunerOptions;

  constructor(options: PrunerOptions) {
    super();
    this.options = options;
  }

  protected onStart(): void {
    const { logger, intervalMs, batchSize, retentionDays, completedRetentionDays } = this.options;
    logger.info({ intervalMs, batchSize, retentionDays, completedRetentionDays }, 'pruner started');
    this.stopRequested = false;
    this.timer = setInterval(() => void this.pruneNow().catch(() => undefined), this.options.intervalMs);
    this.timer.unref();
  }

  /** Stops the timer and waits for a pass under way. */
  protected async onStop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    this.stopRequested = true;
    await this.running?.catch(() => undefined);
  }

  /** One full pass; returns how many jobs it deleted. Passes never overlap. */
  pruneNow(): Promise<number> {
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async pass(): Promise<number> {
    const { db, logger, retentionDays, completedRetentionDays, batchSize } = this.options;
    const now = (this.options.now ?? (() => new Date()))().getTime();
    const rules: Array<[JobStatus[], Date]> = [
      [['retrieved', 'failed', 'cancelled'], new Date(now - retentionDays * DAY_MS)],
      [['completed'], new Date(now - completedRetentionDays * DAY_MS)],
    ];
    let deleted = 0;
    try {
      for (const [statuses, before] of rules) {
        for (;;) {
          const count = await pruneJobsStatement(db, statuses, before, batchSize);
          deleted += count;
          if (count < batchSize || this.stopRequested) break;
        }
      }
    } catch (error) {
      logger.warn({ err: error, deleted }, 'pruning jobs failed; the next pass retries');
      throw error;
    }
    if (deleted > 0) logger.info({ deleted }, 'pruned old jobs');
    return deleted;
  }
}
