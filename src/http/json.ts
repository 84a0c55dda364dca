import { isTransient } from '../db/errors.ts';
import { type JobErrorCode, JobServiceError } from '../jobs/errors.ts';
import type { Job } from '../jobs/service.ts';

const STATUS_OF: Record<JobErrorCode, number> = {
  BAD_USER_INPUT: 400,
  NOT_FOUND: 404,
  CONFLICT: 409,
  UNAVAILABLE: 503,
};

export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
  });
}

export function errorResponse(status: number, code: string, message: string, extra: Record<string, unknown> = {}) {
  return json({ error: { code, message, ...extra } }, status, status === 503 ? { 'retry-after': '1' } : {});
}

/**
 * Expected errors keep their message; the database being away is a 503; anything else is masked.
 * The last two are server failures, told to `report`.
 */
export function responseForError(error: unknown, report: (error: unknown) => void): Response {
  if (error instanceof JobServiceError) {
    return errorResponse(STATUS_OF[error.code], error.code, error.message, error.field ? { field: error.field } : {});
  }
  report(error);
  if (isTransient(error)) {
    return errorResponse(503, 'UNAVAILABLE', 'the database is unavailable; retry shortly');
  }
  return errorResponse(500, 'INTERNAL_SERVER_ERROR', 'unexpected error');
}

/** A job as the REST routes show it: numbers as exact strings, statuses in lower case. */
export function jobBody(job: Job) {
  return {
    jobId: job.id,
    status: job.status,
    num1: job.num1.toFixed(),
    num2: job.num2.toFixed(),
    result: job.result?.toFixed() ?? null,
    attempt: job.attempt,
    maxAttempts: job.maxAttempts,
    lastError: job.lastError,
    createdAt: job.createdAt.toISOString(),
    lastUpdated: job.lastUpdated.toISOString(),
    completedOn: job.completedOn?.toISOString() ?? null,
    retrievedAt: job.retrievedAt?.toISOString() ?? null,
  };
}
