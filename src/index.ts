/** What the package exports: define kinds, run the service with them, enqueue in a transaction. */
export { defineKind, isJobKind, PermanentJobError } from './kinds/define.ts';
export type { JobContext, JobKind, KindDefinition, KindHandler, KindOptions, KindSchedule, ThreadHandler } from './kinds/define.ts';
export type { CatchUp } from './schedules/cron.ts';
export { enqueue, type EnqueueOptions, startService, type StartServiceOptions } from './library.ts';
export type { Runtime } from './runtime.ts';
export type { ThreadHandlerContext } from './worker/thread-entry.ts';
export type { Job, JobStatus, JobSubmission } from './jobs/service.ts';
export type { OnUnique } from './jobs/sql/insert.ts';
export { JobServiceError } from './jobs/errors.ts';
export type { DependencyFailure, ParentOutcome } from './jobs/sql/workflows.ts';
export type { Workflow, WorkflowStepInput, WorkflowSubmission } from './jobs/workflows.ts';
