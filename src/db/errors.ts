const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  // Prisma's codes for an unreachable, timed-out or closed server.
  'P1001',
  'P1002',
  'P1017',
]);

function isSessionEnding(error: unknown): boolean {
  const severity = (error as { severity?: unknown } | null)?.severity;
  return severity === 'FATAL' || severity === 'PANIC';
}

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Whether `error` says the database could not be reached or went away (a retry may succeed),
 * as opposed to the database refusing a statement. Looks through `cause` chains, since Prisma
 * and pg wrap each other's errors.
 */
export function isConnectionError(error: unknown): boolean {
  for (let current = error, depth = 0; current && depth < 5; depth += 1) {
    const code = codeOf(current);
    if (code && (CONNECTION_CODES.has(code) || /^(08|57P0)/.test(code))) return true;
    // A FATAL or PANIC error ends the session, whatever its code: on a full disk, a new
    // connection is refused with XX000, FATAL (the server could not write its relcache init
    // file), which the chaos suite's disk-full scenario (test/chaos.test.ts) got answered 500.
    if (isSessionEnding(current)) return true;
    const message = current instanceof Error ? current.message : '';
    if (
      /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|DatabaseNotReachable|is not currently accepting connections|the database system is (starting up|shutting down)/i.test(
        message,
      )
    ) {
      return true;
    }
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * SQLSTATEs that say nothing about the statement, which may succeed when sent again: 40, the
 * transaction was rolled back (serialization failure, deadlock); 53, insufficient resources
 * (disk full, out of memory, too many connections); 55P03, a lock not available; 57, operator
 * intervention (a cancelled query, a shutdown); 58, a system error (I/O).
 */
const TRANSIENT_STATE = /^(?:40|53|57|58)...$|^55P03$/;

/**
 * Whether `error` is the database being unable to run a statement right now (unreachable, or a
 * transient state above) rather than refusing it: a retry may succeed, and a client is told 503.
 */
export function isTransient(error: unknown): boolean {
  if (isConnectionError(error)) return true;
  for (let current = error, depth = 0; current && depth < 5; depth += 1) {
    const code = codeOf(current);
    if (code && TRANSIENT_STATE.test(code)) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * Whether PostgreSQL refused the statement itself (bad data, a constraint), as opposed to being
 * unable to run it (see isTransient). Only a refusal can be blamed on the statement's input.
 */
export function isRefusal(error: unknown): boolean {
  const code = codeOf(error);
  return code !== undefined && /^[0-9A-Z]{5}$/.test(code) && !isTransient(error);
}
