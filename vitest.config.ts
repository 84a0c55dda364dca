import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    // Tests wait on real PostgreSQL round trips and child processes, never on mocks.
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
