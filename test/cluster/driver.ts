/**
 * The cluster test's driver: API and worker processes started with `npm run api` and
 * `npm run worker` on one database, jobs driven through every API, subscribers on every API, and
 * what PostgreSQL and the processes' own metrics say afterwards. `test/cluster.test.ts` runs it
 * small in `npm test`; `npm run test:cluster` runs it at full size and adds the throughput
 * comparison (`test/cluster/full.cluster.ts`).
 *
 * The driver returns its findings as a list of problems rather than asserting, so one failed run
 * reports everything that went wrong, next to the figures.
 */
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { insertJobsStatement, type NewJob } from '../../src/jobs/sql/insert.ts';
import { ADMIN_URL } from '../helpers/admin.ts';
import type { TestDatabase } from '../helpers/database.ts';
import { createHub, newAddJob } from '../helpers/jobs.ts';
import { type ServiceProcess, startService } from '../helpers/processes.ts';
import { describeStates, inLifecycleOrder, subscribe, type Subscriber } from '../helpers/subscribers.ts';

export interface ClusterOptions {
  /** Jobs driven through the APIs, besides the watched ones. */
  jobs: number;
  /** Subscribers, spread evenly: each watched job has one on every API. */
  subscribers: number;
  apis: number;
  workers: number;
  /** Jobs per `addJobs` request. */
  batchSize: number;
  /** DB_POOL_SIZE of every process. */
  poolSize: number;
  /** Extra settings for the worker processes. */
  workerEnv?: Record<string, string>;
  /** Settings for every process, over the defaults (DATABASE_URL, DB_POOL_SIZE): a PgBouncer, say. */
  serviceEnv?: Record<string, string>;
  /**
   * The pools go through a pooler: the `…/pool` sessions PostgreSQL shows are then the pooler's,
   * named after whichever client used them last, so they say nothing about DB_POOL_SIZE.
   */
  pooled?: boolean;
  /**
   * The watched jobs come due this long after they are added, spread evenly over the next
   * `watchSpreadMs`, so that they run amid the load rather than before it.
   */
  watchDelayMs: number;
  watchSpreadMs?: number;
  /**
   * Also count as problems what a sound service may still do on a machine busy with other work:
   * a worker that completed none of the jobs (its peers drained them first) and warn-level log
   * lines (a claim that timed out waiting for a connection). On for the full-size runs of
   * `npm run test:cluster`, which have the machine to themselves; errors are problems always.
   */
  strict?: boolean;
  log?: (line: string) => void;
}

export interface ClusterReport {
  jobs: number;
  watchedJobs: number;
  subscribers: number;
  /** From the first bulk request to the last completion heard. */
  elapsedMs: number;
  jobsPerSecond: number;
  /** Jobs each worker process completed, from its own `jobs_completed_total`. */
  completedByWorker: number[];
  /** Most connections each process held at once, by purpose, sampled from pg_stat_activity. */
  connections: Array<{ role: string; pid: number; pool: number; listen: number }>;
  /** Most connections of the service on the database at one sample. */
  connectionsAtOnce: number;
  /** Subscribers that saw every state, none coalesced away. */
  subscribersSawEveryState: number;
  /** Watched jobs that completed before the last job of the load did. */
  watchedCompletedAmidLoad: number;
  problems: string[];
}

type Started = ServiceProcess & { role: 'api' | 'worker' };

async function startAll(
  role: 'api' | 'worker',
  count: number,
  env: Record<string, string>,
): Promise<Started[]> {
  const started = await Promise.all(
    Array.from({ length: count }, () => startService({ ...env, LOG_LEVEL: 'info' }, { npmScript: role })),
  );
  return started.map((service) => Object.assign(service, { role }));
}

async function graphql<T>(port: number, query: string, variables: object): Promise<T> {
  const response = await fetch(`http://127.0.0.1:${port}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: T; errors?: unknown };
  if (!response.ok || body.errors || !body.data) {
    throw new Error(`GraphQL on :${port} answered ${response.status}: ${JSON.stringify(body).slice(0, 500)}`);
  }
  return body.data;
}

interface Input {
  num1: string;
  num2: string;
  runAt?: string;
}

async function addJobs(port: number, inputs: Input[]): Promise<string[]> {
  const data = await graphql<{ addJobs: Array<{ job: { id: string } }> }>(
    port,
    'mutation($inputs: [AddJobInput!]!) { addJobs(inputs: $inputs) { job { id } } }',
    { inputs },
  );
  return data.addJobs.map(({ job }) => job.id);
}

/** Inputs whose sums are easy to get wrong: fractions, negatives, carries. */
function bulkInput(i: number): Input {
  return { num1: `${i}.${i % 97}`, num2: `-${i % 13}.5` };
}

async function metric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const match = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+)$`, 'm').exec(text);
  return match ? Number(match[1]) : 0;
}

/**
 * Each worker's counter, once they add up to `total`. A worker counts a completion after its
 * write returns, which can be a moment after the NOTIFY of that write reached the test.
 */
async function settledCounts(workers: readonly ServiceProcess[], name: string, total: number): Promise<number[]> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const counts = await Promise.all(workers.map((worker) => metric(worker.port!, name)));
    if (counts.reduce((a, b) => a + b, 0) >= total || Date.now() > deadline) return counts;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Counts completion events per job, as heard by a LISTEN of the test's own. */
function listenForCompletions(testDb: TestDatabase) {
  const db = testDb.open({ poolSize: 2 });
  const hub = createHub(db);
  const completions = new Map<string, number>();
  const order: string[] = [];
  let waiter: (() => void) | undefined;
  hub.onEvents((events) => {
    for (const event of events) {
      if (event.status !== 'completed') continue;
      completions.set(event.id, (completions.get(event.id) ?? 0) + 1);
      order.push(event.id);
    }
    waiter?.();
  });
  return {
    db,
    completions,
    order,
    start: () => hub.start(),
    stop: () => hub.stop(),
    /** Resolves once `count` distinct jobs completed; rejects at the deadline. */
    async until(count: number, deadlineMs: number): Promise<void> {
      const deadline = Date.now() + deadlineMs;
      while (completions.size < count) {
        if (Date.now() > deadline) throw new Error(`${completions.size} of ${count} jobs completed by the deadline`);
        await new Promise<void>((resolve) => {
          waiter = resolve;
          setTimeout(resolve, 500);
        });
      }
    },
  };
}

const SERVICE_NAME = /^job-service\/(api|worker)\/(\d+)\/(pool|listen)$/;

/** Samples pg_stat_activity and keeps, per application_name, the most sessions seen at once. */
async function sampleConnections(database: string, everyMs: number) {
  const client = new pg.Client({ connectionString: ADMIN_URL, application_name: 'cluster-test/sampler' });
  await client.connect();
  const most = new Map<string, number>();
  let atOnce = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const { rows } = await client.query<{ name: string; count: number }>(
        `SELECT application_name AS name, count(*)::int AS count FROM pg_stat_activity
         WHERE datname = $1 GROUP BY application_name`,
        [database],
      );
      let total = 0;
      for (const { name, count } of rows) {
        if (!SERVICE_NAME.test(name)) continue;
        most.set(name, Math.max(most.get(name) ?? 0, count));
        total += count;
      }
      atOnce = Math.max(atOnce, total);
      await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      await client.end();
      return { most, atOnce };
    },
  };
}

export async function runCluster(testDb: TestDatabase, options: ClusterOptions): Promise<ClusterReport> {
  const log = options.log ?? (() => undefined);
  const problems: string[] = [];
  const env = { DATABASE_URL: testDb.url, DB_POOL_SIZE: String(options.poolSize), ...options.serviceEnv };
  const heard = listenForCompletions(testDb);
  await heard.start();
  const sampler = await sampleConnections(testDb.name, 200);
  const processes: Started[] = [];
  const subscribers: Subscriber[] = [];
  try {
    const apis = await startAll('api', options.apis, env);
    processes.push(...apis);
    log(`APIs up on ports ${apis.map((api) => api.port).join(', ')}`);

    // Watched jobs: added through every API in turn, each watched on every API. No worker runs
    // yet, so each subscription starts while its job is pending, however slow the machine is.
    const watchedCount = Math.max(1, Math.round(options.subscribers / options.apis));
    const t0 = Date.now();
    const since = () => `+${((Date.now() - t0) / 1000).toFixed(1)} s`;
    const runAt = (k: number) =>
      new Date(t0 + options.watchDelayMs + ((options.watchSpreadMs ?? 0) * k) / watchedCount).toISOString();
    const watched: Array<{ id: string; addedOn: number; expected: string }> = [];
    for (let a = 0; a < options.apis; a += 1) {
      const count = Math.floor(watchedCount / options.apis) + (a < watchedCount % options.apis ? 1 : 0);
      if (count === 0) continue;
      const num1 = (i: number) => a * 100_000 + i;
      const inputs = Array.from({ length: count }, (_, i) => ({
        num1: String(num1(i)),
        num2: '1000',
        runAt: runAt(i * options.apis + a),
      }));
      const ids = await addJobs(apis[a]!.port!, inputs);
      ids.forEach((id, i) => watched.push({ id, addedOn: a, expected: String(num1(i) + 1000) }));
    }
    for (const job of watched) for (const api of apis) subscribers.push(subscribe(api.port!, job.id));
    await Promise.all(subscribers.map((subscriber) => subscriber.until((states) => states.length > 0)));
    log(`${since()}: ${subscribers.length} subscribers on ${watched.length} watched jobs, all PENDING`);

    const workers = await startAll('worker', options.workers, { ...env, ...options.workerEnv });
    processes.push(...workers);
    log(`${since()}: ${workers.length} workers up`);

    // The load: batches go to the APIs in turn, one request in flight per API.
    const started = performance.now();
    const bulkIds = new Set<string>();
    await Promise.all(
      apis.map(async (api, a) => {
        for (let first = a * options.batchSize; first < options.jobs; first += options.apis * options.batchSize) {
          const count = Math.min(options.batchSize, options.jobs - first);
          const ids = await addJobs(api.port!, Array.from({ length: count }, (_, i) => bulkInput(first + i)));
          for (const id of ids) bulkIds.add(id);
        }
      }),
    );
    log(`${since()}: ${bulkIds.size} jobs added in ${Math.round(performance.now() - started)} ms`);
    const total = options.jobs + watched.length;
    await heard.until(total, 60_000 + options.jobs * 5);
    const elapsedMs = performance.now() - started;
    log(`${since()}: all ${total} jobs completed, ${Math.round(elapsedMs)} ms after the first request`);

    // Half the watched jobs are retrieved through an API other than the one that added them.
    const retrieved = new Set(watched.filter((_, i) => i % 2 === 0).map((job) => job.id));
    for (const job of watched) {
      if (!retrieved.has(job.id)) continue;
      const other = apis[(job.addedOn + 1) % apis.length]!;
      await graphql(other.port!, 'mutation($id: ID!) { retrieveJob(id: $id) { id } }', { id: job.id });
    }
    const expected = new Map(watched.map((job) => [job.id, job.expected]));
    await Promise.all(
      subscribers.map((subscriber) =>
        subscriber
          .until((states, ended) =>
            retrieved.has(subscriber.jobId) ? ended : states.at(-1)?.status === 'COMPLETED',
          )
          .catch((error: Error) => void problems.push(error.message)),
      ),
    );
    let subscribersSawEveryState = 0;
    for (const subscriber of subscribers) {
      const { states, jobId } = subscriber;
      const final = retrieved.has(jobId) ? 'RETRIEVED' : 'COMPLETED';
      const last = states.at(-1);
      const where = `subscriber of ${jobId} on :${subscriber.port}`;
      if (subscriber.error !== undefined) problems.push(`${where} got an error: ${String(subscriber.error)}`);
      if (last?.status !== final) problems.push(`${where} ended at ${describeStates(states)}, not ${final}`);
      else if (last.result !== expected.get(jobId)) problems.push(`${where} got ${last.result}, not ${expected.get(jobId)}`);
      if (!inLifecycleOrder(states)) problems.push(`${where} saw states out of order: ${describeStates(states)}`);
      if (states.length === (final === 'RETRIEVED' ? 4 : 3)) subscribersSawEveryState += 1;
    }

    // Each job's completion was announced exactly once: only one attempt passed the fence.
    const repeated = [...heard.completions].filter(([, times]) => times !== 1);
    if (repeated.length > 0) problems.push(`${repeated.length} jobs announced completed more than once`);
    if (heard.completions.size !== total) problems.push(`${heard.completions.size} of ${total} completions heard`);
    const lastBulk = heard.order.reduce((last, id, index) => (bulkIds.has(id) ? index : last), -1);
    const watchedCompletedAmidLoad = watched.filter((job) => heard.order.indexOf(job.id) < lastBulk).length;

    const [summary] = await heard.db.query<Record<string, number>>({
      name: 'cluster_summary',
      text: `SELECT count(*)::int AS total,
                    count(*) FILTER (WHERE (result #>> '{}')::numeric IS DISTINCT FROM (input->>'num1')::numeric + (input->>'num2')::numeric)::int AS "wrongSum",
                    count(*) FILTER (WHERE status NOT IN ('completed', 'retrieved'))::int AS unfinished,
                    count(*) FILTER (WHERE attempt <> 1)::int AS "notOneAttempt",
                    count(*) FILTER (WHERE locked_by IS NULL)::int AS "noWorker"
             FROM job`,
    });
    const want = { total, wrongSum: 0, unfinished: 0, notOneAttempt: 0, noWorker: 0 };
    if (JSON.stringify(summary) !== JSON.stringify(want)) {
      problems.push(`the job table says ${JSON.stringify(summary)}, not ${JSON.stringify(want)}`);
    }

    // Each process's own counters say how many jobs it completed and claimed. They count only
    // writes the fence accepted, so they add up to the jobs exactly when no job ran twice.
    const completedByWorker = await settledCounts(workers, 'jobs_completed_total', total);
    const claimedByWorker = await settledCounts(workers, 'jobs_claimed_total', total);
    const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
    if (sum(completedByWorker) !== total) problems.push(`workers completed ${sum(completedByWorker)} jobs, not ${total}`);
    if (sum(claimedByWorker) !== total) problems.push(`workers claimed ${sum(claimedByWorker)} jobs, not ${total}`);
    if (options.strict && completedByWorker.some((count) => count === 0)) {
      problems.push(`a worker completed nothing: ${completedByWorker.join(', ')}`);
    }

    const { most, atOnce } = await sampler.stop();
    const connections = processes.map((service) => {
      const name = (purpose: string) => `job-service/${service.role}/${service.pid}/${purpose}`;
      return { role: service.role, pid: service.pid, pool: most.get(name('pool')) ?? 0, listen: most.get(name('listen')) ?? 0 };
    });
    for (const seen of connections) {
      if (seen.listen !== 1) problems.push(`${seen.role} ${seen.pid} held ${seen.listen} LISTEN connections, not 1`);
      if (!options.pooled && seen.pool > options.poolSize) {
        problems.push(`${seen.role} ${seen.pid} held ${seen.pool} pool connections, over DB_POOL_SIZE ${options.poolSize}`);
      }
    }
    const known = new Set(processes.map((service) => service.pid));
    for (const name of most.keys()) {
      if (!known.has(Number(SERVICE_NAME.exec(name)![2]))) problems.push(`an unknown process held ${name}`);
    }

    // SIGTERM to each npm process group, as systemd and Heroku send it: one graceful stop each.
    await Promise.all(processes.map((service) => service.stop()));
    for (const service of processes) {
      const said = (msg: string) => service.logs.filter((entry) => entry['msg'] === msg).length;
      const who = `${service.role} ${service.pid}`;
      if (said('shutting down') !== 1 || said('second signal: exiting at once') !== 0) {
        problems.push(`${who} did not stop gracefully: ${service.stderr()}`);
      }
      if (service.role === 'worker' && said('worker stopped') !== 1) problems.push(`${who} never logged 'worker stopped'`);
      // The cluster runs without API_KEYS, which every API rightly warns about once.
      const lowest = options.strict ? 40 : 50;
      const warnings = service.logs.filter(
        (entry) => (entry['level'] as number) >= lowest && !String(entry['msg']).startsWith('API_KEYS is not set'),
      );
      for (const entry of warnings) {
        problems.push(`${who} logged: ${JSON.stringify(entry).slice(0, 300)}`);
      }
    }

    return {
      jobs: options.jobs,
      watchedJobs: watched.length,
      subscribers: subscribers.length,
      elapsedMs,
      jobsPerSecond: total / (elapsedMs / 1000),
      completedByWorker,
      connections,
      connectionsAtOnce: atOnce,
      subscribersSawEveryState,
      watchedCompletedAmidLoad,
      problems,
    };
  } finally {
    await sampler.stop().catch(() => undefined);
    await Promise.all(subscribers.map((subscriber) => subscriber.close()));
    await Promise.all(processes.map((service) => service.stop()));
    await heard.stop();
  }
}

export interface DrainOptions {
  jobs: number;
  workers: number;
  /** WORKER_CONCURRENCY of each worker. */
  concurrency: number;
  poolSize: number;
  workerEnv?: Record<string, string>;
}

export interface DrainResult {
  workers: number;
  jobs: number;
  elapsedMs: number;
  jobsPerSecond: number;
  completedByWorker: number[];
  /** WORKER_CONCURRENCY of each worker. */
  concurrency: number;
  /**
   * Share of both cores busy in the second before the drain, while the workers idle: what the
   * rest of the machine (other tests, other work) was taking.
   */
  cpuBusyBefore: number;
  /** Share of both cores busy during the drain (everything on the machine, not only this test). */
  cpuBusy: number;
}

function cpuTimes(): { busy: number; total: number } {
  const [line] = readFileSync('/proc/stat', 'utf8').split('\n');
  const fields = line!.trim().split(/\s+/).slice(1).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  const idle = fields[3]! + (fields[4] ?? 0);
  return { busy: total - idle, total };
}

/** Busy share of both cores below which the machine counts as quiet: idle workers, no other load. */
const QUIET = 0.15;

function busyBetween(start: { busy: number; total: number }, end: { busy: number; total: number }): number {
  return (end.busy - start.busy) / Math.max(1, end.total - start.total);
}

/**
 * Drain throughput: `workers` worker processes wait on an empty queue; `jobs` jobs are inserted
 * in one transaction, so every worker hears of all of them at the same moment; the clock stops
 * at the last completion heard. Process start-up is outside the measurement.
 */
export async function measureDrain(testDb: TestDatabase, options: DrainOptions): Promise<DrainResult> {
  const heard = listenForCompletions(testDb);
  await heard.start();
  const workers = await startAll('worker', options.workers, {
    DATABASE_URL: testDb.url,
    DB_POOL_SIZE: String(options.poolSize),
    WORKER_CONCURRENCY: String(options.concurrency),
    ...options.workerEnv,
  });
  try {
    const jobs: NewJob[] = Array.from({ length: options.jobs }, (_, i) =>
      newAddJob({ id: crypto.randomUUID(), num1: bulkInput(i).num1, num2: bulkInput(i).num2, maxAttempts: 5 }),
    );
    // Another process's burst would land on one side of the comparison only: wait (a while) for
    // a quiet second, and record how quiet it was.
    let cpuBusyBefore = 1;
    for (const deadline = Date.now() + 30_000; cpuBusyBefore > QUIET && Date.now() < deadline; ) {
      const idleStart = cpuTimes();
      await new Promise((resolve) => setTimeout(resolve, 1000));
      cpuBusyBefore = busyBetween(idleStart, cpuTimes());
    }
    await heard.db.transaction(async (tx) => {
      for (let first = 0; first < jobs.length; first += 5000) await insertJobsStatement(tx, jobs.slice(first, first + 5000));
    });
    const started = performance.now();
    const cpuStart = cpuTimes();
    await heard.until(options.jobs, 60_000 + options.jobs * 5);
    const elapsedMs = performance.now() - started;
    const cpuEnd = cpuTimes();
    const completedByWorker = await settledCounts(workers, 'jobs_completed_total', options.jobs);
    return {
      workers: options.workers,
      jobs: options.jobs,
      elapsedMs,
      jobsPerSecond: options.jobs / (elapsedMs / 1000),
      completedByWorker,
      concurrency: options.concurrency,
      cpuBusyBefore,
      cpuBusy: busyBetween(cpuStart, cpuEnd),
    };
  } finally {
    await Promise.all(workers.map((worker) => worker.stop()));
    await heard.stop();
  }
}
