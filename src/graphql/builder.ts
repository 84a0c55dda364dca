import SchemaBuilder from '@pothos/core';
import PrismaPlugin from '@pothos/plugin-prisma';
import type { PrismaClient } from '../generated/prisma/client.ts';
import type PrismaTypes from '../generated/pothos-prisma-types.ts';
import { getDatamodel } from '../generated/pothos-prisma-types.ts';
import type { Caller, JobService } from '../jobs/service.ts';

/** What every resolver gets: the job service, who is asking, and Prisma for the plugin. */
export interface GraphQLContext {
  jobs: JobService;
  caller: Caller;
  prisma: PrismaClient;
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
    PrismaTypes: PrismaTypes;
    DefaultFieldNullability: false;
    Scalars: {
      Decimal: { Input: string; Output: string };
      DateTime: { Input: Date; Output: Date };
    };
  }>({
    plugins: [PrismaPlugin],
    defaultFieldNullability: false,
    prisma: {
      client: (context) => context.prisma,
      dmmf: getDatamodel(),
      exposeDescriptions: false,
    },
  });
}

export type Builder = ReturnType<typeof createBuilder>;
