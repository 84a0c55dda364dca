import { isRefusal } from '../db/errors.ts';
import type { Queryable } from '../db/database.ts';
import { insertJobsStatement, type NewJob, type StoredJob } from './sql/insert.ts';

interface Waiting {
  jobs: readonly NewJob[];
  resolve: (found: Map<string, StoredJob>) => void;
  reject: (error: unknown) => void;
}

/**
 * Puts the jobs of concurrent requests into one INSERT. Each commit waits for its WAL flush, so a
 * statement per request caps ingest at the disk's flushes per second; sharing the statement (and
 * the commit) lifts that cap. Nothing waits for company: the first request goes out at once, and
 * whoever arrives while a statement runs joins the next one, so an idle service adds no latency.
 *
 * A request's jobs always travel in one statement, so they commit together or not at all. Every
 * caller gets the whole result map and picks its own ids from it; a key conflict refuses only its
 * own request (the statement tells requests apart). If the database refuses a shared statement,
 * each caller's jobs are sent again on their own, so one caller's bad row can only fail that
 * caller. Two requests with the same idempotency key never share a statement: the second waits
 * for the next one, where it finds the first's job.
 */
export class InsertCoalescer {
  private waiting: Waiting[] = [];
  private running = false;

  constructor(
    private readonly db: Queryable,
    private readonly maxRows: number,
  ) {}

  insert(jobs: readonly NewJob[]): Promise<Map<string, StoredJob>> {
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
        const found = await insertJobsStatement(
          this.db,
          batch.flatMap((waiting) => waiting.jobs),
          batch.flatMap((waiting, request) => waiting.jobs.map(() => request)),
        );
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

  /**
   * Callers in arrival order, up to maxRows jobs (always at least one caller), stopping before
   * one whose idempotency key a caller already taken holds.
   */
  private take(): Waiting[] {
    let rows = 0;
    let count = 0;
    const keys = new Set<string>();
    while (count < this.waiting.length) {
      const { jobs } = this.waiting[count]!;
      if (count > 0 && rows + jobs.length > this.maxRows) break;
      const own = jobs.flatMap((job) => (job.idempotencyKey === null ? [] : [`${job.owner}\u0000${job.idempotencyKey}`]));
      if (own.some((key) => keys.has(key))) break;
      for (const key of own) keys.add(key);
      rows += jobs.length;
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
