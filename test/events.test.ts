import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Database } from '../src/db/database.ts';
import type { JobEventHub } from '../src/jobs/events.ts';
import type { JobEvent } from '../src/jobs/sql/job-events.ts';
import type { JobService } from '../src/jobs/service.ts';
import type { TestDatabase } from './helpers/database.ts';
import {
  ANONYMOUS,
  closeJobsDatabase,
  createHub,
  createService,
  createWorker,
  openJobsDatabase,
  statusOf,
  waitForJob,
} from './helpers/jobs.ts';
import { startTcpProxy } from './helpers/tcp-proxy.ts';

let testDb: TestDatabase;
let db: Database;
let hub: JobEventHub;
let service: JobService;

beforeAll(async () => {
  ({ testDb, db, hub, service } = await openJobsDatabase(import.meta.filename));
});

afterAll(() => closeJobsDatabase({ testDb, hub }));

/** `promise`, or a readable failure once `ms` have passed; the deadline asserts no timing. */
function within<T>(promise: Promise<T>, what: string, ms = 15_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still waiting for ${what}`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** Collects events until `until` says enough; the deadline only turns a hang into a failure. */
function collect(subscribe: (push: (event: JobEvent) => void) => () => void, until: (events: JobEvent[]) => boolean) {
  const events: JobEvent[] = [];
  return new Promise<JobEvent[]>((resolve, reject) => {
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`incomplete events: ${JSON.stringify(events)}`));
    }, 15_000);
    const stop = subscribe((event) => {
      events.push(event);
      if (until(events)) {
        clearTimeout(timer);
        stop();
        resolve(events);
      }
    });
  });
}

describe('job events', () => {
  it('reach a watcher in the same process, in order, with growing versions', async () => {
    const { job } = await service.addJob({ num1: '1', num2: '2' }, ANONYMOUS);
    const events = collect(
      (push) => hub.watch(job.id, push),
      (seen) => seen.some((event) => event.status === 'retrieved'),
    );
    const worker = createWorker(db, hub);
    await worker.start();
    await waitForJob(service, hub, job.id, statusOf('completed'));
    await service.retrieveJob(job.id, ANONYMOUS);
    const seen = await events;
    await worker.stop();

    // The insert's own NOTIFY may land before or after addJob's answer, so `pending` may or may
    // not be heard by a watcher that starts only then; every NOTIFY after it must be. A job the
    // worker hands over (below) comes besides them.
    const announced = seen.filter((event) => event.status !== 'pending' && !event.job);
    expect(announced.map((event) => event.status)).toEqual(['wip', 'completed', 'retrieved']);
    const versions = announced.map((event) => event.version);
    expect(versions).toEqual([...versions].sort((a, b) => a - b));
    expect(versions[0]).toBeGreaterThan(job.version);
  });

  it('reach a watcher with the job a worker here stored, whole, and again with its NOTIFY', async () => {
    const { job } = await service.addJob({ num1: '1', num2: '2' }, ANONYMOUS);
    const heard: JobEvent[] = [];
    const unwatch = hub.watch(job.id, (event) => heard.push(event));
    // Batch listeners hear every NOTIFY: once `completed` is among them, both sources have spoken.
    const announced = collect(
      (push) => hub.onEvents((events) => events.forEach(push)),
      (seen) => seen.some((event) => event.id === job.id && event.status === 'completed'),
    );
    const handedOver = vi.spyOn(hub, 'deliverLocally');
    const worker = createWorker(db, hub);
    try {
      await worker.start();
      await announced;
      await vi.waitFor(() => expect(handedOver).toHaveBeenCalled());
      // The hub passes both on; the job's watch (watch.ts) shows the version once.
      const completed = heard.filter((event) => event.status === 'completed');
      expect(completed).toHaveLength(2);
      expect(completed.map((event) => event.version)).toEqual([completed[0]!.version, completed[0]!.version]);
      expect(completed.map((event) => Boolean(event.job)).sort()).toEqual([false, true]);
      expect(completed.find((event) => event.job)?.job).toMatchObject({ id: job.id, status: 'completed' });
    } finally {
      handedOver.mockRestore();
      unwatch();
      await worker.stop();
    }
  });

  it('reach a listener in another process', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/print-job-events.ts', testDb.url], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      const lines = createInterface({ input: child.stdout! });
      const received: JobEvent[] = [];
      let ready!: () => void;
      const isReady = new Promise<void>((resolve) => {
        ready = resolve;
      });
      let onEvent: (() => void) | undefined;
      lines.on('line', (line) => {
        if (line === 'ready') ready();
        else {
          received.push(JSON.parse(line) as JobEvent);
          onEvent?.();
        }
      });
      await isReady;

      const { job } = await service.addJob({ num1: '40', num2: '2' }, ANONYMOUS);
      const worker = createWorker(db, hub);
      await worker.start();
      await waitForJob(service, hub, job.id, statusOf('completed'));
      await worker.stop();
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`child heard ${JSON.stringify(received)}`)), 15_000);
        onEvent = () => {
          if (received.some((event) => event.id === job.id && event.status === 'completed')) {
            clearTimeout(timer);
            resolve();
          }
        };
        onEvent();
      });
      expect(received.filter((event) => event.id === job.id).map((event) => event.status)).toEqual([
        'pending',
        'wip',
        'completed',
      ]);
    } finally {
      child.kill('SIGTERM');
    }
  });

  it('announce a large batch in chunks, every job once', async () => {
    let notifications = 0;
    const ids = new Set<string>();
    const stop = hub.onEvents((events) => {
      if (events.every((event) => event.status === 'pending')) notifications += 1;
      for (const event of events) ids.add(event.id);
    });
    const added = await service.addJobs(
      Array.from({ length: 250 }, (_, i) => ({ num1: String(i), num2: '0' })),
      ANONYMOUS,
    );
    // Until all 250 ids are heard; the deadline only turns a hang into a failure.
    await vi.waitFor(() => expect(added.every(({ job }) => ids.has(job.id))).toBe(true), { timeout: 15_000, interval: 20 });
    stop();
    expect(notifications).toBe(3);
  });

  it('resume after the LISTEN connection is killed, and say so', async () => {
    const listenerDb = testDb.open();
    const listenerHub = createHub(listenerDb);
    let resyncs = 0;
    listenerHub.onResync(() => {
      resyncs += 1;
    });
    await listenerHub.start();
    const [terminated] = await db.query<{ count: number }>({
      name: 'test_kill_listeners',
      text: `SELECT count(pg_terminate_backend(pid))::int AS count FROM pg_stat_activity
             WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()`,
    });
    expect(terminated?.count).toBeGreaterThan(0);

    await vi.waitFor(() => expect(resyncs).toBeGreaterThan(0), { timeout: 15_000, interval: 25 });

    // Listen before adding: the NOTIFY may arrive before addJob's answer does.
    const heard: JobEvent[] = [];
    const stopListening = listenerHub.onEvents((events) => heard.push(...events));
    const { job } = await service.addJob({ num1: '9', num2: '9' }, ANONYMOUS);
    await vi.waitFor(() => expect(heard.find((event) => event.id === job.id)?.status).toBe('pending'), {
      timeout: 15_000,
      interval: 25,
    });
    stopListening();
    await listenerHub.stop();
  });

  it('notice a LISTEN connection that went silent without closing, and recover its subscribers', async () => {
    // The hub's LISTEN connection goes through a proxy that can stop forwarding; its pool does not.
    const proxy = await startTcpProxy(testDb.url);
    const listenerDb = testDb.open({ listenConnectionString: proxy.url, listenProbeIntervalMs: 200 });
    const listenerHub = createHub(listenerDb);
    const listenerService = createService(listenerDb, listenerHub);
    let resyncs = 0;
    listenerHub.onResync(() => {
      resyncs += 1;
    });
    await listenerHub.start();
    try {
      // Once the hub has heard of the new job, no event is left in flight to wake the subscriber.
      const inserted = collect(
        (push) => listenerHub.onEvents((events) => events.forEach(push)),
        (seen) => seen.some((event) => event.status === 'pending'),
      );
      const { job } = await service.addJob({ num1: '1', num2: '1' }, ANONYMOUS);
      expect((await inserted).map((event) => event.id)).toEqual([job.id]);
      const watched = await listenerService.watchJob(job.id, ANONYMOUS);
      expect((await watched.next()).value).toMatchObject({ id: job.id, status: 'pending' });

      proxy.stall();
      // Its NOTIFY is lost in the silent connection: only a new one, and a resync, can tell.
      await service.cancelJob(job.id, ANONYMOUS);
      const next = await within(watched.next(), 'the subscriber to see its job cancelled');
      expect(next.value).toMatchObject({ id: job.id, status: 'cancelled' });
      expect(resyncs).toBeGreaterThan(0);
      expect(proxy.connections).toBeGreaterThan(1);

      // The new connection hears what comes next.
      const heard = collect(
        (push) => listenerHub.onEvents((events) => events.forEach(push)),
        (seen) => seen.some((event) => event.status === 'pending'),
      );
      const { job: later } = await service.addJob({ num1: '2', num2: '2' }, ANONYMOUS);
      expect((await heard).map((event) => event.id)).toContain(later.id);
    } finally {
      await listenerHub.stop();
      await listenerDb.close();
      await proxy.close();
    }
  });
});
