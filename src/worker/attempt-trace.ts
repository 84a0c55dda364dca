import { type Context, type Span, trace, type Tracer } from '@opentelemetry/api';
import { NotWritten, type Sent } from '../db/statement-batcher.ts';
import { contextOf, failSpan, JOB_ATTEMPT, JOB_ID, JOB_KIND, JOB_OUTCOME } from '../jobs/job-spans.ts';
import type { ClaimedJob } from '../jobs/sql/claimed.ts';
import type { WriteOutcome } from './outcome-writer.ts';

/**
 * What became of an attempt, as its `job.run` span says: its outcome was stored as a result
 * (`completed`), as a failure to retry (`retry`) or for good (`failed`); or the attempt ended
 * without one: `dropped` (handed back by a stop, or taken over by another worker).
 */
export type AttemptOutcome = 'completed' | 'retry' | 'failed' | 'dropped';

/**
 * The spans of one attempt of a claimed job, made only while tracing is on. Each is a child of the
 * context stored with the job (the `job.submit` of the request that added it, in whichever process
 * that ran), so every attempt, after retries and restarts alike, joins that one trace:
 * - `job.queued`, recorded at the claim: from the job's creation to now. createdAt is the
 *   database's clock; a host clock behind it shows as a wait of zero rather than a negative one.
 * - `job.run`: from the handler's start until its outcome is stored.
 * - `job.write`, a child of `job.run`: the write of that outcome.
 */
export class AttemptTrace {
  private readonly parent: Context;
  private readonly attributes: Record<string, string | number>;
  private run: Span | undefined;

  private readonly tracer: Tracer;

  constructor(tracer: Tracer, job: ClaimedJob) {
    this.tracer = tracer;
    this.parent = contextOf(job.traceparent);
    this.attributes = { [JOB_ID]: job.id, [JOB_KIND]: job.kind, [JOB_ATTEMPT]: job.attempt };
    const now = Date.now();
    tracer.startSpan('job.queued', { attributes: this.attributes, startTime: new Date(Math.min(job.createdAtMs, now)) }, this.parent).end(now);
  }

  /** The handler starts. */
  running(): void {
    this.run = this.tracer.startSpan('job.run', { attributes: this.attributes }, this.parent);
  }

  /** The write of the attempt's outcome, as a `job.write` span; answers what the write answers. */
  async write(sent: Promise<Sent<WriteOutcome>>, what: 'result' | 'failure'): Promise<Sent<WriteOutcome>> {
    const span = this.tracer.startSpan('job.write', { attributes: { ...this.attributes, 'job.write.what': what } }, this.within());
    const written = await sent;
    if (written instanceof NotWritten) failSpan(span, written.reason ?? `not written: ${written.why}`);
    else span.setAttribute('job.write.outcome', written);
    span.end();
    return written;
  }

  /** The attempt is over; `error` is what its handler threw, if it failed. */
  ended(outcome: AttemptOutcome, error?: unknown): void {
    const span = this.run ?? this.tracer.startSpan('job.run', { attributes: this.attributes }, this.parent);
    this.run = undefined;
    span.setAttribute(JOB_OUTCOME, outcome);
    if (error !== undefined) failSpan(span, error);
    span.end();
  }

  private within(): Context {
    return this.run ? trace.setSpan(this.parent, this.run) : this.parent;
  }
}
