/** The operator console's routes of the OpenAPI document (README, "The operator console"). */
import type { ZodOpenApiPathItemObject } from 'zod-openapi';
import type { OpenApiKit } from './openapi-kit.ts';
import { BulkActionBody, ConsoleJobsQuery, JobAnswer, JobAttemptsAnswer, JobCountAnswer, JobFilterQuery, JobPageAnswer, OverviewAnswer } from './rest-schemas.ts';

export function consolePaths({ responses, answer, accepted, params: { jobIdParam, scheduleIdParam } }: OpenApiKit): Record<string, ZodOpenApiPathItemObject> {
  return {
      '/api/v1/console/jobs': {
        get: {
          operationId: 'searchJobs',
          summary: 'Jobs a filter finds, a page at a time',
          description: "A customer's key finds its own jobs; an operator's key (ADMIN_API_KEYS) every owner's, and may filter by owner.",
          tags: ['console'],
          requestParams: { query: ConsoleJobsQuery },
          responses: responses({ 200: answer('A page of jobs.', JobPageAnswer) }, 400, 403),
        },
      },
      '/api/v1/console/jobs/count': {
        get: {
          operationId: 'countJobs',
          summary: 'How many jobs a filter finds, up to cap: what a bulk action would touch',
          tags: ['console'],
          requestParams: { query: JobFilterQuery },
          responses: responses({ 200: answer('The count.', JobCountAnswer) }, 400, 403),
        },
      },
      ...Object.fromEntries(
        (
          [
            ['retry', 'Retry the failed jobs a filter finds'],
            ['cancel', 'Cancel the pending jobs a filter finds'],
            ['retrieve', 'Mark the completed jobs a filter finds retrieved'],
          ] as const
        ).map(([action, summary]): [string, ZodOpenApiPathItemObject] => [
          `/api/v1/console/jobs/${action}`,
          {
            post: {
              operationId: `${action}Jobs`,
              summary,
              description: 'At most cap jobs a call, oldest first (more: call again). Operator keys only (403).',
              tags: ['console'],
              requestBody: { required: true, content: { 'application/json': { schema: BulkActionBody } } },
              responses: responses({ 200: answer('How many jobs it changed.', JobCountAnswer) }, 400, 403, 409, 413, 415),
            },
          },
        ]),
      ),
      '/api/v1/console/overview': {
        get: {
          operationId: 'overview',
          summary: 'Each kind now and over the last hour',
          description: 'Operator keys only (403). Readings are shared for 2 s.',
          tags: ['console'],
          responses: responses({ 200: answer('The overview.', OverviewAnswer) }, 403),
        },
      },
      '/api/v1/jobs/{id}/attempts': {
        get: {
          operationId: 'jobAttempts',
          summary: "A job's failed attempts: each one's error, time and worker, oldest first",
          description: 'A job that never failed has none. An attempt lost to the stale rule shows as timed out, naming the worker that lost it.',
          tags: ['jobs'],
          requestParams: { path: jobIdParam },
          responses: responses({ 200: answer('The failed attempts.', JobAttemptsAnswer) }, 404),
        },
      },
      '/api/v1/jobs/{id}/retry': {
        post: {
          operationId: 'retryJob',
          summary: 'Retry a failed job: a new attempt of the same job, its attempts and last error kept',
          tags: ['jobs'],
          requestParams: { path: jobIdParam },
          responses: responses({ 200: answer('The job, pending again.', JobAnswer) }, 404, 409),
        },
      },
      '/api/v1/schedules/{id}/run': {
        post: {
          operationId: 'runSchedule',
          summary: "Make one job of the schedule now, outside its ticks, owned by the schedule's owner",
          tags: ['schedules'],
          requestParams: { path: scheduleIdParam },
          responses: responses({ 202: accepted(JobAnswer) }, 404),
        },
      },
  };
}
