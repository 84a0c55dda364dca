import type { Database } from '../db/database.ts';
import { type Sent, StatementBatcher } from '../db/statement-batcher.ts';
import type { JobEventHub } from '../jobs/events.ts';
import type { ClaimedJob } from '../jobs/sql/claimed.ts';
import {
  type Completion,
  completeJobsReturningStatement,
  completeJobsStatement,
  type Failure,
  failJobsStatement,
  storedCompletionsStatement,
  storedFailuresStatement,
} from '../jobs/sql/outcomes.ts';
import { type ProgressWrite, progressJobsStatement } from '../jobs/sql/progress.ts';
import { type ParentOutcome, parentsOfStatement } from '../jobs/sql/workflows.ts';
import { PermanentJobError } from '../kinds/define.ts';
import type { Logger } from '../logger.ts';
import type { FailureReason, Metrics } from '../metrics/metrics.ts';
import { type BackoffPolicy, retryDelayMs } from './backoff.ts';
import { printableAscii, storableError } from './storable-text.ts';

/**
 * What became of an outcome the database answered for: `stored`, the job's state changed (or had
 * changed already, by this very write whose answer was lost); `fenced`, another attempt owns the
 * job now, and the outcome was discarded.
 */
export type WriteOutcome = 'stored' | 'fenced';

export interface OutcomeWriterOptions {
  db: Database;
  hub: JobEventHub;
  logger: Logger;
  metrics?: Metrics;
  workerId: string;
  retry: BackoffPolicy;
  random?: () => number;
}

/**
 * Writes the outcomes of a worker's jobs, results and failures, each stream batched into shared
 * statements (see StatementBatcher), and records the stored ones in the logs and metrics. Each
 * write answers with its own job's outcome. Closed by the worker's stop(), so each start makes one.
 */
export class OutcomeWriter {
  private readonly completions: StatementBatcher<Completion, WriteOutcome>;
  private readonly failures: StatementBatcher<Failure, WriteOutcome>;
  private readonly progressWrites: StatementBatcher<ProgressWrite, WriteOutcome>;

  private readonly options: OutcomeWriterOptions;

  constructor(options: OutcomeWriterOptions) {
    this.options = options;
    const { db, logger } = options;
    this.completions = new StatementBatcher({
      send: async (items) => this.fenced(items, await this.writeResults(items), storedCompletionsStatement, 'result'),
      maxBatch: 1000,
      gatherTick: true,
      retryDelayMs: 500,
      log: { logger, what: 'results' },
    });
    this.failures = new StatementBatcher({
      send: async (items) => this.fenced(items, await failJobsStatement(db, items), storedFailuresStatement, 'failure'),
      maxBatch: 1000,
      gatherTick: true,
      retryDelayMs: 500,
      log: { logger, what: 'failures' },
      substitute: asciiFailure,
    });
    // No retry while the database is away: progress is a courtesy, the next report or the
    // outcome follows, and a retry would only hold up the outcome behind it (see ProgressReporter).
    this.progressWrites = new StatementBatcher({
      send: async (items) => {
        const accepted = await progressJobsStatement(db, items);
        return items.map((item): WriteOutcome => (accepted.has(item.id) ? 'stored' : 'fenced'));
      },
      maxBatch: 1000,
      gatherTick: true,
      log: { logger, what: 'progress values' },
    });
  }

  /** Stores a job's result. A result the database refused answers `refused` (see NotWritten). */
  /** `result` is the JSON text to store. */
  complete(job: ClaimedJob, result: string): Promise<Sent<WriteOutcome>> {
    return this.completions.push({ id: job.id, attempt: job.attempt, result });
  }

  /**
   * The failure of an attempt: retried after a backoff (the kind's, else the worker's), or final
   * when permanent or the last.
   */
  failureOf(job: ClaimedJob, thrown: unknown, backoff: BackoffPolicy = this.options.retry): Failure {
    const final = thrown instanceof PermanentJobError || job.attempt >= job.maxAttempts;
    const retryInMs = final ? null : retryDelayMs(job.attempt, backoff, this.options.random);
    return { id: job.id, attempt: job.attempt, error: storableError(thrown), retryInMs };
  }

  fail(failure: Failure): Promise<Sent<WriteOutcome>> {
    return this.failures.push(failure);
  }

  /**
   * Stores how far a running job has got (`progress` is JSON text). `fenced` when the attempt no
   * longer owns the job, or its outcome is stored already.
   */
  progress(job: ClaimedJob, progress: string): Promise<Sent<WriteOutcome>> {
    return this.progressWrites.push({ id: job.id, attempt: job.attempt, progress });
  }

  /** The outcomes of a job's parents (JobContext.parents): a read, made only when a handler asks. */
  parentsOf(jobId: string): Promise<Record<string, ParentOutcome>> {
    return parentsOfStatement(this.options.db, jobId);
  }

  /** Writes what is queued (one more try each), then answers new writes `closed`. */
  async close(): Promise<void> {
    await Promise.all([this.completions.close(), this.failures.close(), this.progressWrites.close()]);
  }

  /** Logs and counts a stored result. */
  recordCompleted(job: ClaimedJob, claimedAt: number): void {
    const { metrics, logger } = this.options;
    const runMs = performance.now() - claimedAt;
    logger.debug({ jobId: job.id, attempt: job.attempt, ms: Math.round(runMs) }, 'job completed');
    if (!metrics) return;
    const kind = { kind: job.kind };
    metrics.jobsCompleted.inc(kind);
    metrics.jobAttempts.observe({ ...kind, outcome: 'completed' }, job.attempt);
    metrics.claimToComplete.observe(kind, runMs / 1000);
    // createdAt is the database's clock and Date.now() this host's: skew between them shifts
    // this by a few milliseconds at worst, and a negative span is skew, not speed.
    metrics.createToComplete.observe(kind, Math.max(0, Date.now() - job.createdAtMs) / 1000);
  }

  /** Logs and counts a stored failure: a retry scheduled, or the job failed for good. */
  recordFailure(job: ClaimedJob, failure: Failure, thrown: unknown): void {
    const { metrics, logger } = this.options;
    if (failure.retryInMs === null) {
      recordFailed(this.options, job, thrown instanceof PermanentJobError ? 'permanent' : 'exhausted', thrown);
      return;
    }
    metrics?.jobsRetried.inc({ kind: job.kind });
    logger.debug({ jobId: job.id, attempt: job.attempt, err: thrown, retryInMs: failure.retryInMs }, 'job retrying');
  }

  /**
   * Stores results. When someone in this process watches one of the jobs (a subscriber of
   * `jobUpdated` on a ROLE=all process), the write answers with the whole rows and the hub hands
   * them over at once: that subscriber's message does not wait for the NOTIFY and a read of its
   * own, two round trips on the path from result to customer.
   */
  private async writeResults(items: readonly Completion[]): Promise<Set<string>> {
    const { db, hub } = this.options;
    if (!items.some((item) => hub.isWatched(item.id))) return completeJobsStatement(db, items);
    const jobs = await completeJobsReturningStatement(db, items);
    hub.deliverLocally(jobs);
    return new Set(jobs.map((job) => job.id));
  }

  /**
   * Each item's outcome, from the ids its fenced write accepted. An item the fence refused may be
   * this attempt's own write, sent again after its answer was lost; it is stored, and counted once.
   */
  private async fenced<T extends Completion | Failure>(
    items: readonly T[],
    accepted: Set<string>,
    storedBefore: (db: Database, items: readonly T[]) => Promise<Set<string>>,
    what: string,
  ): Promise<WriteOutcome[]> {
    const { db, logger, workerId } = this.options;
    // The usual batch is all accepted, and costs neither the filter nor the read.
    const refused = accepted.size < items.length ? items.filter((item) => !accepted.has(item.id)) : [];
    const own = refused.length === 0 ? undefined : await storedBefore(db, refused);
    return items.map((item): WriteOutcome => {
      if (accepted.has(item.id)) return 'stored';
      const line = { jobId: item.id, attempt: item.attempt, workerId };
      if (own?.has(item.id)) {
        logger.info(line, `${what} already stored by this attempt; the answer to its write was lost`);
        return 'stored';
      }
      logger.warn(line, `${what} discarded: another attempt owns the job now`);
      return 'fenced';
    });
  }
}

/** Logs and counts a job that failed for good. */
export function recordFailed(
  { logger, metrics }: { logger: Logger; metrics?: Metrics },
  job: { id: string; kind: string; attempt: number },
  reason: FailureReason,
  error: unknown,
): void {
  logger.debug({ jobId: job.id, attempt: job.attempt, reason, err: error }, 'job failed');
  metrics?.jobsFailed.inc({ kind: job.kind, reason });
  metrics?.jobAttempts.observe({ kind: job.kind, outcome: 'failed' }, job.attempt);
}

/**
 * A failure the database refused, with its message in printable ASCII, which it can always store.
 * A message that was ASCII already is sent unchanged: the refusal was not about its text.
 */
function asciiFailure(failure: Failure, refusal: unknown): Failure {
  const ascii = printableAscii(failure.error);
  if (ascii === failure.error) return { ...failure };
  const code = (refusal as { code?: unknown } | null)?.code;
  return { ...failure, error: `${ascii} (stored as ASCII: the database refused the text, SQLSTATE ${String(code)})` };
}
