import DataLoader from 'dataloader';
import type { AttemptError } from '../jobs/console.ts';
import type { JobService } from '../jobs/service.ts';
import type { StepOfJob } from '../jobs/workflows.ts';

/**
 * Reads of a job's fields that are not in its row, gathered per operation: every job of a list
 * that asks for `attempts` (or `workflowStep`) is answered by one call of the job service for the
 * whole list, one statement, instead of one per job.
 *
 * Made anew for each operation (its context), never shared between callers. They batch and do
 * not cache (`cache: false`): a subscription keeps its context for as long as it runs, and a
 * mutation may change a job's history between two fields of one operation, so each load reads
 * the database as the field did before. The keys are ids of jobs the caller has already been
 * given (by job(id), jobs, searchJobs, a mutation or a workflow), so they check no owner, as the
 * fields' own reads never did. A statement takes at most MAX_IDS_PER_READ ids, as the shared
 * reads of whole jobs do (read-coalescer.ts): a workflow's 5,000 steps are five reads.
 */
export interface JobLoaders {
  attempts: DataLoader<string, AttemptError[]>;
  workflowStep: DataLoader<string, StepOfJob | null>;
}

const MAX_IDS_PER_READ = 1000;

export function createJobLoaders(jobs: JobService): JobLoaders {
  return {
    attempts: new DataLoader(
      async (ids) => {
        const byJob = await jobs.console.historiesOf(ids);
        return ids.map((id) => byJob.get(id) ?? []);
      },
      { cache: false, maxBatchSize: MAX_IDS_PER_READ },
    ),
    workflowStep: new DataLoader(
      async (ids) => {
        const byJob = await jobs.workflows.stepsOf(ids);
        return ids.map((id) => byJob.get(id) ?? null);
      },
      { cache: false, maxBatchSize: MAX_IDS_PER_READ },
    ),
  };
}
