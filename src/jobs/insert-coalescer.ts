import type { Queryable } from '../db/database.ts';
import { NotWritten, StatementBatcher } from '../db/statement-batcher.ts';
import { insertJobsStatement, type NewJob, type StoredJob } from './sql/insert.ts';

/**
 * Puts the jobs of concurrent requests into one INSERT. Each commit waits for its WAL flush, so a
 * statement per request caps ingest at the disk's flushes per second; sharing the statement (and
 * the commit) lifts that cap. Nothing waits for company: the first request goes out at once, and
 * whoever arrives while a statement runs joins the next one, so an idle service adds no latency.
 *
 * A request's jobs always travel in one statement, so they commit together or not at all. Every
 * caller gets the whole result map and picks its own ids from it; a key conflict refuses only its
 * own request (the statement tells requests apart). If the database refuses a shared statement,
 * it is split until the refused request is alone (see StatementBatcher), so one caller's bad row
 * can only fail that caller. Two requests with the same idempotency key, or the same kind and
 * unique key, never share a statement: the second waits for the next one, where it finds the
 * first's job.
 */
export class InsertCoalescer {
  private readonly batcher: StatementBatcher<readonly NewJob[], Map<string, StoredJob>>;

  constructor(db: Queryable, maxRows: number) {
    this.batcher = new StatementBatcher({
      send: async (requests) => {
        const found = await insertJobsStatement(
          db,
          requests.flat(),
          requests.flatMap((jobs, request) => jobs.map(() => request)),
        );
        return requests.map(() => found);
      },
      maxBatch: maxRows,
      gatherTick: false,
      openBatch: () => sharingRule(maxRows),
    });
  }

  /** Resolves with the jobs of the statement `jobs` went in; rejects with the database's error. */
  async insert(jobs: readonly NewJob[]): Promise<Map<string, StoredJob>> {
    const outcome = await this.batcher.push(jobs);
    if (outcome instanceof NotWritten) throw outcome.reason;
    return outcome;
  }
}

/**
 * Which requests may share one statement: up to `maxRows` jobs, and no idempotency key or (kind,
 * unique key) twice (a second row with a key would fail the first's request instead of finding
 * its job).
 */
function sharingRule(maxRows: number): (jobs: readonly NewJob[]) => boolean {
  let rows = 0;
  const keys = new Set<string>();
  return (jobs) => {
    if (rows > 0 && rows + jobs.length > maxRows) return false;
    const own = jobs.flatMap((job) => [
      ...(job.idempotencyKey === null ? [] : [`${job.owner}\u0000${job.idempotencyKey}`]),
      ...(job.uniqueKey ? [`${job.owner}\u0000${job.kind}\u0000\u0000${job.uniqueKey}`] : []),
    ]);
    if (own.some((key) => keys.has(key))) return false;
    for (const key of own) keys.add(key);
    rows += jobs.length;
    return true;
  };
}
