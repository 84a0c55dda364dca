/**
 * What every part of the OpenAPI document (openapi.ts and the route groups beside it) builds its
 * routes from: the error answers by status, the success answers, and the path parameters.
 */
import { z } from 'zod';
import type { ZodOpenApiResponseObject } from 'zod-openapi';
import { ErrorAnswer } from './rest-schemas.ts';

export interface OpenApiKit {
  errors: Record<ErrorStatus, ZodOpenApiResponseObject>;
  /** `success`, with `failures` and the errors every route can answer. */
  responses(success: Record<string, ZodOpenApiResponseObject>, ...failures: ErrorStatus[]): Record<string, ZodOpenApiResponseObject>;
  answer(description: string, schema: z.ZodType, headers?: ZodOpenApiResponseObject['headers']): ZodOpenApiResponseObject;
  /** 202 with the job and where to read it. */
  accepted(schema: z.ZodType): ZodOpenApiResponseObject;
  params: { jobIdParam: z.ZodObject; scheduleIdParam: z.ZodObject; kindParam: z.ZodObject; workflowIdParam: z.ZodObject };
}

/** Made once per document: zod-openapi registers the error answers by their ids as it meets them. */
export function openApiKit(): OpenApiKit {
  const errors = errorResponses();
  // Every route can answer these: they come from app.ts, before the route, or from the database.
  const everywhere: ErrorStatus[] = [401, 403, 500, 503];
  const answer: OpenApiKit['answer'] = (description, schema, headers) => ({
    description,
    content: { 'application/json': { schema } },
    ...(headers ? { headers } : {}),
  });
  return {
    errors,
    responses: (success, ...failures) => ({
      ...success,
      ...Object.fromEntries([...failures, ...everywhere].map((status) => [status, errors[status]])),
    }),
    answer,
    accepted: (schema) =>
      answer(
        'Accepted: the job, pending, or the earlier job its idempotency key names (or that holds its unique key, with onUnique existing).',
        schema,
        z.object({ Location: z.string().describe('Where to read the job.') }),
      ),
    params: {
      scheduleIdParam: z.object({ id: z.string().describe("The schedule's id (scheduleId).") }),
      kindParam: z.object({ kind: z.string().describe('The name of a kind the service runs; another is not found (404).') }),
      jobIdParam: z.object({ id: z.string().describe("The job's id (jobId). An id that is not one is not found (404).") }),
      workflowIdParam: z.object({ id: z.string().describe("The workflow's id (workflowId).") }),
    },
  };
}

/** Each error answer, by status, with the one code it carries (json.ts, rest.ts, app.ts). */
const ERRORS = {
  400: ['BadUserInput', 'BAD_USER_INPUT', 'The input is invalid: `field` names the part, as a dotted path.'],
  401: ['Unauthenticated', 'UNAUTHENTICATED', 'API_KEYS are set and the request has no valid Authorization: Bearer <key>.'],
  403: ['Forbidden', 'FORBIDDEN', 'A browser request from an origin not in CORS_ORIGINS, or what only an operator key (ADMIN_API_KEYS) may do asked with a customer key.'],
  404: ['NotFound', 'NOT_FOUND', 'No job or schedule of this caller has that id, or no kind has that name.'],
  405: ['MethodNotAllowed', 'METHOD_NOT_ALLOWED', 'The path exists; the method is not one it takes.'],
  409: ['Conflict', 'CONFLICT', 'The idempotency key was used with other input (or by a request still running), the unique key is held (onUnique refuse), or the job is past cancelling.'],
  413: ['TooLarge', 'REQUEST_ENTITY_TOO_LARGE', 'The body is over MAX_BODY_BYTES.'],
  415: ['UnsupportedMediaType', 'UNSUPPORTED_MEDIA_TYPE', 'The body was not sent as application/json.'],
  500: ['InternalError', 'INTERNAL_SERVER_ERROR', 'An unexpected failure, logged with the request id.'],
  503: ['Unavailable', 'UNAVAILABLE', 'The database is unreachable or cannot write for now; retry after Retry-After seconds.'],
} as const;

export type ErrorStatus = keyof typeof ERRORS;

function errorResponses(): Record<ErrorStatus, ZodOpenApiResponseObject> {
  const entries = Object.entries(ERRORS).map(([status, [id, code, description]]) => {
    const schema = ErrorAnswer.extend({ error: ErrorAnswer.shape.error.extend({ code: z.literal(code) }) });
    const response: ZodOpenApiResponseObject = {
      id,
      description,
      content: { 'application/json': { schema } },
      ...(status === '503' ? { headers: z.object({ 'Retry-After': z.string().describe('Seconds.') }) } : {}),
    };
    return [status, response] as const;
  });
  return Object.fromEntries(entries) as Record<ErrorStatus, ZodOpenApiResponseObject>;
}

