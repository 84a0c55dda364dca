import { type ExecutionArgs, getOperationAST, GraphQLError } from 'graphql';
import type { Context, SubscribePayload } from 'graphql-ws';
import type { WebSocketOperation } from '../graphql/builder.ts';
import { withCode } from '../graphql/errors.ts';
import type { App } from './app.ts';
import type { SocketExtra } from './graphql-ws-transport.ts';

export type WsContext = Context<Record<string, unknown> | undefined, SocketExtra>;

/** Execution arguments that carry the app's envelop, whose execute and subscribe run them. */
export type EnvelopedArgs = ExecutionArgs & {
  rootValue: { execute: (args: ExecutionArgs) => unknown; subscribe: (args: ExecutionArgs) => unknown };
};

/**
 * Parses, validates and builds the context of one graphql-ws operation through the app's
 * envelop: its execution arguments, or the errors that refuse it.
 */
export async function prepareOperation(
  app: App,
  context: WsContext,
  id: string,
  params: SubscribePayload,
): Promise<EnvelopedArgs | readonly GraphQLError[]> {
  const { schema, execute, subscribe, contextFactory, parse, validate } = app.getEnveloped({
    ...context,
    req: context.extra.request,
    socket: context.extra.socket,
    params,
  });
  // Errors returned from here skip Yoga's error masking, so they are labelled as Yoga
  // labels them over HTTP.
  let document;
  try {
    document = parse(params.query);
  } catch (error) {
    if (error instanceof GraphQLError) return [withCode(error, 'GRAPHQL_PARSE_FAILED')];
    throw error;
  }
  let errors;
  try {
    errors = validate(schema, document);
  } catch (error) {
    // GraphQL Armor's depth, cost, alias and directive limits throw instead of reporting.
    if (error instanceof GraphQLError) return [withCode(error, 'GRAPHQL_VALIDATION_FAILED')];
    throw error;
  }
  if (errors.length > 0) return errors.map((error: GraphQLError) => withCode(error, 'GRAPHQL_VALIDATION_FAILED'));
  if (!getOperationAST(document, params.operationName)) {
    return [
      new GraphQLError('Could not determine what operation to execute.', {
        extensions: { code: 'OPERATION_RESOLUTION_FAILURE' },
      }),
    ];
  }
  let contextValue;
  try {
    contextValue = await contextFactory();
  } catch (error) {
    return [error as GraphQLError];
  }
  // A shared subscription sends its `next` messages itself (see shared-subscriptions.ts). It relies
  // on the protocol's message shape and on graphql-ws sending `complete` only once the operation's
  // iterator has ended, after those messages; test/live.test.ts ("gets every message of a burst")
  // fails if a new graphql-ws changes either.
  const socket = context.extra.socket;
  const webSocketOperation: WebSocketOperation = { id, send: (message) => socket.send(message) };
  contextValue = Object.assign(contextValue, { webSocketOperation });
  return {
    schema,
    document,
    operationName: params.operationName,
    variableValues: params.variables,
    contextValue,
    rootValue: { execute, subscribe },
  } satisfies EnvelopedArgs;
}
