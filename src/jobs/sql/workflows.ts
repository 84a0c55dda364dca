/**
 * Workflows (issue 26): jobs that wait for other jobs. Adding a graph of steps, reading it, the
 * parents' outcomes a step's handler is given, and cancelling what has not started. Finishing a
 * parent settles its dependents in the statement that finishes it: see `settleDependents`
 * (./ctes.ts) and job_settle_dependents (the workflows migration).
 */
import type { Queryable, Statement } from '../../db/database.ts';
import type { Job, JobStatus } from '../../generated/prisma/client.ts';
import { announce, settleDependents } from './ctes.ts';
import { columns, jsonArray, type JobRow, toJob } from './rows.ts';

export type DependencyFailure = 'cancel' | 'continue';

/*
 * Locks the parents a submission names outside its own steps, in id order (so that two
 * submissions naming the same parents wait rather than deadlock), marks them as having
 * dependents, and answers with their status as of the lock. The submission's transaction holds
 * the locks until it commits: a parent that finishes meanwhile waits for it, and then settles the
 * new edges (job_settle_dependents reads them with a fresh snapshot); a parent that finished
 * before is answered finished, and the submission counts it as done (or cancels, by the policy).
 * Only the caller's own jobs: another owner's id is answered as missing.
 */
const lockParents: Statement = {
  name: 'workflow_lock_parents',
  text: `
  UPDATE job SET has_dependents = true
  WHERE id IN (SELECT id FROM job WHERE id = ANY ($1::uuid[]) AND owner = $2 ORDER BY id FOR UPDATE)
  RETURNING id, status`,
};

export async function lockParentsStatement(db: Queryable, ids: readonly string[], owner: string): Promise<Map<string, JobStatus>> {
  if (ids.length === 0) return new Map();
  const rows = await db.query<{ id: string; status: JobStatus }>(lockParents, [ids, owner]);
  return new Map(rows.map((row) => [row.id, row.status]));
}

export interface NewStep {
  id: string;
  /** The step's name in its workflow; null for a job submitted alone with `dependsOn`. */
  name: string | null;
  kind: string;
  /** JSON text. */
  input: string;
  maxAttempts: number;
  timeoutSeconds: number | null;
  runAt: Date | null;
  priority: number;
  /** `waiting` while `parentsLeft` > 0, `cancelled` when a parent had already failed, else `pending`. */
  status: JobStatus;
  parentsLeft: number;
  hasDependents: boolean;
  traceparent: string | null;
  /**
   * Its kind limits jobs per concurrency key: it draws a `concurrency_order` at insert, as any job
   * of such a kind does (insert.ts), so that the kind's claim finds it once it is pending. A
   * waiting step holds no place: the claim looks only at pending jobs of a key.
   */
  sequenced: boolean;
}

export interface NewEdge {
  parentId: string;
  childId: string;
  parentName: string;
  onFailure: DependencyFailure;
}

export interface NewWorkflow {
  /** Null for a job submitted alone with `dependsOn`: no workflow row. */
  id: string | null;
  owner: string;
  onParentFailure: DependencyFailure;
  steps: readonly NewStep[];
  edges: readonly NewEdge[];
}

/*
 * The workflow, its jobs, their names and their edges, in one statement. Steps go in `waiting`
 * (or pending, when they wait for nothing); no claim sees a waiting job (its queue_state is
 * null). Steps take no idempotency, unique or concurrency keys.
 */
const insertWorkflow: Statement = {
  name: 'workflow_insert',
  text: `
  WITH flow AS (
    INSERT INTO workflow (id, owner, on_parent_failure)
    SELECT $1::uuid, $2, $3::dependency_failure WHERE $1::uuid IS NOT NULL
    RETURNING id
  ),
  step AS (
    SELECT * FROM ROWS FROM (unnest($4::uuid[]), unnest($5::text[]), unnest($6::text[]), jsonb_array_elements($7::jsonb),
                             unnest($8::int[]), unnest($9::int[]), unnest($10::timestamptz[]), unnest($11::int[]),
                             unnest($12::job_status[]), unnest($13::int[]), unnest($14::boolean[]), unnest($15::text[]),
                             unnest($20::boolean[])) WITH ORDINALITY
      AS s(id, name, kind, input, max_attempts, timeout_seconds, run_at, priority, status, parents_left, has_dependents, traceparent,
           sequenced, position)
  ),
  inserted AS (
    INSERT INTO job (id, kind, input, max_attempts, timeout_seconds, run_at, priority, owner, status, parents_left,
                     has_dependents, traceparent, completed_on, concurrency_order)
    SELECT id, kind, input, max_attempts, timeout_seconds, coalesce(run_at, now()), priority, $2, status, parents_left,
           has_dependents, traceparent, CASE WHEN status = 'cancelled' THEN now() END,
           CASE WHEN sequenced THEN nextval('job_concurrency_order_seq') END
    FROM step
    RETURNING *
  ),
  named AS (
    INSERT INTO workflow_step (workflow_id, name, job_id, position)
    SELECT flow.id, step.name, step.id, step.position FROM flow, step
  ),
  edges AS (
    INSERT INTO job_dependency (parent_id, child_id, parent_name, on_failure)
    SELECT * FROM unnest($16::uuid[], $17::uuid[], $18::text[], $19::dependency_failure[])
  ),
  ${announce('inserted', { delayable: true })}
  SELECT ${columns('inserted')} FROM inserted, announced`,
};

/** Adds the workflow's rows; answers with its jobs, in no particular order. */
export async function insertWorkflowStatement(db: Queryable, workflow: NewWorkflow): Promise<Job[]> {
  const { steps, edges } = workflow;
  const rows = await db.query<JobRow>(insertWorkflow, [
    workflow.id,
    workflow.owner,
    workflow.onParentFailure,
    steps.map((s) => s.id),
    steps.map((s) => s.name),
    steps.map((s) => s.kind),
    jsonArray(steps.map((s) => s.input)),
    steps.map((s) => s.maxAttempts),
    steps.map((s) => s.timeoutSeconds),
    steps.map((s) => s.runAt),
    steps.map((s) => s.priority),
    steps.map((s) => s.status),
    steps.map((s) => s.parentsLeft),
    steps.map((s) => s.hasDependents),
    steps.map((s) => s.traceparent),
    edges.map((e) => e.parentId),
    edges.map((e) => e.childId),
    edges.map((e) => e.parentName),
    edges.map((e) => e.onFailure),
    steps.map((s) => s.sequenced),
  ]);
  return rows.map(toJob);
}

export interface WorkflowRow {
  id: string;
  owner: string;
  onParentFailure: DependencyFailure;
  createdAt: Date;
}

export interface WorkflowStepRow {
  name: string;
  job: Job;
  /** The names of the steps (or, for a parent outside the workflow, the job ids) it waits for. */
  dependsOn: string[];
}

function readWorkflowText(anyOwner: boolean): string {
  return `
  SELECT w.id AS "workflowId", w.owner AS "workflowOwner", w.on_parent_failure AS "onParentFailure",
         floor(extract(epoch FROM w.created_at) * 1000)::float8 AS "workflowCreatedAt",
         s.name AS "stepName",
         coalesce((SELECT array_agg(d.parent_name ORDER BY d.parent_name) FROM job_dependency d WHERE d.child_id = s.job_id), '{}') AS "dependsOn",
         ${columns('job')}
  FROM workflow w
  JOIN workflow_step s ON s.workflow_id = w.id
  JOIN job ON job.id = s.job_id
  WHERE w.id = $1${anyOwner ? '' : ' AND w.owner = $2'}
  ORDER BY s.position, s.name`;
}

const readWorkflow: Statement = { name: 'workflow_read', text: readWorkflowText(false) };

/** An operator's read (the console): whoever owns it. */
const readAnyWorkflow: Statement = { name: 'workflow_read_any', text: readWorkflowText(true) };

type ReadRow = JobRow & {
  workflowId: string;
  workflowOwner: string;
  onParentFailure: DependencyFailure;
  workflowCreatedAt: number;
  stepName: string;
  dependsOn: string[];
};

/**
 * The workflow and its steps, or null when there is none of that id (of `owner`'s, unless owner
 * is null: an operator's read). A pruned step is missing.
 */
export async function readWorkflowStatement(
  db: Queryable,
  id: string,
  owner: string | null,
): Promise<{ workflow: WorkflowRow; steps: WorkflowStepRow[] } | null> {
  const rows = owner === null ? await db.query<ReadRow>(readAnyWorkflow, [id]) : await db.query<ReadRow>(readWorkflow, [id, owner]);
  const first = rows[0];
  if (!first) return null;
  const workflow = { id: first.workflowId, owner: first.workflowOwner, onParentFailure: first.onParentFailure, createdAt: new Date(first.workflowCreatedAt) };
  const steps = rows.map(({ workflowId: _w, workflowOwner: _o, onParentFailure: _p, workflowCreatedAt: _c, stepName, dependsOn, ...job }) => ({
    name: stepName,
    dependsOn,
    job: toJob(job),
  }));
  return { workflow, steps };
}

/** Which workflow a job is a step of, and its name there. */
export interface StepOfJob {
  workflowId: string;
  name: string;
}

/*
 * Which workflow each of many jobs is a step of: a list of jobs that asks for `workflowStep`
 * (GraphQL) reads them all in one statement, not one per job. A plain read, no locks: a step's
 * name and workflow never change. workflow_step_job_key serves it, one row at most per id.
 */
const stepsOfJobs: Statement = {
  name: 'workflow_steps_of_jobs',
  text: `SELECT job_id AS "jobId", workflow_id AS "workflowId", name FROM workflow_step WHERE job_id = ANY ($1::uuid[])`,
};

/** By job id; a job outside any workflow (a single job with dependsOn included) is absent. */
export async function stepsOfJobsStatement(db: Queryable, jobIds: readonly string[]): Promise<Map<string, StepOfJob>> {
  if (jobIds.length === 0) return new Map();
  const rows = await db.query<StepOfJob & { jobId: string }>(stepsOfJobs, [[...new Set(jobIds)]]);
  return new Map(rows.map(({ jobId, ...step }) => [jobId, step]));
}

/** What a step's handler is told of one parent. */
export interface ParentOutcome {
  jobId: string;
  status: JobStatus;
  /** The parent's result, when it completed. */
  result: unknown;
  /** Why it failed, when it failed or was cancelled (a dependency's policy `continue`). */
  error: string | null;
}

const parentsOf: Statement = {
  name: 'job_parents',
  text: `
  SELECT d.parent_name AS name, job.id AS "jobId", job.status, job.result, job.last_error AS error
  FROM job_dependency d JOIN job ON job.id = d.parent_id
  WHERE d.child_id = $1`,
};

/** A job's parents' outcomes by name (step name, or job id for a parent outside a workflow). */
export async function parentsOfStatement(db: Queryable, jobId: string): Promise<Record<string, ParentOutcome>> {
  const rows = await db.query<ParentOutcome & { name: string }>(parentsOf, [jobId]);
  return Object.fromEntries(rows.map(({ name, ...outcome }) => [name, outcome]));
}

/*
 * Cancels a workflow's steps that have not started (pending or waiting), and settles their
 * dependents as any cancellation does; steps running finish, and their dependents, all cancelled
 * here or waiting on a cancelled step, stay cancelled. The steps are locked in id order, as
 * job_settle_dependents locks the children it counts down, so a cancel and a completion in the
 * same workflow wait for each other instead of deadlocking.
 */
const cancelWorkflow: Statement = {
  name: 'workflow_cancel',
  text: `
  WITH target AS (
    SELECT job.id FROM job
    WHERE job.id IN (SELECT s.job_id FROM workflow_step s JOIN workflow w ON w.id = s.workflow_id
                     WHERE w.id = $1 AND w.owner = $2)
      AND job.status IN ('pending', 'waiting')
    ORDER BY job.id
    FOR UPDATE
  ),
  cancelled AS (
    UPDATE job SET status = 'cancelled', completed_on = now(), last_updated = now(), version = job.version + 1,
                   last_error = 'cancelled: its workflow was cancelled'
    WHERE job.id IN (SELECT id FROM target) AND job.status IN ('pending', 'waiting')
    RETURNING job.id, job.status, job.version, job.has_dependents
  ),
  ${announce('cancelled')},
  ${settleDependents('cancelled')}
  SELECT count(*)::int AS count FROM cancelled, announced, settled`,
};

/** How many steps it cancelled. */
export async function cancelWorkflowStatement(db: Queryable, id: string, owner: string): Promise<number> {
  const [row] = await db.query<{ count: number }>(cancelWorkflow, [id, owner]);
  return row?.count ?? 0;
}
