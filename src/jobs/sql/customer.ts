/** What a customer does to a job of their own: take its result, or cancel it before it runs. */
import type { Queryable, Statement } from '../../db/database.ts';
import type { Job } from '../../generated/prisma/client.ts';
import { announce, commitWithoutFlushWait, settleDependents } from './ctes.ts';
import { columns, type JobRow, toJob } from './rows.ts';

/*
 * completed → retrieved, or the job as it is, in one statement. Both branches read the same
 * snapshot, so a job that completes while this runs is answered as it was before (no result),
 * never with a result it was not marked retrieved for. Only a change committed by another
 * transaction after the snapshot, which the UPDATE waited for (another retrieve, a delete), can
 * leave the read branch showing `completed`: `retrieved` is then false and the caller asks again.
 * Its commit does not wait for the WAL flush (README, "Durability"): a retrieve lost in a database
 * crash leaves the job completed with its result, which the next read hands over again. Waiting
 * was most of its cost in PostgreSQL: 480 → 270 µs of CPU a call (bench/cost.ts).
 */
const retrieveJob: Statement = {
  name: 'job_retrieve',
  text: `
  WITH retrieved AS (
    UPDATE job SET status = 'retrieved', retrieved_at = now(), last_updated = now(), version = version + 1
    WHERE id = $1 AND owner = $2 AND status = 'completed'
    RETURNING *
  ),
  ${announce('retrieved')},
  ${commitWithoutFlushWait}
  SELECT ${columns('retrieved')}, true AS retrieved FROM retrieved, announced, flush_not_awaited
  UNION ALL
  SELECT ${columns('job')}, false FROM job
  WHERE id = $1 AND owner = $2 AND NOT EXISTS (SELECT 1 FROM retrieved)`,
};

/** The job, and whether this call marked it retrieved; null when the owner has no such job. */
export async function retrieveJobStatement(
  db: Queryable,
  id: string,
  owner: string,
): Promise<{ job: Job; retrieved: boolean } | null> {
  const [row] = await db.query<JobRow & { retrieved: boolean }>(retrieveJob, [id, owner]);
  if (!row) return null;
  const { retrieved, ...job } = row;
  return { job: toJob(job), retrieved };
}

const cancelJob: Statement = {
  name: 'job_cancel',
  text: `
  WITH cancelled AS (
    UPDATE job SET status = 'cancelled', completed_on = now(), last_updated = now(), version = version + 1
    WHERE id = $1 AND owner = $2 AND status IN ('pending', 'waiting')
    RETURNING *
  ),
  ${announce('cancelled')},
  ${settleDependents('cancelled')}
  SELECT ${columns('cancelled')} FROM cancelled, announced, settled`,
};

/**
 * pending or waiting → cancelled, and its dependents settled (cancelled or counted down, by their
 * failure policy). Returns null when the job is neither; the row lock makes it exact.
 */
export async function cancelJobStatement(db: Queryable, id: string, owner: string): Promise<Job | null> {
  const [row] = await db.query<JobRow>(cancelJob, [id, owner]);
  return row ? toJob(row) : null;
}
