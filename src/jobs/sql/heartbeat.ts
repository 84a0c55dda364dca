/** The heartbeat of a worker's running jobs: what keeps them out of the stale rule. */
import type { Queryable, Statement } from '../../db/database.ts';
import { commitWithoutFlushWait } from './ctes.ts';

export interface Held {
  id: string;
  attempt: number;
}

// No version bump and no NOTIFY: a heartbeat changes nothing a customer can see.
const heartbeat: Statement = {
  name: 'jobs_heartbeat',
  text: `
  WITH beaten AS (
    UPDATE job SET last_updated = now()
    FROM unnest($1::uuid[], $2::int[]) AS h(id, attempt)
    WHERE job.id = h.id AND job.attempt = h.attempt AND job.status = 'wip'
    RETURNING job.id
  ),
  ${commitWithoutFlushWait}
  SELECT id FROM beaten, flush_not_awaited`,
};

/** Keeps running jobs out of the stale rule. Returns the ids still held; the rest were lost. */
export async function heartbeatStatement(db: Queryable, held: readonly Held[]): Promise<Set<string>> {
  const rows = await db.query<{ id: string }>(heartbeat, [held.map((h) => h.id), held.map((h) => h.attempt)]);
  return new Set(rows.map((row) => row.id));
}
