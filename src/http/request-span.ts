import type { IncomingMessage, ServerResponse } from 'node:http';
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Tracer } from '@opentelemetry/api';
import { GRAPHQL_PATH } from './app.ts';

// The semantic conventions' stable names, spelt out: their package is large to load for four.
const ATTR_HTTP_REQUEST_METHOD = 'http.request.method';
const ATTR_HTTP_RESPONSE_STATUS_CODE = 'http.response.status_code';
const ATTR_HTTP_ROUTE = 'http.route';
const ATTR_URL_PATH = 'url.path';

/** Probes and scrapes: a span for each would bury the requests worth reading (they log at debug for the same reason). */
const UNTRACED_PATHS: ReadonlySet<string> = new Set(['/health', '/ready', '/metrics']);

/**
 * Runs `handle` inside a SERVER span for the request, made the active span so that what the
 * request calls (a submission's `job.submit`) is its child. A caller that sends a W3C
 * `traceparent` header gets the span, and so the job's whole trace, inside its own trace. Only
 * while tracing is on. The span ends when the response does: for an SSE subscription, when the
 * stream closes.
 */
export function handleTraced(tracer: Tracer, request: IncomingMessage, response: ServerResponse, handle: () => void): void {
  // The path only: a query string may carry what logs and spans should not keep.
  const path = (request.url ?? '/').split('?', 1)[0]!;
  if (UNTRACED_PATHS.has(path)) return handle();
  const method = request.method ?? 'GET';
  const route = path === GRAPHQL_PATH ? GRAPHQL_PATH : undefined;
  const parent = propagation.extract(ROOT_CONTEXT, request.headers);
  const span = tracer.startSpan(
    route ? `${method} ${route}` : method,
    { kind: SpanKind.SERVER, attributes: { [ATTR_HTTP_REQUEST_METHOD]: method, [ATTR_URL_PATH]: path, ...(route ? { [ATTR_HTTP_ROUTE]: route } : {}) } },
    parent,
  );
  response.once('close', () => {
    span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, response.statusCode);
    if (response.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    span.end();
  });
  context.with(trace.setSpan(parent, span), handle);
}
