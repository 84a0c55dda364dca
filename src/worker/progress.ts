import { z } from 'zod';
import type { JobKind } from '../kinds/define.ts';
import { toPayloadJson } from '../kinds/payload.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { HeldJob } from './executor.ts';
import type { OutcomeWriter } from './outcome-writer.ts';

export interface ProgressOptions {
  /** A job's progress is written at most this often (PROGRESS_MIN_INTERVAL_MS). */
  minIntervalMs: number;
  /** The largest progress value stored, as UTF-8 JSON (PROGRESS_MAX_BYTES). */
  maxBytes: number;
  logger: Logger;
  metrics?: Metrics;
}

/**
 * One job's progress on its way from the handler to the row. Made by the job's first report, so
 * a kind that never reports costs nothing.
 */
export interface JobProgress {
  /** The newest value not sent yet, as JSON text: a later report replaces it. */
  pending: string | undefined;
  /** performance.now() when the last write was sent; -Infinity before the first. */
  sentAt: number;
  /**
   * The write under way. At most one per job, and the next is sent only after it answered, so a
   * value can never reach the row after a later one, whatever the batcher's retries and splits.
   */
  writing: Promise<void> | undefined;
  /** Sends `pending` once the minimum interval since the last write has passed. */
  timer: NodeJS.Timeout | undefined;
  /** The handler returned: finish() writes what is left, and nothing is scheduled any more. */
  finishing: boolean;
  /** An invalid value was logged already: one warning per job is enough. */
  warned: boolean;
}

/** Any JSON object, for a kind that defines no progress schema. */
const ANY_OBJECT = z.record(z.string(), z.unknown());

/**
 * Carries the values handlers pass to `context.progress` to the database: checked, coalesced to
 * at most one write per job every `minIntervalMs`, one write in flight per job, and the last
 * value written before the job's outcome (see finish). Writes of different jobs share statements
 * through the OutcomeWriter's batcher.
 */
export class ProgressReporter {
  private readonly options: ProgressOptions;

  constructor(options: ProgressOptions) {
    this.options = options;
  }

  /** A handler's report. Never throws and never waits: a handler must not fail over progress. */
  report(entry: HeldJob, kind: JobKind, writer: OutcomeWriter, value: unknown): void {
    try {
      // After the handler returned, or once the job is lost, nothing it reports can be stored.
      if (entry.state !== 'running') return;
      entry.progress ??= { pending: undefined, sentAt: -Infinity, writing: undefined, timer: undefined, finishing: false, warned: false };
      const progress = entry.progress;
      const json = this.storable(entry, kind, progress, value);
      if (json === undefined) return;
      if (progress.pending !== undefined) this.options.metrics?.progressDropped.inc({ kind: entry.job.kind, reason: 'coalesced' });
      progress.pending = json;
      this.schedule(entry, progress, writer);
    } catch (error) {
      this.options.logger.warn({ err: error, jobId: entry.job.id, attempt: entry.job.attempt }, 'progress report failed');
    }
  }

  /**
   * Called once the handler returned, before the outcome is written: waits for the write under
   * way, then writes the value still pending, if any. The outcome follows in its own statement;
   * a progress write that reached the row after it would find the job no longer `wip`, but
   * waiting here means none does, and the last value reported is the one the job keeps.
   */
  async finish(entry: HeldJob, writer: OutcomeWriter): Promise<void> {
    const progress = this.stopScheduling(entry);
    if (!progress) return;
    await progress.writing;
    if (progress.pending === undefined) return;
    this.send(entry, progress, writer);
    await progress.writing;
  }

  /** The job is let go without an outcome (lost, handed back): its pending value is dropped. */
  abandon(entry: HeldJob): void {
    const progress = this.stopScheduling(entry);
    if (progress) progress.pending = undefined;
  }

  /** No write is scheduled for the job any more; the one under way, if any, goes on. */
  private stopScheduling(entry: HeldJob): JobProgress | undefined {
    const progress = entry.progress;
    if (!progress) return undefined;
    progress.finishing = true;
    clearTimeout(progress.timer);
    progress.timer = undefined;
    return progress;
  }

  private schedule(entry: HeldJob, progress: JobProgress, writer: OutcomeWriter): void {
    // A write under way, or a timer set: either picks the newest pending value up when it ends.
    if (progress.finishing || progress.pending === undefined || progress.writing || progress.timer) return;
    const wait = progress.sentAt + this.options.minIntervalMs - performance.now();
    if (wait <= 0) {
      this.send(entry, progress, writer);
      return;
    }
    progress.timer = setTimeout(() => {
      progress.timer = undefined;
      if (entry.state === 'running') this.schedule(entry, progress, writer);
    }, wait);
    // A timer must not keep a stopping process alive: the outcome's finish() writes what is left.
    progress.timer.unref();
  }

  private send(entry: HeldJob, progress: JobProgress, writer: OutcomeWriter): void {
    const { job } = entry;
    const json = progress.pending!;
    progress.pending = undefined;
    progress.sentAt = performance.now();
    const { metrics } = this.options;
    metrics?.progressWrites.inc({ kind: job.kind });
    const answered = (outcome: unknown) => {
      progress.writing = undefined;
      if (outcome !== 'stored') metrics?.progressDropped.inc({ kind: job.kind, reason: 'fenced' });
      if (entry.state === 'running') this.schedule(entry, progress, writer);
    };
    progress.writing = writer.progress(job, json).then(answered, answered);
  }

  /** The value as JSON text to store, or undefined (and one warning per job) when it is not fit. */
  private storable(entry: HeldJob, kind: JobKind, progress: JobProgress, value: unknown): string | undefined {
    const checked = (kind.progress ?? ANY_OBJECT).safeParse(value);
    let problem: string | undefined;
    if (!checked.success) {
      const [issue] = checked.error.issues;
      const where = issue?.path.length ? ` at ${issue.path.join('.')}` : '';
      problem = `fails the progress schema of ${kind.name}${where}: ${issue?.message ?? 'invalid'}`;
    } else if (typeof checked.data !== 'object' || checked.data === null || Array.isArray(checked.data)) {
      problem = 'is not a JSON object';
    } else {
      const payload = toPayloadJson(checked.data, this.options.maxBytes, 'PROGRESS_MAX_BYTES');
      if ('json' in payload) return payload.json;
      problem = payload.problem;
    }
    this.options.metrics?.progressDropped.inc({ kind: entry.job.kind, reason: 'invalid' });
    if (!progress.warned) {
      progress.warned = true;
      this.options.logger.warn(
        { jobId: entry.job.id, attempt: entry.job.attempt, kind: kind.name, problem },
        `a progress value was dropped: it ${problem} (later invalid values of this job are dropped silently)`,
      );
    }
    return undefined;
  }
}
