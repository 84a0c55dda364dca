import { createGraphQLError } from 'graphql-yoga';
import { JobServiceError } from '../jobs/errors.ts';

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
