import type { z } from 'zod';
import { isTransient } from '../db/errors.ts';
import { type JobErrorCode, JobServiceError } from '../jobs/errors.ts';
import type { Job } from '../jobs/service.ts';
import { addNumbersOf } from '../kinds/add.ts';
import type { ScheduleView } from '../schedules/service.ts';
import { isFinished } from '../jobs/workflow-watch.ts';
import type { Workflow } from '../jobs/workflows.ts';
import type { AddJobAnswer, JobAnswer, ScheduleAnswer, WorkflowAnswer } from './rest-schemas.ts';

const STATUS_OF: Record<JobErrorCode, number> = {
  BAD_USER_INPUT: 400,
  NOT_FOUND: 404,
  CONFLICT: 409,
  FORBIDDEN: 403,
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

/**
 * A job as the `/api/v1/jobs` routes show it: any kind, its input and result as JSON. Typed by the
 * schema openapi.json is generated from, so a field added here and not there does not compile.
 */
export function jobBody(job: Job): z.output<typeof JobAnswer> {
  return {
    jobId: job.id,
    kind: job.kind,
    status: job.status,
    input: job.input,
    result: job.result,
    // The worker stores only JSON objects (ProgressReporter), which the column's type cannot say.
    progress: job.progress as Record<string, unknown> | null,
    attempt: job.attempt,
    maxAttempts: job.maxAttempts,
    lastError: job.lastError,
    priority: job.priority,
    uniqueKey: job.uniqueKey,
    concurrencyKey: job.concurrencyKey,
    runAt: job.runAt.toISOString(),
    createdAt: job.createdAt.toISOString(),
    lastUpdated: job.lastUpdated.toISOString(),
    completedOn: job.completedOn?.toISOString() ?? null,
    retrievedAt: job.retrievedAt?.toISOString() ?? null,
  };
}

/**
 * A job as the seed's routes (`/api/v1/add`, `/api/v1/job`) show it, unchanged since the seed:
 * numbers as exact strings, statuses in lower case. A job of another kind, which only a generic
 * route can have made, is shown as the generic routes show it.
 */
export function addJobBody(job: Job): z.output<typeof AddJobAnswer> | z.output<typeof JobAnswer> {
  const numbers = addNumbersOf(job);
  if (!numbers) return jobBody(job);
  return {
    jobId: job.id,
    status: job.status,
    num1: numbers.num1,
    num2: numbers.num2,
    result: job.result as string | null,
    attempt: job.attempt,
    maxAttempts: job.maxAttempts,
    lastError: job.lastError,
    createdAt: job.createdAt.toISOString(),
    lastUpdated: job.lastUpdated.toISOString(),
    completedOn: job.completedOn?.toISOString() ?? null,
    retrievedAt: job.retrievedAt?.toISOString() ?? null,
  };
}

/** A schedule as the `/api/v1/schedules` routes show it. */
export function scheduleBody(schedule: ScheduleView): z.output<typeof ScheduleAnswer> {
  return {
    scheduleId: schedule.id,
    kind: schedule.kind,
    name: schedule.name,
    declared: schedule.declared,
    input: schedule.input,
    cron: schedule.cron,
    timeZone: schedule.timeZone,
    catchUp: schedule.catchUp,
    catchUpLimit: schedule.catchUpLimit,
    paused: schedule.paused,
    lastFireAt: schedule.lastFireAt?.toISOString() ?? null,
    nextFireAt: schedule.nextFireAt?.toISOString() ?? null,
    lastJobId: schedule.lastJobId,
    createdAt: schedule.createdAt.toISOString(),
  };
}

/** A workflow as /api/v1/workflows shows it: its steps, each with its job's state. */
export function workflowBody(workflow: Workflow): z.output<typeof WorkflowAnswer> {
  return {
    workflowId: workflow.id,
    onParentFailure: workflow.onParentFailure,
    createdAt: workflow.createdAt.toISOString(),
    finished: workflow.steps.every((step) => isFinished(step.job.status)),
    steps: workflow.steps.map(({ name, dependsOn, job }) => ({
      name,
      jobId: job.id,
      kind: job.kind,
      status: job.status,
      dependsOn,
      result: job.result,
      lastError: job.lastError,
      attempt: job.attempt,
    })),
  };
}
