/**
 * When a schedule fires: its cron expression in its time zone, read by croner, and which of the
 * ticks since it last fired are due now under its catch-up policy. Pure: the clock is an argument.
 *
 * Daylight saving, as croner computes it (test/schedules-dst.test.ts holds it to this): a local
 * time that a spring-forward gap skips fires once, at the first moment after the gap (`30 2 * * *`
 * in Europe/Berlin fires at 03:00 CEST on the last Sunday of March); a local time that a fall-back
 * repeats fires once, at its first occurrence (02:30 CEST, not 02:30 CET again an hour later). An
 * expression that names every hour (`0 * * * *`) fires at every real hour: the skipped 02:00 not
 * at all, the repeated one twice, since both are hours that pass.
 */
import { Cron } from 'croner';

export type CatchUp = 'skip' | 'one' | 'all';

export interface Timing {
  cron: string;
  timeZone: string;
}

/** The schedule as tick computation needs it. */
export interface TickState extends Timing {
  catchUp: CatchUp;
  /** For `all`: the most missed ticks fired, the latest ones. */
  catchUpLimit: number;
  /** The latest tick already settled (fired, or passed over by a catch-up); null before the first. */
  lastFireAt: Date | null;
  /** Ticks before this never fire: a schedule starts where it is made (or resumed). */
  createdAt: Date;
}

export interface DueTicks {
  /** The ticks to fire now, oldest first. */
  fire: Date[];
  /** The latest tick due by now, fired or passed over; null when none is due. */
  through: Date | null;
}

/** The cron expression in its zone, or a message saying what is wrong with it (for BAD_USER_INPUT). */
export function parseTiming({ cron, timeZone }: Timing): Cron | { problem: string; field: 'cron' | 'timeZone' } {
  if (!isTimeZone(timeZone)) return { problem: `${JSON.stringify(timeZone)} is not an IANA time zone, such as Europe/Berlin or UTC`, field: 'timeZone' };
  let parsed: Cron;
  try {
    parsed = new Cron(cron, { timezone: timeZone, paused: true });
  } catch (error) {
    const reason = error instanceof Error ? error.message.replace(/^CronPattern: /, '') : String(error);
    return { problem: `is not a cron expression (minute hour day month weekday, with seconds first if six fields): ${reason}`, field: 'cron' };
  }
  if (parsed.nextRun() === null) return { problem: 'never fires', field: 'cron' };
  return parsed;
}

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** The first tick after `after`, or null if the expression fires no more. */
export function nextTick(timing: Timing, after: Date): Date | null {
  return cronOf(timing).nextRun(after);
}

/**
 * The ticks due at `now` since the last settled one. A tick at most `missedAfterMs` old is on
 * time, and fires whatever the policy: a process a little late (a pause, a slow statement) must not
 * lose ticks. Older ones were missed while no scheduler ran, and the policy decides: `skip` fires
 * none, `one` the latest, `all` the latest `catchUpLimit`. Missed ticks are found backwards from
 * the cut-off, so a week's downtime of a schedule every second costs no more than an hour's.
 */
export function dueTicks(state: TickState, now: Date, missedAfterMs: number): DueTicks {
  const cron = cronOf(state);
  const since = state.lastFireAt && state.lastFireAt > state.createdAt ? state.lastFireAt : state.createdAt;
  const cutoff = new Date(now.getTime() - missedAfterMs);
  const wanted = { skip: 0, one: 1, all: state.catchUpLimit }[state.catchUp];
  // previousRuns leaves out its reference, so one millisecond on makes a tick at the cut-off count.
  const missed = cutoff > since ? cron.previousRuns(Math.max(wanted, 1), new Date(cutoff.getTime() + 1)).filter((tick) => tick > since) : [];
  const onTime: Date[] = [];
  for (let tick = cron.nextRun(cutoff > since ? cutoff : since); tick && tick <= now; tick = cron.nextRun(tick)) onTime.push(tick);
  const through = onTime.at(-1) ?? missed[0] ?? null;
  return { fire: [...missed.slice(0, wanted).reverse(), ...onTime], through };
}

function cronOf({ cron, timeZone }: Timing): Cron {
  return new Cron(cron, { timezone: timeZone, paused: true });
}
