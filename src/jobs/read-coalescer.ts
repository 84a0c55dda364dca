import type { Queryable } from '../db/database.ts';
import type { Job } from '../generated/prisma/client.ts';
import { readJobsStatement } from './sql/reads.ts';

interface WaitingRead {
  id: string;
  resolve: (job: Job | null) => void;
  reject: (error: unknown) => void;
}

/**
 * Puts concurrent reads of single jobs into shared statements. Every subscription reads its job
 * when it opens and after each change; a client opening 100,000 subscriptions over 10,000 jobs, or
 * 10,000 watched jobs changing at once, sent a statement per job, and the burst filled the pool's
 * wait queue until subscribers were answered UNAVAILABLE (BENCHMARKS.md, fan-out).
 *
 * A read goes out at once while fewer than `parallel` statements run, so reads that merely
 * overlap (a subscriber's first read beside another's wake-up) do not wait for each other: with
 * one statement at a time they did, and the latency benchmark's median rose by 0.3 ms. Only reads
 * beyond that wait, and each finished statement takes up to `maxIds` of them at once.
 */
export class ReadCoalescer {
  private readonly waiting: WaitingRead[] = [];
  private running = 0;

  private readonly db: Queryable;
  private readonly parallel: number;
  private readonly maxIds: number;

  constructor(db: Queryable, options: { parallel: number; maxIds: number }) {
    this.db = db;
    this.parallel = options.parallel;
    this.maxIds = options.maxIds;
  }

  /** The job as it is now, whoever owns it; null when there is none. Rejects with the database's error. */
  read(id: string): Promise<Job | null> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ id, resolve, reject });
      if (this.running < this.parallel) void this.send();
    });
  }

  private async send(): Promise<void> {
    this.running += 1;
    try {
      while (this.waiting.length > 0) {
        const reads = this.waiting.splice(0, this.maxIds);
        try {
          const found = new Map((await readJobsStatement(this.db, [...new Set(reads.map((read) => read.id))])).map((job) => [job.id, job]));
          for (const read of reads) read.resolve(found.get(read.id) ?? null);
        } catch (error) {
          for (const read of reads) read.reject(error);
        }
      }
    } finally {
      this.running -= 1;
    }
  }
}
