/** What a worker writes while a job runs: how far its handler has got (JobContext.progress). */
import type { Queryable, Statement } from '../../db/database.ts';
import { announce, commitWithoutFlushWait } from './ctes.ts';
import { jsonArray } from './rows.ts';

export interface ProgressWrite {
  id: string;
  attempt: number;
  /** JSON text of an object. */
  progress: string;
}

/*
 * Fenced like an outcome, on (id, attempt, status = 'wip'): a stale attempt cannot report, and a
 * write that reaches the row after its outcome finds it no longer `wip` and changes nothing. It
 * bumps the version and announces, so that watchers read the job again. It leaves `last_updated`
 * (the heartbeat) alone: that column is the key of the stale index, and a write that changes no
 * indexed column is HOT, a new row version on the same page and no index entry at all. As a
 * heartbeat it made every report a new entry in two indexes, 8,000 reports costing PostgreSQL
 * 380 ms of CPU (bench/progress.ts); the heartbeats run on their own schedule anyway. Its loss in
 * a crash is harmless (the next report, or the outcome, follows), so its commit does not wait
 * for the WAL flush.
 */
const writeProgress: Statement = {
  name: 'jobs_progress',
  text: `
  WITH reported AS (
    UPDATE job SET progress = p.progress, version = job.version + 1
    FROM ROWS FROM (unnest($1::uuid[]), unnest($2::int[]), jsonb_array_elements($3::jsonb)) AS p(id, attempt, progress)
    WHERE job.id = p.id AND job.attempt = p.attempt AND job.status = 'wip'
    RETURNING job.id, job.status, job.version
  ),
  ${announce('reported')},
  ${commitWithoutFlushWait}
  SELECT id FROM reported, announced, flush_not_awaited`,
};

/** Stores the jobs' progress; answers with the ids the fence let through. Values go as one JSON array, as results do. */
export async function progressJobsStatement(db: Queryable, writes: readonly ProgressWrite[]): Promise<Set<string>> {
  const rows = await db.query<{ id: string }>(writeProgress, [
    writes.map((w) => w.id),
    writes.map((w) => w.attempt),
    jsonArray(writes.map((w) => w.progress)),
  ]);
  return new Set(rows.map((row) => row.id));
}
