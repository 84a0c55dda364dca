/**
 * One minute of the soak (bench/soak/run.ts, `npm run soak`): the service as a process of its own,
 * jobs of three kinds submitted over HTTP at a steady rate, subscribers following them over
 * graphql-ws, and the pruner deleting finished jobs after a few seconds. What it asserts is that
 * nothing is lost on the way: every accepted job completes exactly once, none fails, and finished
 * jobs leave the table. Its figures (throughput, latency) are the benchmark's, not asserted here.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runSoak } from '../bench/soak/run.ts';
import { createTestDatabase, type TestDatabase } from './helpers/database.ts';

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase(import.meta.filename);
});

afterAll(async () => {
  await database?.drop();
});

it('loses no job over a minute of steady load, with the pruner deleting behind it', async () => {
  // A rate the service holds while the rest of the suite shares the machine.
  const rate = 100;
  const said: string[] = [];
  const report = await runSoak({
    log: (line) => said.push(line),
    databaseUrl: database.url,
    minutes: 1,
    rate,
    subscribers: 20,
    retentionSeconds: 10,
    reportSeconds: 15,
  });

  expect(report.refused, said.join('\n')).toBe(0);
  // The open loop owes rate × 60 s (the last 10 ms tick may still be owed when the clock stops);
  // what it sent was accepted, and what it shed (the service fell behind) is not a loss.
  expect(report.accepted + report.shed).toBeGreaterThanOrEqual(rate * 60 - rate / 50);
  expect(report.accepted).toBeGreaterThan(rate * 30);
  expect(report.failed).toBe(0);
  expect(report.lost).toBe(0);
  // jobs_completed_total counts a job once per stored result: a job run twice would count twice.
  expect(report.completed).toBe(report.accepted);
  expect(report.minutes).toHaveLength(4);
  for (const period of report.minutes) expect(period.followed).toBeGreaterThan(0);
  // Retention is 10 s: after a minute, most of what was accepted has been pruned.
  const left = await database.open({ poolSize: 1 }).query<{ count: string }>({ name: 'soak_left', text: 'SELECT count(*) FROM job' });
  expect(Number(left[0]!.count)).toBeLessThan(report.accepted / 2);
}, 240_000);
