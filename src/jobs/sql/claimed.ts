/**
 * What every claim statement shares (claim.ts, claim-limited.ts): the CTE that makes the chosen
 * jobs wip, or fails the stale ones on their last attempt, the history row of an attempt the
 * stale rule takes back, and the rows a claim answers with.
 */
import type { JobStatus } from '../../generated/prisma/client.ts';
import { epochMs } from './rows.ts';

export interface ClaimedJob {
  id: string;
  kind: string;
  /** As the kind's input schema made it at submission. */
  input: unknown;
  attempt: number;
  maxAttempts: number;
  /** When the job was added, in ms since the epoch: a number is far cheaper to read than a timestamp. */
  createdAtMs: number;
  /** The W3C trace context of the request that added the job; null when tracing was off then. */
  traceparent: string | null;
}

/** A row of `claimed`, as a claim statement returns it. */
export type ClaimedRow = ClaimedJob & { status: JobStatus; lastError: string | null };

/** A stale job the claim failed because its last attempt had timed out. */
export interface TimedOutJob {
  id: string;
  kind: string;
  attempt: number;
  lastError: string;
}

/**
 * Why a stale job's attempt ended, from the row `row` (a job, or a row of `stale`): its last_error,
 * and its history's entry. $4 is the default timeout.
 */
function timedOutError(row: string): string {
  return `'timed out: no heartbeat for ' || coalesce(${row}.timeout_seconds, $4) || ' s'
          || CASE WHEN ${row}.attempt >= ${row}.max_attempts THEN ' on its last attempt' ELSE '' END`;
}

/** What a claim's `stale` CTE selects: the columns `lostAttemptsCte` records. */
export const STALE_COLUMNS = 'id, attempt, max_attempts, timeout_seconds, locked_by';

/**
 * The CTE `lost`: a row of the history (job_attempt_error) for each attempt the stale rule takes
 * back, naming the worker presumed dead. It reads only `stale`, which is empty in almost every
 * claim: the ordinary claim pays an insert of no rows, which measured nothing here (medians of
 * six rounds, with and without it: an idle poll 0.146 and 0.154 ms, a claim of 100 among
 * 200,000 pending 3.13 and 3.19 ms, the difference within the noise). A second row for one
 * attempt cannot happen (a claim and a failure are both fenced on the attempt); were it ever to,
 * the claim keeps the first rather than fail.
 */
export const lostAttemptsCte = `lost AS (
    INSERT INTO job_attempt_error (job_id, attempt, error, failed_at, worker)
    SELECT id, attempt, ${timedOutError('stale')}, now(), locked_by FROM stale
    ON CONFLICT DO NOTHING
  )`;

/**
 * The CTE `claimed`: the jobs of `ids` (an array expression of locked ids) made wip for worker
 * $1, or failed when they are stale on their last attempt ($4 is the default timeout, for the
 * message). Every claim statement shares it, so a job is claimed the same way by each. A stale
 * job's lost attempt becomes its last_error, as a failure's does (and a row of its history,
 * through `lost`), and a job failed here keeps naming the worker that lost it.
 * A job failed here settles its dependents (workflows) in the same statement: each claim
 * statement joins `settleDependents('claimed', ...)`, one boolean test per claimed row.
 */
export function claimedCte(ids: string): string {
  return `claimed AS (
    UPDATE job SET
      status = CASE WHEN job.status = 'wip' AND job.attempt >= job.max_attempts
                    THEN 'failed' ELSE 'wip' END::job_status,
      attempt = CASE WHEN job.status = 'wip' AND job.attempt >= job.max_attempts
                     THEN job.attempt ELSE job.attempt + 1 END,
      last_error = CASE WHEN job.status = 'wip' THEN ${timedOutError('job')} ELSE job.last_error END,
      completed_on = CASE WHEN job.status = 'wip' AND job.attempt >= job.max_attempts
                          THEN now() END,
      locked_by = CASE WHEN job.status = 'wip' AND job.attempt >= job.max_attempts
                       THEN job.locked_by ELSE $1 END,
      last_updated = now(),
      version = job.version + 1
    WHERE job.id = ANY (${ids})
    RETURNING job.id, job.kind, job.input, job.attempt, job.max_attempts AS "maxAttempts", job.status,
              job.version, job.priority, job.run_at, job.last_error AS "lastError",
              ${epochMs('job.created_at')} AS "createdAtMs", job.traceparent, job.has_dependents
  )`;
}

export interface ClaimResult {
  /** Jobs now `wip` and held by this worker, in the order they should start. */
  claimed: ClaimedJob[];
  /** Stale jobs on their last attempt, failed by this claim instead of run again. */
  timedOut: TimedOutJob[];
}

/** A claim's rows, split into the jobs it took and the stale ones it failed. */
export function toClaimResult(rows: readonly ClaimedRow[]): ClaimResult {
  const result: ClaimResult = { claimed: [], timedOut: [] };
  for (const { status, lastError, ...job } of rows) {
    if (status === 'wip') result.claimed.push(job);
    else result.timedOut.push({ id: job.id, kind: job.kind, attempt: job.attempt, lastError: lastError ?? 'timed out' });
  }
  return result;
}
