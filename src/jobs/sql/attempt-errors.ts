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

// The primary key (job_id, attempt) serves the read, in attempt order.
const readAttemptErrors: Statement = {
  name: 'job_attempt_errors',
  text: `SELECT attempt, error, ${epochMs('failed_at')} AS "failedAt", worker FROM job_attempt_error WHERE job_id = $1 ORDER BY attempt`,
};

export async function readAttemptErrorsStatement(db: Queryable, jobId: string): Promise<AttemptError[]> {
  const rows = await db.query<Omit<AttemptError, 'failedAt'> & { failedAt: number }>(readAttemptErrors, [jobId]);
  return rows.map((row) => ({ ...row, failedAt: new Date(row.failedAt) }));
}
