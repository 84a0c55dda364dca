/**
 * The queue's numbers for the metrics: read-only, across all owners, and cheap however large the
 * table grows (src/metrics/queue-stats.ts caches them between scrapes).
 */
import type { Queryable, Statement } from '../../db/database.ts';
import { JobStatus as JobStatusValues, type JobStatus } from '../../generated/prisma/client.ts';

/** What the metrics report about the queue as a whole, across all owners. */
export interface QueueStats {
  /** Jobs in each status. Exact, unless `exactCounts` is false: see `queueStatsStatement`. */
  byStatus: Record<JobStatus, number>;
  exactCounts: boolean;
  /** Pending jobs whose `runAt` has come: work waiting for a worker. Capped at the count limit. */
  queueDepth: number;
  /** How long the oldest of those has been due, in seconds; 0 when none is. */
  oldestDueAgeSeconds: number;
  /** The oldest transaction open on this database, other than the reader's own; null when none is. */
  oldestTransaction: OldestTransaction | null;
}

/**
 * A transaction that stays open holds back the xmin horizon: vacuum keeps every job row version
 * changed since it began, so the claim's index scans wade through dead tuples (the chaos suite's
 * open-transaction scenario). Other roles' transactions show only to a role with
 * pg_read_all_stats (or pg_monitor).
 */
export interface OldestTransaction {
  ageSeconds: number;
  pid: number;
  applicationName: string;
  state: string;
}

/*
 * Always cheap, whatever the table's size: the table's size estimate from pg_class, the due
 * pending jobs counted through the pending partial index and capped at $1, and the oldest due
 * job found by a loose index scan. The pending index leads with the owner (its hash) and priority, so
 * min(run_at) over it would read every pending entry; instead the recursive CTE hops from one
 * distinct (owner_hash, priority) to the next (one or two index probes each) and takes the first
 * run_at under each. Its cost grows with the number of owners and priorities in use, not with the
 * backlog. The oldest open transaction comes
 * from pg_stat_activity, which is read from shared memory: one row per connection, no table.
 */
// `queue_state = 1` is pending, `= 2` wip: the conditions of the claim's and the stale rule's
// partial indexes (see the cheaper_job migration), which a condition on the status could not use.
const queueStats: Statement = {
  name: 'jobs_queue_stats',
  text: `
  WITH RECURSIVE priorities AS (
    (SELECT owner_hash, priority FROM job WHERE queue_state = 1 ORDER BY owner_hash, priority DESC LIMIT 1)
    UNION ALL
    SELECT next.owner_hash, next.priority FROM priorities CROSS JOIN LATERAL (
      (SELECT job.owner_hash, job.priority FROM job
       WHERE job.queue_state = 1 AND job.owner_hash = priorities.owner_hash AND job.priority < priorities.priority
       ORDER BY job.priority DESC LIMIT 1)
      UNION ALL
      (SELECT job.owner_hash, job.priority FROM job WHERE job.queue_state = 1 AND job.owner_hash > priorities.owner_hash
       ORDER BY job.owner_hash, job.priority DESC LIMIT 1)
      LIMIT 1) AS next
  ),
  firsts AS (
    SELECT (SELECT job.run_at FROM job
            WHERE job.queue_state = 1 AND job.owner_hash = priorities.owner_hash AND job.priority = priorities.priority
            ORDER BY job.run_at LIMIT 1) AS run_at
    FROM priorities
  )
  SELECT
    (SELECT greatest(reltuples, 0)::float8 FROM pg_class WHERE oid = 'job'::regclass) AS "estimatedRows",
    (SELECT count(*)::float8 FROM (
       SELECT 1 FROM job WHERE queue_state = 1 AND run_at <= now() LIMIT $1) due) AS "queueDepth",
    (SELECT coalesce(extract(epoch FROM now() - min(run_at)), 0)::float8
     FROM firsts WHERE run_at <= now()) AS "oldestDueAgeSeconds",
    oldest."ageSeconds", oldest.pid, oldest."applicationName", oldest.state
  FROM (SELECT 1) one
  LEFT JOIN LATERAL (
    SELECT extract(epoch FROM now() - xact_start)::float8 AS "ageSeconds", pid,
           application_name AS "applicationName", state
    FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL
    ORDER BY xact_start LIMIT 1) oldest ON true`,
};

/* Exact counts by status: one pass over the table, which is why it runs only while the table is small (below). */
const statusCountsExact: Statement = {
  name: 'jobs_status_counts_exact',
  text: `SELECT status, count(*)::float8 AS jobs, true AS exact FROM job GROUP BY status`,
};

/*
 * Estimated counts: the planner's statistics (most common values of `status` and their share,
 * times pg_class's row estimate, both as of the last ANALYZE), which cost a catalog read. The
 * statuses a queue is made of, pending and wip, are still counted exactly through their partial
 * indexes, capped at $1 each, and override the estimates.
 */
const statusCountsEstimated: Statement = {
  name: 'jobs_status_counts_estimated',
  text: `
  SELECT mcv.status, (mcv.freq * greatest(c.reltuples, 0))::float8 AS jobs, false AS exact
  FROM pg_class c, pg_stats s, unnest(s.most_common_vals::text::text[], s.most_common_freqs) AS mcv(status, freq)
  WHERE c.oid = 'job'::regclass
    AND s.schemaname = current_schema() AND s.tablename = 'job' AND s.attname = 'status'
  UNION ALL
  SELECT 'pending', count(*)::float8, true FROM (SELECT 1 FROM job WHERE queue_state = 1 LIMIT $1) p
  UNION ALL
  SELECT 'wip', count(*)::float8, true FROM (SELECT 1 FROM job WHERE queue_state = 2 LIMIT $1) w`,
};

/**
 * The queue's numbers for a metrics scrape. What "cheap" means here: a scrape must not cost a
 * pass over the whole table, which keeps every finished job until it is pruned. Counting by
 * status is such a pass (about 150 ms for a million rows on a small machine, and it grows
 * without bound), so it is done only while the table is estimated to hold at most
 * `exactCountLimit` rows. Above that, finished statuses come from the planner's statistics
 * and pending/wip from index scans capped at the limit; `exactCounts` says which it was. The
 * queue depth and the oldest due job are always read from the pending index and cost
 * milliseconds however large the table is.
 */
export async function queueStatsStatement(db: Queryable, exactCountLimit: number): Promise<QueueStats> {
  const [queue] = await db.query<
    { estimatedRows: number; queueDepth: number; oldestDueAgeSeconds: number } & Partial<OldestTransaction>
  >(queueStats, [exactCountLimit]);
  const exactCounts = queue!.estimatedRows <= exactCountLimit;
  const rows = await db.query<{ status: JobStatus; jobs: number; exact: boolean }>(
    exactCounts ? statusCountsExact : statusCountsEstimated,
    exactCounts ? [] : [exactCountLimit],
  );
  const byStatus = Object.fromEntries(Object.values(JobStatusValues).map((status) => [status, 0])) as Record<
    JobStatus,
    number
  >;
  // An exact count of a status replaces its estimate.
  for (const row of [...rows].sort((a, b) => Number(a.exact) - Number(b.exact))) {
    if (row.status in byStatus) byStatus[row.status] = Math.round(row.jobs);
  }
  return {
    byStatus,
    exactCounts,
    queueDepth: queue!.queueDepth,
    oldestDueAgeSeconds: queue!.oldestDueAgeSeconds,
    oldestTransaction:
      queue!.pid == null
        ? null
        : {
            ageSeconds: queue!.ageSeconds!,
            pid: queue!.pid,
            applicationName: queue!.applicationName ?? '',
            state: queue!.state ?? '',
          },
  };
}
