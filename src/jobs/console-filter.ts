import type { JobStatus } from '../generated/prisma/client.ts';
import { JobServiceError, operatorsOnly } from './errors.ts';
import { toJobId, uuidv7Floor } from './ids.ts';
import type { JobFilter } from './sql/console.ts';

interface Caller {
  owner: string;
  operator?: boolean;
}

/** A filter as the API takes it. */
export interface JobFilterInput {
  kind?: string | null;
  status?: JobStatus | null;
  /** An owner (the SHA-256 of an API key, as jobs show it); operators only. */
  owner?: string | null;
  id?: string | null;
  /** Jobs that hold this key: each is an exact match, served by an index of the jobs with that key. */
  uniqueKey?: string | null;
  concurrencyKey?: string | null;
  idempotencyKey?: string | null;
  createdAfter?: Date | null;
  createdBefore?: Date | null;
  /** Jobs whose input (or result) holds `value` at the dotted `path`, as JSON. */
  match?: { in?: 'input' | 'result' | null; path: string; value?: unknown } | null;
}

/** A JSON match searches this far back when the filter sets no `createdAfter`. */
export const MATCH_WINDOW_MS = 24 * 3600_000;

/**
 * The filter as SQL sees it, or null when it can find nothing (an id that is no UUID). A
 * customer's is scoped to its own jobs; an owner filter is an operator's.
 */
export function toJobFilter(input: JobFilterInput, caller: Caller): JobFilter | null {
  if (input.owner != null && !caller.operator && input.owner !== caller.owner) throw operatorsOnly('filter jobs by owner');
  const filter: JobFilter = {};
  const owner = caller.operator ? (input.owner ?? undefined) : caller.owner;
  if (owner !== undefined) filter.owner = owner;
  if (input.kind != null) filter.kind = input.kind;
  if (input.status != null) filter.status = input.status;
  if (input.uniqueKey != null) filter.uniqueKey = input.uniqueKey;
  if (input.concurrencyKey != null) filter.concurrencyKey = input.concurrencyKey;
  if (input.idempotencyKey != null) {
    // Keys are scoped to their owner, and the owner's key index is the only one they have.
    if (filter.owner === undefined && caller.owner !== '') {
      throw new JobServiceError('BAD_USER_INPUT', 'a filter by idempotency key names the owner too: each API key has keys of its own', 'owner');
    }
    filter.idempotencyKey = input.idempotencyKey;
    // An open service (no API keys): every job's owner is ''.
    filter.owner ??= '';
  }
  if (input.id != null) {
    const id = toJobId(input.id);
    if (!id) return null;
    filter.id = id;
  }
  let after = input.createdAfter ?? null;
  if (input.match != null) {
    const { path, value } = input.match;
    const keys = path.split('.');
    if (path === '' || keys.some((key) => key === '') || keys.length > 10) {
      throw new JobServiceError('BAD_USER_INPUT', 'match.path must be keys separated by dots, such as `customer.id`', 'match.path');
    }
    if (value === undefined) throw new JobServiceError('BAD_USER_INPUT', 'match.value must be a JSON value', 'match.value');
    const contained = JSON.stringify(keys.reduceRight<unknown>((inner, key) => ({ [key]: inner }), value));
    if (input.match.in === 'result') filter.resultContains = contained;
    else filter.inputContains = contained;
    // The match has no index: it reads the rows of a bounded range of the primary key.
    after ??= new Date((input.createdBefore ?? new Date()).getTime() - MATCH_WINDOW_MS);
  }
  if (after) filter.idFrom = uuidv7Floor(after);
  if (input.createdBefore != null) filter.idBefore = uuidv7Floor(input.createdBefore);
  return filter;
}
