/** Reading jobs, without changing them. */
import type { Database, Queryable, Statement } from '../../db/database.ts';
import type { Job, JobStatus } from '../../generated/prisma/client.ts';
import { columns, type JobRow, toJob } from './rows.ts';

const readJobs: Statement = {
  name: 'jobs_read',
  // Plain snapshot reads: no lock, so a reader never waits for a worker's update, and sees the
  // last committed state. One primary-key probe per id.
  text: `SELECT ${columns('job')} FROM job WHERE id = ANY($1::uuid[])`,
};

/**
 * The jobs of these ids that exist, whoever owns them (the caller checks). The `job` query and
 * every subscriber's read go through here, batched (src/jobs/read-coalescer.ts); a prepared
 * statement rather than a Prisma query: measured here, 0.07 ms against Prisma's 0.75 for one job.
 */
export async function readJobsStatement(db: Queryable, ids: readonly string[]): Promise<Job[]> {
  return (await db.query<JobRow>(readJobs, [ids])).map(toJob);
}

/**
 * `queue_state` of each status, as the cheaper_job migration derives it. The queue's partial
 * indexes name it rather than the status, so a filter on the status alone could not use them.
 */
export const QUEUE_STATE: Record<JobStatus, number | null> = {
  pending: 1,
  wip: 2,
  failed: 3,
  cancelled: 4,
  completed: null,
  retrieved: null,
  waiting: null,
};

export interface JobListing {
  owner: string;
  status?: JobStatus;
  kind?: string;
  /** The id of the last job of the previous page: the page holds older jobs only. */
  before?: string;
  limit: number;
}

/**
 * One page of an owner's jobs, newest first. The one query that goes through Prisma, on purpose
 * (README.md, "Prisma's place"): its WHERE depends on which filters the caller gave, which
 * Prisma composes, typed, where named statements would need one per combination. A page is one
 * query however many jobs it holds, and no worker or subscriber waits on it, so Prisma's cost per
 * query (0.75 ms for a findFirst, against 0.07 ms for a prepared read of one job) matters here far less than on
 * the read of one job, which every subscriber wake-up repeats.
 */
export function listJobsQuery(db: Pick<Database, 'prisma'>, listing: JobListing): Promise<Job[]> {
  // Ids are UUIDv7, so id order is creation order; `lt` keeps paging stable when rows vanish.
  return db.prisma.job.findMany({
    where: {
      owner: listing.owner,
      ...(listing.status ? { status: listing.status, queueState: QUEUE_STATE[listing.status] } : {}),
      ...(listing.kind ? { kind: listing.kind } : {}),
      ...(listing.before ? { id: { lt: listing.before } } : {}),
    },
    orderBy: { id: 'desc' },
    take: listing.limit,
  });
}
