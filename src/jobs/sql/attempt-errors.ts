/**
 * A job's history: its failed attempts, each written by the statement that ended it (outcomes.ts,
 * `jobs_fail`; claim.ts, `lost`) and deleted with the job (prune.ts). Read only when asked for:
 * a job's own reads never join it.
 */
import type { Queryable, Statement } from '../../db/database.ts';
import { epochMs } from './rows.ts';

export interface AttemptError {
  attempt: number;
  error: string;
  failedAt: Date;
  /** The worker instance that ran the attempt (or lost it, for a stale takeover). */
  worker: string | null;
}

/*
 * The failed attempts of many jobs at once: a list of jobs that asks for `attempts` (GraphQL)
 * reads them all in one statement, not one per job. A plain read: no row locks, and it sees the
 * rows committed when it starts, as any read of a job does. The primary key (job_id, attempt)
 * serves it, one index probe per id, in attempt order.
 */
const readAttemptErrors: Statement = {
  name: 'job_attempt_errors_of_jobs',
  text: `
  SELECT job_id AS "jobId", attempt, error, ${epochMs('failed_at')} AS "failedAt", worker
  FROM job_attempt_error WHERE job_id = ANY ($1::uuid[])
  ORDER BY job_id, attempt`,
};

/** Each job's failed attempts, oldest first, by job id; a job that never failed has an empty list. */
export async function readAttemptErrorsStatement(db: Queryable, jobIds: readonly string[]): Promise<Map<string, AttemptError[]>> {
  const byJob = new Map<string, AttemptError[]>(jobIds.map((id) => [id, []]));
  if (jobIds.length === 0) return byJob;
  const rows = await db.query<Omit<AttemptError, 'failedAt'> & { jobId: string; failedAt: number }>(readAttemptErrors, [[...new Set(jobIds)]]);
  for (const { jobId, failedAt, ...row } of rows) byJob.get(jobId)?.push({ ...row, failedAt: new Date(failedAt) });
  return byJob;
}
