import { createGraphQLError } from 'graphql-yoga';
import { JobServiceError } from '../jobs/errors.ts';

/**
 * Runs a service call and turns its expected errors into GraphQL errors with a code. Anything
 * else passes through and is masked by Yoga, so internals never reach the client.
 */
export async function serviceCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof JobServiceError) {
      throw createGraphQLError(error.message, {
        extensions: { code: error.code, ...(error.field ? { field: error.field } : {}) },
        originalError: error,
      });
    }
    throw error;
  }
}
