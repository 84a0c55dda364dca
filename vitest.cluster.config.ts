import { defineConfig } from 'vitest/config';
import base from './vitest.config.ts';

/**
 * `npm run test:cluster`: the cluster test at full size, the 1-versus-3-worker throughput
 * comparison, and the cluster behind PgBouncer. Minutes long and sensitive to anything else the
 * machine runs, so it is kept apart from `npm test`, which runs the same driver small
 * (test/cluster.test.ts).
 */
export default defineConfig({
  resolve: base.resolve,
  test: {
    include: ['test/cluster/**/*.cluster.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 1_800_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // One file at a time: the throughput comparison must not share the machine with the others.
    fileParallelism: false,
  },
});
