import type { Caller, JobService } from '../jobs/service.ts';
import type { ErrorLog } from './error-log.ts';
import { errorResponse, jobBody, json, responseForError } from './json.ts';

export interface RestDeps {
  jobs: JobService;
  errorLog: ErrorLog;
}

interface Route {
  pattern: RegExp;
  methods: readonly string[];
  handle(params: string[], request: Request, caller: Caller): Promise<Response>;
}

/**
 * The REST aliases: each a few lines over the same job service the GraphQL resolvers call.
 * Returns null for paths that are not REST routes.
 */
export function createRestHandler({ jobs, errorLog }: RestDeps) {
  const routes: Route[] = [
    {
      pattern: /^\/api\/v1\/add\/([^/]*)\/([^/]*)\/?$/,
      methods: ['GET', 'POST'],
      async handle([num1, num2], request, caller) {
        const idempotencyKey = request.headers.get('idempotency-key');
        const { job, created } = await jobs.addJob({ num1: num1!, num2: num2!, idempotencyKey }, caller);
        const location = `/api/v1/job/${job.id}`;
        return json({ ...jobBody(job), created, links: { self: location } }, 202, { location });
      },
    },
    {
      pattern: /^\/api\/v1\/job\/([^/]*)\/?$/,
      methods: ['GET'],
      async handle([id], _request, caller) {
        // As the source asks: reading a completed job hands the result over and marks it retrieved.
        const job = await jobs.retrieveJob(id!, caller);
        return job ? json(jobBody(job)) : errorResponse(404, 'NOT_FOUND', `no job with id ${id}`);
      },
    },
  ];

  return async (request: Request, pathname: string, caller: Caller): Promise<Response | null> => {
    if (!pathname.startsWith('/api/')) return null;
    for (const route of routes) {
      const match = route.pattern.exec(pathname);
      if (!match) continue;
      if (!route.methods.includes(request.method)) {
        return errorResponse(405, 'METHOD_NOT_ALLOWED', `use ${route.methods.join(' or ')}`, {});
      }
      let params: string[];
      try {
        params = match.slice(1).map((segment) => decodeURIComponent(segment));
      } catch {
        return errorResponse(400, 'BAD_USER_INPUT', 'the path is not valid percent-encoding');
      }
      try {
        return await route.handle(params, request, caller);
      } catch (error) {
        return responseForError(error, (failure) => errorLog.report(failure, request));
      }
    }
    return errorResponse(404, 'NOT_FOUND', `no route ${request.method} ${pathname}`);
  };
}
