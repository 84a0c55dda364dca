import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // graphql 16 ships CommonJS (`main`) and ESM (`module`). Node, and so every dependency, loads
    // the CommonJS build; Vite would hand our own files the ESM one. Two copies of graphql break
    // `instanceof GraphQLError` and schema checks, so tests load the one Node loads, as tsx does.
    // `job-service`, the package's own name as a team imports it, is its sources here, as the
    // package's "job-service-source" condition says. That condition cannot be set for Vite alone:
    // Vitest passes Vite's conditions on to Node, whose "module" would load ESM builds that Node
    // cannot run (@opentelemetry/api's).
    alias: [
      { find: /^graphql$/, replacement: fileURLToPath(new URL('node_modules/graphql/index.js', import.meta.url)) },
      { find: /^job-service$/, replacement: fileURLToPath(new URL('src/index.ts', import.meta.url)) },
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    // Those drive a real browser: `npm run test:browser`, with vitest.browser.config.ts.
    exclude: ['test/browser/**'],
    globalSetup: ['test/global-setup.ts'],
    // Tests wait on real PostgreSQL round trips and child processes, never on mocks.
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
