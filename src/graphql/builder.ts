import SchemaBuilder from '@pothos/core';
import type { Caller, JobService } from '../jobs/service.ts';
import type { JobLoaders } from './loaders.ts';

/** What every resolver gets: the job service, who is asking, and the operation's batched reads. */
export interface GraphQLContext {
  jobs: JobService;
  caller: Caller;
  /** Made for each operation (see loaders.ts): a list's jobs share one read of a field. */
  loaders: JobLoaders;
  /** Set for an operation over graphql-ws: lets a shared subscription send its messages itself. */
  webSocketOperation?: WebSocketOperation;
}

/** A graphql-ws operation: its id, and a way to send a message on its socket. */
export interface WebSocketOperation {
  readonly id: string;
  send(message: string): void;
}

export function createBuilder() {
  return new SchemaBuilder<{
    Context: GraphQLContext;
    DefaultFieldNullability: false;
    Scalars: {
      Decimal: { Input: string; Output: string };
      DateTime: { Input: Date; Output: Date };
      JSON: { Input: unknown; Output: unknown };
    };
  }>({
    defaultFieldNullability: false,
  });
}

export type Builder = ReturnType<typeof createBuilder>;
