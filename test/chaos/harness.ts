/**
 * One chaos scenario from start to verdict: a fresh database on the suite's own cluster, an API
 * process and two worker processes on it, a steady load with live subscribers, the fault, and
 * then an account of every acknowledged job (see `account`). Findings are collected as problems
 * rather than asserted one by one, so a failed run reports everything next to the figures.
 */
import { randomBytes } from 'node:crypto';
import { Decimal } from 'decimal.js';
import pg from 'pg';
import { JOB_EVENTS_CHANNEL, parseJobEvents } from '../../src/jobs/sql/job-events.ts';
import { type ServiceProcess, startService } from '../helpers/processes.ts';
import { describeStates } from '../helpers/subscribers.ts';
import { type Load, startLoad } from './load.ts';
import type { PgCluster } from './pg-cluster.ts';
import type { ChaosProfile } from './profiles.ts';

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface ScenarioContext {
  cluster: PgCluster;
  database: string;
  profile: ChaosProfile;
  api: ServiceProcess;
  workers: ServiceProcess[];
  /** SIGKILLs worker `index` and starts a new one in its place, as a supervisor would. */
  killAndRestartWorker(index: number): Promise<void>;
  /** Runs SQL as a superuser on the scenario's database, on a connection of its own. */
  admin<T extends object>(sql: string, values?: unknown[]): Promise<T[]>;
  /** Reads one gauge (the largest of its series) from the API's /metrics; undefined if absent. */
  apiMetric(name: string): Promise<number | undefined>;
  /** What the scenario observed, for the report. */
  note(text: string): void;
}

export interface Scenario {
  key: string;
  title: string;
  /** Why the scenario cannot run on this machine, if it cannot. */
  unavailable?(cluster: PgCluster): string | undefined;
  /** Extra settings for every process of the scenario. */
  env?: Record<string, string>;
  /** Injects the fault; resolves when the fault has ended. */
  inject(context: ScenarioContext): Promise<void>;
  /** Extra checks on the finished report (say, that 503s were seen). */
  check?(report: ScenarioReport): string[];
}

export interface ScenarioReport {
  scenario: string;
  profile: string;
  acknowledged: number;
  lost: number;
  wrong: number;
  duplicatedCompletions: number;
  subscribers: number;
  subscribersMissed: number;
  resubscribed: number;
  refusals: Record<string, number>;
  baselineJobsPerSecond: number;
  faultSeconds: number;
  /** From the fault's end until acknowledgements and completions both run at 80% of before. */
  recoverySeconds: number | null;
  /** Acknowledgement to the subscriber's COMPLETED, for the jobs acknowledged during the fault: p50 / max, ms. */
  subscriberDelayDuringFault: { p50: number; max: number; subscribers: number };
  /** Create-to-complete of the jobs added before, during and after the fault: p50 / max, ms. */
  latency: Record<'before' | 'during' | 'after', { p50: number; max: number; jobs: number }>;
  unexpectedExits: string[];
  /** warn and error lines of the service processes, by message. */
  logs: Record<string, number>;
  notes: string[];
  problems: string[];
}

/** Settings of every process: small pools, quick detection of stale jobs and of deaf LISTENs. */
const SERVICE_ENV = {
  DB_POOL_SIZE: '4',
  LISTEN_PROBE_INTERVAL_MS: '1000',
  JOB_TIMEOUT_SECONDS: '5',
  WORKER_CONCURRENCY: '20',
  WORKER_POLL_INTERVAL_MS: '500',
  RETRY_BASE_DELAY_MS: '200',
  RETRY_MAX_DELAY_MS: '2000',
  METRICS_ON_API_PORT: 'true',
  METRICS_CACHE_MS: '0',
  OLD_TRANSACTION_WARN_SECONDS: '5',
  SHUTDOWN_GRACE_MS: '2000',
};

/** Counts each job's `completed` events, heard on a LISTEN that is restored whenever it is lost. */
function countCompletions(url: string) {
  const versions = new Map<string, Set<number>>();
  let client: pg.Client | undefined;
  let stopped = false;
  const connect = async (): Promise<void> => {
    while (!stopped) {
      const next = new pg.Client({ connectionString: url, application_name: 'chaos/listener' });
      try {
        await next.connect();
        next.on('notification', ({ payload }) => {
          for (const event of parseJobEvents(payload ?? '')) {
            if (event.status !== 'completed') continue;
            const seen = versions.get(event.id) ?? new Set();
            seen.add(event.version);
            versions.set(event.id, seen);
          }
        });
        next.on('error', () => undefined);
        next.on('end', () => void (stopped || connect()));
        await next.query(`LISTEN ${JOB_EVENTS_CHANNEL}`);
        client = next;
        return;
      } catch {
        await next.end().catch(() => undefined);
        await sleep(200);
      }
    }
  };
  return {
    versions,
    start: connect,
    async stop() {
      stopped = true;
      await client?.end().catch(() => undefined);
    },
  };
}

/** Samples, every 500 ms, how many jobs are finished: the throughput, whatever LISTEN hears. */
function sampleCompletions(url: string) {
  const samples: Array<{ at: number; done: number }> = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const client = new pg.Client({ connectionString: url, application_name: 'chaos/sampler' });
      try {
        await client.connect();
        client.on('error', () => undefined);
        while (!stopped) {
          const { rows } = await client.query<{ done: number }>(
            `SELECT count(*)::int AS done FROM job WHERE status IN ('completed', 'retrieved')`,
          );
          samples.push({ at: Date.now(), done: rows[0]!.done });
          await sleep(500);
        }
      } catch {
        await sleep(200);
      } finally {
        await client.end().catch(() => undefined);
      }
    }
  })();
  return {
    samples,
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

async function scrape(port: number, name: string): Promise<number | undefined> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
  const values = [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))].map((match) => Number(match[1]));
  return values.length > 0 ? Math.max(...values) : undefined;
}

export async function runScenario(cluster: PgCluster, scenario: Scenario, profile: ChaosProfile): Promise<ScenarioReport> {
  const database = `chaos_${scenario.key}_${randomBytes(3).toString('hex')}`;
  await cluster.createDatabase(database);
  const env = { ...SERVICE_ENV, DATABASE_URL: cluster.serviceUrl(database), ...scenario.env };
  const adminUrl = cluster.adminUrl(database);
  const notes: string[] = [];
  const problems: string[] = [];
  const unexpectedExits: string[] = [];
  const retired = new Set<ServiceProcess>();
  const all: ServiceProcess[] = [];
  const watchExit = (service: ServiceProcess, role: string) => {
    all.push(service);
    void service.exited.then((code) => {
      if (!retired.has(service)) unexpectedExits.push(`${role} ${service.pid} exited with ${code}: ${service.stderr().slice(-500)}`);
    });
    return service;
  };
  // The API first: it applies the migrations, so the workers start on a ready schema.
  const api = watchExit(await startService({ ...env, ROLE: 'api' }), 'api');
  const workers = await Promise.all([0, 1].map(async () => watchExit(await startService({ ...env, ROLE: 'worker' }), 'worker')));
  const heard = countCompletions(adminUrl);
  await heard.start();
  const sampler = sampleCompletions(adminUrl);
  let load: Load | undefined;
  try {
    const context: ScenarioContext = {
      cluster,
      database,
      profile,
      api,
      workers,
      async killAndRestartWorker(index) {
        const old = workers[index]!;
        retired.add(old);
        old.kill('SIGKILL');
        await old.exited;
        workers[index] = watchExit(await startService({ ...env, ROLE: 'worker' }), 'worker');
      },
      async admin<T extends object>(sql: string, values: unknown[] = []) {
        const client = new pg.Client({ connectionString: adminUrl, application_name: 'chaos/admin' });
        await client.connect();
        try {
          return (await client.query<T>(sql, values)).rows;
        } finally {
          await client.end();
        }
      },
      apiMetric: (name) => scrape(api.port!, name),
      note: (text) => void notes.push(text),
    };
    load = startLoad({ port: api.port!, rate: profile.rate, loops: 4, subscribeEvery: profile.subscribeEvery, requestTimeoutMs: 15_000 });
    await sleep(profile.baselineMs);
    const faultStart = Date.now();
    await scenario.inject(context);
    const faultEnd = Date.now();
    await sleep(profile.afterMs);
    await load.stop();
    const report = await account({
      scenario,
      profile,
      load,
      adminUrl,
      heard: heard.versions,
      samples: sampler.samples,
      window: { start: faultStart - profile.baselineMs, faultStart, faultEnd },
    });
    await sampler.stop();
    // Stopped on purpose from here on: a graceful SIGTERM, which must also succeed.
    for (const service of all) retired.add(service);
    await Promise.all([api, ...workers].map((service) => service.stop(15_000)));
    report.unexpectedExits = unexpectedExits;
    report.logs = warnings(all);
    report.notes.push(...notes);
    report.problems.push(...problems, ...load.problems.slice(0, 10), ...unexpectedExits);
    report.problems.push(...(scenario.check?.(report) ?? []));
    return report;
  } finally {
    await load?.stop();
    await load?.closeSubscribers();
    await sampler.stop();
    await heard.stop();
    for (const service of all) retired.add(service);
    await Promise.all(all.map((service) => service.stop(5_000)));
  }
}

function warnings(services: ServiceProcess[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const service of services) {
    for (const entry of service.logs) {
      if ((entry['level'] as number) < 40 || String(entry['msg']).startsWith('API_KEYS is not set')) continue;
      const msg = String(entry['msg']);
      counts[msg] = (counts[msg] ?? 0) + 1;
    }
  }
  return counts;
}

interface AccountInput {
  scenario: Scenario;
  profile: ChaosProfile;
  load: Load;
  adminUrl: string;
  heard: Map<string, Set<number>>;
  samples: Array<{ at: number; done: number }>;
  window: { start: number; faultStart: number; faultEnd: number };
}

/**
 * Every acknowledged job, checked in the database once all are finished (or the deadline
 * passes): completed, with the right sum, its completion announced once; every subscriber saw
 * COMPLETED with that sum.
 */
async function account(input: AccountInput): Promise<ScenarioReport> {
  const { load, profile, window } = input;
  const problems: string[] = [];
  const ids = load.acknowledged.map((job) => job.id);
  const client = new pg.Client({ connectionString: input.adminUrl, application_name: 'chaos/account' });
  await client.connect();
  type Row = { id: string; status: string; result: string | null; latency: number };
  let rows: Row[] = [];
  try {
    const deadline = Date.now() + profile.drainDeadlineMs;
    for (;;) {
      ({ rows } = await client.query<Row>(
        `SELECT id::text, status::text, result::text,
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
  const duplicated = ids.filter((id) => (input.heard.get(id)?.size ?? 0) > 1).length;
  if (lost > 0) problems.push(`${lost} acknowledged jobs lost`);
  if (wrong > 0) problems.push(`${wrong} jobs with a wrong result`);
  if (duplicated > 0) problems.push(`${duplicated} jobs announced completed more than once`);

  // Subscribers get a little longer: the last change may still be on its way to them.
  const subscriberDeadline = Date.now() + 15_000;
  while (load.watches.some((watch) => watch.sawCompletedAt === undefined) && Date.now() < subscriberDeadline) await sleep(200);
  const missed = load.watches.filter((watch) => {
    const last = watch.subscriber.states.at(-1);
    return watch.sawCompletedAt === undefined || !last?.result || !sameNumber(last.result, watch.job.expected);
  });
  for (const watch of missed.slice(0, 3)) {
    problems.push(`subscriber of ${watch.job.id} saw ${describeStates(watch.subscriber.states)} (error: ${String(watch.subscriber.error)})`);
  }
  if (missed.length > 0) problems.push(`${missed.length} subscribers missed their job's final state`);

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
    notes: [],
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
