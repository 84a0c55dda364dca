/**
 * Schedules across processes, on real time: three worker processes run a scheduler each, with no
 * leader, and three schedules that fire every second make exactly one job per tick for 20 s (a
 * job's runAt is its tick). Then every process stops, nothing runs for 5 s, one process starts,
 * and each schedule's catch-up policy decides what becomes of the ticks missed meanwhile.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../src/db/database.ts';
import type { JobEventHub } from '../src/jobs/events.ts';
import type { JobService } from '../src/jobs/service.ts';
import type { TestDatabase } from './helpers/database.ts';
import { ANONYMOUS, closeJobsDatabase, openJobsDatabase } from './helpers/jobs.ts';
import { type ServiceProcess, startService } from './helpers/processes.ts';

const RUN_SECONDS = 20;
const DOWN_SECONDS = 5;
// A tick more than this late counts as missed. Well above a pass's lateness here, well below the downtime.
const MISSED_AFTER_MS = 1500;

let testDb: TestDatabase;
let db: Database;
let hub: JobEventHub;
let service: JobService;
const processes: ServiceProcess[] = [];

beforeAll(async () => {
  ({ testDb, db, hub, service } = await openJobsDatabase(import.meta.filename));
});

afterAll(async () => {
  await Promise.all(processes.map((process) => process.stop()));
  await closeJobsDatabase({ testDb, hub });
});

function startWorker(): Promise<ServiceProcess> {
  return startService({ DATABASE_URL: testDb.url, ROLE: 'worker', SCHEDULE_MISSED_AFTER_MS: String(MISSED_AFTER_MS) }).then((started) => {
    processes.push(started);
    return started;
  });
}

/** The ticks of a schedule's jobs, in ms since the epoch, oldest first, each once per job. */
async function ticksOf(num1: string): Promise<number[]> {
  const jobs = await db.prisma.job.findMany({ where: { kind: 'add', input: { equals: { num1, num2: '0' } } }, orderBy: { runAt: 'asc' } });
  return jobs.map((job) => job.runAt.getTime());
}

function expectEverySecond(ticks: number[], label: string): void {
  for (let i = 1; i < ticks.length; i += 1) {
    expect(ticks[i]! - ticks[i - 1]!, `${label}: ${new Date(ticks[i - 1]!).toISOString()} → ${new Date(ticks[i]!).toISOString()}`).toBe(1000);
  }
}

describe('three processes, three schedules every second', () => {
  const policies = [
    { num1: '1', catchUp: 'one' as const },
    { num1: '2', catchUp: 'skip' as const },
    { num1: '3', catchUp: 'all' as const, catchUpLimit: 3 },
  ];
  const lastBefore = new Map<string, number>();

  it(`make exactly one job per tick for ${RUN_SECONDS} s`, { timeout: 120_000 }, async () => {
    await Promise.all([startWorker(), startWorker(), startWorker()]);
    // Made once the schedulers run, which hear of them by NOTIFY: every tick from here on is on time.
    for (const { num1, ...policy } of policies) {
      await service.schedules.create({ kind: 'add', input: { num1, num2: '0' }, cron: '* * * * * *', ...policy }, ANONYMOUS.owner);
    }
    await sleep(RUN_SECONDS * 1000);
    await Promise.all(processes.splice(0).map((process) => process.stop()));

    for (const { num1, catchUp } of policies) {
      const ticks = await ticksOf(num1);
      expect(ticks.length, catchUp).toBeGreaterThanOrEqual(RUN_SECONDS - 1);
      expect(new Set(ticks).size, `${catchUp}: a tick fired twice`).toBe(ticks.length);
      expectEverySecond(ticks, catchUp);
      lastBefore.set(num1, ticks.at(-1)!);
    }
  });

  it(`after ${DOWN_SECONDS} s with no process, apply each schedule's catch-up policy`, { timeout: 60_000 }, async () => {
    await sleep(DOWN_SECONDS * 1000);
    await startWorker();
    await sleep(3000);
    await Promise.all(processes.splice(0).map((process) => process.stop()));

    const after = new Map<string, number[]>();
    for (const { num1, catchUp } of policies) {
      const ticks = (await ticksOf(num1)).filter((tick) => tick > lastBefore.get(num1)!);
      // What fired after the downtime is one unbroken run of seconds: the caught-up ticks, then
      // every tick on time; the ticks missed before them never fire.
      expect(ticks.length, catchUp).toBeGreaterThan(0);
      expect(new Set(ticks).size, `${catchUp}: a tick fired twice`).toBe(ticks.length);
      expectEverySecond(ticks, catchUp);
      after.set(catchUp, ticks.map((tick) => tick - lastBefore.get(num1)!));
    }
    // One pass with one clock fired all three, so the missed ticks they fired differ by the policy
    // alone: skip none (it starts at the first tick on time), one the latest missed, all the latest 3.
    // More than 3 were missed (5 s down, and the start), so each policy left some unfired.
    const first = (policy: string) => after.get(policy)![0]!;
    const missed = first('skip') / 1000 - 1;
    expect(missed).toBeGreaterThanOrEqual(4);
    expect(first('one')).toBe(first('skip') - 1000);
    expect(first('all')).toBe(first('skip') - 3000);
  });
});
