// CTEs that several statements share.

/**
 * A CTE that announces the rows of `changed` and yields one row. The final SELECT must join it,
 * or PostgreSQL skips a SELECT CTE nobody reads. `job_announce` is defined in the migrations.
 * With `delayable`, `changed` has `run_at`, and a pending job due later says in how long: the
 * delay is taken here, on the database's clock, so the hosts' clocks need not agree. It is
 * rounded up, and counted from before the commit that sends it, so a wake-up is never early.
 */
export function announce(changed: string, { delayable = false } = {}): string {
  const due = delayable
    ? ` || CASE WHEN status = 'pending' AND run_at > now()
               THEN ':' || ceil(extract(epoch FROM run_at - now()) * 1000)::bigint::text ELSE '' END`
    : '';
  return `announced AS (
    SELECT job_announce(array_agg(id::text || ':' || status::text || ':' || version::text${due})) AS count
    FROM ${changed}
  )`;
}

/*
 * A CTE that lets the statement's commit return before its WAL is flushed: 0.35 → 0.23 ms a
 * statement here (pgbench, one client). Only for statements whose loss in a database crash is
 * harmless. A claim: the job is pending again and is claimed anew, and the old attempt's result
 * is fenced off; a result written after the claim was flushed with it, WAL being written in
 * order. A heartbeat: the next one comes within a third of the timeout. Its NOTIFY may reach
 * listeners before the flush, so a crash can take back a WIP a subscriber saw, or the failure of
 * a stale job on its last attempt (the next claim fails it again); never a result.
 * The final SELECT must join it, as it must `announced`.
 */
export const commitWithoutFlushWait = `flush_not_awaited AS (SELECT set_config('synchronous_commit', 'off', true))`;

/**
 * A CTE that settles the dependents of the rows of `changed` that have some (see
 * job_settle_dependents in the workflows migration), in the statement that finished them, and
 * yields one row: the final SELECT must join it. `changed` returns `has_dependents` (or the
 * column `flag` names); `condition` narrows the rows further. A row without dependents costs one boolean test: the aggregate over
 * no rows is NULL, and the function, being STRICT, is not called.
 */
export function settleDependents(changed: string, { condition = 'true', flag = 'has_dependents' } = {}): string {
  return `settled AS (
    SELECT job_settle_dependents(array_agg(id ORDER BY id)) AS count
    FROM ${changed} WHERE ${flag} AND ${condition}
  )`;
}
