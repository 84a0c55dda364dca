import { z } from 'zod';
import { parseDecimal } from './decimal.ts';
import { JobServiceError } from './errors.ts';
import type { JobIdGenerator } from './ids.ts';
import type { NewJob } from './sql/insert.ts';

export interface AddJobInput {
  num1: string;
  num2: string;
  idempotencyKey?: string | null;
  runAt?: Date | null;
  priority?: number | null;
}

/** What a request's jobs are checked against, besides their own fields. */
export interface JobInputLimits {
  maxAttempts: number;
  numberMaxDigits: number;
}

// RFC 3339's years. PostgreSQL's timestamptz stops at 4713 BC, while a JS Date reaches 271821 BC,
// so without a bound an early date got as far as the INSERT and failed there.
const EARLIEST_RUN_AT = new Date('0001-01-01T00:00:00.000Z');
const LATEST_RUN_AT = new Date('9999-12-31T23:59:59.999Z');

// PostgreSQL text cannot hold NUL, and the driver writes an unpaired surrogate as U+FFFD, which
// would make two different keys one.
const UNSTORABLE_TEXT = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

const OptionsSchema = z.object({
  idempotencyKey: z
    .string()
    .min(1)
    .max(200)
    .refine((key) => !UNSTORABLE_TEXT.test(key), 'must not contain NUL characters or unpaired surrogates')
    .nullish(),
  runAt: z
    .date()
    .refine((date) => !Number.isNaN(date.getTime()), 'must be a valid date')
    .refine((date) => date >= EARLIEST_RUN_AT && date <= LATEST_RUN_AT, 'must be between the years 1 and 9999')
    .nullish(),
  priority: z.number().int().min(-1000).max(1000).nullish(),
});

/**
 * The job one input asks for, owned by `owner`, with a fresh id; BAD_USER_INPUT names the first
 * field that is wrong, prefixed with `path` (the input's place in a batch).
 */
export function toNewJob(
  input: AddJobInput,
  owner: string,
  path: string,
  ids: JobIdGenerator,
  limits: JobInputLimits,
): NewJob {
  const options = OptionsSchema.safeParse({
    idempotencyKey: input.idempotencyKey,
    runAt: input.runAt,
    priority: input.priority,
  });
  if (!options.success) {
    const [issue] = options.error.issues;
    const field = `${path}${issue?.path.join('.') ?? ''}`;
    throw new JobServiceError('BAD_USER_INPUT', `${field} ${issue?.message ?? 'is invalid'}`, field);
  }
  return {
    id: ids.next(),
    kind: 'add',
    num1: parseDecimal(String(input.num1), `${path}num1`, limits.numberMaxDigits),
    num2: parseDecimal(String(input.num2), `${path}num2`, limits.numberMaxDigits),
    maxAttempts: limits.maxAttempts,
    runAt: options.data.runAt ?? null,
    priority: options.data.priority ?? 0,
    idempotencyKey: options.data.idempotencyKey ?? null,
    owner,
  };
}

/**
 * For each job, the index of the first job of the request with its idempotency key (its own index
 * when it has none, or is the first). A repeated key must repeat the input, as a retry would.
 * Numbers compare as parseDecimal wrote them: one spelling per value, so string equality is the
 * exact equality the insert statement applies to stored numbers.
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
    if (earlier.kind !== job.kind || earlier.num1 !== job.num1 || earlier.num2 !== job.num2) {
      const field = `${pathOf(index)}idempotencyKey`;
      throw new JobServiceError('CONFLICT', `${field} repeats the key of inputs.${first} with other input`, field);
    }
    return first;
  });
}
