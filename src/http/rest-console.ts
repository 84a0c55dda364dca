/** The operator console's REST routes (README, "The operator console"): the same calls as its GraphQL fields. */
import type { z } from 'zod';
import type { JobFilterInput } from '../jobs/console.ts';
import { JobServiceError, jobNotFound } from '../jobs/errors.ts';
import type { JobService } from '../jobs/service.ts';
import { json, jobBody } from './json.ts';
import { parse, readJson, type Route } from './rest-body.ts';
import { BulkActionBody, ConsoleJobsQuery, JobFilterQuery } from './rest-schemas.ts';

export function consoleRoutes({
  jobs,
  maxBodyBytes,
  jobLocation,
}: {
  jobs: JobService;
  maxBodyBytes: number;
  jobLocation: (id: string) => string;
}): Route[] {
  return [
      {
        pattern: /^\/api\/v1\/console\/jobs\/?$/,
        methods: ['GET'],
        async handle(_params, request, caller) {
          const { order, first, after, ...filter } = parse(ConsoleJobsQuery, Object.fromEntries(new URL(request.url).searchParams));
          const page = await jobs.console.list(filterOf(filter), { order, first, after }, caller);
          return json({ jobs: page.jobs.map(jobBody), pageInfo: { hasNextPage: page.hasNextPage, endCursor: page.endCursor } });
        },
      },
      {
        pattern: /^\/api\/v1\/console\/jobs\/count\/?$/,
        methods: ['GET'],
        handle: async (_params, request, caller) =>
          json(await jobs.console.count(filterOf(parse(JobFilterQuery, Object.fromEntries(new URL(request.url).searchParams))), caller)),
      },
      {
        pattern: /^\/api\/v1\/console\/jobs\/(retry|cancel|retrieve)\/?$/,
        methods: ['POST'],
        async handle([action], request, caller) {
          const { filter } = parse(BulkActionBody, await readJson(request, maxBodyBytes));
          return json(await jobs.console.bulk(action as 'retry' | 'cancel' | 'retrieve', filterOf(filter), caller));
        },
      },
      {
        pattern: /^\/api\/v1\/console\/overview\/?$/,
        methods: ['GET'],
        async handle(_params, _request, caller) {
          const overview = await jobs.console.overview(caller);
          return json({ ...overview, at: overview.at.toISOString() });
        },
      },
      {
        pattern: /^\/api\/v1\/jobs\/([^/]+)\/attempts\/?$/,
        methods: ['GET'],
        async handle([id], _request, caller) {
          const attempts = await jobs.console.history(id!, caller);
          if (!attempts) throw jobNotFound(id!);
          return json({ attempts: attempts.map((entry) => ({ ...entry, failedAt: entry.failedAt.toISOString() })) });
        },
      },
      {
        pattern: /^\/api\/v1\/jobs\/([^/]+)\/retry\/?$/,
        methods: ['POST'],
        handle: async ([id], _request, caller) => json(jobBody(await jobs.console.retry(id!, caller))),
      },
      {
        pattern: /^\/api\/v1\/schedules\/([^/]+)\/run\/?$/,
        methods: ['POST'],
        async handle([id], _request, caller) {
          const { job } = await jobs.console.runSchedule(id!, caller);
          return json(jobBody(job), 202, { location: jobLocation(job.id) });
        },
      },
  ];
}

/** The console's filter from query parameters or a body; matchValue is JSON text. */
function filterOf(fields: z.output<typeof JobFilterQuery>): JobFilterInput {
  const { createdAfter, createdBefore, matchIn, matchPath, matchValue, ...rest } = fields;
  let value: unknown;
  if (matchPath !== undefined) {
    try {
      value = JSON.parse(matchValue ?? '');
    } catch {
      throw new JobServiceError('BAD_USER_INPUT', 'matchValue must be JSON, such as "42" or \'"text"\'', 'matchValue');
    }
  }
  return {
    ...rest,
    ...(createdAfter ? { createdAfter: new Date(createdAfter) } : {}),
    ...(createdBefore ? { createdBefore: new Date(createdBefore) } : {}),
    ...(matchPath !== undefined ? { match: { in: matchIn ?? 'input', path: matchPath, value } } : {}),
  };
}

