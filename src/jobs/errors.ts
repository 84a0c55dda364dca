/** Codes the API layers map to HTTP statuses and GraphQL `extensions.code`. */
export type JobErrorCode = 'BAD_USER_INPUT' | 'NOT_FOUND' | 'CONFLICT' | 'UNAVAILABLE';

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
