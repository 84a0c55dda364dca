import { type ExecutionResult, GraphQLError } from 'graphql';
import { handleStreamOrSingleExecutionResult, type Plugin, type YogaServerOptions } from 'graphql-yoga';
import { isTransient } from '../db/errors.ts';
import type { Logger } from '../logger.ts';

/** GraphQL errors we created on purpose carry a code already; everything else is masked. */
export function isExpected(error: unknown): boolean {
  return (
    error instanceof GraphQLError &&
    (error.originalError === undefined || error.originalError === null || error.originalError instanceof GraphQLError)
  );
}

/** What a plugin's hook returns to be called again when its phase is done. */
type HooksOf<Hook extends 'onExecute' | 'onSubscribe'> = Extract<Awaited<ReturnType<NonNullable<Plugin[Hook]>>>, object>;

type YogaLogger = Extract<NonNullable<YogaServerOptions<object, object>['logging']>, object>;

export interface ErrorLog {
  /** Logs one failure of a request once, with its request id: a warning when the database is away. */
  report(error: unknown, request: Request | undefined, detail?: Record<string, unknown>): void;
  /** Reports the unexpected errors of every GraphQL result, before Yoga masks them. */
  plugin: Plugin;
  /** Yoga's own logger: what it logs of an error already reported is left out. */
  yogaLogger: YogaLogger;
}

/**
 * The line an operator looks for when a client shows them an error: the client has the
 * response's `x-request-id`, so the line carries it as `reqId`, like the request's own log line.
 * Each failure is logged once: Yoga also logs every error its mask replaces, but only as the
 * error's text, without the request or the stack.
 */
export function createErrorLog(logger: Logger, requestIdOf: (request: Request) => string | undefined): ErrorLog {
  const reported = new WeakSet<object>();

  function report(error: unknown, request: Request | undefined, detail: Record<string, unknown> = {}): void {
    if (typeof error === 'object' && error !== null) reported.add(error);
    const cause = error instanceof GraphQLError && error.originalError ? error.originalError : error;
    const line = { err: cause, reqId: request ? requestIdOf(request) : undefined, ...detail };
    if (isTransient(cause)) logger.warn(line, 'database unavailable');
    else logger.error(line, 'unexpected error');
  }

  // Only results: a refused document is the client's error, and the nesting guard turns
  // graphql-js's stack overflow on a deep one into a parse error after the parse hooks ran.
  const reportResult = ({ result, args }: { result: ExecutionResult; args: { contextValue: unknown } }) => {
    if (!result.errors) return;
    // An operation over WebSocket has no HTTP request, so its lines go without an id.
    const { request } = args.contextValue as { request?: Request };
    for (const error of result.errors) {
      if (isExpected(error)) continue;
      report(error, request, error.path ? { path: error.path.join('.') } : {});
    }
  };
  // The same hook objects for every operation: nothing is allocated per request.
  const executeHooks: HooksOf<'onExecute'> = {
    onExecuteDone: (payload) => handleStreamOrSingleExecutionResult(payload, reportResult),
  };
  const subscribeHooks: HooksOf<'onSubscribe'> = {
    onSubscribeResult: (payload) => handleStreamOrSingleExecutionResult(payload, reportResult),
  };
  const plugin: Plugin = { onExecute: () => executeHooks, onSubscribe: () => subscribeHooks };

  // Yoga passes errors as arguments: pino keeps their stack when they go in as `err`.
  const write = (level: 'debug' | 'info' | 'warn' | 'error', args: unknown[]) => {
    const err = args.find((arg) => arg instanceof Error);
    const text = args.filter((arg) => arg !== err).map(String).join(' ');
    logger[level](err ? { err } : {}, text || 'from the GraphQL server');
  };
  const yogaLogger: YogaLogger = {
    debug: (...args) => write('debug', args),
    info: (...args) => write('info', args),
    warn: (...args) => write('warn', args),
    error: (...args) => {
      if (!args.some((arg) => typeof arg === 'object' && arg !== null && reported.has(arg))) write('error', args);
    },
  };

  return { report, plugin, yogaLogger };
}
