/**
 * What a worker writes when an attempt ends: a result, or a failure (retried later or final), each
 * fenced on (id, attempt, status = 'wip'); and, for the writes a fence refused, whether the row
 * already holds that very outcome.
 */
import type { Queryable, Statement } from '../../db/database.ts';
import type { Job } from '../../generated/prisma/client.ts';
import { announce, settleDependents } from './ctes.ts';
import { columns, jsonArray, type JobRow, toJob } from './rows.ts';

export interface Completion {
  id: string;
  attempt: number;
  /** JSON text. */
  result: string;
}

function completeJobsText(returning: string, answer: string, flag: string): string {
  return `
  WITH done AS (
    UPDATE job SET status = 'completed', result = c.result, completed_on = now(), last_updated = now(),
                   version = job.version + 1
    FROM ROWS FROM (unnest($1::uuid[]), unnest($2::int[]), jsonb_array_elements($3::jsonb)) AS c(id, attempt, result)
    WHERE job.id = c.id AND job.attempt = c.attempt AND job.status = 'wip'
    RETURNING ${returning}
  ),
  ${announce('done')},
  ${settleDependents('done', { flag })}
  SELECT ${answer} FROM done, announced, settled`;
}

const completeJobs: Statement = {
  name: 'jobs_complete',
  text: completeJobsText('job.id, job.status, job.version, job.has_dependents', 'done.id', 'has_dependents'),
};

/** The same write, answering with the whole rows: for subscribers in this process (see below). */
const completeJobsReturningRows: Statement = {
  name: 'jobs_complete_rows',
  text: completeJobsText(columns('job'), 'done.*', '"hasDependents"'),
};

export async function completeJobsStatement(db: Queryable, completions: readonly Completion[]): Promise<Set<string>> {
  const rows = await db.query<{ id: string }>(completeJobs, completionValues(completions));
  return new Set(rows.map((row) => row.id));
}

/**
 * Writes results and answers with the completed jobs as they now are, so a subscriber in the
 * same process can be handed its job without reading it again. Costlier per row than the plain
 * write (every column parsed), so the worker uses it only for jobs someone here is watching.
 */
export async function completeJobsReturningStatement(db: Queryable, completions: readonly Completion[]): Promise<Job[]> {
  const rows = await db.query<JobRow>(completeJobsReturningRows, completionValues(completions));
  return rows.map(toJob);
}

/**
 * The results go as one JSON array, not a jsonb[]: the driver escapes every quote of every
 * element of an array parameter, which was a tenth of the worker's CPU in a drain of `add` jobs.
 */
function completionValues(completions: readonly Completion[]): unknown[] {
  return [completions.map((c) => c.id), completions.map((c) => c.attempt), jsonArray(completions.map((c) => c.result))];
}

export interface Failure {
  id: string;
  attempt: number;
  error: string;
  /** Delay before the next attempt, or null when this failure is final. */
  retryInMs: number | null;
}

/*
 * A failure is also a row of the job's history (job_attempt_error), written by the same statement
 * from the rows the fence let through: only a failing attempt pays for it, and a failure sent
 * again, which the fence refuses, writes no second row. The worker is the row's locked_by, which
 * neither this nor a completion clears: the job keeps naming the worker that last held it.
 */
const failJobs: Statement = {
  name: 'jobs_fail',
  text: `
  WITH failed AS (
    UPDATE job SET
      status = CASE WHEN f.retry_in_ms IS NULL THEN 'failed' ELSE 'pending' END::job_status,
      run_at = CASE WHEN f.retry_in_ms IS NULL THEN job.run_at
                    ELSE now() + make_interval(secs => f.retry_in_ms / 1000.0) END,
      completed_on = CASE WHEN f.retry_in_ms IS NULL THEN now() END,
      last_error = f.error, last_updated = now(), version = job.version + 1
    FROM unnest($1::uuid[], $2::int[], $3::text[], $4::int[]) AS f(id, attempt, error, retry_in_ms)
    WHERE job.id = f.id AND job.attempt = f.attempt AND job.status = 'wip'
    RETURNING job.id, job.status, job.version, job.run_at, job.has_dependents, job.attempt, job.last_error, job.locked_by
  ),
  recorded AS (
    INSERT INTO job_attempt_error (job_id, attempt, error, failed_at, worker)
    SELECT id, attempt, last_error, now(), locked_by FROM failed
  ),
  ${announce('failed', { delayable: true })},
  ${settleDependents('failed', { condition: "status = 'failed'" })}
  SELECT id FROM failed, announced, settled`,
};

/** Records failed attempts: back to pending with a delay, or failed for good. Fenced. */
export async function failJobsStatement(db: Queryable, failures: readonly Failure[]): Promise<Set<string>> {
  const rows = await db.query<{ id: string }>(failJobs, failureValues(failures));
  return new Set(rows.map((row) => row.id));
}

function failureValues(failures: readonly Failure[]): unknown[] {
  return [
    failures.map((f) => f.id),
    failures.map((f) => f.attempt),
    failures.map((f) => f.error),
    failures.map((f) => f.retryInMs),
  ];
}

/*
 * Outcomes the asking attempt has stored already. A write whose answer was lost (the connection
 * dropped after its COMMIT) is sent again, and the fence refuses it, the job being no longer
 * `wip`; these tell that case from a job that another attempt owns: the row holds this attempt's
 * own outcome. No other writer can have put it there: a claim bumps the attempt, and a hand-back,
 * which lowers it again, comes only after its worker dropped the outcomes it had not written.
 * Plain snapshot reads, no lock, run only for the items a fence refused. A completed row stays
 * completed (or becomes retrieved); a failure that scheduled a retry is recognised until the
 * retry is claimed.
 */
const storedCompletions: Statement = {
  name: 'jobs_stored_completions',
  text: `
  SELECT job.id FROM job
  JOIN ROWS FROM (unnest($1::uuid[]), unnest($2::int[]), jsonb_array_elements($3::jsonb)) AS c(id, attempt, result)
    ON job.id = c.id AND job.attempt = c.attempt AND job.result = c.result
  WHERE job.status IN ('completed', 'retrieved')`,
};

const storedFailures: Statement = {
  name: 'jobs_stored_failures',
  text: `
  SELECT job.id FROM job
  JOIN unnest($1::uuid[], $2::int[], $3::text[], $4::int[]) AS f(id, attempt, error, retry_in_ms)
    ON job.id = f.id AND job.attempt = f.attempt AND job.last_error = f.error
  WHERE job.status = CASE WHEN f.retry_in_ms IS NULL THEN 'failed' ELSE 'pending' END::job_status`,
};

/** Of completions the fence refused, those whose job already holds exactly that result of that attempt. */
export async function storedCompletionsStatement(
  db: Queryable,
  completions: readonly Completion[],
): Promise<Set<string>> {
  const rows = await db.query<{ id: string }>(storedCompletions, completionValues(completions));
  return new Set(rows.map((row) => row.id));
}

/** Of failures the fence refused, those whose job already holds exactly that outcome of that attempt. */
export async function storedFailuresStatement(db: Queryable, failures: readonly Failure[]): Promise<Set<string>> {
  const rows = await db.query<{ id: string }>(storedFailures, failureValues(failures));
  return new Set(rows.map((row) => row.id));
}
