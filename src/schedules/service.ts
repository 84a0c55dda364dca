/**
 * What the API layers call for schedules: create, list, pause, resume, delete. Every call is
 * scoped to the caller's API key, as jobs are, or to no key (null) for an operator, who manages
 * every schedule, declared ones included (scheduleScope); the SQL is in src/jobs/sql/schedules.ts.
 */
import { z } from 'zod';
import type { Database } from '../db/database.ts';
import { JobServiceError } from '../jobs/errors.ts';
import { type JobIdGenerator, toJobId } from '../jobs/ids.ts';
import { checkInput, knownKind } from '../jobs/job-input.ts';
import {
  createScheduleStatement,
  deleteScheduleStatement,
  listSchedulesStatement,
  readScheduleStatement,
  setSchedulePausedStatement,
  type StoredSchedule,
} from '../jobs/sql/schedules.ts';
import type { KindRegistry } from '../kinds/registry.ts';
import { nextTick, parseTiming } from './cron.ts';

/** A schedule as a customer asks for it. */
export interface ScheduleInput {
  kind: string;
  input?: unknown;
  cron: string;
  timeZone?: string | null;
  catchUp?: 'skip' | 'one' | 'all' | null;
  catchUpLimit?: number | null;
  paused?: boolean | null;
}

/** A schedule as the APIs show it: its row, and when it fires next (null while paused). */
export type ScheduleView = StoredSchedule & { nextFireAt: Date | null };

const OptionsSchema = z.object({
  cron: z.string().min(1).max(200),
  timeZone: z.string().min(1).max(100).nullish(),
  catchUp: z.enum(['skip', 'one', 'all']).nullish(),
  catchUpLimit: z.number().int().min(1).max(1000).nullish(),
  paused: z.boolean().nullish(),
});

export interface ScheduleServiceOptions {
  db: Database;
  kinds: KindRegistry;
  ids: JobIdGenerator;
  /** The largest input, as UTF-8 JSON (JOB_PAYLOAD_MAX_BYTES). */
  maxInputBytes: number;
}

export class ScheduleService {
  private readonly options: ScheduleServiceOptions;

  constructor(options: ScheduleServiceOptions) {
    this.options = options;
  }

  /** Checks everything before it writes: BAD_USER_INPUT names the first wrong field. */
  async create(schedule: ScheduleInput, owner: string): Promise<ScheduleView> {
    const { db, kinds, ids, maxInputBytes } = this.options;
    const kind = knownKind(kinds, schedule.kind, 'kind');
    const options = OptionsSchema.safeParse({
      cron: schedule.cron,
      timeZone: schedule.timeZone,
      catchUp: schedule.catchUp,
      catchUpLimit: schedule.catchUpLimit,
      paused: schedule.paused,
    });
    if (!options.success) {
      const [issue] = options.error.issues;
      const field = issue?.path.join('.') || 'cron';
      throw new JobServiceError('BAD_USER_INPUT', `${field} ${issue?.message ?? 'is invalid'}`, field);
    }
    const { cron, timeZone = 'UTC', catchUp = 'one', catchUpLimit = 10, paused = false } = options.data;
    const timing = parseTiming({ cron, timeZone: timeZone ?? 'UTC' });
    if ('problem' in timing) throw new JobServiceError('BAD_USER_INPUT', `${timing.field} ${timing.problem}`, timing.field);
    const stored = await createScheduleStatement(db, {
      id: ids.next(),
      owner,
      kind: kind.name,
      input: checkInput(kind, schedule.input, 'input.', maxInputBytes),
      cron,
      timeZone: timeZone ?? 'UTC',
      catchUp: catchUp ?? 'one',
      catchUpLimit: catchUpLimit ?? 10,
      paused: paused ?? false,
    });
    return this.view(stored);
  }

  /** The owner's schedules, oldest first. */
  async list(owner: string | null): Promise<ScheduleView[]> {
    return (await listSchedulesStatement(this.options.db, owner)).map((schedule) => this.view(schedule));
  }

  async get(requestedId: string, owner: string | null): Promise<ScheduleView | null> {
    const id = toJobId(requestedId);
    const stored = id ? await readScheduleStatement(this.options.db, id, owner) : null;
    return stored ? this.view(stored) : null;
  }

  /** No ticks fire while paused; resumed, it fires from the next tick on, not the ones it slept through. */
  async setPaused(requestedId: string, owner: string | null, paused: boolean): Promise<ScheduleView> {
    const id = toJobId(requestedId);
    const stored = id ? await setSchedulePausedStatement(this.options.db, id, owner, paused) : null;
    if (!stored) throw scheduleNotFound(requestedId);
    return this.view(stored);
  }

  /** The jobs it made stay. */
  async delete(requestedId: string, owner: string | null): Promise<void> {
    const id = toJobId(requestedId);
    if (!id || !(await deleteScheduleStatement(this.options.db, id, owner))) throw scheduleNotFound(requestedId);
  }

  private view(schedule: StoredSchedule): ScheduleView {
    const now = new Date();
    const from = schedule.lastFireAt && schedule.lastFireAt > now ? schedule.lastFireAt : now;
    return { ...schedule, nextFireAt: schedule.paused ? null : nextTick(schedule, from) };
  }
}

export function scheduleNotFound(id: string): JobServiceError {
  return new JobServiceError('NOT_FOUND', `no schedule with id ${id}`, 'id');
}

/**
 * Whose schedules a caller manages: a customer's key its own (issue 19: a schedule is owned by
 * the key that made it), an operator's every one (null), those a kind declares included.
 */
export function scheduleScope(caller: { owner: string; operator?: boolean }): string | null {
  return caller.operator ? null : caller.owner;
}
