/**
 * The `job_events` channel and its payload: what a statement announces about the jobs it changed,
 * and how a listener reads it back. The items are built in SQL by `announce` (./ctes.ts) and sent
 * in chunks by `job_announce` (prisma/migrations).
 */
import type { Job, JobStatus } from '../../generated/prisma/client.ts';

export const JOB_EVENTS_CHANNEL = 'job_events';

/**
 * An item that names no job: pending work may have become claimable all at once (a kind was
 * resumed). Workers hear it as a pending job due now and claim; no job's watcher has its id.
 */
export const KIND_RESUMED_ITEM = '*:pending:0';

/**
 * A job's status as an event tells it: `deleted` is no status a row can have, and says that the
 * pruner removed the job (its version is then one past the last the row had).
 */
export type JobEventStatus = JobStatus | 'deleted';

/** What a NOTIFY on `job_events` says about one job: enough to decide whether to re-read it. */
export interface JobEvent {
  id: string;
  status: JobEventStatus;
  version: number;
  /** For a pending job whose `runAt` has not come: in how many ms, as of the change. */
  dueInMs?: number;
  /** The job itself, when the change was made in this process (see JobEventHub.deliverLocally). */
  job?: Job;
}

/**
 * The payload lists changes as `id:status:version`, comma-separated, up to 100 to a NOTIFY. A
 * pending job that is not due yet adds `:ms` until it is, so that workers can wake up for it
 * then. One NOTIFY per change would cost a batch of 20,000 jobs 20,000 notifications; chunking
 * makes it 200. An item is at most 71 bytes (a 10-digit version, a `runAt` in the year 9999), so
 * a NOTIFY stays under PostgreSQL's limit of 8,000 bytes; a usual one is about 5 kB.
 */
export function parseJobEvents(payload: string): JobEvent[] {
  const events: JobEvent[] = [];
  for (const item of payload.split(',')) {
    const [id, status, version, dueInMs] = item.split(':');
    if (!id || !status || !version) continue;
    const event: JobEvent = { id, status: status as JobEventStatus, version: Number(version) };
    if (dueInMs) event.dueInMs = Number(dueInMs);
    events.push(event);
  }
  return events;
}
