import type { z } from 'zod';

/** Codes the API layers map to HTTP statuses and GraphQL `extensions.code`. */
export type JobErrorCode = 'BAD_USER_INPUT' | 'NOT_FOUND' | 'CONFLICT' | 'UNAVAILABLE' | 'FORBIDDEN';

/** An expected failure whose message is safe to show to the customer. */
export class JobServiceError extends Error {
  override name = 'JobServiceError';

  readonly code: JobErrorCode;
  readonly field?: string;

  constructor(code: JobErrorCode, message: string, field?: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.field = field;
  }
}

export function jobNotFound(id: string): JobServiceError {
  return new JobServiceError('NOT_FOUND', `no job with id ${id}`, 'id');
}

/** A subscription's job that was deleted (pruned) after the subscription showed it. */
export function jobDeleted(id: string): JobServiceError {
  return new JobServiceError('NOT_FOUND', `job ${id} no longer exists: it was deleted after its retention period`, 'id');
}

/**
 * A zod issue as the BAD_USER_INPUT error that names its field: `prefix` is where the checked value
 * sits in the request (`jobs.2.input.`), `whole` names the value itself when the issue is about
 * all of it, and `unknownField` says what an unrecognised key is.
 */
export function fieldError(
  issue: z.core.$ZodIssue | undefined,
  { prefix = '', whole, unknownField = 'is not a known field' }: { prefix?: string; whole: string; unknownField?: string },
): JobServiceError {
  const unknown = issue?.code === 'unrecognized_keys' ? issue.keys.slice(0, 1) : [];
  const field = `${prefix}${[...(issue?.path ?? []), ...unknown].join('.')}`.replace(/\.$/, '') || whole;
  const message = unknown.length > 0 ? unknownField : (issue?.message ?? 'is invalid');
  return new JobServiceError('BAD_USER_INPUT', `${field} ${message}`, field);
}

/** What only an operator key (ADMIN_API_KEYS) may do, asked by a customer's key. */
export function operatorsOnly(what: string): JobServiceError {
  return new JobServiceError('FORBIDDEN', `only an operator key (ADMIN_API_KEYS) may ${what}`);
}
