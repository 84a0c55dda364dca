import { isRefusal } from '../db/errors.ts';
import type { Queryable } from '../db/database.ts';
import { type InsertedJob, insertJobsStatement, type NewJob } from './queue.ts';

interface Waiting {
  jobs: readonly NewJob[];
  resolve: (found: Map<string, InsertedJob>) => void;
  reject: (error: unknown) => void;
}

/**
 * Puts the jobs of concurrent requests into one INSERT. Each commit waits for its WAL flush, so a
 * statement per request caps ingest at the disk's flushes per second; sharing the statement (and
 * the commit) lifts that cap. Nothing waits for company: the first request goes out at once, and
 * whoever arrives while a statement runs joins the next one, so an idle service adds no latency.
 *
 * Every caller gets the whole result map and picks its own ids from it. If the database refuses a
 * shared statement, each caller's jobs are sent again on their own, so one caller's bad row can
 * only fail that caller.
 */
export class InsertCoalescer {
  private waiting: Waiting[] = [];
  private running = false;

  constructor(
    private readonly db: Queryable,
    private readonly maxRows: number,
  ) {}

  insert(jobs: readonly NewJob[]): Promise<Map<string, InsertedJob>> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ jobs, resolve, reject });
      if (!this.running) void this.run();
    });
  }

  private async run(): Promise<void> {
    this.running = true;
    while (this.waiting.length > 0) {
      const batch = this.take();
      if (batch.length === 1) {
        await this.send(batch[0]!);
        continue;
      }
      try {
        const found = await insertJobsStatement(this.db, batch.flatMap((waiting) => waiting.jobs));
        for (const waiting of batch) waiting.resolve(found);
      } catch (error) {
        if (!isRefusal(error)) {
          for (const waiting of batch) waiting.reject(error);
          continue;
        }
        for (const waiting of batch) await this.send(waiting);
      }
    }
    this.running = false;
  }

  /** Callers in arrival order, up to maxRows jobs (always at least one caller). */
  private take(): Waiting[] {
    let rows = 0;
    let count = 0;
    while (count < this.waiting.length && (count === 0 || rows + this.waiting[count]!.jobs.length <= this.maxRows)) {
      rows += this.waiting[count]!.jobs.length;
      count += 1;
    }
    return this.waiting.splice(0, count);
  }

  private async send(waiting: Waiting): Promise<void> {
    try {
      waiting.resolve(await insertJobsStatement(this.db, waiting.jobs));
    } catch (error) {
      waiting.reject(error);
    }
  }
}
