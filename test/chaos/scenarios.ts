/**
 * The faults of issue 15, each against the scenario's own database on the suite's own cluster.
 * Durations come from the profile (./profiles.ts). Every answer the load gets is judged by
 * ./load.ts (never a 500; a 503 always with a JSON UNAVAILABLE error).
 */
import pg from 'pg';
import type { Scenario, ScenarioContext } from './harness.ts';
import { sleep } from './load.ts';
import { HOG_ROLE } from './pg-cluster.ts';

/** Backends of the service's processes on the scenario's database (never the suite's own). */
const SERVICE_BACKENDS = `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'job-service/%'`;

async function terminateServiceBackends(context: ScenarioContext): Promise<number> {
  const rows = await context.admin<{ ok: boolean }>(`SELECT pg_terminate_backend(pid) AS ok FROM (${SERVICE_BACKENDS}) backends`);
  return rows.filter((row) => row.ok).length;
}

const restart: Scenario = {
  key: 'restart',
  title: 'PostgreSQL restart',
  async inject(context) {
    await context.cluster.stop();
    await sleep(context.profile.restartDownMs);
    await context.cluster.start();
    context.note(`server stopped (fast) for ${context.profile.restartDownMs / 1000} s, then started`);
  },
};

const killBackends: Scenario = {
  key: 'kills',
  title: 'Backends killed twice a second',
  async inject(context) {
    let killed = 0;
    for (const end = Date.now() + context.profile.killBackendsMs; Date.now() < end; ) {
      const started = Date.now();
      killed += await terminateServiceBackends(context);
      await sleep(Math.max(0, 500 - (Date.now() - started)));
    }
    context.note(`${killed} backends terminated (pool and LISTEN)`);
  },
};

/**
 * Fills every connection slot a non-superuser may take, with idle connections of another role,
 * and ends the service's own sessions every 2 s so that it must connect again: the holders,
 * four loops that retry every 10 ms, take most freed slots first.
 */
const exhaustion: Scenario = {
  key: 'exhaustion',
  title: 'Connection exhaustion',
  async inject(context) {
    const hogs: pg.Client[] = [];
    let stopped = false;
    let refusedHogs = 0;
    const grab = async (): Promise<void> => {
      const client = new pg.Client({ connectionString: context.cluster.urlAs(HOG_ROLE, context.database), application_name: 'chaos/hog' });
      client.on('error', () => undefined);
      try {
        await client.connect();
        hogs.push(client);
      } catch {
        refusedHogs += 1;
        await client.end().catch(() => undefined);
        await sleep(10);
      }
    };
    const hoggers = [0, 1, 2, 3].map(async () => {
      while (!stopped) await grab();
    });
    let ended = 0;
    let serviceHeld = 0;
    try {
      await sleep(1000);
      for (const end = Date.now() + context.profile.exhaustionMs; Date.now() < end; ) {
        const [held] = await context.admin<{ service: number }>(`SELECT count(*)::int AS service FROM (${SERVICE_BACKENDS}) backends`);
        if (ended > 0) serviceHeld = Math.max(serviceHeld, held!.service);
        ended += await terminateServiceBackends(context);
        await sleep(2000);
      }
      context.note(
        `${hogs.length} idle connections held (max_connections ${context.cluster.maxConnections}, 5 reserved); ` +
          `${ended} service sessions ended, every 2 s; after the first, the service got ${serviceHeld} at most; ${refusedHogs} holder attempts refused`,
      );
    } finally {
      stopped = true;
      await Promise.all(hoggers);
      await Promise.all(hogs.map((client) => client.end().catch(() => undefined)));
    }
  },
  check: (report) => ((report.refusals['503'] ?? 0) === 0 ? ['no 503 while the connections were exhausted'] : []),
};

const openTransaction: Scenario = {
  key: 'opentx',
  title: 'Transaction left open, REPEATABLE READ readers',
  async inject(context) {
    const url = context.cluster.adminUrl(context.database);
    const clients = [0, 1, 2].map(() => new pg.Client({ connectionString: url, application_name: 'chaos/old-transaction' }));
    await Promise.all(clients.map((client) => client.connect()));
    try {
      const [holder, ...readers] = clients;
      await holder!.query('BEGIN');
      await holder!.query('SELECT txid_current()');
      for (const reader of readers) {
        await reader.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
        await reader.query('SELECT count(*) FROM job');
      }
      let oldestSeen = 0;
      for (const end = Date.now() + context.profile.openTransactionMs; Date.now() < end; ) {
        oldestSeen = Math.max(oldestSeen, (await context.apiMetric('db_oldest_transaction_age_seconds').catch(() => 0)) ?? 0);
        await sleep(1000);
      }
      const [stats] = await context.admin<{ dead: number }>(`SELECT n_dead_tup::int AS dead FROM pg_stat_user_tables WHERE relname = 'job'`);
      context.note(`db_oldest_transaction_age_seconds reached ${Math.round(oldestSeen)} s; ${stats?.dead ?? '?'} dead tuples in job at the end`);
    } finally {
      await Promise.all(clients.map((client) => client.end().catch(() => undefined)));
    }
  },
  check(report) {
    const problems: string[] = [];
    if (!report.logs['a transaction has been open for long: it holds back vacuum of the job table']) {
      problems.push('the service logged no warning about the old transaction');
    }
    if (!report.notes.some((note) => /reached ([1-9]\d*) s/.test(note))) problems.push('the metric never showed the old transaction');
    return problems;
  },
};

const workerKills: Scenario = {
  key: 'workerkills',
  title: 'Worker SIGKILLed, then repeatedly',
  // Jobs that take a while, so that every kill finds some running: they must be taken over once
  // stale (JOB_TIMEOUT_SECONDS=5 here), and completed once.
  env: { JOB_ADD_DELAY_MS: '200' },
  async inject(context) {
    await context.killAndRestartWorker(0);
    for (let kill = 1; kill <= context.profile.workerKills; kill += 1) {
      await sleep(context.profile.workerKillEveryMs);
      await context.killAndRestartWorker(kill % 2);
    }
    context.note(`${context.profile.workerKills + 1} SIGKILLs, each worker restarted at once`);
  },
};

/** SIGSTOPs the LISTEN backends of the API and of one worker: a connection that hears nothing. */
const deafListen: Scenario = {
  key: 'deaflisten',
  title: 'Deaf LISTEN connection (SIGSTOP)',
  async inject(context) {
    const names = [`job-service/api/${context.api.pid}/listen`, `job-service/worker/${context.workers[0]!.pid}/listen`];
    const rows = await context.admin<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = ANY($1)`,
      [names],
    );
    if (rows.length !== names.length) throw new Error(`found ${rows.length} LISTEN backends, not ${names.length}`);
    for (const { pid } of rows) process.kill(pid, 'SIGSTOP');
    try {
      await sleep(context.profile.deafListenMs);
    } finally {
      for (const { pid } of rows) process.kill(pid, 'SIGCONT');
    }
    context.note(`LISTEN backends ${rows.map((row) => row.pid).join(', ')} stopped for ${context.profile.deafListenMs / 1000} s`);
  },
  // LISTEN_PROBE_INTERVAL_MS is 1 s here: a deaf connection is replaced within about 2 s. The
  // bound is loose because the machine may be busy; BENCHMARKS.md has the measured delays.
  check: ({ subscriberDelayDuringFault: { max } }) => (max > 15_000 ? [`a subscriber waited ${max} ms for its job's completion`] : []),
};

const diskFull: Scenario = {
  key: 'diskfull',
  title: 'Disk full',
  unavailable: (cluster) => (cluster.sizeLimited ? undefined : cluster.sizeLimitReason),
  async inject(context) {
    const logFrom = context.cluster.serverLogProblems(0).end;
    await context.cluster.fillDisk(0);
    try {
      await sleep(context.profile.diskFullMs);
    } finally {
      await context.cluster.freeDisk();
    }
    // A WAL write that fails is a PANIC: PostgreSQL restarts itself, and gives up if its startup
    // cannot write either. An operator would start it again once space is back.
    if (!(await context.cluster.isRunning())) {
      await context.cluster.start();
      context.note('PostgreSQL stopped while the disk was full and was started again');
    }
    context.note(`data folder's file system filled for ${context.profile.diskFullMs / 1000} s`);
    const said = context.cluster.serverLogProblems(logFrom).lines;
    const distinct = [...new Set(said.map((line) => line.replace(/^.*?(PANIC|FATAL|ERROR|LOG): +/, '$1: ').replace(/"[^"]*"/g, '"…"')))];
    context.note(`PostgreSQL's log: ${distinct.slice(0, 4).join(' | ') || 'nothing about it'}`);
  },
};

export const SCENARIOS: Scenario[] = [restart, killBackends, exhaustion, openTransaction, workerKills, deafListen, diskFull];
