/**
 * One chaos scenario from start to verdict: a fresh database on the suite's own cluster, an API
 * process and two worker processes on it, a steady load with live subscribers, the fault, and
 * then an account of every acknowledged job (see `account`). Findings are collected as problems
 * rather than asserted one by one, so a failed run reports everything next to the figures.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { JOB_EVENTS_CHANNEL, parseJobEvents } from '../../src/jobs/sql/job-events.ts';
import { type ServiceProcess, startService } from '../helpers/processes.ts';
import { account } from './account.ts';
import { type Load, sleep, startLoad } from './load.ts';
import type { PgCluster } from './pg-cluster.ts';
import type { ChaosProfile } from './profiles.ts';

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
        await next.query(`LISTEN ${JOB_EVENTS_CHANNEL}`);
        next.on('end', () => void (stopped || connect()));
        client = next;
        listening.connections += 1;
        return;
      } catch {
        await next.end().catch(() => undefined);
        await sleep(200);
      }
    }
  };
  const listening = {
    versions,
    /** LISTENs made: more than one means events sent in between were not heard. */
    connections: 0,
    start: connect,
    async stop() {
      stopped = true;
      await client?.end().catch(() => undefined);
    },
  };
  return listening;
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
  return valueIn(await scrapeAll(port), name);
}

async function scrapeAll(port: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
}

function valueIn(text: string, name: string): number | undefined {
  const values = [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))].map((match) => Number(match[1]));
  return values.length > 0 ? Math.max(...values) : undefined;
}

/** What the API's /metrics said during the fault, read every second: the extremes of a few gauges. */
function watchMetrics(port: number) {
  const extremes = { statsDown: 0, scrapes: 0, failedScrapes: 0, depth: 0, poolWaiting: 0, oldestTransaction: 0 };
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      try {
        const text = await scrapeAll(port);
        extremes.scrapes += 1;
        if (valueIn(text, 'job_queue_stats_up') === 0) extremes.statsDown += 1;
        extremes.depth = Math.max(extremes.depth, valueIn(text, 'job_queue_depth') || 0);
        extremes.poolWaiting = Math.max(extremes.poolWaiting, valueIn(text, 'db_pool_waiting_requests') || 0);
        extremes.oldestTransaction = Math.max(extremes.oldestTransaction, valueIn(text, 'db_oldest_transaction_age_seconds') || 0);
      } catch {
        extremes.failedScrapes += 1;
      }
      await sleep(1000);
    }
  })();
  return {
    async stop(): Promise<string> {
      stopped = true;
      await loop;
      const { statsDown, scrapes, failedScrapes, depth, poolWaiting, oldestTransaction } = extremes;
      return (
        `/metrics during the fault: job_queue_stats_up 0 in ${statsDown} of ${scrapes} scrapes` +
        (failedScrapes > 0 ? ` (${failedScrapes} scrapes failed)` : '') +
        `, job_queue_depth up to ${depth}, db_pool_waiting_requests up to ${poolWaiting}` +
        `, db_oldest_transaction_age_seconds up to ${Math.round(oldestTransaction)}`
      );
    },
  };
}

/**
 * The scenario's service processes, and which of them may exit: those the suite killed or
 * stopped. Any other exit is the service failing.
 */
function supervise(env: Record<string, string>) {
  const retired = new Set<ServiceProcess>();
  const all: ServiceProcess[] = [];
  const unexpectedExits: string[] = [];
  const start = async (role: 'api' | 'worker') => {
    const service = await startService({ ...env, ROLE: role });
    all.push(service);
    void service.exited.then((code) => {
      if (!retired.has(service)) unexpectedExits.push(`${role} ${service.pid} exited with ${code}: ${service.stderr().slice(-500)}`);
    });
    return service;
  };
  return {
    all,
    unexpectedExits,
    /** An API and two workers, all at once: the migrations run under an advisory lock. */
    async startAll(): Promise<{ api: ServiceProcess; workers: ServiceProcess[] }> {
      const starts = await Promise.allSettled([start('api'), start('worker'), start('worker')]);
      const failed = starts.find((started) => started.status === 'rejected');
      if (failed) {
        await this.stopAll(5_000);
        throw failed.reason;
      }
      const [api, ...workers] = starts.map((started) => (started as PromiseFulfilledResult<ServiceProcess>).value);
      return { api: api!, workers };
    },
    async killAndRestart(service: ServiceProcess): Promise<ServiceProcess> {
      retired.add(service);
      service.kill('SIGKILL');
      await service.exited;
      return start('worker');
    },
    /** SIGTERM to each, SIGKILL after `graceMs`; returns who did not exit with 0. */
    async stopAll(graceMs: number): Promise<string[]> {
      for (const service of all) retired.add(service);
      const live = all.filter((service) => service.child.exitCode === null && service.child.signalCode === null);
      await Promise.all(live.map((service) => service.stop(graceMs)));
      const codes = await Promise.all(live.map((service) => service.exited));
      return live.flatMap((service, i) => (codes[i] === 0 ? [] : [`process ${service.pid} did not stop gracefully (exit ${codes[i]})`]));
    },
  };
}

export async function runScenario(cluster: PgCluster, scenario: Scenario, profile: ChaosProfile): Promise<ScenarioReport> {
  const database = `chaos_${scenario.key}_${randomBytes(3).toString('hex')}`;
  await cluster.createDatabase(database);
  const adminUrl = cluster.adminUrl(database);
  const processes = supervise({ ...SERVICE_ENV, DATABASE_URL: cluster.serviceUrl(database), ...scenario.env });
  const { api, workers } = await processes.startAll();
  const notes: string[] = [];
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
        workers[index] = await processes.killAndRestart(workers[index]!);
      },
      admin: <T extends object>(sql: string, values?: unknown[]) => adminQuery<T>(adminUrl, sql, values),
      apiMetric: (name) => scrape(api.port!, name),
      note: (text) => void notes.push(text),
    };
    load = startLoad({ port: api.port!, rate: profile.rate, loops: 4, subscribeEvery: profile.subscribeEvery, requestTimeoutMs: 15_000 });
    await sleep(profile.baselineMs);
    const faultStart = Date.now();
    const metrics = watchMetrics(api.port!);
    await scenario.inject(context).finally(async () => notes.push(await metrics.stop()));
    const faultEnd = Date.now();
    await sleep(profile.afterMs);
    await load.stop();
    const report = await account({
      scenario,
      profile,
      load,
      adminUrl,
      heard: heard.versions,
      listenerConnections: heard.connections,
      samples: sampler.samples,
      window: { start: faultStart - profile.baselineMs, faultStart, faultEnd },
    });
    const ungraceful = await processes.stopAll(15_000);
    report.unexpectedExits = processes.unexpectedExits;
    report.logs = warnings(processes.all);
    report.notes.unshift(...notes);
    report.problems.push(...load.problems.slice(0, 10), ...processes.unexpectedExits, ...ungraceful);
    report.problems.push(...(scenario.check?.(report) ?? []));
    return report;
  } finally {
    await load?.stop();
    await load?.closeSubscribers();
    await sampler.stop();
    await heard.stop();
    await processes.stopAll(5_000);
  }
}

async function adminQuery<T extends object>(url: string, sql: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url, application_name: 'chaos/admin' });
  await client.connect();
  try {
    return (await client.query<T>(sql, values)).rows;
  } finally {
    await client.end();
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
