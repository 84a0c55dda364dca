/**
 * The shapes of the REST routes: what they take, checked here, and what they answer, from which
 * `openapi.json` is generated (src/http/openapi.ts).
 */
import { z } from 'zod';

const JOB_STATUSES = ['pending', 'wip', 'completed', 'failed', 'retrieved', 'cancelled', 'waiting'] as const;

export const SubmitJobBody = z
  .object({
    kind: z.string().describe('The name of a kind the service runs (GET /api/v1/kinds).'),
    input: z.unknown().optional().describe("The job's input, as its kind's input schema describes it."),
    idempotencyKey: z
      .string()
      .nullish()
      .describe('Submitting again with the same key and input returns the first job; other input is refused (409).'),
    uniqueKey: z
      .string()
      .nullish()
      .describe('While a job of this kind with the same key is pending or running, no other is added: see onUnique. Scoped to the API key.'),
    onUnique: z
      .enum(['refuse', 'existing'])
      .nullish()
      .describe('When uniqueKey is held: refuse (409 CONFLICT, field uniqueKey; the default) or existing (202 with that job, created: false).'),
    runAt: z.iso.datetime({ offset: true }).nullish().describe('Do not start before this moment (RFC 3339).'),
    priority: z.number().int().nullish().describe('Higher runs first; -1000 to 1000. Default: the kind\'s, else 0.'),
    maxAttempts: z.number().int().nullish().describe("1 to 100. Default: the kind's, else MAX_ATTEMPTS."),
    concurrencyKey: z
      .string()
      .nullish()
      .describe(
        "1 to 200 characters. Jobs of one key run at most the kind's concurrencyPerKey at once, and start at most as its per-key rateLimit allows, in submission order; only for kinds that set one of them.",
      ),
    dependsOn: z
      .array(z.string())
      .nullish()
      .describe('Ids of your jobs that must finish first: the job is waiting till then (see workflows). Takes no idempotency, unique or concurrency key.'),
  })
  .strict();

export const ListJobsQuery = z
  .object({
    status: z.enum(JOB_STATUSES).optional(),
    kind: z.string().optional(),
    first: z.coerce.number().int().optional().describe('Jobs per page, 1 to 100; default 20.'),
    after: z.string().optional().describe('The endCursor of the previous page.'),
  })
  .strict();

// The answers are strict objects: a route answers exactly these fields, and openapi.json says so
// (additionalProperties: false), so a test checking real answers against it catches a new field
// that the document does not have.
export const JobAnswer = z.strictObject({
  jobId: z.uuid(),
  kind: z.string(),
  status: z.enum(JOB_STATUSES),
  input: z.unknown(),
  result: z.unknown().describe('What the handler returned, as its kind\'s result schema describes it; null until completed.'),
  progress: z
    .record(z.string(), z.unknown())
    .nullable()
    .describe("How far the handler has got, as it last reported; null until it reports. A retry keeps the failed attempt's until the next attempt reports."),
  attempt: z.number().int(),
  maxAttempts: z.number().int(),
  lastError: z.string().nullable(),
  priority: z.number().int(),
  uniqueKey: z.string().nullable().describe('The unique key it was submitted with; it holds the key while pending or running.'),
  concurrencyKey: z.string().nullable(),
  runAt: z.iso.datetime(),
  createdAt: z.iso.datetime(),
  lastUpdated: z.iso.datetime(),
  completedOn: z.iso.datetime().nullable(),
  retrievedAt: z.iso.datetime().nullable(),
});

export const SubmittedJobAnswer = JobAnswer.extend({
  created: z
    .boolean()
    .describe('False when the idempotency key matched an earlier job, or the unique key is held by one (onUnique existing), which is returned instead.'),
  links: z.strictObject({ self: z.string() }),
});

export const JobPageAnswer = z.strictObject({
  jobs: z.array(JobAnswer),
  pageInfo: z.strictObject({ hasNextPage: z.boolean(), endCursor: z.string().nullable() }),
});

export const KindAnswer = z.strictObject({
  name: z.string(),
  description: z.string().nullable(),
  inputSchema: z.record(z.string(), z.unknown()).describe('JSON Schema of the input a submission sends.'),
  resultSchema: z.record(z.string(), z.unknown()).describe("JSON Schema of a completed job's result."),
  paused: z.boolean().describe('No worker starts its jobs until it is resumed; started jobs finish.'),
  concurrency: z.number().int().nullable().describe('At most this many of its jobs run at once, across all workers; null for no limit.'),
  concurrencyPerKey: z
    .number()
    .int()
    .nullable()
    .describe('At most this many of its jobs of one concurrencyKey run at once, in submission order; null for no such limit.'),
  rateLimit: z
    .strictObject({
      limit: z.number().int().describe('Starts allowed per interval.'),
      intervalMs: z.number().int().describe('The interval, in milliseconds.'),
      perKey: z.boolean().describe('Each concurrencyKey has the limit to itself (jobs without a key share one); false: the kind has one.'),
    })
    .nullable()
    .describe('At most limit of its jobs start within any intervalMs (a sliding window), across all workers; jobs over it stay pending. Null for no limit.'),
});

export const KindsAnswer = z.strictObject({ kinds: z.array(KindAnswer) });

/** A job as the seed's routes, `/api/v1/add` and `/api/v1/job`, show an `add` job (json.ts addJobBody). */
export const AddJobAnswer = z.strictObject({
  jobId: z.uuid(),
  status: z.enum(JOB_STATUSES),
  num1: z.string().describe('As stored: plain decimal notation, without leading zeros or a plus sign.'),
  num2: z.string(),
  result: z.string().nullable().describe('The exact sum, as a decimal string; null until completed.'),
  attempt: z.number().int(),
  maxAttempts: z.number().int(),
  lastError: z.string().nullable(),
  createdAt: z.iso.datetime(),
  lastUpdated: z.iso.datetime(),
  completedOn: z.iso.datetime().nullable(),
  retrievedAt: z.iso.datetime().nullable(),
});

export const AddedJobAnswer = AddJobAnswer.extend({
  created: SubmittedJobAnswer.shape.created,
  links: z.strictObject({ self: z.string().describe('GET it to read the job (and take its result).') }),
});

export const ErrorAnswer = z.strictObject({
  error: z.strictObject({
    code: z.string(),
    message: z.string(),
    field: z.string().optional().describe('The offending field, as a dotted path.'),
  }),
});

const CATCH_UP = ['skip', 'one', 'all'] as const;

export const CreateScheduleBody = z
  .object({
    kind: z.string().describe('The name of a kind the service runs (GET /api/v1/kinds).'),
    input: z.unknown().optional().describe("Each job's input, checked now by the kind's input schema."),
    cron: z
      .string()
      .describe('Five fields (minute hour day month weekday), or six with seconds first, as croner reads them: "*/5 * * * *", "0 30 9 * * MON-FRI".'),
    timeZone: z.string().nullish().describe('An IANA time zone, such as Europe/Berlin. Default: UTC.'),
    catchUp: z
      .enum(CATCH_UP)
      .nullish()
      .describe('Ticks missed while no scheduler ran (later than SCHEDULE_MISSED_AFTER_MS): skip them, fire one (the latest; the default), or all, the latest catchUpLimit.'),
    catchUpLimit: z.number().int().nullish().describe('For catchUp all: 1 to 1000, default 10.'),
    paused: z.boolean().nullish().describe('Made paused: no tick fires until resumed. Default: false.'),
  })
  .strict();

export const ScheduleAnswer = z.strictObject({
  scheduleId: z.uuid(),
  kind: z.string(),
  name: z.string().nullable().describe("A declared schedule's name within its kind; null for one made over the API."),
  declared: z.boolean().describe("Made from the kind's definition: the next start makes it again as declared."),
  input: z.unknown(),
  cron: z.string(),
  timeZone: z.string(),
  catchUp: z.enum(CATCH_UP),
  catchUpLimit: z.number().int(),
  paused: z.boolean(),
  lastFireAt: z.iso.datetime().nullable().describe('The latest tick settled: fired, or passed over by the catch-up policy.'),
  nextFireAt: z.iso.datetime().nullable().describe('The next tick; null while paused.'),
  lastJobId: z.uuid().nullable().describe('The job of the latest tick that made one.'),
  createdAt: z.iso.datetime(),
});

export const ScheduleListAnswer = z.strictObject({ schedules: z.array(ScheduleAnswer) });

export const DeletedScheduleAnswer = z.strictObject({ scheduleId: z.uuid(), deleted: z.literal(true) });

const DEPENDENCY_FAILURES = ['cancel', 'continue'] as const;

export const WorkflowStepBody = SubmitJobBody.omit({ idempotencyKey: true, uniqueKey: true, onUnique: true, concurrencyKey: true, dependsOn: true })
  .extend({
    name: z.string().describe("The step's name, unique in its workflow (1 to 100 characters); its parents' results reach it by these names."),
    dependsOn: z.array(z.string()).nullish().describe('Names of steps of this workflow that must finish before this one starts.'),
    dependsOnJobs: z.array(z.string()).nullish().describe('Ids of your jobs outside the workflow that must finish before this one starts.'),
    onParentFailure: z
      .enum(DEPENDENCY_FAILURES)
      .nullish()
      .describe("When a parent fails for good or is cancelled: cancel this step (and its dependents), or continue (run it; the failure is in its context). Default: the workflow's."),
  })
  .strict();

export const SubmitWorkflowBody = z
  .object({
    steps: z.array(WorkflowStepBody).describe('Any DAG; a cycle or an unknown name is a 400, and nothing is written.'),
    onParentFailure: z.enum(DEPENDENCY_FAILURES).nullish().describe("The steps' default: cancel (the default) or continue."),
  })
  .strict();

export const WorkflowStepAnswer = z.strictObject({
  name: z.string(),
  jobId: z.uuid(),
  kind: z.string(),
  status: z.enum(JOB_STATUSES),
  dependsOn: z.array(z.string()).describe('The names of the steps it waits for (a job outside the workflow: its id).'),
  result: z.unknown(),
  lastError: z.string().nullable(),
  attempt: z.number().int(),
});

export const WorkflowAnswer = z.strictObject({
  workflowId: z.uuid(),
  onParentFailure: z.enum(DEPENDENCY_FAILURES),
  createdAt: z.iso.datetime(),
  finished: z.boolean().describe('Every step completed, failed or was cancelled.'),
  steps: z.array(WorkflowStepAnswer),
});

/** The console's filter (src/jobs/console.ts), as query parameters of its GET routes and as a bulk action's body. */
const jobFilterFields = {
  kind: z.string().optional(),
  status: z.enum(JOB_STATUSES).optional(),
  owner: z.string().optional().describe('An owner as jobs show it (the SHA-256 of an API key, hex); operator keys only (403).'),
  id: z.string().optional(),
  uniqueKey: z.string().optional().describe('Jobs submitted with this unique key.'),
  concurrencyKey: z.string().optional().describe('Jobs submitted with this concurrency key.'),
  idempotencyKey: z.string().optional().describe("Jobs submitted with this idempotency key. Keys are each owner's own: an operator names the owner too."),
  createdAfter: z.iso.datetime({ offset: true }).optional().describe('Created at or after (RFC 3339).'),
  createdBefore: z.iso.datetime({ offset: true }).optional().describe('Created before (RFC 3339).'),
  matchIn: z.enum(['input', 'result']).optional().describe('Where matchPath looks; default input.'),
  matchPath: z.string().optional().describe('Keys separated by dots: jobs whose input (or result) holds matchValue there.'),
  matchValue: z
    .string()
    .optional()
    .describe('The JSON value at matchPath (JSON containment). Without createdAfter, the last 24 hours before createdBefore (or now) are searched.'),
};

export const ConsoleJobsQuery = z
  .object({
    ...jobFilterFields,
    order: z.enum(['newest', 'oldest']).optional(),
    first: z.coerce.number().int().optional().describe('Jobs per page, 1 to 100; default 20.'),
    after: z.string().optional().describe('The endCursor of the previous page.'),
  })
  .strict();

export const JobFilterQuery = z.object(jobFilterFields).strict();

/** A job's failed attempts (src/jobs/sql/attempt-errors.ts). */
export const JobAttemptsAnswer = z.strictObject({
  attempts: z.array(
    z.strictObject({
      attempt: z.number().int(),
      error: z.string(),
      failedAt: z.iso.datetime(),
      worker: z.string().nullable().describe('The worker instance that ran the attempt, or lost it to the stale rule.'),
    }),
  ),
});

export const BulkActionBody = z.object({ filter: z.object(jobFilterFields).strict() }).strict();

export const JobCountAnswer = z.strictObject({
  count: z.number().int(),
  more: z.boolean().describe('More jobs than cap match: the count (or the action) stopped at cap.'),
  cap: z.number().int(),
});

export const OverviewAnswer = z.strictObject({
  at: z.string(),
  queueCap: z.number().int(),
  hourCap: z.number().int(),
  sampled: z.boolean(),
  kinds: z.array(
    z.strictObject({
      kind: z.string(),
      paused: z.boolean(),
      due: z.number().int(),
      delayed: z.number().int(),
      running: z.number().int(),
      completedLastHour: z.number().int(),
      failedLastHour: z.number().int(),
      minutes: z.array(
        z.strictObject({
          minute: z.number().describe('Epoch milliseconds.'),
          completed: z.number().int(),
          failed: z.number().int(),
          p50: z.number().nullable(),
          p99: z.number().nullable(),
        }),
      ),
    }),
  ),
});
