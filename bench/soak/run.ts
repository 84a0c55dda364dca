/**
 * The soak: the service under sustained load for minutes on end, reporting each minute whether
 * anything drifts (throughput, latency, memory, the job table's size, dead tuples). The CLI is
 * bench/soak.ts (`npm run soak -- --minutes 30`); test/soak.test.ts runs one minute of it and
 * asserts that no job was lost.
 */
import { Agent, request } from 'node:http';
import { createClient } from 'graphql-ws';
import pg from 'pg';
import WebSocket from 'ws';
import { percentile, readRssBytes, type ServiceProcess, startServiceProcess } from '../lib/service.ts';

export interface SoakOptions {
  /** The soak's own database, migrated and empty. */
  databaseUrl: string;
  minutes: number;
  /** Jobs submitted per second, whatever the service's pace (open loop). */
  rate: number;
  /** Live graphql-ws subscriptions at any moment, each following one job to its end. */
  subscribers: number;
  /** How long finished jobs are kept: the pruner's retention, in seconds. */
  retentionSeconds: number;
  /** Seconds in one report: 60 for the soak, less for a short run. */
  reportSeconds?: number;
  /** More settings for the service, as environment strings. */
  serviceEnv?: Record<string, string>;
  log?(line: string): void;
}

export interface SoakMinute {
  minute: number;
  submitted: number;
  /** Completions counted by the service (jobs_completed_total) in this period, per second. */
  completedPerSecond: number;
  /** Submit → COMPLETED seen by a subscriber, ms, over the followed jobs of the period. */
  e2eP50Ms: number;
  e2eP99Ms: number;
  followed: number;
  rssMiB: number;
  tableMiB: number;
  indexesMiB: number;
  liveTuples: number;
  deadTuples: number;
  autovacuumRuns: number;
  /** Jobs pending or wip at the end of the period: a backlog that grows means the rate is too high. */
  backlog: number;
}

export interface SoakReport {
  minutes: SoakMinute[];
  /** Submissions the service accepted (HTTP 201/202). */
  accepted: number;
  /** Submissions it refused or that failed at the socket: each is a defect of the service or the load. */
  refused: number;
  /**
   * Submissions sent again once, as a client should: answered 503 with Retry-After, or lost with a
   * reused keep-alive socket the service had just closed (see `send`).
   */
  sentAgain: number;
  /**
   * Submissions the load never sent because MAX_IN_FLIGHT were already waiting for an answer: the
   * service fell behind the offered rate. Not lost (never accepted), but the rate was not held.
   */
  shed: number;
  /** Accepted jobs that failed, or that were not done once the load stopped and the backlog drained. */
  lost: number;
  /** Accepted jobs the service counted as completed (jobs_completed_total), over the whole run. */
  completed: number;
  /** Accepted jobs found failed. */
  failed: number;
  /** Whether autovacuum was on for the run (see bench/soak.ts). */
  autovacuum: boolean;
}

/** 90 % `add`, 9 % `digest` of a few thousand rounds (about a millisecond), 1 % `primes` in a thread. */
function nextJob(n: number): string {
  const slot = n % 100;
  if (slot < 90) return JSON.stringify({ kind: 'add', input: { num1: String(n), num2: '0.5' } });
  if (slot < 99) return JSON.stringify({ kind: 'digest', input: { text: `soak ${n}`, rounds: 2000 } });
  return JSON.stringify({ kind: 'primes', input: { below: 20_000 } });
}

const WATCH = 'subscription ($id: ID!) { jobUpdated(id: $id) { status } }';
/**
 * Requests waiting for an answer at most; beyond, a submission is shed. Without a bound, a service
 * slower than the offered rate made the load queue minutes of requests in its own sockets, and
 * the figures measured that queue.
 */
const MAX_IN_FLIGHT = 1000;

/** Sums every sample of a counter in the Prometheus text, whatever its labels. */
function counterTotal(metrics: string, name: string): number {
  let total = 0;
  for (const line of metrics.split('\n')) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

/**
 * The ids of one period's accepted jobs, checked once their period is two periods old, and again
 * at the end: a job absent from the table was pruned, which the pruner does only to finished
 * jobs; one found failed is lost; one still pending or wip is looked at again later.
 */
class Ledger {
  private open: string[][] = [[]];
  failed = 0;
  private unsettled: string[] = [];

  add(id: string): void {
    this.open[this.open.length - 1]!.push(id);
  }

  nextPeriod(): void {
    this.open.push([]);
  }

  /** Checks the periods older than `keep`, and anything left unsettled before. */
  async check(db: pg.Client, keep: number): Promise<void> {
    const due = this.open.length > keep ? this.open.splice(0, this.open.length - keep).flat() : [];
    const ids = [...this.unsettled, ...due];
    this.unsettled = [];
    for (let start = 0; start < ids.length; start += 10_000) {
      const batch = ids.slice(start, start + 10_000);
      const { rows } = await db.query<{ id: string; status: string }>(
        `SELECT id::text, status::text FROM job WHERE id = ANY ($1::uuid[]) AND status IN ('pending', 'wip', 'failed')`,
        [batch],
      );
      for (const row of rows) {
        if (row.status === 'failed') this.failed += 1;
        else this.unsettled.push(row.id);
      }
    }
  }

  async finish(db: pg.Client): Promise<number> {
    this.nextPeriod();
    await this.check(db, 0);
    return this.failed + this.unsettled.length;
  }
}

export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const log = options.log ?? (() => undefined);
  const periodMs = (options.reportSeconds ?? 60) * 1000;
  const retentionDays = String(options.retentionSeconds / 86_400);
  const db = new pg.Client({ connectionString: options.databaseUrl });
  await db.connect();
  let service: ServiceProcess | undefined;
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  const sockets: Array<ReturnType<typeof createClient>> = [];
  try {
    const autovacuum = (await db.query<{ on: boolean }>(`SELECT current_setting('autovacuum') = 'on' AS on`)).rows[0]!.on;
    service = await startServiceProcess({
      DATABASE_URL: options.databaseUrl,
      RETENTION_DAYS: retentionDays,
      COMPLETED_RETENTION_DAYS: retentionDays,
      PRUNE_INTERVAL_SECONDS: String(Math.max(1, Math.round(options.retentionSeconds / 6))),
      PRUNE_BATCH_SIZE: '5000',
      WS_MAX_SUBSCRIPTIONS: '1000',
      METRICS_ON_API_PORT: 'true',
      ...options.serviceEnv,
    });
    const base = service.base;
    const metrics = async () => {
      const response = await fetch(`${base}/metrics`);
      if (!response.ok) throw new Error(`/metrics answered ${response.status}`);
      return response.text();
    };

    const ledger = new Ledger();
    let accepted = 0;
    let refused = 0;
    let sentAgain = 0;
    let shed = 0;
    let submittedInPeriod = 0;
    let inFlight = 0;
    const submitTimes = new Map<string, number>();
    const waitingToFollow: string[] = [];
    let e2e: number[] = [];
    let followedInPeriod = 0;

    const submit = (n: number) => {
      if (inFlight >= MAX_IN_FLIGHT) {
        shed += 1;
        return;
      }
      send(nextJob(n), performance.now(), 1);
    };
    // A 503 carries Retry-After (the database could not take the write in time): the load does
    // what a client should and sends the same job again once, after that long. So it does when a
    // reused keep-alive socket is reset: the service closed it as idle while this request was on
    // its way, so the request was never read (Node's documented case, `request.reusedSocket`).
    // Only a second failure counts as refused.
    const send = (body: string, sentAt: number, triesLeft: number) => {
      inFlight += 1;
      const req = request(
        `${base}/api/v1/jobs`,
        { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => {
            if (res.statusCode === 503 && triesLeft > 0) {
              sentAgain += 1;
              log(`unavailable, sent again: ${text.slice(0, 300)}`);
              // Still in flight while it waits: the run's end waits for it too.
              const seconds = Number(res.headers['retry-after'] ?? 1);
              setTimeout(() => {
                inFlight -= 1;
                send(body, sentAt, triesLeft - 1);
              }, seconds * 1000);
              return;
            }
            inFlight -= 1;
            if (res.statusCode !== 201 && res.statusCode !== 202) {
              refused += 1;
              if (refused <= 5) log(`refused (${res.statusCode}): ${text.slice(0, 300)}`);
              return;
            }
            const { jobId } = JSON.parse(text) as { jobId: string };
            accepted += 1;
            submittedInPeriod += 1;
            ledger.add(jobId);
            // Followers take the newest jobs: a job followed long after its submission would
            // measure the follower's queue, not the service.
            if (waitingToFollow.length < options.subscribers) {
              submitTimes.set(jobId, sentAt);
              waitingToFollow.push(jobId);
            }
          });
        },
      );
      req.on('error', (error: NodeJS.ErrnoException) => {
        inFlight -= 1;
        if (req.reusedSocket && error.code === 'ECONNRESET' && triesLeft > 0) {
          sentAgain += 1;
          log('a reused socket was reset before an answer; sent again');
          send(body, sentAt, triesLeft - 1);
          return;
        }
        refused += 1;
        if (refused <= 5) log(`submit failed: ${error.message}`);
      });
      req.end(body);
    };

    // Subscribers: at most 100 per socket (the service's default WS_MAX_SUBSCRIPTIONS), each
    // following the next job handed to it until it is done, then taking another.
    const perSocket = 50;
    for (let s = 0; s < Math.ceil(options.subscribers / perSocket); s += 1) {
      const client = createClient({ url: `${base.replace(/^http/, 'ws')}/graphql`, webSocketImpl: WebSocket, lazy: false, retryAttempts: 0 });
      await new Promise<void>((resolve, reject) => {
        const off = client.on('connected', () => {
          off();
          resolve();
        });
        client.on('error', reject);
      });
      sockets.push(client);
    }
    let stopFollowing = false;
    const follower = async (client: ReturnType<typeof createClient>) => {
      while (!stopFollowing) {
        const id = waitingToFollow.shift();
        if (id === undefined) {
          await new Promise((resolve) => setTimeout(resolve, 5));
          continue;
        }
        const sentAt = submitTimes.get(id)!;
        submitTimes.delete(id);
        await new Promise<void>((resolve) => {
          const unsubscribe = client.subscribe<{ jobUpdated: { status: string } }>(
            { query: WATCH, variables: { id } },
            {
              next: ({ data }) => {
                const status = data?.jobUpdated.status;
                if (status === 'COMPLETED' || status === 'FAILED' || status === 'RETRIEVED') {
                  if (status !== 'FAILED') {
                    e2e.push(performance.now() - sentAt);
                    followedInPeriod += 1;
                  }
                  unsubscribe();
                  resolve();
                }
              },
              error: () => resolve(),
              complete: () => resolve(),
            },
          );
        });
      }
    };
    const followers = Array.from({ length: options.subscribers }, (_, i) => follower(sockets[Math.floor(i / perSocket)]!));

    const tableStats = async () => {
      const { rows } = await db.query<{
        table: string;
        indexes: string;
        live: string;
        dead: string;
        autovacuums: string;
        backlog: string;
      }>(`SELECT pg_total_relation_size('job') AS table, pg_indexes_size('job') AS indexes,
                 s.n_live_tup AS live, s.n_dead_tup AS dead, s.autovacuum_count AS autovacuums,
                 (SELECT count(*) FROM job WHERE queue_state IN (1, 2)) AS backlog
          FROM pg_stat_user_tables s WHERE s.relid = 'job'::regclass`);
      return rows[0]!;
    };

    const report: SoakMinute[] = [];
    let completedBefore = counterTotal(await metrics(), 'jobs_completed_total');
    const completedAtStart = completedBefore;
    const start = performance.now();
    const end = start + options.minutes * 60_000;
    let nextReport = start + periodMs;
    let sent = 0;
    // The open loop: every 10 ms, as many submissions as the rate owes by now.
    while (performance.now() < end) {
      const owed = Math.floor(((performance.now() - start) / 1000) * options.rate) - sent;
      for (let k = 0; k < owed; k += 1) submit(sent++);
      await new Promise((resolve) => setTimeout(resolve, 10));
      if (performance.now() >= nextReport) {
        const completedNow = counterTotal(await metrics(), 'jobs_completed_total');
        const stats = await tableStats();
        const sorted = e2e.sort((a, b) => a - b);
        const minute: SoakMinute = {
          minute: report.length + 1,
          submitted: submittedInPeriod,
          completedPerSecond: (completedNow - completedBefore) / (periodMs / 1000),
          e2eP50Ms: percentile(sorted, 50),
          e2eP99Ms: percentile(sorted, 99),
          followed: followedInPeriod,
          rssMiB: readRssBytes(service.pid) / 2 ** 20,
          tableMiB: Number(stats.table) / 2 ** 20,
          indexesMiB: Number(stats.indexes) / 2 ** 20,
          liveTuples: Number(stats.live),
          deadTuples: Number(stats.dead),
          autovacuumRuns: Number(stats.autovacuums),
          backlog: Number(stats.backlog),
        };
        report.push(minute);
        log(JSON.stringify(minute));
        completedBefore = completedNow;
        submittedInPeriod = 0;
        followedInPeriod = 0;
        e2e = [];
        nextReport += periodMs;
        ledger.nextPeriod();
        // Two periods back: late enough that those jobs are done, early enough that the pruner,
        // which keeps them `retentionSeconds`, may not have taken every one.
        await ledger.check(db, 2);
      }
    }

    // The load stops; what was accepted must all finish.
    while (inFlight > 0) await new Promise((resolve) => setTimeout(resolve, 10));
    const drainDeadline = performance.now() + 120_000;
    while ((await db.query(`SELECT 1 FROM job WHERE queue_state IN (1, 2) LIMIT 1`)).rowCount! > 0) {
      if (performance.now() > drainDeadline) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    stopFollowing = true;
    // A follower whose job never ends would wait for ever: that job is counted as lost below.
    await Promise.race([Promise.all(followers), new Promise((resolve) => setTimeout(resolve, 10_000))]);
    const completed = counterTotal(await metrics(), 'jobs_completed_total') - completedAtStart;
    const lost = await ledger.finish(db);
    return { minutes: report, accepted, refused, sentAgain, shed, lost, completed, failed: ledger.failed, autovacuum };
  } finally {
    await Promise.all(sockets.map((socket) => socket.dispose()));
    agent.destroy();
    await service?.stop();
    await db.end();
  }
}
