import { Kind } from 'graphql';
import { JSONResolver } from 'graphql-scalars';
import { createGraphQLError } from 'graphql-yoga';
import type { Builder } from '../builder.ts';

function badInput(message: string) {
  return createGraphQLError(message, { extensions: { code: 'BAD_USER_INPUT' } });
}

export function addScalars(builder: Builder): void {
  builder.scalarType('Decimal', {
    description:
      'An exact decimal number, written as a string in plain notation, such as "-12.5". ' +
      'Numbers never pass through a float, so "0.1" + "0.2" is "0.3".',
    serialize: (value) => String(value),
    // JSON numbers would already be floats when they arrive, so variables must be strings.
    parseValue: (value) => {
      if (typeof value !== 'string') throw badInput('a Decimal must be sent as a string, such as "0.1"');
      return value;
    },
    // In a query document the literal's text is exact, so 0.1 and "0.1" both work.
    parseLiteral: (node) => {
      if (node.kind === Kind.STRING || node.kind === Kind.INT || node.kind === Kind.FLOAT) return node.value;
      throw badInput('a Decimal must be a string or number literal, such as "0.1"');
    },
  });

  // Any JSON value, written inline in a document or sent as a variable: a job's input and result.
  builder.addScalarType('JSON', JSONResolver);

  builder.scalarType('DateTime', {
    description: 'A moment in time, as an ISO 8601 string in UTC.',
    serialize: (value) => (value instanceof Date ? value : new Date(String(value))).toISOString(),
    parseValue: (value) => parseDate(value),
    parseLiteral: (node) => {
      if (node.kind !== Kind.STRING) throw badInput('a DateTime must be an ISO 8601 string');
      return parseDate(node.value);
    },
  });
}

function parseDate(value: unknown): Date {
  const date = typeof value === 'string' ? new Date(value) : new Date(Number.NaN);
  if (Number.isNaN(date.getTime())) throw badInput('a DateTime must be an ISO 8601 string');
  return date;
}
