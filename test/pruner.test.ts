import { print } from 'graphql';
import { v7 as uuidv7 } from 'uuid';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Database, Statement } from '../src/db/database.ts';
import type { JobStatus } from '../src/generated/prisma/client.ts';
import type { HttpServer } from '../src/http/server.ts';
import { Pruner } from '../src/jobs/pruner.ts';
import { insertJobsStatement } from '../src/jobs/sql/insert.ts';
import { JobUpdatedDocument } from './graphql/generated/graphql.ts';
import { closeTestApp, codes, openTestApp, sseEvents, type TestApp, testServer } from './helpers/api.ts';
import { type TestDatabase, testLogger } from './helpers/database.ts';
import { ANONYMOUS, newAddJob } from './helpers/jobs.ts';
import { subscribe } from './helpers/subscribers.ts';

let testDb: TestDatabase;
let db: Database;
let api: TestApp;
let server: HttpServer;
let port: number;

beforeAll(async () => {
  ({ testDb, db, api } = await openTestApp(import.meta.filename));
  server = testServer(api);
  await server.start();
  ({ port } = server.address);
});
afterAll(async () => {
  await server.stop();
  await closeTestApp({ testDb, api });
});

const DAY = 86_400_000;

/** A job created `ageDays` ago whose last change was `idleDays` ago, in `status`. */
async function jobAged(status: JobStatus, ageDays: number, idleDays = ageDays): Promise<string> {
  const created = new Date(Date.now() - ageDays * DAY);
  const id = uuidv7({ msecs: created.getTime() });
  await insertJobsStatement(db, [
    newAddJob({ id }),
  ]);
  await db.prisma.job.update({
    where: { id },
    data: { status, createdAt: created, lastUpdated: new Date(Date.now() - idleDays * DAY) },
  });
  return id;
}

/** The pruner's statements: how many went out, and how many rows each deleted. */
interface PruneCounter {
  db: Database;
  sent: () => number;
  deleted: number[];
}

/** The test's database, counting every prune statement and the rows it deleted. */
function countingPrunes(): PruneCounter {
  const deleted: number[] = [];
  let sent = 0;
  const counting: Database = Object.create(db, {
    query: {
      value: async (statement: Statement, values?: readonly unknown[]) => {
        if (statement.name === 'jobs_prune') sent += 1;
        const rows = await db.query(statement, values);
        if (statement.name === 'jobs_prune') deleted.push(rows.length);
        return rows;
      },
    },
  });
  return { db: counting, sent: () => sent, deleted };
}

function createPruner(batchSize = 1000, on: Database = db, intervalMs = 3_600_000): Pruner {
  return new Pruner({
    db: on,
    logger: testLogger(),
    retentionDays: 7,
    completedRetentionDays: 30,
    intervalMs,
    batchSize,
  });
}

describe('the pruner', () => {
  it('deletes only finished jobs past their retention, in batches of PRUNE_BATCH_SIZE', async () => {
    const doomed = [
      await jobAged('retrieved', 8),
      await jobAged('retrieved', 9),
      await jobAged('failed', 8),
      await jobAged('cancelled', 20),
      await jobAged('completed', 31),
    ];
    const kept = [
      await jobAged('retrieved', 6),
      await jobAged('retrieved', 10, 6), // created long ago, retrieved recently
      await jobAged('failed', 1),
      await jobAged('completed', 8), // nobody has fetched the result yet
      await jobAged('completed', 29),
      await jobAged('pending', 100),
      await jobAged('wip', 100),
    ];
    const counter = countingPrunes();
    const pruner = createPruner(2, counter.db);
    expect(await pruner.pruneNow()).toBe(doomed.length);
    // Retrieved, failed and cancelled: 4 jobs in batches of 2, and the empty batch that ends
    // them; then completed: 1 job, a short batch ends it.
    expect(counter.deleted).toEqual([2, 2, 0, 1]);
    const left = new Set((await db.prisma.job.findMany({ select: { id: true } })).map((job) => job.id));
    expect(doomed.filter((id) => left.has(id))).toEqual([]);
    expect(kept.filter((id) => !left.has(id))).toEqual([]);
    expect(await pruner.pruneNow()).toBe(0);
  });

  it('runs a pass every interval on one timer, however often it is started, and none after stop', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      const counter = countingPrunes();
      const pruner = createPruner(1000, counter.db, 60_000);
      await pruner.start();
      await pruner.start();
      expect(vi.getTimerCount()).toBe(1);
      vi.advanceTimersByTime(59_999);
      expect(counter.sent()).toBe(0);
      vi.advanceTimersByTime(1);
      // The pass's first statement goes out as the timer fires; the second waits for its answer.
      expect(counter.sent()).toBe(1);
      await pruner.pruneNow();
      expect(counter.deleted).toEqual([0, 0]);
      await pruner.stop();
      await pruner.stop();
      expect(pruner.state).toBe('stopped');
      expect(vi.getTimerCount()).toBe(0);
      vi.advanceTimersByTime(600_000);
      expect(counter.sent()).toBe(2);
    } finally {
      vi.useRealTimers();
    }
  });

  it('announces a deletion, and ends the subscriptions of that job with NOT_FOUND', async () => {
    const id = await jobAged('completed', 31);
    const heard: string[] = [];
    const unwatch = api.hub.watch(id, (event) => heard.push(event.status));
    const watched = await api.jobs.watchJob(id, ANONYMOUS);
    expect((await watched.next()).value).toMatchObject({ id, status: 'completed' });
    const response = await api.app.fetch('http://yoga/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query: print(JobUpdatedDocument), variables: { id } }),
    });
    const sse = sseEvents(response);
    expect((await sse.next()).value).toMatchObject({ data: { jobUpdated: { id, status: 'COMPLETED' } } });
    const overWebSocket = subscribe(port, id);
    await overWebSocket.until((states) => states.length > 0);

    expect(await createPruner().pruneNow()).toBe(1);
    await expect(watched.next()).rejects.toMatchObject({ code: 'NOT_FOUND' });
    const last = (await sse.next()).value as Parameters<typeof codes>[0];
    expect(codes(last)).toEqual(['NOT_FOUND']);
    expect((await sse.next()).done).toBe(true);
    // graphql-ws ends an operation with an `error` message instead of `complete`.
    await vi.waitFor(() => expect(overWebSocket.error).toMatch(/"code":"NOT_FOUND"/), { timeout: 15_000 });
    expect(overWebSocket.states.map((state) => state.status)).toEqual(['COMPLETED']);
    // The insert's own 'pending' may still be on its way when the watch begins; the deletion is
    // announced once, and last.
    expect(heard.filter((status) => status !== 'pending')).toEqual(['deleted']);
    expect(heard.at(-1)).toBe('deleted');
    unwatch();
    await overWebSocket.close();
  });
});
