import type { CodegenConfig } from '@graphql-codegen/cli';
import { printSchema } from 'graphql';
import { buildSchema } from './src/graphql/schema.ts';

/**
 * `npm run codegen` writes schema.graphql from the Pothos schema (sorted, so diffs stay small)
 * and the typed documents the tests use. `npm test` runs it with --check and fails when either
 * is stale.
 */
const config: CodegenConfig = {
  overwrite: true,
  emitLegacyCommonJSImports: false,
  schema: printSchema(buildSchema()),
  documents: ['test/graphql/*.graphql'],
  generates: {
    'schema.graphql': {
      plugins: ['schema-ast'],
      config: { sort: true },
    },
    'test/graphql/generated/': {
      preset: 'client',
      presetConfig: { fragmentMasking: false },
      config: {
        useTypeImports: true,
        enumsAsTypes: true,
        scalars: { Decimal: 'string', DateTime: 'string', JSON: 'unknown' },
      },
    },
  },
};

export default config;
