import type { Tracer } from '@opentelemetry/api';
import type { Database } from '../db/database.ts';
import type { Job, JobStatus } from '../generated/prisma/client.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { JobServiceError, jobNotFound } from './errors.ts';
import type { KindRegistry } from '../kinds/registry.ts';
import type { AddJobInput, JobSubmission } from './job-input.ts';
import { JobIdGenerator, toJobId } from './ids.ts';
import { ReadCoalescer } from './read-coalescer.ts';
import { JobSubmitter } from './submission.ts';
import type { JobEventHub } from './events.ts';
import { cancelJobStatement, retrieveJobStatement } from './sql/customer.ts';
import { consoleListStatement } from './sql/console.ts';
import type { InsertedJob } from './sql/insert.ts';
import { openJobWatch } from './watch.ts';
import { ScheduleService } from '../schedules/service.ts';
import { KindControl } from './kind-control.ts';
import { WorkflowService } from './workflows.ts';
import { JobConsole } from './console.ts';

export type { AddJobInput, Job, JobStatus, JobSubmission };

/** Who is asking. Jobs belong to the key that created them; '' while the service has no keys. */
export interface Caller {
  owner: string;
  /**
   * An operator (ADMIN_API_KEYS, or anyone while the service has no keys): sees every owner's
   * jobs and schedules, and may pause kinds and act in bulk. A customer's key may not.
   */
  operator?: boolean;
}

export interface JobServiceLimits {
  /** For jobs whose kind and submission set none (MAX_ATTEMPTS). */
  maxAttempts: number;
  maxBatchSize: number;
  /** The largest input, as UTF-8 JSON (JOB_PAYLOAD_MAX_BYTES). */
  maxInputBytes: number;
}

export interface ListJobsArgs {
  status?: JobStatus | null;
  kind?: string | null;
  first?: number | null;
  after?: string | null;
}

export interface JobPage {
  jobs: Job[];
  hasNextPage: boolean;
  endCursor: string | null;
}

export interface JobServiceOptions {
  db: Database;
  hub: JobEventHub;
  /** The kinds a submission may name. */
  kinds: KindRegistry;
  limits: JobServiceLimits;
  metrics?: Metrics;
  /** Job state changes made here (created, retrieved, cancelled) are logged at debug. */
  logger?: Logger;
  /** Set while tracing is on: submissions are spans, and their jobs carry the trace on. */
  tracer?: Tracer;
}

export const MAX_PAGE_SIZE = 100;
/**
 * Shared reads of single jobs: at most 4 statements at once, fewer than the pool's connections so
 * that a burst of reads leaves room for writes; 1,000 rows of a few hundred bytes stay one quick
 * statement.
 */
const SHARED_READS = { parallel: 4, maxIds: 1000 };

/**
 * The one entry point of the API layers (GraphQL and REST) to jobs. It validates input
 * (job-input.ts), scopes every read and write to the caller, and leaves SQL to the queue module;
 * following a job's changes is watch.ts's.
 */
export class JobService {
  /** New jobs without dependencies: checked, then stored (concurrent requests share an INSERT). */
  private readonly submitter: JobSubmitter;
  /** Concurrent reads of single jobs (the `job` query, every subscriber's), sent as one SELECT. */
  private readonly reads: ReadCoalescer;
  private readonly ids = new JobIdGenerator();
  /** The caller's schedules: recurring jobs (src/schedules). */
  readonly schedules: ScheduleService;
  /** The kinds this service runs, and pausing them. */
  readonly kindControl: KindControl;
  /** The caller's workflows: graphs of jobs that wait for each other (issue 26). */
  readonly workflows: WorkflowService;
  /** The operator console's finding, counting and bulk actions (src/jobs/console.ts). */
  readonly console: JobConsole;

  private readonly db: Database;
  private readonly hub: JobEventHub;
  private readonly limits: JobServiceLimits;
  private readonly options: JobServiceOptions;

  constructor(options: JobServiceOptions) {
    this.options = options;
    this.db = options.db;
    this.hub = options.hub;
    this.limits = options.limits;
    this.submitter = new JobSubmitter({ ...options, ids: this.ids });
    this.reads = new ReadCoalescer(options.db, SHARED_READS);
    this.schedules = new ScheduleService({ db: options.db, kinds: options.kinds, ids: this.ids, maxInputBytes: options.limits.maxInputBytes });
    this.kindControl = new KindControl({ db: options.db, kinds: options.kinds, logger: options.logger });
    this.workflows = new WorkflowService({
      db: options.db,
      hub: options.hub,
      kinds: options.kinds,
      ids: this.ids,
      limits: options.limits,
      logger: options.logger,
    });
    this.console = new JobConsole({
      db: options.db,
      schedules: this.schedules,
      submit: (submission, caller) => this.submitJob(submission, caller),
      read: (id, caller) => this.getJob(id, caller),
      kinds: () => this.kindControl.list(),
      logger: options.logger,
    });
  }

  /** The seed's job: an `add` of two numbers, whose errors name `num1` and `num2` as they always have. */
  async addJob(input: AddJobInput, caller: Caller): Promise<InsertedJob> {
    const [inserted] = await this.addJobs([input], caller);
    return inserted!;
  }

  async addJobs(inputs: readonly AddJobInput[], caller: Caller): Promise<InsertedJob[]> {
    const submissions = inputs.map(({ num1, num2, ...options }): JobSubmission => ({ kind: 'add', input: { num1, num2 }, ...options }));
    return this.submitter.submit(submissions, caller, (prefix) => ({ job: prefix, input: prefix }));
  }

  async submitJob(submission: JobSubmission, caller: Caller): Promise<InsertedJob> {
    const { dependsOn, ...job } = submission;
    if (dependsOn?.length) return { job: await this.workflows.submitAfter(job, dependsOn, null, caller), created: true };
    const [inserted] = await this.submitJobs([job], caller);
    return inserted!;
  }

  /**
   * Jobs of any kinds, each input checked by its kind's schema. See JobSubmitter.submit. A batch where a job
   * names `dependsOn` (ids of the caller's jobs) is written whole as waiting jobs are (see
   * WorkflowService.submitBatchAfter), and then takes no idempotency, unique or concurrency key.
   */
  async submitJobs(submissions: readonly JobSubmission[], caller: Caller): Promise<InsertedJob[]> {
    if (!submissions.some((submission) => submission.dependsOn?.length)) {
      return this.submitter.submit(submissions, caller, (prefix) => ({ job: prefix, input: `${prefix}input.` }));
    }
    if (submissions.length > this.limits.maxBatchSize) {
      throw new JobServiceError('BAD_USER_INPUT', `at most ${this.limits.maxBatchSize} jobs fit in one request; got ${submissions.length}`, 'inputs');
    }
    const jobs = await this.workflows.submitBatchAfter(submissions, caller);
    return jobs.map((job) => ({ job, created: true }));
  }

  /** A pure read: it never changes the job. An operator reads any owner's job (and so watches it). */
  async getJob(requestedId: string, caller: Caller): Promise<Job | null> {
    const id = toJobId(requestedId);
    if (!id) return null;
    const job = await this.reads.read(id);
    return job && (caller.operator || job.owner === caller.owner) ? job : null;
  }

  /**
   * Hands the result over: a completed job becomes `retrieved`. Any other job is returned as it
   * is, so calling this twice, or before the job is done, is safe.
   */
  async retrieveJob(requestedId: string, caller: Caller): Promise<Job | null> {
    const id = toJobId(requestedId);
    if (!id) return null;
    // A `completed` answer not marked here means another request changed the job after this
    // statement's snapshot (see retrieveJobStatement); asked again, the job shows that change.
    for (let round = 1; ; round += 1) {
      const answer = await retrieveJobStatement(this.db, id, caller.owner);
      if (answer?.retrieved) this.options.logger?.debug({ jobId: id }, 'job retrieved');
      if (!answer || answer.job.status !== 'completed' || round === 3) return answer?.job ?? null;
    }
  }

  /** pending or waiting → cancelled, with its dependents (by their policy). A job a worker already took cannot be cancelled. */
  async cancelJob(requestedId: string, caller: Caller): Promise<Job> {
    const id = toJobId(requestedId);
    const cancelled = id ? await cancelJobStatement(this.db, id, caller.owner) : null;
    if (cancelled) {
      this.options.logger?.debug({ jobId: id }, 'job cancelled');
      return cancelled;
    }
    const job = await this.getJob(requestedId, caller);
    if (!job) throw jobNotFound(requestedId);
    if (job.status === 'cancelled') return job;
    throw new JobServiceError('CONFLICT', `only a pending or waiting job can be cancelled; this one is ${job.status}`, 'id');
  }

  /** Newest first. `after` is the `endCursor` of the previous page. */
  async listJobs(args: ListJobsArgs, caller: Caller): Promise<JobPage> {
    const first = args.first ?? 20;
    if (!Number.isInteger(first) || first < 1 || first > MAX_PAGE_SIZE) {
      throw new JobServiceError('BAD_USER_INPUT', `first must be between 1 and ${MAX_PAGE_SIZE}`, 'first');
    }
    const after = args.after == null ? undefined : toJobId(args.after);
    if (args.after != null && !after) {
      throw new JobServiceError('BAD_USER_INPUT', 'after must be a cursor from a previous page', 'after');
    }
    // The console's statements: a caller's own jobs are a console filter by owner.
    const rows = await consoleListStatement(this.db, {
      filter: { owner: caller.owner, ...(args.status ? { status: args.status } : {}), ...(args.kind ? { kind: args.kind } : {}) },
      order: 'newest',
      ...(after ? { after } : {}),
      limit: first + 1,
    });
    const jobs = rows.slice(0, first);
    return { jobs, hasNextPage: rows.length > first, endCursor: jobs.at(-1)?.id ?? null };
  }

  /**
   * The job's state now, then each later state, ending after a final one, or with NOT_FOUND if
   * the job is deleted (pruned) before it reaches one. It subscribes to the job's events before
   * it reads, so no change falls between the read and the first event.
   *
   * Events only say that the job changed; each is followed by a read of the whole job. When
   * several changes land before a read, the read shows the latest and the states in between are
   * not repeated: every message is a real state, versions only grow, and the last state always
   * arrives. A slow consumer gets the same coalescing instead of an unbounded backlog.
   *
   * Each call is one watch with reads of its own. Subscribers of `jobUpdated` share one call per
   * operation and owner (graphql/shared-subscriptions.ts), so one change seen by 10,000 of them
   * costs one read. A result stored by a worker of this process comes with the whole row
   * (JobEventHub.deliverLocally) and is shown without any read; measured over 1,500 jobs, that
   * took 0.15 ms off the median from a job's add to its COMPLETED message.
   */
  async watchJob(requestedId: string, caller: Caller): Promise<AsyncIterableIterator<Job>> {
    const id = toJobId(requestedId);
    if (!id) throw jobNotFound(requestedId);
    return openJobWatch(id, {
      hub: this.hub,
      read: () => this.getJob(id, caller),
      metrics: this.options.metrics,
      tracer: this.options.tracer,
    });
  }
}
