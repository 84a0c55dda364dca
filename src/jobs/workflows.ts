/**
 * Workflows (issue 26): a graph of steps submitted at once, each a job that waits for the steps
 * it depends on (and for jobs of the caller's that already exist). The graph is checked whole
 * (names, cycles, the parents' owner) before anything is written; the hand-over from a finished
 * parent to its dependents is the database's, in the statement that finishes the parent.
 */
import type { Database } from '../db/database.ts';
import type { Job } from '../generated/prisma/client.ts';
import type { KindRegistry } from '../kinds/registry.ts';
import type { Logger } from '../logger.ts';
import type { Caller } from './service.ts';
import { JobServiceError } from './errors.ts';
import type { JobEventHub } from './events.ts';
import { type JobIdGenerator, toJobId } from './ids.ts';
import { type JobInputLimits, type JobSubmission, toNewJob } from './job-input.ts';
import {
  cancelWorkflowStatement,
  type DependencyFailure,
  insertWorkflowStatement,
  lockParentsStatement,
  type NewEdge,
  type NewStep,
  readWorkflowStatement,
  type StepOfJob,
  stepsOfJobsStatement,
  type WorkflowRow,
  type WorkflowStepRow,
} from './sql/workflows.ts';
import { cancelDoomed, checkAcyclic } from './workflow-dag.ts';
import { watchWorkflow } from './workflow-watch.ts';

export type { DependencyFailure, StepOfJob };

export interface WorkflowStepInput extends JobSubmission {
  /** The step's name, unique in its workflow: 1 to 100 characters. */
  name: string;
  /** Names of the steps of the same workflow it waits for. */
  dependsOn?: readonly string[] | null;
  /** Ids of the caller's jobs, outside the workflow, it waits for too. */
  dependsOnJobs?: readonly string[] | null;
  /** When one of its parents fails for good or is cancelled; default: the workflow's. */
  onParentFailure?: DependencyFailure | null;
}

export interface WorkflowSubmission {
  steps: readonly WorkflowStepInput[];
  /** Default `cancel`: a failed step cancels its dependents, and theirs. */
  onParentFailure?: DependencyFailure | null;
}

export interface Workflow extends WorkflowRow {
  steps: WorkflowStepRow[];
}

export interface WorkflowServiceOptions {
  db: Database;
  hub: JobEventHub;
  kinds: KindRegistry;
  ids: JobIdGenerator;
  limits: JobInputLimits & { maxBatchSize: number };
  logger?: Logger;
}

const STEP_NAME = /^.{1,100}$/su;

/** How errors name a step's fields: `steps.3.` and `dependsOnJobs` in a workflow. */
interface StepFields {
  step: (index: number) => string;
  jobs: string;
}

const STEP_FIELDS: StepFields = { step: (index) => `steps.${index}.`, jobs: 'dependsOnJobs' };
const FINISHED_OK = new Set(['completed', 'retrieved']);
const FINISHED_BADLY = new Set(['failed', 'cancelled']);

/** Workflows of the caller's (JobService.workflows). */
export class WorkflowService {
  private readonly options: WorkflowServiceOptions;

  constructor(options: WorkflowServiceOptions) {
    this.options = options;
  }

  /** Adds the workflow, all of it or nothing, and answers with it as it now is. */
  async submit(submission: WorkflowSubmission, { owner }: Caller): Promise<Workflow> {
    const workflowId = this.options.ids.next();
    const inserted = await this.write(submission, owner, workflowId, STEP_FIELDS);
    this.options.logger?.debug({ workflowId, steps: inserted.length }, 'workflow submitted');
    const workflow = await this.get(workflowId, { owner });
    return workflow!;
  }

  /**
   * One job that waits for jobs of the caller's (`dependsOn`, their ids), outside any workflow;
   * its context's parents() names them by id. Errors name `dependsOn.N` and the job's own fields.
   */
  async submitAfter(
    submission: JobSubmission,
    dependsOn: readonly string[],
    onParentFailure: DependencyFailure | null | undefined,
    caller: Caller,
  ): Promise<Job> {
    const [job] = await this.submitWaiting([{ ...submission, dependsOn }], onParentFailure, caller, { step: () => '', jobs: 'dependsOn' });
    return job!;
  }

  /**
   * A batch of jobs (submitJobs), all or none, each waiting for the jobs of the caller's it names
   * in `dependsOn` (none: it is pending at once), outside any workflow. Errors name `inputs.N.`.
   * No job of such a batch takes an idempotency, unique or concurrency key: the batch is written
   * as a workflow's steps are, and those take none.
   */
  submitBatchAfter(submissions: readonly (JobSubmission & { dependsOn?: readonly string[] | null })[], caller: Caller): Promise<Job[]> {
    return this.submitWaiting(submissions, null, caller, { step: (index) => `inputs.${index}.`, jobs: 'dependsOn' });
  }

  private async submitWaiting(
    submissions: readonly (JobSubmission & { dependsOn?: readonly string[] | null })[],
    onParentFailure: DependencyFailure | null | undefined,
    { owner }: Caller,
    fields: StepFields,
  ): Promise<Job[]> {
    for (const [index, submission] of submissions.entries()) {
      if (!(submission.idempotencyKey || submission.uniqueKey || submission.concurrencyKey)) continue;
      if (submissions.length === 1) {
        throw new JobServiceError('BAD_USER_INPUT', 'a job with dependsOn takes no idempotency, unique or concurrency key', 'dependsOn');
      }
      const key = submission.idempotencyKey ? 'idempotencyKey' : submission.uniqueKey ? 'uniqueKey' : 'concurrencyKey';
      const field = `${fields.step(index)}${key}`;
      throw new JobServiceError('BAD_USER_INPUT', `${field}: no job of a batch where one has dependsOn takes an idempotency, unique or concurrency key`, field);
    }
    const steps = submissions.map(({ dependsOn, ...job }, index) => ({ ...job, name: String(index), dependsOnJobs: dependsOn ?? [], onParentFailure }));
    const jobs = await this.write({ steps }, owner, null, fields);
    for (const job of jobs) this.options.logger?.debug({ jobId: job.id }, `job ${job.status}`);
    return jobs;
  }

  /** Checks the graph whole, then writes it in one transaction; the jobs in the order of the steps. */
  private async write(submission: WorkflowSubmission, owner: string, workflowId: string | null, fields: StepFields): Promise<Job[]> {
    const { db, ids, kinds, limits } = this.options;
    const steps = submission.steps ?? [];
    if (steps.length === 0) throw new JobServiceError('BAD_USER_INPUT', 'give at least one step', 'steps');
    if (steps.length > limits.maxBatchSize) {
      throw new JobServiceError('BAD_USER_INPUT', `at most ${limits.maxBatchSize} steps fit in one workflow; got ${steps.length}`, 'steps');
    }
    const policy = submission.onParentFailure ?? 'cancel';
    const byName = new Map<string, number>();
    for (const [index, step] of steps.entries()) {
      if (typeof step.name !== 'string' || !STEP_NAME.test(step.name)) {
        throw new JobServiceError('BAD_USER_INPUT', `steps.${index}.name must be 1 to 100 characters`, `steps.${index}.name`);
      }
      if (byName.has(step.name)) {
        throw new JobServiceError('BAD_USER_INPUT', `steps.${index}.name: "${step.name}" names two steps`, `steps.${index}.name`);
      }
      byName.set(step.name, index);
    }
    const parents = steps.map((step, index) => (step.dependsOn ?? []).map((name, at) => {
      const parent = byName.get(name);
      if (parent === undefined) {
        throw new JobServiceError('BAD_USER_INPUT', `steps.${index}.dependsOn.${at}: no step is named "${name}"`, `steps.${index}.dependsOn.${at}`);
      }
      return parent;
    }));
    checkAcyclic(steps, parents);
    const external = steps.map((step, index) => (step.dependsOnJobs ?? []).map((id, at) => {
      const jobId = toJobId(id);
      const field = `${fields.step(index)}${fields.jobs}.${at}`;
      if (!jobId) throw new JobServiceError('BAD_USER_INPUT', `${field} is not a job id`, field);
      return jobId;
    }));
    const context = { kinds, owner, ids, limits };
    const jobs = steps.map(({ name: _n, dependsOn: _d, dependsOnJobs: _j, onParentFailure: _p, ...job }, index) =>
      toNewJob(job, { job: fields.step(index), input: `${fields.step(index)}input.` }, context),
    );
    const inserted = await db.transaction(async (tx) => {
      const known = await lockParentsStatement(tx, [...new Set(external.flat())], owner);
      const edges: NewEdge[] = [];
      const newSteps = jobs.map((job, index): NewStep => {
        const onFailure = steps[index]!.onParentFailure ?? policy;
        let left = 0;
        let doomed = false;
        for (const parent of parents[index]!) {
          edges.push({ parentId: jobs[parent]!.id, childId: job.id, parentName: steps[parent]!.name, onFailure });
          left += 1;
        }
        for (const [at, parentId] of external[index]!.entries()) {
          const status = known.get(parentId);
          if (!status) {
            const field = `${fields.step(index)}${fields.jobs}.${at}`;
            throw new JobServiceError('NOT_FOUND', `${field}: no job ${parentId} of yours`, field);
          }
          edges.push({ parentId, childId: job.id, parentName: parentId, onFailure });
          if (FINISHED_BADLY.has(status)) doomed ||= onFailure === 'cancel';
          else if (!FINISHED_OK.has(status)) left += 1;
        }
        return {
          id: job.id,
          name: steps[index]!.name,
          kind: job.kind,
          input: job.input,
          maxAttempts: job.maxAttempts,
          timeoutSeconds: job.timeoutSeconds,
          runAt: job.runAt,
          priority: job.priority,
          status: doomed ? 'cancelled' : left > 0 ? 'waiting' : 'pending',
          parentsLeft: left,
          hasDependents: false,
          traceparent: job.traceparent ?? null,
          sequenced: job.sequenced ?? false,
        };
      });
      for (const list of parents) for (const parent of list) newSteps[parent]!.hasDependents = true;
      // A step cancelled at birth cancels its dependents through `cancel` edges, as a failure would.
      cancelDoomed(newSteps, edges);
      return insertWorkflowStatement(tx, { id: workflowId, owner, onParentFailure: policy, steps: newSteps, edges });
    });
    const byId = new Map(inserted.map((job) => [job.id, job]));
    return jobs.map((job) => byId.get(job.id)!);
  }

  /** The caller's workflow; an operator's read (the console) finds any owner's, as job(id) does. */
  async get(requestedId: string, { owner, operator }: Caller): Promise<Workflow | null> {
    const id = toJobId(requestedId);
    if (!id) return null;
    const read = await readWorkflowStatement(this.options.db, id, operator ? null : owner);
    return read ? { ...read.workflow, steps: read.steps } : null;
  }

  /**
   * Which workflow each job is a step of, by job id (a job outside any is absent), in one read
   * however many jobs. It names no owner: its caller has read the jobs already, and a job is a
   * step of its owner's workflow only.
   */
  stepsOf(jobIds: readonly string[]): Promise<Map<string, StepOfJob>> {
    return stepsOfJobsStatement(this.options.db, jobIds);
  }

  /** Cancels the steps that have not started; answers with the workflow as it now is. */
  async cancel(requestedId: string, caller: Caller): Promise<Workflow> {
    const id = toJobId(requestedId);
    if (!id) throw workflowNotFound(requestedId);
    const count = await cancelWorkflowStatement(this.options.db, id, caller.owner);
    // Cancelling is the owner's own, as cancelJob is: an operator's key finds only its own here.
    const workflow = await this.get(id, { owner: caller.owner });
    if (!workflow) throw workflowNotFound(requestedId);
    this.options.logger?.debug({ workflowId: id, cancelled: count }, 'workflow cancelled');
    return workflow;
  }

  /**
   * The workflow now, then again after each change of one of its steps, until every step has
   * finished. Changes that land while a read is under way are shown by the next read. It listens
   * before its first read, so no change falls between the two. An iterator object rather than an
   * async generator: return() must let go at once, even while next() waits for a change.
   */
  watch(requestedId: string, caller: Caller): AsyncIterableIterator<Workflow> {
    return watchWorkflow(this.options.hub, async () => {
      const workflow = await this.get(requestedId, caller);
      if (!workflow) throw workflowNotFound(requestedId);
      return workflow;
    });
  }
}

export function workflowNotFound(id: string): JobServiceError {
  return new JobServiceError('NOT_FOUND', `no workflow ${id}`, 'id');
}
