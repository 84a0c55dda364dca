import type { Job as JobRow } from '../../generated/prisma/client.ts';
import { isFinished } from '../../jobs/workflow-watch.ts';
import { type StepOfJob, type Workflow as WorkflowView, workflowNotFound } from '../../jobs/workflows.ts';
import type { Builder } from '../builder.ts';
import { serviceCall, serviceStream } from '../errors.ts';
import type { JobTypes } from './job.ts';

interface StepView {
  name: string;
  dependsOn: string[];
  job: JobRow;
}

/** Workflows (issue 26): a graph of jobs submitted at once; each step waits for the steps it depends on. */
export function addWorkflowTypes(builder: Builder, { Job, JobStatus }: JobTypes) {
  const DependencyFailure = builder.enumType('DependencyFailure', {
    description: 'What a step does when a step it depends on fails for good, or is cancelled.',
    values: {
      CANCEL: { value: 'cancel', description: 'It is cancelled, and so are the steps that depend on it this way.' },
      CONTINUE: { value: 'continue', description: "It runs anyway; its context's parents() shows the failure." },
    } as const,
  });

  const WorkflowStep = builder.objectRef<StepView>('WorkflowStep').implement({
    description: 'One step of a workflow: a job with a name local to its workflow.',
    fields: (t) => ({
      name: t.exposeString('name'),
      jobId: t.id({ resolve: (step) => step.job.id }),
      kind: t.string({ resolve: (step) => step.job.kind }),
      status: t.field({ type: JobStatus, resolve: (step) => step.job.status }),
      dependsOn: t.exposeStringList('dependsOn', {
        description: 'The names of the steps it waits for (a job outside the workflow: its id).',
      }),
      job: t.field({ type: Job, description: "The step's job, with its input, result and errors.", resolve: (step) => step.job }),
    }),
  });

  const Workflow = builder.objectRef<WorkflowView>('Workflow').implement({
    description: 'A graph of jobs (steps) submitted at once.',
    fields: (t) => ({
      id: t.exposeID('id'),
      onParentFailure: t.field({ type: DependencyFailure, description: "The steps' default policy.", resolve: (w) => w.onParentFailure }),
      createdAt: t.field({ type: 'DateTime', resolve: (w) => w.createdAt }),
      finished: t.boolean({
        description: 'Every step completed, failed or was cancelled.',
        resolve: (w) => w.steps.every((step) => isFinished(step.job.status)),
      }),
      steps: t.field({ type: [WorkflowStep], description: 'In the order they were submitted.', resolve: (w) => w.steps }),
    }),
  });

  const WorkflowStepInput = builder.inputType('WorkflowStepInput', {
    fields: (t) => ({
      name: t.string({ required: true, description: 'Unique in its workflow, 1 to 100 characters; the key of its result in its dependents\' context.' }),
      kind: t.string({ required: true, description: 'The name of a kind the service runs (see `kinds`).' }),
      input: t.field({ type: 'JSON', required: true, description: "Checked by the kind's input schema." }),
      dependsOn: t.stringList({ required: false, description: 'Names of steps of this workflow that must finish before this one starts.' }),
      dependsOnJobs: t.idList({ required: false, description: 'Ids of your jobs outside the workflow that must finish before this one starts.' }),
      onParentFailure: t.field({ type: DependencyFailure, required: false, description: "Default: the workflow's." }),
      runAt: t.field({ type: 'DateTime', required: false, description: 'Do not start before this moment (nor before its parents finish).' }),
      priority: t.int({ required: false }),
      maxAttempts: t.int({ required: false }),
    }),
  });

  const StepOf = builder.objectRef<StepOfJob>('JobWorkflowStep').implement({
    description: 'Which workflow a job is a step of, and its name there.',
    fields: (t) => ({
      workflowId: t.exposeID('workflowId'),
      name: t.exposeString('name'),
    }),
  });

  // Read only when a query asks for it: a list's jobs share one read of workflow_step (loaders.ts).
  builder.objectField(Job, 'workflowStep', (t) =>
    t.field({
      type: StepOf,
      nullable: true,
      description: 'The workflow this job is a step of, and its step name there; null for a job outside any workflow.',
      resolve: (job, _args, { loaders }) => serviceCall(() => loaders.workflowStep.load(job.id)),
    }),
  );

  builder.queryField('workflow', (t) =>
    t.field({
      type: Workflow,
      nullable: true,
      description:
        "A workflow with its steps and their states. An unknown id, or another key's workflow, is a NOT_FOUND error; an operator's key reads any owner's.",
      args: { id: t.arg.id({ required: true }) },
      resolve: (_root, { id }, { jobs, caller }) =>
        serviceCall(async () => {
          const workflow = await jobs.workflows.get(String(id), caller);
          if (!workflow) throw workflowNotFound(String(id));
          return workflow;
        }),
    }),
  );

  // Nullable, as every mutation field (see addJob): one failing mutation must not null the others.
  builder.mutationField('submitWorkflow', (t) =>
    t.field({
      type: Workflow,
      nullable: true,
      description:
        'Submits a graph of steps, all or none. A cycle, an unknown step name or a job that is not yours is refused (BAD_USER_INPUT, NOT_FOUND) before anything is written.',
      args: {
        steps: t.arg({ type: [WorkflowStepInput], required: true }),
        onParentFailure: t.arg({ type: DependencyFailure, required: false, description: 'Default CANCEL.' }),
      },
      resolve: (_root, { steps, onParentFailure }, { jobs, caller }) =>
        serviceCall(() => jobs.workflows.submit({ steps, onParentFailure }, caller)),
    }),
  );

  builder.mutationField('cancelWorkflow', (t) =>
    t.field({
      type: Workflow,
      nullable: true,
      description: 'Cancels the steps that have not started; running steps finish.',
      args: { id: t.arg.id({ required: true }) },
      resolve: (_root, { id }, { jobs, caller }) => serviceCall(() => jobs.workflows.cancel(String(id), caller)),
    }),
  );

  builder.subscriptionField('workflowUpdated', (t) =>
    t.field({
      type: Workflow,
      description: 'The workflow as it is now, then after each change of a step, until every step has finished. Each step also has its own jobUpdated.',
      args: { id: t.arg.id({ required: true }) },
      subscribe: (_root, { id }, { jobs, caller }) => serviceCall(async () => serviceStream(jobs.workflows.watch(String(id), caller))),
      resolve: (workflow) => workflow,
    }),
  );
}
