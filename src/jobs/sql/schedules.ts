/**
 * Schedules: their rows, and the one statement that turns due ticks into jobs. Every change to a
 * schedule is announced on `schedule_changes`, so each scheduler re-reads them at once instead of
 * polling (src/schedules/scheduler.ts).
 */
import type { Queryable, Statement } from '../../db/database.ts';
import type { Schedule } from '../../generated/prisma/client.ts';
import { announce } from './ctes.ts';

export const SCHEDULE_CHANGES_CHANNEL = 'schedule_changes';

/** A schedule as the API shows it: its row, and the job its latest tick made (null before the first). */
export type StoredSchedule = Schedule & { lastJobId: string | null };

const SCHEDULE_COLUMNS = `s.id, s.owner, s.name, s.declared, s.kind, s.input, s.cron, s.time_zone AS "timeZone", s.catch_up AS "catchUp",
  s.catch_up_limit AS "catchUpLimit", s.paused, s.last_fire_at AS "lastFireAt", s.created_at AS "createdAt", s.updated_at AS "updatedAt",
  (SELECT t.job_id FROM schedule_tick t WHERE t.schedule_id = s.id ORDER BY t.fire_time DESC LIMIT 1) AS "lastJobId"`;

// A statement that changes schedules tells every scheduler; NOTIFY sends one message per
// transaction for equal payloads, however many rows changed.
const NOTIFY_CHANGE = `pg_notify('${SCHEDULE_CHANGES_CHANNEL}', '')`;

export interface NewSchedule {
  id: string;
  owner: string;
  kind: string;
  /** JSON text, as the kind's input schema made it. */
  input: string;
  cron: string;
  timeZone: string;
  catchUp: Schedule['catchUp'];
  catchUpLimit: number;
  paused: boolean;
}

const createSchedule: Statement = {
  name: 'schedule_create',
  text: `
  WITH s AS (
    INSERT INTO schedule (id, owner, kind, input, cron, time_zone, catch_up, catch_up_limit, paused)
    VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9)
    RETURNING *
  )
  SELECT ${SCHEDULE_COLUMNS}, ${NOTIFY_CHANGE} FROM s`,
};

export async function createScheduleStatement(db: Queryable, schedule: NewSchedule): Promise<StoredSchedule> {
  const { id, owner, kind, input, cron, timeZone, catchUp, catchUpLimit, paused } = schedule;
  const [row] = await db.query<StoredSchedule>(createSchedule, [id, owner, kind, input, cron, timeZone, catchUp, catchUpLimit, paused]);
  return withoutNotify(row!);
}

const listSchedules: Statement = {
  name: 'schedules_list',
  text: `SELECT ${SCHEDULE_COLUMNS} FROM schedule s WHERE ($1::text IS NULL OR s.owner = $1) ORDER BY s.created_at, s.id`,
};

/** The owner's schedules (every owner's with null, for an operator), oldest first. An owner has few; no paging. */
export function listSchedulesStatement(db: Queryable, owner: string | null): Promise<StoredSchedule[]> {
  return db.query<StoredSchedule>(listSchedules, [owner]);
}

const readSchedule: Statement = {
  name: 'schedule_read',
  text: `SELECT ${SCHEDULE_COLUMNS} FROM schedule s WHERE s.id = $1 AND ($2::text IS NULL OR s.owner = $2)`,
};

export async function readScheduleStatement(db: Queryable, id: string, owner: string | null): Promise<StoredSchedule | null> {
  const [row] = await db.query<StoredSchedule>(readSchedule, [id, owner]);
  return row ?? null;
}

/*
 * Pause or resume. Resuming settles every tick up to now: the ticks of a pause were not missed,
 * they were not wanted, so the catch-up policy must not fire them.
 */
const setPaused: Statement = {
  name: 'schedule_set_paused',
  text: `
  WITH s AS (
    UPDATE schedule SET paused = $3, updated_at = now(),
      last_fire_at = CASE WHEN paused AND NOT $3 THEN greatest(last_fire_at, now()) ELSE last_fire_at END
    WHERE id = $1 AND ($2::text IS NULL OR owner = $2)
    RETURNING *
  )
  SELECT ${SCHEDULE_COLUMNS}, ${NOTIFY_CHANGE} FROM s`,
};

export async function setSchedulePausedStatement(db: Queryable, id: string, owner: string | null, paused: boolean): Promise<StoredSchedule | null> {
  const [row] = await db.query<StoredSchedule>(setPaused, [id, owner, paused]);
  return row ? withoutNotify(row) : null;
}

/** Its ticks go with it (ON DELETE CASCADE); the jobs they made stay. */
const deleteSchedule: Statement = {
  name: 'schedule_delete',
  text: `
  WITH deleted AS (DELETE FROM schedule WHERE id = $1 AND ($2::text IS NULL OR owner = $2) RETURNING id)
  SELECT id, ${NOTIFY_CHANGE} FROM deleted`,
};

export async function deleteScheduleStatement(db: Queryable, id: string, owner: string | null): Promise<boolean> {
  return (await db.query(deleteSchedule, [id, owner])).length > 0;
}

/*
 * A kind's declared schedules, made or brought up to date by every process at start, found by
 * (kind, name). The catch-up policies come as text[]: PGlite cannot send an array of an enum
 * (an empty one arrived as "", a malformed array literal, and the service could not start). An operator's pause survives (paused is left alone); a declared schedule that the
 * kinds of `$1` no longer declare is deleted. Processes that start together upsert the same rows:
 * the unique index makes one insert win and the others update, with the same values.
 */
const declareSchedules: Statement = {
  name: 'schedules_declare',
  text: `
  WITH declared AS (
    SELECT * FROM ROWS FROM (unnest($2::uuid[]), unnest($3::text[]), unnest($4::text[]), jsonb_array_elements($5::jsonb),
                             unnest($6::text[]), unnest($7::text[]), unnest($8::text[]), unnest($9::int[]))
      AS d(id, kind, name, input, cron, time_zone, catch_up, catch_up_limit)
  ),
  upserted AS (
    INSERT INTO schedule AS s (id, declared, kind, name, input, cron, time_zone, catch_up, catch_up_limit)
    SELECT id, true, kind, name, input, cron, time_zone, catch_up::schedule_catch_up, catch_up_limit FROM declared
    ON CONFLICT (kind, name) WHERE declared DO UPDATE
      SET input = excluded.input, cron = excluded.cron, time_zone = excluded.time_zone, catch_up = excluded.catch_up,
          catch_up_limit = excluded.catch_up_limit, updated_at = now()
      WHERE (s.input, s.cron, s.time_zone, s.catch_up, s.catch_up_limit)
            IS DISTINCT FROM (excluded.input, excluded.cron, excluded.time_zone, excluded.catch_up, excluded.catch_up_limit)
    RETURNING s.id
  ),
  removed AS (
    DELETE FROM schedule s WHERE s.declared AND s.kind = ANY($1::text[])
      AND NOT EXISTS (SELECT 1 FROM declared d WHERE d.kind = s.kind AND d.name = s.name)
    RETURNING s.id
  ),
  changed AS (SELECT id FROM upserted UNION ALL SELECT id FROM removed)
  SELECT count(*)::int AS changed, CASE WHEN count(*) > 0 THEN ${NOTIFY_CHANGE} END FROM changed`,
};

export interface DeclaredSchedule {
  id: string;
  kind: string;
  name: string;
  input: string;
  cron: string;
  timeZone: string;
  catchUp: Schedule['catchUp'];
  catchUpLimit: number;
}

/** Brings the declared schedules of `kinds` in line with `schedules`; returns how many rows changed. */
export async function declareSchedulesStatement(db: Queryable, kinds: readonly string[], schedules: readonly DeclaredSchedule[]): Promise<number> {
  const [row] = await db.query<{ changed: number }>(declareSchedules, [
    kinds,
    schedules.map((s) => s.id),
    schedules.map((s) => s.kind),
    schedules.map((s) => s.name),
    `[${schedules.map((s) => s.input).join(',')}]`,
    schedules.map((s) => s.cron),
    schedules.map((s) => s.timeZone),
    schedules.map((s) => s.catchUp),
    schedules.map((s) => s.catchUpLimit),
  ]);
  return row?.changed ?? 0;
}

const activeSchedules: Statement = {
  name: 'schedules_active',
  text: `
  SELECT id, kind, cron, time_zone AS "timeZone", catch_up AS "catchUp", catch_up_limit AS "catchUpLimit",
         last_fire_at AS "lastFireAt", created_at AS "createdAt"
  FROM schedule WHERE NOT paused AND kind = ANY($1::text[])`,
};

export type ActiveSchedule = Pick<Schedule, 'id' | 'kind' | 'cron' | 'timeZone' | 'catchUp' | 'catchUpLimit' | 'lastFireAt' | 'createdAt'>;

/** The running schedules of the kinds a scheduler can make jobs of. */
export function activeSchedulesStatement(db: Queryable, kinds: readonly string[]): Promise<ActiveSchedule[]> {
  return db.query<ActiveSchedule>(activeSchedules, [kinds]);
}

/*
 * Fires a schedule's due ticks: one job per tick that no other scheduler fired first.
 * - `ticks`: the tick rows go in with ON CONFLICT DO NOTHING on (schedule_id, fire_time). Two
 *   schedulers firing the same tick at once meet at that key: the second waits for the first's
 *   transaction and, once it commits, skips the row. Only a tick row that went in makes a job, in
 *   `inserted`, so each tick makes exactly one, with no leader and no lock held between statements.
 * - Ticks at or before `last_fire_at`, as this statement reads it, are dropped: another scheduler
 *   has settled them already, firing or passing over them (a catch-up). So a scheduler whose view
 *   was a moment old cannot fire a tick that a catch-up passed over.
 * - `advanced` moves `last_fire_at` on to $4, the latest tick due, fired or passed over, unless
 *   another scheduler moved it further. Its row lock is held only for this statement.
 * - Tick rows a day older than that are deleted: no scheduler computes ticks that old, and the
 *   table keeps a day of history (and each schedule's latest job) per schedule.
 * - A paused or deleted schedule matches nothing in `s`, and fires nothing.
 * Each job's run_at is its tick: the handler's job shows which tick it is for, and ticks fired by
 * a catch-up run oldest first. The jobs are announced as any new job is, so workers wake at once.
 */
const fireSchedule: Statement = {
  name: 'schedule_fire',
  text: `
  WITH s AS (SELECT id, kind, input, owner, last_fire_at FROM schedule WHERE id = $1 AND NOT paused),
  ticks AS (
    INSERT INTO schedule_tick (schedule_id, fire_time, job_id)
    SELECT s.id, t.fire_time, t.job_id FROM s, unnest($2::timestamptz[], $3::uuid[]) AS t(fire_time, job_id)
    WHERE s.last_fire_at IS NULL OR t.fire_time > s.last_fire_at
    ORDER BY t.fire_time
    ON CONFLICT DO NOTHING
    RETURNING job_id, fire_time
  ),
  inserted AS (
    INSERT INTO job (id, kind, input, max_attempts, timeout_seconds, priority, owner, run_at)
    SELECT ticks.job_id, s.kind, s.input, $5, $6, $7, s.owner, ticks.fire_time FROM ticks, s
    RETURNING *
  ),
  advanced AS (
    UPDATE schedule SET last_fire_at = $4
    WHERE id = $1 AND NOT paused AND (last_fire_at IS NULL OR last_fire_at < $4)
    RETURNING id
  ),
  pruned AS (
    DELETE FROM schedule_tick WHERE schedule_id = $1 AND fire_time < $4::timestamptz - interval '1 day'
    RETURNING 1
  ),
  ${announce('inserted', { delayable: true })}
  SELECT inserted.id AS "jobId", ticks.fire_time AS "fireTime"
  FROM inserted JOIN ticks ON ticks.job_id = inserted.id, announced`,
};

export interface TickJobOptions {
  maxAttempts: number;
  timeoutSeconds: number | null;
  priority: number;
}

/**
 * Makes one job per tick of `ticks` (with the ids `jobIds`) that no scheduler fired before, and
 * settles the schedule through `through`. Returns the jobs made, with their ticks.
 */
export function fireScheduleStatement(
  db: Queryable,
  scheduleId: string,
  ticks: readonly { fireTime: Date; jobId: string }[],
  through: Date,
  options: TickJobOptions,
): Promise<Array<{ jobId: string; fireTime: Date }>> {
  return db.query(fireSchedule, [
    scheduleId,
    ticks.map((tick) => tick.fireTime),
    ticks.map((tick) => tick.jobId),
    through,
    options.maxAttempts,
    options.timeoutSeconds,
    options.priority,
  ]);
}

function withoutNotify(row: StoredSchedule & { pg_notify?: unknown }): StoredSchedule {
  const { pg_notify: _notified, ...schedule } = row;
  return schedule;
}
