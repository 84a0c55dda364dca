/** Pausing kinds: rows of `job_kind_pause`, which every claim reads (see claim.ts). */
import type { Queryable, Statement } from '../../db/database.ts';
import { KIND_RESUMED_ITEM } from './job-events.ts';

/** The row that pauses every kind; no kind can be named so (names start with a letter). */
export const ALL_KINDS = '*';

/*
 * Pausing needs no lock and no announcement: a claim that began before the row committed may
 * still take the kind's jobs (they run, as running jobs do), and every claim after it sees the
 * row. Pausing twice keeps the first time.
 */
const pauseKinds: Statement = {
  name: 'kinds_pause',
  text: `INSERT INTO job_kind_pause (kind) VALUES ($1) ON CONFLICT (kind) DO NOTHING`,
};

/*
 * Resuming deletes the rows and wakes every worker: workers sleep while they have nothing to
 * claim, and a paused kind's jobs were nothing to them. The wake-up is an item of `job_events`
 * that names no job (see KIND_RESUMED_ITEM), sent by the same statement, so it is heard only
 * once the rows are gone. `$1` NULL deletes every row.
 */
const resumeKinds: Statement = {
  name: 'kinds_resume',
  text: `
  WITH deleted AS (DELETE FROM job_kind_pause WHERE $1::text IS NULL OR kind = $1 RETURNING kind)
  SELECT pg_notify('job_events', '${KIND_RESUMED_ITEM}') FROM (SELECT count(*) FROM deleted) AS done`,
};

const pausedKinds: Statement = {
  name: 'kinds_paused',
  text: `SELECT kind FROM job_kind_pause`,
};

/** Pauses `kind`, or every kind with ALL_KINDS (those added later too). */
export async function pauseKindStatement(db: Queryable, kind: string): Promise<void> {
  await db.query(pauseKinds, [kind]);
}

/** Resumes `kind`; with null, resumes every kind, those paused one by one included. */
export async function resumeKindStatement(db: Queryable, kind: string | null): Promise<void> {
  await db.query(resumeKinds, [kind]);
}

/** The names in `job_kind_pause`: paused kinds, and ALL_KINDS while every kind is paused. */
export async function pausedKindsStatement(db: Queryable): Promise<Set<string>> {
  const rows = await db.query<{ kind: string }>(pausedKinds);
  return new Set(rows.map((row) => row.kind));
}
