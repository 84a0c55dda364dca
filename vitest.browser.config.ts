import { defineConfig } from 'vitest/config';
import base from './vitest.config.ts';

/**
 * `npm run test:browser`: the jobs page and GraphiQL in Debian's Chromium, against the real
 * server on a fresh test database. Kept apart from `npm test` because it needs a browser.
 */
export default defineConfig({
  resolve: base.resolve,
  test: {
    include: ['test/browser/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
