/** Reading jobs, without changing them. */
import type { Queryable, Statement } from '../../db/database.ts';
import type { Job } from '../../generated/prisma/client.ts';
import { columns, type JobRow, toJob } from './rows.ts';

const readJob: Statement = {
  name: 'job_read',
  // A plain snapshot read: no lock, so a reader never waits for a worker's update, and sees the
  // last committed state.
  text: `SELECT ${columns('job')} FROM job WHERE id = $1 AND owner = $2`,
};

/**
 * One job of one owner. The `job` query and every subscriber wake-up read through here, so it is
 * a prepared statement rather than a Prisma query: measured here, 0.07 ms against Prisma's 0.75.
 */
export async function readJobStatement(db: Queryable, id: string, owner: string): Promise<Job | null> {
  const [row] = await db.query<JobRow>(readJob, [id, owner]);
  return row ? toJob(row) : null;
}
