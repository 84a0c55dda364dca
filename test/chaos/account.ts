/**
 * The verdict on one scenario: every acknowledged job checked in the database, the completion
 * events counted, the subscribers' last states, and the throughput before and after the fault.
 */
import { Decimal } from 'decimal.js';
import pg from 'pg';
import { describeStates } from '../helpers/subscribers.ts';
import type { Scenario, ScenarioReport } from './harness.ts';
import { type Load, sleep } from './load.ts';
import type { ChaosProfile } from './profiles.ts';

export interface AccountInput {
  scenario: Scenario;
  profile: ChaosProfile;
  load: Load;
  adminUrl: string;
  /** Each job's `completed` events heard on the suite's LISTEN, by version. */
  heard: Map<string, Set<number>>;
  /** How often that LISTEN connected: once means it heard every event. */
  listenerConnections: number;
  samples: Array<{ at: number; done: number }>;
  window: { start: number; faultStart: number; faultEnd: number };
}

/**
 * Every acknowledged job, checked in the database once all are finished (or the deadline
 * passes): completed, with the right sum, its completion announced once; every subscriber saw
 * COMPLETED with that sum.
 */
export async function account(input: AccountInput): Promise<ScenarioReport> {
  const { load, profile, window } = input;
  const problems: string[] = [];
  const notes: string[] = [];
  const ids = load.acknowledged.map((job) => job.id);
  const client = new pg.Client({ connectionString: input.adminUrl, application_name: 'chaos/account' });
  await client.connect();
  type Row = { id: string; status: string; result: string | null; latency: number; attempt: number };
  let rows: Row[] = [];
  try {
    const deadline = Date.now() + profile.drainDeadlineMs;
    for (;;) {
      ({ rows } = await client.query<Row>(
        `SELECT id::text, status::text, result #>> '{}' AS result, attempt,
                extract(epoch FROM completed_on - created_at)::float8 * 1000 AS latency
         FROM job WHERE id = ANY($1::uuid[])`,
        [ids],
      ));
      const unfinished = rows.filter((row) => row.status !== 'completed' && row.status !== 'retrieved').length;
      if ((unfinished === 0 && rows.length === ids.length) || Date.now() > deadline) break;
      await sleep(250);
    }
  } finally {
    await client.end();
  }
  const byId = new Map(rows.map((row) => [row.id, row]));
  let lost = 0;
  let wrong = 0;
  for (const job of load.acknowledged) {
    const row = byId.get(job.id);
    if (!row || (row.status !== 'completed' && row.status !== 'retrieved')) {
      lost += 1;
      if (lost <= 3) problems.push(`job ${job.id} acknowledged at ${new Date(job.at).toISOString()} ended ${row?.status ?? 'missing'}`);
    } else if (row.result === null || !sameNumber(row.result, job.expected)) {
      wrong += 1;
      if (wrong <= 3) problems.push(`job ${job.id} ended with ${row.result}, not ${job.expected}`);
    }
  }
  if (lost > 0) problems.push(`${lost} acknowledged jobs lost`);
  if (wrong > 0) problems.push(`${wrong} jobs with a wrong result`);
  const retried = rows.filter((row) => row.attempt > 1).length;
  if (retried > 0) notes.push(`${retried} jobs needed more than one attempt`);
  // Subscribers get a little longer: the last change may still be on its way to them.
  const subscriberDeadline = Date.now() + 15_000;
  while (load.watches.some((watch) => watch.sawCompletedAt === undefined) && Date.now() < subscriberDeadline) await sleep(200);
  const missed = load.watches.filter((watch) => {
    const last = watch.subscriber.states.at(-1);
    return watch.sawCompletedAt === undefined || typeof last?.result !== 'string' || !sameNumber(last.result, watch.job.expected);
  });
  for (const watch of missed.slice(0, 3)) {
    problems.push(`subscriber of ${watch.job.id} saw ${describeStates(watch.subscriber.states)} (error: ${String(watch.subscriber.error)})`);
  }
  if (missed.length > 0) problems.push(`${missed.length} subscribers missed their job's final state`);
  for (const [reason, count] of load.resubscribeReasons) notes.push(`subscribed again ×${count} after: ${reason}`);

  // Counted after the wait above: a NOTIFY reaches the suite a moment after its commit.
  const duplicated = ids.filter((id) => (input.heard.get(id)?.size ?? 0) > 1).length;
  if (duplicated > 0) problems.push(`${duplicated} jobs announced completed more than once`);
  const unheard = ids.filter((id) => !input.heard.has(id)).length;
  if (unheard > 0 && input.listenerConnections === 1) problems.push(`${unheard} completions never announced on job_events`);
  if (unheard > 0 && input.listenerConnections > 1) notes.push(`${unheard} completions not heard while the suite's LISTEN was cut off (${input.listenerConnections} LISTENs)`);

  const latency = latencies(load, byId, window);
  const delays = load.watches
    .filter((watch) => watch.job.at >= window.faultStart && watch.job.at < window.faultEnd && watch.sawCompletedAt !== undefined)
    .map((watch) => watch.sawCompletedAt! - watch.job.at)
    .sort((a, b) => a - b);
  const subscriberDelayDuringFault = {
    p50: Math.round(delays[Math.floor(delays.length / 2)] ?? 0),
    max: Math.round(delays.at(-1) ?? 0),
    subscribers: delays.length,
  };
  const { baseline, recoverySeconds } = recovery(load, input.samples, window);
  if (recoverySeconds === null) problems.push('throughput never came back to 80% of before the fault');
  return {
    scenario: input.scenario.title,
    profile: profile.name,
    acknowledged: ids.length,
    lost,
    wrong,
    duplicatedCompletions: duplicated,
    subscribers: load.watches.length,
    subscribersMissed: missed.length,
    resubscribed: load.watches.reduce((sum, watch) => sum + watch.resubscribed, 0),
    refusals: Object.fromEntries(load.refusals),
    baselineJobsPerSecond: Math.round(baseline * 10) / 10,
    faultSeconds: Math.round((window.faultEnd - window.faultStart) / 100) / 10,
    recoverySeconds,
    subscriberDelayDuringFault,
    latency,
    unexpectedExits: [],
    logs: {},
    notes,
    problems,
  };
}

function sameNumber(a: string, b: string): boolean {
  try {
    return new Decimal(a).equals(b);
  } catch {
    return false;
  }
}

function latencies(load: Load, byId: Map<string, { latency: number }>, window: AccountInput['window']): ScenarioReport['latency'] {
  const phase = (from: number, to: number) => {
    const values = load.acknowledged
      .filter((job) => job.at >= from && job.at < to)
      .map((job) => byId.get(job.id)?.latency)
      .filter((value): value is number => typeof value === 'number')
      .sort((a, b) => a - b);
    const at = (q: number) => Math.round(values[Math.min(values.length - 1, Math.floor(q * values.length))] ?? 0);
    return { p50: at(0.5), max: Math.round(values.at(-1) ?? 0), jobs: values.length };
  };
  return {
    before: phase(window.start, window.faultStart),
    during: phase(window.faultStart, window.faultEnd),
    after: phase(window.faultEnd, Infinity),
  };
}

/** The window throughput is judged over: a second, sampled every 100 ms (completions every 500). */
const WINDOW_MS = 1000;

/**
 * The rate of before (acknowledgements a second over the baseline), and the first moment after
 * the fault from which both acknowledgements and completions ran at 80% of it for a window.
 */
function recovery(load: Load, samples: AccountInput['samples'], window: AccountInput['window']) {
  const seconds = (window.faultStart - window.start) / 1000;
  const baseline = load.acknowledged.filter((job) => job.at >= window.start && job.at < window.faultStart).length / seconds;
  const enough = 0.8 * baseline * (WINDOW_MS / 1000);
  const acksIn = (from: number) => load.acknowledged.filter((job) => job.at >= from && job.at < from + WINDOW_MS).length;
  const doneBy = (at: number) => {
    let done = 0;
    for (const sample of samples) if (sample.at <= at) done = sample.done;
    return done;
  };
  const lastAck = load.acknowledged.at(-1)?.at ?? window.faultEnd;
  for (let from = window.faultEnd; from + WINDOW_MS <= lastAck; from += 100) {
    if (acksIn(from) >= enough && doneBy(from + WINDOW_MS) - doneBy(from) >= enough) {
      return { baseline, recoverySeconds: Math.round((from - window.faultEnd) / 100) / 10 };
    }
  }
  return { baseline, recoverySeconds: null };
}
