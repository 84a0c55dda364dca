/**
 * What the spans of a job share: their attributes' names, and the trace context stored with the
 * job (`job.traceparent`), through which the spans of every process that touches the job join the
 * trace of the request that added it. Only called while tracing is on (src/tracing.ts).
 */
import { type Context, propagation, ROOT_CONTEXT, type Span, SpanStatusCode } from '@opentelemetry/api';

export const JOB_ID = 'job.id';
export const JOB_KIND = 'job.kind';
export const JOB_COUNT = 'job.count';
export const JOB_ATTEMPT = 'job.attempt';
export const JOB_OUTCOME = 'job.outcome';
export const JOB_STATUS = 'job.status';

/** The W3C `traceparent` of `ctx`'s span, to store with a job; null when it has none. */
export function traceparentOf(ctx: Context): string | null {
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier);
  return carrier['traceparent'] ?? null;
}

/** The context a stored `traceparent` names, as the parent of a job's spans; the root when none. */
export function contextOf(traceparent: string | null): Context {
  return traceparent ? propagation.extract(ROOT_CONTEXT, { traceparent }) : ROOT_CONTEXT;
}

/** Marks a span failed by `error`. */
export function failSpan(span: Span, error: unknown): void {
  span.recordException(error instanceof Error ? error : String(error));
  span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
}
