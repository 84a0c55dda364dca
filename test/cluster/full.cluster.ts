/**
 * `npm run test:cluster`: the cluster test at the size, then drain throughput with 1
 * worker process against 3, each on a fresh database, in alternating trials. Figures are printed
 * and written to test-artifacts/cluster-<time>.json; BENCHMARKS.md quotes a run.
 *
 * Sizes: CLUSTER_JOBS (20,000), CLUSTER_SUBSCRIBERS (200), CLUSTER_DRAIN_JOBS (CLUSTER_JOBS),
 * CLUSTER_TRIALS (3 of each).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/database.ts';
import { type ClusterReport, type DrainResult, measureDrain, runCluster } from './driver.ts';

const JOBS = Number(process.env.CLUSTER_JOBS ?? 20_000);
const SUBSCRIBERS = Number(process.env.CLUSTER_SUBSCRIBERS ?? 200);
const DRAIN_JOBS = Number(process.env.CLUSTER_DRAIN_JOBS ?? JOBS);
const TRIALS = Number(process.env.CLUSTER_TRIALS ?? 3);

const log = (line: string) => console.info(`[cluster] ${line}`);
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor((values.length - 1) / 2)]!;

let cluster: ClusterReport | undefined;
const drains: DrainResult[] = [];

function save() {
  mkdirSync('test-artifacts', { recursive: true });
  const file = `test-artifacts/cluster-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
  const machine = { cores: cpus().length, cpu: cpus()[0]?.model, node: process.version };
  writeFileSync(file, JSON.stringify({ machine, cluster, drains }, null, 2));
  log(`figures written to ${file}`);
}

describe('the cluster at full size', () => {
  it(`2 APIs and 3 workers: ${JOBS} jobs, ${SUBSCRIBERS} subscribers`, async () => {
    const testDb = await createTestDatabase('cluster_full');
    try {
      cluster = await runCluster(testDb, {
        jobs: JOBS,
        subscribers: SUBSCRIBERS,
        apis: 2,
        workers: 3,
        batchSize: 500,
        poolSize: 10,
        watchDelayMs: 5000,
        watchSpreadMs: JOBS / 4,
        log,
      });
    } finally {
      await testDb.drop();
    }
    const { problems, ...figures } = cluster;
    log(JSON.stringify(figures));
    save();
    expect(problems).toEqual([]);
  });

  it(`drains ${DRAIN_JOBS} jobs with 3 workers at least as fast as with 1`, async () => {
    // A B B A order, so a slow drift of the machine weighs on both sides alike.
    const order = Array.from({ length: TRIALS }, (_, i) => (i % 2 === 0 ? [1, 3] : [3, 1])).flat();
    for (const workers of order) {
      const testDb = await createTestDatabase(`cluster_drain_${workers}`);
      try {
        const result = await measureDrain(testDb, { jobs: DRAIN_JOBS, workers, poolSize: 10 });
        drains.push(result);
        log(
          `${workers} worker(s): ${Math.round(result.jobsPerSecond)} jobs/s in ${Math.round(result.elapsedMs)} ms; ` +
            `split ${result.completedByWorker.join(' / ')}; load before ${result.loadBefore.toFixed(2)}; ` +
            `CPU busy ${(result.cpuBusy * 100).toFixed(0)}%`,
        );
      } finally {
        await testDb.drop();
      }
    }
    const one = median(drains.filter((drain) => drain.workers === 1).map((drain) => drain.jobsPerSecond));
    const three = median(drains.filter((drain) => drain.workers === 3).map((drain) => drain.jobsPerSecond));
    log(`median: 1 worker ${Math.round(one)} jobs/s, 3 workers ${Math.round(three)} jobs/s (${(three / one).toFixed(2)}×)`);
    save();
    expect(drains.every((drain) => drain.completedByWorker.every((count) => count > 0))).toBe(true);
  });
});
