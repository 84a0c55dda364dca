import { z } from 'zod';
import { type JobKind, takesKeys } from '../kinds/define.ts';
import { toPayloadJson } from '../kinds/payload.ts';
import type { KindRegistry } from '../kinds/registry.ts';
import { fieldError, JobServiceError } from './errors.ts';
import type { JobIdGenerator } from './ids.ts';
import type { NewJob, OnUnique } from './sql/insert.ts';
import { isStorableText } from '../worker/storable-text.ts';

/** A job as a customer asks for it, of any kind. */
export interface JobSubmission {
  kind: string;
  input?: unknown;
  idempotencyKey?: string | null;
  /** While a job of the same kind and key is pending or running, this one is not added: see `onUnique`. */
  uniqueKey?: string | null;
  /** What a held unique key answers: `refuse` (CONFLICT, the default) or `existing` (that job). */
  onUnique?: OnUnique | null;
  runAt?: Date | null;
  priority?: number | null;
  maxAttempts?: number | null;
  /** Jobs of one key run at most the kind's `concurrencyPerKey` at once, in submission order. */
  concurrencyKey?: string | null;
  /**
   * Ids of the caller's jobs that must finish first (workflows): the job waits till then. Only
   * for a job submitted alone (submitJob); a graph of new jobs is a workflow (WorkflowService).
   */
  dependsOn?: readonly string[] | null;
}

/** The seed's `add` job, as its REST aliases and `addJob` take it. */
export interface AddJobInput {
  num1: string;
  num2: string;
  idempotencyKey?: string | null;
  runAt?: Date | null;
  priority?: number | null;
}

/** What a request's jobs are checked against, besides their own kind's schema. */
export interface JobInputLimits {
  /** For jobs whose kind and submission set no maxAttempts (MAX_ATTEMPTS). */
  maxAttempts: number;
  /** The largest input, as UTF-8 JSON (JOB_PAYLOAD_MAX_BYTES). */
  maxInputBytes: number;
}

/** Where a submission's fields are named in errors: `inputs.3.` in a batch, and its input's own fields. */
export interface FieldPaths {
  /** Prefixes the submission's own fields (kind, idempotencyKey, ...). */
  job: string;
  /** Prefixes the fields of its input: `input.` for a generic submission, nothing for `add`'s numbers. */
  input: string;
}

// RFC 3339's years. PostgreSQL's timestamptz stops at 4713 BC, while a JS Date reaches 271821 BC,
// so without a bound an early date got as far as the INSERT and failed there.
const EARLIEST_RUN_AT = new Date('0001-01-01T00:00:00.000Z');
const LATEST_RUN_AT = new Date('9999-12-31T23:59:59.999Z');

// The driver would write an unpaired surrogate as U+FFFD, making two different keys one.
const Key = z.string().min(1).max(200).refine(isStorableText, 'must not contain NUL characters or unpaired surrogates');

const OptionsSchema = z.object({
  idempotencyKey: Key.nullish(),
  uniqueKey: Key.nullish(),
  onUnique: z.enum(['refuse', 'existing']).nullish(),
  runAt: z
    .date()
    .refine((date) => !Number.isNaN(date.getTime()), 'must be a valid date')
    .refine((date) => date >= EARLIEST_RUN_AT && date <= LATEST_RUN_AT, 'must be between the years 1 and 9999')
    .nullish(),
  priority: z.number().int().min(-1000).max(1000).nullish(),
  maxAttempts: z.number().int().min(1).max(100).nullish(),
  concurrencyKey: Key.nullish(),
});

export interface NewJobContext {
  kinds: KindRegistry;
  owner: string;
  ids: JobIdGenerator;
  limits: JobInputLimits;
}

/**
 * The job one submission asks for, owned by `owner`, with a fresh id. BAD_USER_INPUT names the
 * first field that is wrong: an unknown kind, an input its kind's schema refuses (with the path
 * inside the input), or an option out of range. Nothing is written for a refused submission.
 */
export function toNewJob(submission: JobSubmission, paths: FieldPaths, context: NewJobContext): NewJob {
  const kind = knownKind(context.kinds, submission.kind, `${paths.job}kind`);
  const options = OptionsSchema.safeParse({
    idempotencyKey: submission.idempotencyKey,
    uniqueKey: submission.uniqueKey,
    onUnique: submission.onUnique,
    runAt: submission.runAt,
    priority: submission.priority,
    maxAttempts: submission.maxAttempts,
    concurrencyKey: submission.concurrencyKey,
  });
  if (!options.success) throw fieldError(options.error.issues[0], { prefix: paths.job, whole: '' });
  const concurrencyKey = options.data.concurrencyKey ?? null;
  if (concurrencyKey !== null && !takesKeys(kind)) {
    const field = `${paths.job}concurrencyKey`;
    throw new JobServiceError(
      'BAD_USER_INPUT',
      `${field} is for kinds that limit jobs per key (concurrencyPerKey, or rateLimit.perKey); ${kind.name} sets neither`,
      field,
    );
  }
  return {
    id: context.ids.next(),
    kind: kind.name,
    input: checkInput(kind, submission.input, paths.input, context.limits.maxInputBytes),
    maxAttempts: options.data.maxAttempts ?? kind.options.maxAttempts ?? context.limits.maxAttempts,
    timeoutSeconds: kind.options.timeoutSeconds ?? null,
    runAt: options.data.runAt ?? null,
    priority: options.data.priority ?? kind.options.priority ?? 0,
    idempotencyKey: options.data.idempotencyKey ?? null,
    concurrencyKey,
    sequenced: takesKeys(kind),
    owner: context.owner,
    ...(options.data.uniqueKey ? { uniqueKey: options.data.uniqueKey, onUnique: options.data.onUnique ?? 'refuse' } : {}),
  };
}

/** The kind of that name; BAD_USER_INPUT on `field` when the service runs none. */
export function knownKind(kinds: KindRegistry, name: string, field: string): JobKind {
  const kind = kinds.get(name);
  if (kind) return kind;
  throw new JobServiceError('BAD_USER_INPUT', `${field} ${JSON.stringify(name)} is not a kind this service runs; it runs ${kinds.names.join(', ')}`, field);
}

/** The input as its kind's schema makes it, in JSON text; BAD_USER_INPUT names the field it refuses, under `path`. */
export function checkInput(kind: JobKind, input: unknown, path: string, maxBytes: number): string {
  const parsed = kind.input.safeParse(input);
  if (!parsed.success) throw fieldError(parsed.error.issues[0], { prefix: path, whole: 'input' });
  const payload = toPayloadJson(parsed.data, maxBytes);
  if ('problem' in payload) {
    const field = path.replace(/\.$/, '') || 'input';
    throw new JobServiceError('BAD_USER_INPUT', `${field} ${payload.problem}`, field);
  }
  return payload.json;
}

/**
 * For each job, the index of the first job of the request with its idempotency key (its own index
 * when it has none, or is the first). A repeated key must repeat the input, as a retry would.
 * Inputs compare as the JSON their schemas wrote: `add` writes one spelling per number, and zod
 * writes an object's keys in its schema's order, so equal inputs are equal text.
 */
export function firstWithSameKey(jobs: readonly NewJob[], pathOf: (index: number) => string): number[] {
  const firstByKey = new Map<string, number>();
  return jobs.map((job, index) => {
    if (job.idempotencyKey === null) return index;
    const first = firstByKey.get(job.idempotencyKey);
    if (first === undefined) {
      firstByKey.set(job.idempotencyKey, index);
      return index;
    }
    const earlier = jobs[first]!;
    if (earlier.kind !== job.kind || earlier.input !== job.input) {
      const field = `${pathOf(index)}idempotencyKey`;
      throw new JobServiceError('CONFLICT', `${field} repeats the key of inputs.${first} with other input`, field);
    }
    return first;
  });
}

/**
 * `firstOf` (from firstWithSameKey) with repeated unique keys folded in: a job whose kind and
 * unique key an earlier job of the request holds answers with that job when its onUnique is
 * `existing`, and refuses the request with CONFLICT when it is `refuse`, as it would have if the
 * earlier job had been added by another request.
 */
export function firstWithSameUniqueKey(jobs: readonly NewJob[], firstOf: number[], pathOf: (index: number) => string): number[] {
  const holder = new Map<string, number>();
  return firstOf.map((first, index) => {
    const job = jobs[index]!;
    if (first !== index || !job.uniqueKey) return first;
    const key = `${job.kind}\u0000${job.uniqueKey}`;
    const earlier = holder.get(key);
    if (earlier === undefined) {
      holder.set(key, index);
      return index;
    }
    if (job.onUnique === 'existing') return earlier;
    const field = `${pathOf(index)}uniqueKey`;
    throw new JobServiceError('CONFLICT', `${field} is held by inputs.${earlier}, of the same kind`, field);
  });
}
