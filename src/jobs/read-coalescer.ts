import type { Queryable } from '../db/database.ts';
import { NotWritten, StatementBatcher } from '../db/statement-batcher.ts';
import type { Job } from '../generated/prisma/client.ts';
import { readJobsStatement } from './sql/reads.ts';

/**
 * Puts concurrent reads of single jobs into one statement. Every subscription reads its job when
 * it opens and after each change; a client opening 100,000 subscriptions over 10,000 jobs, or
 * 10,000 watched jobs changing at once, sent a statement per job, and the burst filled the pool's
 * wait queue until subscribers were answered UNAVAILABLE (BENCHMARKS.md, fan-out). Like the
 * inserts' coalescer it waits for nothing: a read on an idle service goes out at once, and reads
 * that arrive while one runs share the next statement.
 */
export class ReadCoalescer {
  private readonly batcher: StatementBatcher<string, Job | null>;

  constructor(db: Queryable, maxIds: number) {
    this.batcher = new StatementBatcher({
      send: async (ids) => {
        const found = new Map((await readJobsStatement(db, [...new Set(ids)])).map((job) => [job.id, job]));
        return ids.map((id) => found.get(id) ?? null);
      },
      maxBatch: maxIds,
      gatherTick: false,
    });
  }

  /** The job as it is now, whoever owns it; null when there is none. Rejects with the database's error. */
  async read(id: string): Promise<Job | null> {
    const outcome = await this.batcher.push(id);
    if (outcome instanceof NotWritten) throw outcome.reason;
    return outcome;
  }
}
