/**
 * What the operator console (and any API client) does beyond one job at a time: find jobs by a
 * filter, count them, act on all of them, see each kind's queue and last hour, run a schedule now.
 * Who may do what (README, "The operator console"): a customer's key finds and acts on its own
 * jobs one at a time; an operator's key (ADMIN_API_KEYS, or anyone on an open service) sees every
 * owner, filters by owner, and acts in bulk.
 */
import type { Database } from '../db/database.ts';
import type { Job } from '../generated/prisma/client.ts';
import type { Logger } from '../logger.ts';
import { scheduleNotFound, scheduleScope, type ScheduleService } from '../schedules/service.ts';
import { JobServiceError, jobNotFound, operatorsOnly } from './errors.ts';
import { type JobFilterInput, toJobFilter } from './console-filter.ts';
import { toJobId, uuidv7Floor } from './ids.ts';
import type { JobSubmission } from './job-input.ts';
import { type AttemptError, readAttemptErrorsStatement } from './sql/attempt-errors.ts';
import type { InsertedJob } from './sql/insert.ts';
import {
  ACTION_STATUS,
  type ConsoleAction,
  consoleActStatement,
  consoleCountStatement,
  consoleListStatement,
  type JobFilter,
  type KindQueue,
  kindQueuesStatement,
  lastHourStatement,
  type MinuteOfKind,
  scheduleRanStatement,
} from './sql/console.ts';

export type { AttemptError, ConsoleAction, JobFilterInput };

interface Caller {
  owner: string;
  operator?: boolean;
}

export interface ConsolePageArgs {
  first?: number | null;
  after?: string | null;
  order?: 'newest' | 'oldest' | null;
}

export interface ConsoleJobPage {
  jobs: Job[];
  hasNextPage: boolean;
  endCursor: string | null;
}

/** How many jobs a filter finds, up to `cap`: `more` says there are more than that. */
export interface JobCount {
  count: number;
  more: boolean;
  cap: number;
}

/** One kind in the overview: its queue now, and its last hour minute by minute. */
export interface KindOverview extends KindQueue {
  paused: boolean;
  completedLastHour: number;
  failedLastHour: number;
  minutes: Omit<MinuteOfKind, 'kind'>[];
}

export interface Overview {
  at: Date;
  kinds: KindOverview[];
  /** The queue counts stop here (each of pending and running). */
  queueCap: number;
  /** At most this many of the last hour's jobs are read; `sampled` says the hour held more. */
  hourCap: number;
  sampled: boolean;
}

/** The most jobs one bulk action changes, and the most a count counts: a call acts on the oldest this many. */
export const BULK_MAX = 10_000;
const MAX_PAGE = 100;
const QUEUE_CAP = 100_000;
const HOUR_CAP = 200_000;
/** Every viewer of the overview shares one reading this fresh; a refresh costs the database once per period. */
export const OVERVIEW_PERIOD_MS = 2000;

export interface JobConsoleOptions {
  db: Database;
  schedules: ScheduleService;
  /** The job service's submission, for `runSchedule`. */
  submit: (submission: JobSubmission, caller: Caller) => Promise<InsertedJob>;
  /** The job service's read of one job: any owner's for an operator, the caller's own otherwise. */
  read: (id: string, caller: Caller) => Promise<Job | null>;
  /** Paused kinds, for the overview. */
  kinds: () => Promise<{ name: string; paused: boolean }[]>;
  logger?: Logger;
}

export class JobConsole {
  private readonly options: JobConsoleOptions;
  private overviewReading: { at: number; answer: Promise<Overview> } | null = null;

  constructor(options: JobConsoleOptions) {
    this.options = options;
  }

  /** A page of the jobs the filter finds, newest first unless asked; `after` is the previous page's `endCursor`. */
  async list(input: JobFilterInput, args: ConsolePageArgs, caller: Caller): Promise<ConsoleJobPage> {
    const first = args.first ?? 20;
    if (!Number.isInteger(first) || first < 1 || first > MAX_PAGE) {
      throw new JobServiceError('BAD_USER_INPUT', `first must be between 1 and ${MAX_PAGE}`, 'first');
    }
    const after = args.after == null ? undefined : toJobId(args.after);
    if (args.after != null && !after) throw new JobServiceError('BAD_USER_INPUT', 'after must be a cursor from a previous page', 'after');
    const filter = toJobFilter(input, caller);
    if (!filter) return { jobs: [], hasNextPage: false, endCursor: null };
    const rows = await consoleListStatement(this.options.db, { filter, order: args.order ?? 'newest', after, limit: first + 1 });
    const jobs = rows.slice(0, first);
    return { jobs, hasNextPage: rows.length > first, endCursor: jobs.at(-1)?.id ?? null };
  }

  /** How many jobs the filter finds, counted up to BULK_MAX: what a bulk action's confirmation states. */
  async count(input: JobFilterInput, caller: Caller): Promise<JobCount> {
    const filter = toJobFilter(input, caller);
    const count = filter ? await consoleCountStatement(this.options.db, filter, BULK_MAX) : 0;
    return { count: Math.min(count, BULK_MAX), more: count > BULK_MAX, cap: BULK_MAX };
  }

  /**
   * Retries (failed), cancels (pending) or retrieves (completed) every job the filter finds in
   * that status, the oldest BULK_MAX of them; answers with how many it changed. Operators only:
   * one call may change every owner's jobs.
   */
  async bulk(action: ConsoleAction, input: JobFilterInput, caller: Caller): Promise<JobCount> {
    if (!caller.operator) throw operatorsOnly('act on jobs in bulk');
    const filter = toJobFilter(input, caller);
    const changed = filter ? await this.act(action, filter, BULK_MAX) : [];
    this.options.logger?.info({ action, jobs: changed.length }, 'jobs changed in bulk');
    return { count: changed.length, more: changed.length === BULK_MAX, cap: BULK_MAX };
  }

  /**
   * A failed job runs again: a new attempt of the same job, its attempts so far and last error
   * kept. A customer retries its own jobs; an operator any. A job in another state is CONFLICT.
   */
  async retry(requestedId: string, caller: Caller): Promise<Job> {
    const id = toJobId(requestedId);
    const filter = id ? toJobFilter({ id }, caller) : null;
    const [job] = filter ? await this.act('retry', filter, 1) : [];
    if (job) return job;
    const now = id ? await this.options.read(id, caller) : null;
    if (!now) throw jobNotFound(requestedId);
    throw new JobServiceError('CONFLICT', `only a ${ACTION_STATUS.retry} job can be retried; this one is ${now.status}`, 'id');
  }

  /**
   * The job's failed attempts, oldest first (a job that never failed has none); null when the
   * caller may not see the job.
   */
  async history(requestedId: string, caller: Caller): Promise<AttemptError[] | null> {
    const id = toJobId(requestedId);
    const job = id ? await this.options.read(id, caller) : null;
    return job ? (await this.historiesOf([job.id])).get(job.id)! : null;
  }

  /**
   * The failed attempts of jobs the caller has already been given (the GraphQL field on a job,
   * for a whole list at once), by job id, in one read however many jobs.
   */
  historiesOf(jobIds: readonly string[]): Promise<Map<string, AttemptError[]>> {
    return readAttemptErrorsStatement(this.options.db, jobIds);
  }

  /** A job of the schedule now, outside its ticks: its kind and input, owned by the schedule's owner. */
  async runSchedule(requestedId: string, caller: Caller): Promise<InsertedJob> {
    const schedule = await this.options.schedules.get(requestedId, scheduleScope(caller));
    if (!schedule) throw scheduleNotFound(requestedId);
    const answer = await this.options.submit({ kind: schedule.kind, input: schedule.input }, { owner: schedule.owner });
    await scheduleRanStatement(this.options.db, schedule.id, answer.job.id);
    this.options.logger?.info({ scheduleId: schedule.id, jobId: answer.job.id }, 'schedule run now');
    return answer;
  }

  /**
   * Each kind's queue and last hour. Operators only: it counts every owner's jobs. Readings are
   * shared: callers within OVERVIEW_PERIOD_MS of the last reading get it, so any number of open
   * consoles cost the database one reading per period (README: what a reading costs).
   */
  overview(caller: Caller): Promise<Overview> {
    if (!caller.operator) return Promise.reject(operatorsOnly('see the overview of every kind'));
    const now = Date.now();
    if (this.overviewReading && now - this.overviewReading.at < OVERVIEW_PERIOD_MS) return this.overviewReading.answer;
    const answer = this.readOverview();
    this.overviewReading = { at: now, answer };
    answer.catch(() => {
      if (this.overviewReading?.answer === answer) this.overviewReading = null;
    });
    return answer;
  }

  private async readOverview(): Promise<Overview> {
    const { db } = this.options;
    const hourAgo = uuidv7Floor(new Date(Date.now() - 3600_000));
    const [queues, minutes, kinds] = await Promise.all([
      kindQueuesStatement(db, QUEUE_CAP),
      lastHourStatement(db, hourAgo, HOUR_CAP),
      this.options.kinds(),
    ]);
    const names = [...new Set([...kinds.map((kind) => kind.name), ...queues.map((queue) => queue.kind), ...minutes.map((minute) => minute.kind)])];
    const sampledRows = minutes.reduce((sum, minute) => sum + minute.completed + minute.failed, 0);
    return {
      at: new Date(),
      queueCap: QUEUE_CAP,
      hourCap: HOUR_CAP,
      sampled: sampledRows >= HOUR_CAP,
      kinds: names.sort().map((name) => {
        const queue = queues.find((row) => row.kind === name);
        const own = minutes.filter((row) => row.kind === name).map(({ kind: _kind, ...minute }) => minute);
        return {
          kind: name,
          paused: kinds.find((kind) => kind.name === name)?.paused ?? false,
          due: queue?.due ?? 0,
          delayed: queue?.delayed ?? 0,
          running: queue?.running ?? 0,
          completedLastHour: own.reduce((sum, minute) => sum + minute.completed, 0),
          failedLastHour: own.reduce((sum, minute) => sum + minute.failed, 0),
          minutes: own,
        };
      }),
    };
  }

  private async act(action: ConsoleAction, filter: JobFilter, cap: number): Promise<Job[]> {
    try {
      return await consoleActStatement(this.options.db, action, filter, cap);
    } catch (error) {
      // job_unique_key_active_key: a retried job's unique key is held by another pending or running job.
      if ((error as { code?: string }).code === '23505') {
        throw new JobServiceError('CONFLICT', 'a job to retry has a unique key that another pending or running job holds', 'uniqueKey', { cause: error });
      }
      throw error;
    }
  }
}
