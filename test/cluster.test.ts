/**
 * The cluster test, small: 2 API and 3 worker processes started with `npm run api` and
 * `npm run worker` on one database; jobs added through both APIs; subscribers on both APIs.
 * `npm run test:cluster` runs the same driver at full size (20,000 jobs, 200 subscribers) and
 * compares the drain throughput of 1 and 3 workers. CLUSTER_JOBS and CLUSTER_SUBSCRIBERS resize
 * this one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCluster } from './cluster/driver.ts';
import { createTestDatabase, type TestDatabase } from './helpers/database.ts';

const JOBS = Number(process.env.CLUSTER_JOBS ?? 2000);
const SUBSCRIBERS = Number(process.env.CLUSTER_SUBSCRIBERS ?? 40);

let testDb: TestDatabase;

beforeAll(async () => {
  testDb = await createTestDatabase(import.meta.filename);
});

afterAll(() => testDb.drop());

describe('a cluster of 2 APIs and 3 workers on one database', () => {
  it(`runs ${JOBS} jobs once each, spreads them over every worker, and keeps ${SUBSCRIBERS} subscribers on both APIs up to date`, async () => {
    const report = await runCluster(testDb, {
      jobs: JOBS,
      subscribers: SUBSCRIBERS,
      apis: 2,
      workers: 3,
      batchSize: 500,
      // Small, so that this test and the suite's others stay well inside max_connections.
      poolSize: 4,
      watchDelayMs: 1500,
    });
    console.info(
      `cluster: ${report.jobs} + ${report.watchedJobs} watched jobs in ${Math.round(report.elapsedMs)} ms; ` +
        `completed by worker: ${report.completedByWorker.join(' / ')}; ` +
        `${report.subscribersSawEveryState} of ${report.subscribers} subscribers saw every state; ` +
        `at most ${report.connectionsAtOnce} connections at once`,
    );
    expect(report.problems).toEqual([]);
  }, 120_000);
});
