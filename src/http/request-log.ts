import { randomUUID } from 'node:crypto';
import type { Plugin } from 'graphql-yoga';
import type { Logger } from '../logger.ts';

export const REQUEST_ID_HEADER = 'x-request-id';

/** A caller's id is kept when it looks like one; anything else could forge or flood log lines. */
const ACCEPTABLE_ID = /^[\w.:@-]{1,128}$/;

/**
 * Probes and scrapes arrive every few seconds from machines, not people: at info they would
 * bury the requests worth reading, so they log at debug.
 */
const QUIET_PATHS = new Set(['/health', '/ready', '/metrics']);

/**
 * One log line per HTTP request: method, path (never the query string, which may carry
 * variables), status, milliseconds and a request id. The id is the caller's `x-request-id` when
 * it sends a sane one, so a trace can cross services; otherwise a new UUID. Either way the
 * response carries it back, and `idOf` gives it to the other lines written for the request (see
 * error-log.ts). For a subscription over SSE the line is written when the stream starts, so `ms`
 * is the time to the first byte. WebSocket upgrades do not pass through here.
 *
 * Put its plugin first among the plugins, so it sees the responses the others end early.
 */
export function createRequestLog(logger: Logger): { plugin: Plugin; idOf(request: Request): string | undefined } {
  // Kept until the request is collected: an SSE stream can fail long after its response began.
  const started = new WeakMap<Request, { id: string; at: number; path: string }>();
  const plugin: Plugin = {
    onRequest({ request, url }) {
      const given = request.headers.get(REQUEST_ID_HEADER);
      started.set(request, {
        id: given && ACCEPTABLE_ID.test(given) ? given : randomUUID(),
        at: performance.now(),
        path: url.pathname,
      });
    },
    onResponse({ request, response }) {
      const start = started.get(request);
      if (!start) return;
      try {
        response.headers.set(REQUEST_ID_HEADER, start.id);
      } catch {
        // A response with immutable headers still gets its log line.
      }
      const { path } = start;
      const line = {
        reqId: start.id,
        method: request.method,
        path,
        status: response.status,
        ms: Math.round((performance.now() - start.at) * 10) / 10,
      };
      if (QUIET_PATHS.has(path)) logger.debug(line, 'request');
      else logger.info(line, 'request');
    },
  };
  return { plugin, idOf: (request) => started.get(request)?.id };
}
