import { fileURLToPath } from 'node:url';
import { defineConfig } from 'prisma/config';

// The CLI would download a native schema engine from a CDN that these machines cannot reach.
// This script speaks the same JSON-RPC over stdio and delegates to the WebAssembly engine.
process.env.PRISMA_SCHEMA_ENGINE_BINARY ??= fileURLToPath(
  new URL('./prisma/engine/schema-engine.mjs', import.meta.url),
);

export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  datasource: {
    url: process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/jobs_dev',
    shadowDatabaseUrl: process.env.SHADOW_DATABASE_URL,
  },
});
