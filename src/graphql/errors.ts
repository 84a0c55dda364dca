import type { GraphQLError } from 'graphql';
import { createGraphQLError } from 'graphql-yoga';
import { JobServiceError } from '../jobs/errors.ts';

/**
 * Every error a client gets names its kind in `extensions.code`. graphql-js and Yoga label their
 * own; GraphQL Armor throws bare errors for its depth, cost, token and alias limits, which are
 * limits on the request's shape, so they are labelled as failed validation. The label is added in
 * place: Yoga logs every error its mask replaces, and a client's oversized query is no server error.
 */
export function withCode(error: GraphQLError, code: string): GraphQLError {
  const extensions = error.extensions as Record<string, unknown>;
  extensions['code'] ??= code;
  return error;
}

/**
 * An expected error becomes a GraphQL error with a code; anything else is left for Yoga to mask.
 *
 * The service's error is not kept as `originalError`: Yoga counts an error whose chain ends in a
 * non-GraphQL error as unexpected, and a result with such an error and no data (a subscription
 * refused before its first event) was answered with HTTP 500.
 */
function toGraphQLError(error: unknown): unknown {
  if (!(error instanceof JobServiceError)) return error;
  return createGraphQLError(error.message, {
    extensions: { code: error.code, ...(error.field ? { field: error.field } : {}) },
  });
}

/**
 * Runs a service call and turns its expected errors into GraphQL errors with a code. Anything
 * else passes through and is masked by Yoga, so internals never reach the client.
 */
export async function serviceCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw toGraphQLError(error);
  }
}

/**
 * A service stream whose expected errors, thrown after it began (a watched job deleted), reach
 * the subscriber with their code, as serviceCall's do, instead of as a masked internal error.
 *
 * An iterator object, not an async generator: a generator's return() waits for the next() it is
 * suspended in, and a subscriber who leaves a quiet job would then never release its watch.
 */
export function serviceStream<T>(stream: AsyncIterableIterator<T>): AsyncIterableIterator<T> {
  return {
    next: () => stream.next().catch((error: unknown) => Promise.reject(toGraphQLError(error))),
    return: (value?: unknown) => stream.return?.(value) ?? Promise.resolve({ value: undefined, done: true }),
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
