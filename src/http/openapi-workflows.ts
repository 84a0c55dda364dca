/** The workflow routes of the OpenAPI document (rest.ts, issue 26). */
import { z } from 'zod';
import type { ZodOpenApiPathItemObject } from 'zod-openapi';
import type { OpenApiKit } from './openapi-kit.ts';
import { SubmitWorkflowBody, WorkflowAnswer } from './rest-schemas.ts';

export function workflowPaths({ responses, answer, params: { workflowIdParam } }: OpenApiKit): Record<string, ZodOpenApiPathItemObject> {
  return {
      '/api/v1/workflows': {
        post: {
          operationId: 'submitWorkflow',
          summary: 'Submit a workflow: steps (jobs) with local names, each starting once the steps it depends on have finished',
          description:
            'Checked whole before anything is written: a cycle, an unknown step name or a job id that is not yours in dependsOnJobs is refused. A step waits (status waiting) until its parents finish; its handler reads their results by step name (context.parents()).',
          tags: ['workflows'],
          requestBody: { required: true, content: { 'application/json': { schema: SubmitWorkflowBody } } },
          responses: responses(
            { 201: answer('Created: the workflow.', WorkflowAnswer, z.object({ Location: z.string().describe('Where to read the workflow.') })) },
            400,
            404,
          ),
        },
      },
      '/api/v1/workflows/{id}': {
        get: {
          operationId: 'getWorkflow',
          summary: 'Read a workflow: its steps and their states',
          description: "Your key's own workflow; an operator's key (ADMIN_API_KEYS) reads any owner's, as it reads any job.",
          tags: ['workflows'],
          requestParams: { path: workflowIdParam },
          responses: responses({ 200: answer('The workflow.', WorkflowAnswer) }, 404),
        },
      },
      '/api/v1/workflows/{id}/cancel': {
        post: {
          operationId: 'cancelWorkflow',
          summary: 'Cancel the steps of a workflow that have not started',
          description: 'Running steps finish; their dependents were cancelled with the rest.',
          tags: ['workflows'],
          requestParams: { path: workflowIdParam },
          responses: responses({ 200: answer('The workflow.', WorkflowAnswer) }, 404),
        },
      },
  };
}
