/**
 * When schedules fire, on a fixed clock: the catch-up policies, daylight saving in a zone, and
 * two schedulers firing the same ticks at the same moment. The clock is an argument
 * (Scheduler.fireDue, dueTicks); nothing here waits for real time.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Database } from '../src/db/database.ts';
import type { JobService } from '../src/jobs/service.ts';
import { JobIdGenerator } from '../src/jobs/ids.ts';
import { defineKind } from '../src/kinds/define.ts';
import { KindRegistry } from '../src/kinds/registry.ts';
import { dueTicks, type TickState } from '../src/schedules/cron.ts';
import { Scheduler } from '../src/schedules/scheduler.ts';
import type { TestDatabase } from './helpers/database.ts';
import { testLogger } from './helpers/database.ts';
import { ANONYMOUS, closeJobsDatabase, openJobsDatabase } from './helpers/jobs.ts';
import type { JobEventHub } from '../src/jobs/events.ts';

const report = defineKind({
  name: 'report',
  input: z.object({ of: z.string() }),
  result: z.null(),
  handler: () => null,
});
const kinds = new KindRegistry([report]);

let testDb: TestDatabase;
let db: Database;
let hub: JobEventHub;
let service: JobService;

beforeAll(async () => {
  ({ testDb, db, hub, service } = await openJobsDatabase(import.meta.filename, { kinds }));
});

afterAll(() => closeJobsDatabase({ testDb, hub }));

function scheduler(missedAfterMs = 15 * 60_000): Scheduler {
  return new Scheduler({ db, kinds, ids: new JobIdGenerator(), logger: testLogger(), maxAttempts: 1, maxInputBytes: 10_000, missedAfterMs });
}

/** A schedule of its own, as if made at `from`, so that a clock set then finds it. */
async function scheduleFrom(from: string, fields: { cron: string; timeZone?: string; catchUp?: 'skip' | 'one' | 'all'; catchUpLimit?: number }) {
  const schedule = await service.schedules.create({ kind: 'report', input: { of: `${from} ${fields.cron}` }, ...fields }, ANONYMOUS.owner);
  await db.prisma.schedule.update({ where: { id: schedule.id }, data: { createdAt: new Date(from) } });
  return schedule.id;
}

/** The ticks of the jobs a schedule made (a job's runAt is its tick); the schedule is paused, so later passes leave it. */
async function firedTimes(scheduleId: string): Promise<string[]> {
  const schedule = await service.schedules.setPaused(scheduleId, ANONYMOUS.owner, true);
  const jobs = await db.prisma.job.findMany({ where: { input: { equals: schedule.input! } }, orderBy: { runAt: 'asc' } });
  return jobs.map((job) => job.runAt.toISOString());
}

/** Runs passes from `from` to `to`, the clock stepped by `stepMs`, as a scheduler awake throughout would. */
async function runClock(part: Scheduler, from: string, to: string, stepMs: number): Promise<void> {
  for (let now = Date.parse(from); now <= Date.parse(to); now += stepMs) await part.fireDue(new Date(now));
}

const MINUTE = 60_000;

describe('daylight saving in Europe/Berlin (clocks go forward on 29 March 2026, back on 25 October)', () => {
  it('a daily 02:30 fires at 03:00 on the day the hour is skipped, and once on the day it repeats', async () => {
    const spring = await scheduleFrom('2026-03-28T00:00:00Z', { cron: '30 2 * * *', timeZone: 'Europe/Berlin' });
    await runClock(scheduler(), '2026-03-28T00:00:00Z', '2026-03-31T00:00:00Z', 10 * MINUTE);
    expect(await firedTimes(spring)).toEqual([
      '2026-03-28T01:30:00.000Z', // 02:30 CET
      '2026-03-29T01:00:00.000Z', // 03:00 CEST: 02:30 does not exist that night
      '2026-03-30T00:30:00.000Z', // 02:30 CEST
    ]);

    const autumn = await scheduleFrom('2026-10-24T00:00:00Z', { cron: '30 2 * * *', timeZone: 'Europe/Berlin' });
    await runClock(scheduler(), '2026-10-24T00:00:00Z', '2026-10-27T00:00:00Z', 10 * MINUTE);
    expect(await firedTimes(autumn)).toEqual([
      '2026-10-24T00:30:00.000Z', // 02:30 CEST
      '2026-10-25T00:30:00.000Z', // 02:30 CEST, the first of the two; not again at 02:30 CET
      '2026-10-26T01:30:00.000Z', // 02:30 CET
    ]);
  });

  it('an hourly schedule fires at every real hour: no 02:00 in March, two in October', async () => {
    const spring = await scheduleFrom('2026-03-28T23:30:00Z', { cron: '0 * * * *', timeZone: 'Europe/Berlin' });
    await runClock(scheduler(), '2026-03-28T23:30:00Z', '2026-03-29T02:30:00Z', 5 * MINUTE);
    // 01:00 CET, then 03:00 and 04:00 CEST.
    expect(await firedTimes(spring)).toEqual(['2026-03-29T00:00:00.000Z', '2026-03-29T01:00:00.000Z', '2026-03-29T02:00:00.000Z']);

    const autumn = await scheduleFrom('2026-10-24T23:30:00Z', { cron: '0 * * * *', timeZone: 'Europe/Berlin' });
    await runClock(scheduler(), '2026-10-24T23:30:00Z', '2026-10-25T02:30:00Z', 5 * MINUTE);
    // 02:00 CEST, 02:00 CET, 03:00 CET.
    expect(await firedTimes(autumn)).toEqual(['2026-10-25T00:00:00.000Z', '2026-10-25T01:00:00.000Z', '2026-10-25T02:00:00.000Z']);
  });
});

describe('two schedulers at the same moment', () => {
  it('make one job per tick', async () => {
    const id = await scheduleFrom('2026-06-01T00:00:00Z', { cron: '*/10 * * * * *', catchUp: 'all', catchUpLimit: 1000 });
    const [a, b] = [scheduler(), scheduler()];
    for (let now = Date.parse('2026-06-01T00:00:00Z'); now <= Date.parse('2026-06-01T00:05:00Z'); now += 10_000) {
      await Promise.all([a.fireDue(new Date(now)), b.fireDue(new Date(now)), a.fireDue(new Date(now + 1))]);
    }
    const fired = await firedTimes(id);
    expect(fired).toHaveLength(30);
    expect(new Set(fired).size).toBe(30);
  });
});

describe('after downtime, the catch-up policy', () => {
  const state = (catchUp: TickState['catchUp'], catchUpLimit = 3): TickState => ({
    cron: '* * * * *',
    timeZone: 'UTC',
    catchUp,
    catchUpLimit,
    lastFireAt: new Date('2026-06-01T00:00:00Z'),
    createdAt: new Date('2026-05-01T00:00:00Z'),
  });
  // Ten minutes down; ticks up to 10 s late are on time.
  const now = new Date('2026-06-01T00:10:05Z');
  const times = (ticks: Date[]) => ticks.map((tick) => tick.toISOString().slice(11, 16));

  it('skip fires none of the missed ticks, one the latest, all the latest catchUpLimit; on-time ticks fire always', () => {
    expect(times(dueTicks(state('skip'), now, 10_000).fire)).toEqual(['00:10']);
    // 00:09 is 65 s late: missed, and the policy decides; 00:10 is on time.
    expect(times(dueTicks(state('one'), now, 10_000).fire)).toEqual(['00:09', '00:10']);
    expect(times(dueTicks(state('all'), now, 10_000).fire)).toEqual(['00:07', '00:08', '00:09', '00:10']);
    const late = new Date('2026-06-01T00:10:30Z');
    expect(times(dueTicks(state('skip'), late, 10_000).fire)).toEqual([]);
    expect(times(dueTicks(state('one'), late, 10_000).fire)).toEqual(['00:10']);
    expect(times(dueTicks(state('all'), late, 10_000).fire)).toEqual(['00:08', '00:09', '00:10']);
    expect(times(dueTicks(state('all', 100), late, 10_000).fire)).toHaveLength(10);
    for (const policy of ['skip', 'one', 'all'] as const) {
      expect(dueTicks(state(policy), late, 10_000).through?.toISOString()).toBe('2026-06-01T00:10:00.000Z');
    }
  });

  it('is applied by the scheduler: a statement that settles the skipped ticks too', async () => {
    const id = await scheduleFrom('2026-06-01T00:00:30Z', { cron: '* * * * *', catchUp: 'one' });
    await scheduler(10_000).fireDue(new Date('2026-06-01T00:10:30Z'));
    expect(await firedTimes(id)).toEqual(['2026-06-01T00:10:00.000Z']);
    const row = await db.prisma.schedule.findUniqueOrThrow({ where: { id } });
    expect(row.lastFireAt?.toISOString()).toBe('2026-06-01T00:10:00.000Z');
  });
});
