import { createGraphQLError } from 'graphql-yoga';
import { JobServiceError } from '../jobs/errors.ts';

/**
 * Runs a service call and turns its expected errors into GraphQL errors with a code. Anything
 * else passes through and is masked by Yoga, so internals never reach the client.
 *
 * The service's error is not kept as `originalError`: Yoga counts an error whose chain ends in a
 * non-GraphQL error as unexpected, and a result with such an error and no data (a subscription
 * refused before its first event) was answered with HTTP 500.
 */
export async function serviceCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof JobServiceError) {
      throw createGraphQLError(error.message, {
        extensions: { code: error.code, ...(error.field ? { field: error.field } : {}) },
      });
    }
    throw error;
  }
}
