import type { Caller, JobService } from '../jobs/service.ts';
import type { ErrorLog } from './error-log.ts';
import { scheduleNotFound, scheduleScope } from '../schedules/service.ts';
import { workflowNotFound } from '../jobs/workflows.ts';
import { addJobBody, errorResponse, jobBody, json, responseForError, scheduleBody, workflowBody } from './json.ts';
import { BodyError, parse, readJson, type Route } from './rest-body.ts';
import { consoleRoutes } from './rest-console.ts';
import { CreateScheduleBody, ListJobsQuery, SubmitJobBody, SubmitWorkflowBody } from './rest-schemas.ts';

export interface RestDeps {
  jobs: JobService;
  errorLog: ErrorLog;
  /** The largest request body read (MAX_BODY_BYTES). */
  maxBodyBytes: number;
  /** Answers `GET /api/v1/openapi.json`. */
  openApiDocument?: () => unknown;
}


/**
 * The REST routes: each a few lines over the same job service the GraphQL resolvers call. The
 * seed's `/api/v1/add` and `/api/v1/job` answer as they always have; `/api/v1/jobs` takes any kind.
 * Returns null for paths that are not REST routes.
 */
export function createRestHandler({ jobs, errorLog, maxBodyBytes, openApiDocument }: RestDeps) {
  const jobLocation = (id: string) => `/api/v1/jobs/${id}`;
  const found = (job: Parameters<typeof jobBody>[0] | null, id: string) =>
    job ? json(jobBody(job)) : errorResponse(404, 'NOT_FOUND', `no job with id ${id}`, { field: 'id' });

  const routes: Route[] = [
    {
      pattern: /^\/api\/v1\/add\/([^/]*)\/([^/]*)\/?$/,
      methods: ['GET', 'POST'],
      async handle([num1, num2], request, caller) {
        const idempotencyKey = request.headers.get('idempotency-key');
        const { job, created } = await jobs.addJob({ num1: num1!, num2: num2!, idempotencyKey }, caller);
        const location = `/api/v1/job/${job.id}`;
        return json({ ...addJobBody(job), created, links: { self: location } }, 202, { location });
      },
    },
    {
      pattern: /^\/api\/v1\/job\/([^/]*)\/?$/,
      methods: ['GET'],
      async handle([id], _request, caller) {
        // As the source asks: reading a completed job hands the result over and marks it retrieved.
        const job = await jobs.retrieveJob(id!, caller);
        return job ? json(addJobBody(job)) : errorResponse(404, 'NOT_FOUND', `no job with id ${id}`);
      },
    },
    {
      pattern: /^\/api\/v1\/jobs\/?$/,
      methods: ['POST', 'GET'],
      async handle(_params, request, caller) {
        if (request.method === 'GET') {
          const query = parse(ListJobsQuery, Object.fromEntries(new URL(request.url).searchParams));
          const page = await jobs.listJobs(query, caller);
          return json({ jobs: page.jobs.map(jobBody), pageInfo: { hasNextPage: page.hasNextPage, endCursor: page.endCursor } });
        }
        const body = parse(SubmitJobBody, await readJson(request, maxBodyBytes));
        const { job, created } = await jobs.submitJob(
          {
            ...body,
            idempotencyKey: body.idempotencyKey ?? request.headers.get('idempotency-key'),
            runAt: body.runAt ? new Date(body.runAt) : null,
          },
          caller,
        );
        const location = jobLocation(job.id);
        return json({ ...jobBody(job), created, links: { self: location } }, 202, { location });
      },
    },
    {
      pattern: /^\/api\/v1\/jobs\/([^/]+)\/?$/,
      methods: ['GET'],
      // A pure read: unlike the seed's /api/v1/job/:id, it never marks the job retrieved.
      handle: async ([id], _request, caller) => found(await jobs.getJob(id!, caller), id!),
    },
    {
      pattern: /^\/api\/v1\/jobs\/([^/]+)\/retrieve\/?$/,
      methods: ['POST'],
      handle: async ([id], _request, caller) => found(await jobs.retrieveJob(id!, caller), id!),
    },
    {
      pattern: /^\/api\/v1\/jobs\/([^/]+)\/cancel\/?$/,
      methods: ['POST'],
      handle: async ([id], _request, caller) => json(jobBody(await jobs.cancelJob(id!, caller))),
    },
    {
      pattern: /^\/api\/v1\/schedules\/?$/,
      methods: ['GET', 'POST'],
      async handle(_params, request, caller) {
        if (request.method === 'GET') return json({ schedules: (await jobs.schedules.list(scheduleScope(caller))).map(scheduleBody) });
        const body = parse(CreateScheduleBody, await readJson(request, maxBodyBytes));
        const schedule = await jobs.schedules.create(body, caller.owner);
        return json(scheduleBody(schedule), 201, { location: `/api/v1/schedules/${schedule.id}` });
      },
    },
    {
      pattern: /^\/api\/v1\/schedules\/([^/]+)\/?$/,
      methods: ['GET', 'DELETE'],
      async handle([id], request, caller) {
        if (request.method === 'DELETE') {
          await jobs.schedules.delete(id!, scheduleScope(caller));
          return json({ scheduleId: id!.toLowerCase(), deleted: true });
        }
        const schedule = await jobs.schedules.get(id!, scheduleScope(caller));
        if (!schedule) throw scheduleNotFound(id!);
        return json(scheduleBody(schedule));
      },
    },
    {
      pattern: /^\/api\/v1\/schedules\/([^/]+)\/(pause|resume)\/?$/,
      methods: ['POST'],
      handle: async ([id, action], _request, caller) => json(scheduleBody(await jobs.schedules.setPaused(id!, scheduleScope(caller), action === 'pause'))),
    },
    {
      pattern: /^\/api\/v1\/workflows\/?$/,
      methods: ['POST'],
      async handle(_params, request, caller) {
        const body = parse(SubmitWorkflowBody, await readJson(request, maxBodyBytes));
        const steps = body.steps.map(({ runAt, ...step }) => ({ ...step, ...(runAt ? { runAt: new Date(runAt) } : {}) }));
        const workflow = await jobs.workflows.submit({ ...body, steps }, caller);
        return json(workflowBody(workflow), 201, { location: `/api/v1/workflows/${workflow.id}` });
      },
    },
    {
      pattern: /^\/api\/v1\/workflows\/([^/]+)\/?$/,
      methods: ['GET'],
      async handle([id], _request, caller) {
        const workflow = await jobs.workflows.get(id!, caller);
        if (!workflow) throw workflowNotFound(id!);
        return json(workflowBody(workflow));
      },
    },
    {
      pattern: /^\/api\/v1\/workflows\/([^/]+)\/cancel\/?$/,
      methods: ['POST'],
      handle: async ([id], _request, caller) => json(workflowBody(await jobs.workflows.cancel(id!, caller))),
    },
    {
      pattern: /^\/api\/v1\/kinds\/?$/,
      methods: ['GET'],
      handle: async () => json({ kinds: await jobs.kindControl.list() }),
    },
    {
      pattern: /^\/api\/v1\/kinds\/(pause|resume)\/?$/,
      methods: ['POST'],
      handle: async ([action], _request, caller) =>
        json({ kinds: await (action === 'pause' ? jobs.kindControl.pauseAll(caller) : jobs.kindControl.resumeAll(caller)) }),
    },
    {
      pattern: /^\/api\/v1\/kinds\/([^/]+)\/(pause|resume)\/?$/,
      methods: ['POST'],
      handle: async ([kind, action], _request, caller) =>
        json(await (action === 'pause' ? jobs.kindControl.pause(kind!, caller) : jobs.kindControl.resume(kind!, caller))),
    },
    ...consoleRoutes({ jobs, maxBodyBytes, jobLocation }),
    ...(openApiDocument
      ? [{ pattern: /^\/api\/v1\/openapi\.json$/, methods: ['GET'], handle: async () => json(openApiDocument()) }]
      : []),
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
        if (error instanceof BodyError) return errorResponse(error.status, error.code, error.message);
        return responseForError(error, (failure) => errorLog.report(failure, request));
      }
    }
    return errorResponse(404, 'NOT_FOUND', `no route ${request.method} ${pathname}`);
  };
}
