import { context as traceContext, trace } from '@opentelemetry/api';
import { JobServiceError } from './errors.ts';
import type { JobIdGenerator } from './ids.ts';
import { InsertCoalescer } from './insert-coalescer.ts';
import { type FieldPaths, firstWithSameKey, firstWithSameUniqueKey, type JobSubmission, toNewJob } from './job-input.ts';
import { failSpan, JOB_COUNT, JOB_ID, JOB_KIND, traceparentOf } from './job-spans.ts';
import type { Caller, JobServiceOptions } from './service.ts';
import { type InsertedJob, isKeyRace, type NewJob, type StoredJob } from './sql/insert.ts';

export type JobSubmitterOptions = Pick<JobServiceOptions, 'db' | 'kinds' | 'limits' | 'metrics' | 'logger' | 'tracer'> & {
  ids: JobIdGenerator;
};

/**
 * The way in for jobs without dependencies (JobService's addJob, submitJob, submitJobs): each
 * submission checked by its kind's schema and made a row, keys resolved, and the rows stored,
 * concurrent requests sharing one INSERT (InsertCoalescer).
 */
export class JobSubmitter {
  private readonly inserts: InsertCoalescer;
  private readonly options: JobSubmitterOptions;

  constructor(options: JobSubmitterOptions) {
    this.options = options;
    // A shared statement never grows past what one request may send on its own.
    this.inserts = new InsertCoalescer(options.db, Math.max(options.limits.maxBatchSize, 1000));
  }

  /**
   * Adds jobs in one statement, all or none; the answer keeps the order of `submissions`. An
   * idempotency key already used by the caller answers with its first job (created: false) when
   * the kind and input match it, and refuses the whole request with CONFLICT when they differ. A
   * unique key held by a pending or running job of the same kind answers with that job
   * (onUnique `existing`) or refuses the whole request with CONFLICT (`refuse`).
   */
  submit(
    submissions: readonly JobSubmission[],
    caller: Caller,
    pathsFor: (prefix: string) => FieldPaths,
  ): Promise<InsertedJob[]> {
    const { tracer } = this.options;
    if (!tracer) return this.store(submissions, caller, pathsFor, null);
    const attributes = { [JOB_KIND]: [...new Set(submissions.map((submission) => submission.kind))].join(','), [JOB_COUNT]: submissions.length };
    // The request's span, when it has one, is the parent; the jobs store this span's context.
    return tracer.startActiveSpan('job.submit', { attributes }, async (span) => {
      try {
        const answer = await this.store(submissions, caller, pathsFor, traceparentOf(trace.setSpan(traceContext.active(), span)));
        if (answer.length === 1) span.setAttribute(JOB_ID, answer[0]!.job.id);
        return answer;
      } catch (error) {
        failSpan(span, error);
        throw error;
      } finally {
        span.end();
      }
    });
  }

  /** `submit`'s work; each new job stores `traceparent`, the submission's trace context (null while tracing is off). */
  private async store(
    submissions: readonly JobSubmission[],
    caller: Caller,
    pathsFor: (prefix: string) => FieldPaths,
    traceparent: string | null,
  ): Promise<InsertedJob[]> {
    if (submissions.length === 0) throw new JobServiceError('BAD_USER_INPUT', 'give at least one job', 'inputs');
    if (submissions.length > this.options.limits.maxBatchSize) {
      throw new JobServiceError(
        'BAD_USER_INPUT',
        `at most ${this.options.limits.maxBatchSize} jobs fit in one request; got ${submissions.length}`,
        'inputs',
      );
    }
    const pathOf = (index: number) => (submissions.length > 1 ? `inputs.${index}.` : '');
    const context = { kinds: this.options.kinds, owner: caller.owner, ids: this.options.ids, limits: this.options.limits };
    const jobs = submissions.map((submission, index) => toNewJob(submission, pathsFor(pathOf(index)), context));
    if (traceparent) for (const job of jobs) job.traceparent = traceparent;
    const firstOf = firstWithSameUniqueKey(jobs, firstWithSameKey(jobs, pathOf), pathOf);
    const sent = jobs.filter((_job, index) => firstOf[index] === index);
    const stored = await this.insertRequest(sent);
    for (const [index, job] of jobs.entries()) {
      const { job: existing, outcome } = stored.get(job.id) ?? {};
      if (outcome === 'conflict') {
        const field = `${pathOf(index)}idempotencyKey`;
        throw new JobServiceError('CONFLICT', `${field} was first used for job ${existing!.id}, with other input`, field);
      }
      if (outcome === 'held') {
        const field = `${pathOf(index)}uniqueKey`;
        throw new JobServiceError('CONFLICT', `${field} is held by job ${existing!.id}, which is ${existing!.status}`, field);
      }
    }
    const answer = jobs.map((_job, index): InsertedJob => {
      const first = jobs[firstOf[index]!]!;
      const { job, outcome } = stored.get(first.id)!;
      return { job, created: outcome === 'created' && first === jobs[index] };
    });
    for (const { job, created } of answer) {
      if (!created) continue;
      this.options.metrics?.jobsCreated.inc({ kind: job.kind });
      this.options.logger?.debug({ jobId: job.id, kind: job.kind }, 'job pending');
    }
    return answer;
  }

  /**
   * One request's jobs, in one statement. A statement that lost a race for a key to another
   * transaction wrote nothing, and is sent again: the next one sees the winner. Three rounds
   * cover any interleaving of two such statements.
   */
  private async insertRequest(jobs: readonly NewJob[]): Promise<Map<string, StoredJob>> {
    for (let round = 1; ; round += 1) {
      try {
        return await this.inserts.insert(jobs);
      } catch (error) {
        if (!isKeyRace(error)) throw error;
        if (round === 3) {
          throw new JobServiceError('CONFLICT', 'an idempotency or unique key is in use by a request still running; retry', undefined, {
            cause: error,
          });
        }
      }
    }
  }
}
