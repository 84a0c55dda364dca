import type { Database } from '../db/database.ts';
import type { JobIdGenerator } from '../jobs/ids.ts';
import { checkInput } from '../jobs/job-input.ts';
import {
  type ActiveSchedule,
  activeSchedulesStatement,
  type DeclaredSchedule,
  declareSchedulesStatement,
  fireScheduleStatement,
  SCHEDULE_CHANGES_CHANNEL,
} from '../jobs/sql/schedules.ts';
import type { KindRegistry } from '../kinds/registry.ts';
import { StartStop } from '../lifecycle.ts';
import type { Logger } from '../logger.ts';
import { dueTicks, nextTick } from './cron.ts';

export interface SchedulerOptions {
  db: Database;
  kinds: KindRegistry;
  ids: JobIdGenerator;
  logger: Logger;
  /** For jobs whose kind sets no maxAttempts (MAX_ATTEMPTS). */
  maxAttempts: number;
  /** The largest input of a declared schedule, as UTF-8 JSON (JOB_PAYLOAD_MAX_BYTES). */
  maxInputBytes: number;
  /** A tick later than this was missed, and its schedule's catch-up policy decides (SCHEDULE_MISSED_AFTER_MS). */
  missedAfterMs: number;
  /** The longest sleep: schedules are read again at least this often, should a NOTIFY be lost. */
  safetyIntervalMs?: number;
  /** After a failed pass, the pause before the next. */
  retryDelayMs?: number;
  now?: () => Date;
}

/**
 * Makes the jobs of schedules as their ticks come due. Every worker process runs one, and none
 * leads: each fires every due tick, and the database keeps one job per tick (the key of
 * schedule_tick, see fireScheduleStatement). Between ticks it sleeps until the next one due across
 * all schedules, or until a schedule changes (a NOTIFY on schedule_changes), whichever comes first;
 * it never polls faster than that, and reads the schedules again at least every safety interval.
 *
 * At start it declares the schedules of its kinds' definitions (schedulesDeclare).
 */
export class Scheduler extends StartStop {
  private unlisten: (() => Promise<void>) | undefined;
  private loop: Promise<void> | undefined;
  private abort: AbortController | undefined;
  /** Ends the current sleep; set only while the loop sleeps. */
  private wakeUp: (() => void) | undefined;
  /** A change heard while a pass ran: the loop goes round again at once instead of sleeping. */
  private changed = false;

  private readonly options: SchedulerOptions;

  constructor(options: SchedulerOptions) {
    super();
    this.options = options;
  }

  protected async onStart(signal: AbortSignal): Promise<void> {
    await this.declare();
    signal.throwIfAborted();
    this.unlisten = await this.options.db.listen(SCHEDULE_CHANGES_CHANNEL, {
      onNotification: () => this.poke(),
      // What changed while the connection was down is read by the pass this starts.
      onReconnect: () => this.poke(),
    });
    this.abort = new AbortController();
    this.loop = this.run(this.abort.signal);
    this.options.logger.info({ missedAfterMs: this.options.missedAfterMs }, 'scheduler started');
  }

  protected async onStop(): Promise<void> {
    this.abort?.abort();
    this.poke();
    await this.loop;
    this.loop = undefined;
    const unlisten = this.unlisten;
    this.unlisten = undefined;
    await unlisten?.();
  }

  /**
   * One pass at `now`: fires each running schedule's due ticks, a statement per schedule that
   * has any. Returns how many jobs it made and when the next tick across the schedules is due
   * (null when none will be). Tests call it with a fixed clock.
   */
  async fireDue(now: Date): Promise<{ fired: number; next: Date | null; failed: number }> {
    const { db, kinds, logger } = this.options;
    const schedules = await activeSchedulesStatement(db, kinds.names);
    let fired = 0;
    let failed = 0;
    let next: Date | null = null;
    for (const schedule of schedules) {
      try {
        fired += await this.fireSchedule(schedule, now);
      } catch (error) {
        failed += 1;
        logger.warn({ err: error, scheduleId: schedule.id }, 'firing a schedule failed; the next pass retries');
      }
      const after = nextTick(schedule, now);
      if (after && (!next || after < next)) next = after;
    }
    return { fired, next, failed };
  }

  private async fireSchedule(schedule: ActiveSchedule, now: Date): Promise<number> {
    const { db, kinds, ids, logger, maxAttempts, missedAfterMs } = this.options;
    const due = dueTicks(schedule, now, missedAfterMs);
    if (!due.through) return 0;
    const kind = kinds.get(schedule.kind)!;
    const made = await fireScheduleStatement(
      db,
      schedule.id,
      due.fire.map((fireTime) => ({ fireTime, jobId: ids.next() })),
      due.through,
      {
        maxAttempts: kind.options.maxAttempts ?? maxAttempts,
        timeoutSeconds: kind.options.timeoutSeconds ?? null,
        priority: kind.options.priority ?? 0,
      },
    );
    for (const { jobId, fireTime } of made) {
      logger.debug({ scheduleId: schedule.id, jobId, fireTime, kind: schedule.kind }, 'schedule fired');
    }
    return made.length;
  }

  private async run(signal: AbortSignal): Promise<void> {
    const { logger, retryDelayMs = 1000 } = this.options;
    while (!signal.aborted) {
      let wakeAt: number;
      try {
        const { next, failed } = await this.fireDue(this.now());
        wakeAt = failed > 0 ? this.now().getTime() + retryDelayMs : (next?.getTime() ?? Number.POSITIVE_INFINITY);
      } catch (error) {
        logger.warn({ err: error }, 'reading the schedules failed; the scheduler tries again');
        wakeAt = this.now().getTime() + retryDelayMs;
      }
      await this.sleepUntil(wakeAt);
    }
  }

  private sleepUntil(wakeAt: number): Promise<void> {
    if (this.changed) {
      this.changed = false;
      return Promise.resolve();
    }
    const delay = Math.max(0, Math.min(wakeAt - this.now().getTime(), this.options.safetyIntervalMs ?? 60_000));
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.wakeUp?.(), delay);
      this.wakeUp = () => {
        clearTimeout(timer);
        this.wakeUp = undefined;
        this.changed = false;
        resolve();
      };
    });
  }

  private poke(): void {
    if (this.wakeUp) this.wakeUp();
    else this.changed = true;
  }

  private now(): Date {
    return (this.options.now ?? (() => new Date()))();
  }

  /** The schedules the kinds declare, made or updated; those they no longer declare, deleted. */
  private async declare(): Promise<void> {
    const { db, kinds, ids, logger, maxInputBytes } = this.options;
    const declared: DeclaredSchedule[] = kinds.names.flatMap((name) => {
      const kind = kinds.get(name)!;
      return kind.schedules.map((schedule) => ({
        id: ids.next(),
        kind: name,
        name: schedule.name,
        input: checkInput(kind, schedule.input, `${name}.schedules.${schedule.name}.input.`, maxInputBytes),
        cron: schedule.cron,
        timeZone: schedule.timeZone ?? 'UTC',
        catchUp: schedule.catchUp ?? 'one',
        catchUpLimit: schedule.catchUpLimit ?? 10,
      }));
    });
    const changed = await declareSchedulesStatement(db, kinds.names, declared);
    if (changed > 0) logger.info({ changed, declared: declared.length }, 'declared schedules brought up to date');
  }
}
