import { Repeater } from '@repeaterjs/repeater';
import { type AttemptError, BULK_MAX, type ConsoleAction, type JobCount, type Overview, OVERVIEW_PERIOD_MS } from '../../jobs/console.ts';
import { jobNotFound } from '../../jobs/errors.ts';
import type { Builder } from '../builder.ts';
import { serviceCall } from '../errors.ts';
import type { JobTypes } from './job.ts';
import type { addQueryType } from './query.ts';

type ConsoleTypes = JobTypes & { JobConnection: ReturnType<typeof addQueryType>['JobConnection'] };

/** The operator console's queries, mutations and live overview (src/jobs/console.ts). */
export function addConsoleTypes(builder: Builder, { Job, JobStatus, JobConnection }: ConsoleTypes) {
  builder.objectField(Job, 'owner', (t) =>
    t.exposeString('owner', { description: 'The SHA-256 of the API key that submitted it, in hex; empty on a service without keys.' }),
  );

  builder.objectField(Job, 'lockedBy', (t) =>
    t.exposeString('lockedBy', {
      nullable: true,
      description: 'The worker instance that holds it, or last held it (a completed or failed job keeps it); null before its first claim.',
    }),
  );

  const AttemptErrorRef = builder.objectRef<AttemptError>('AttemptError').implement({
    description: 'One failed attempt of a job.',
    fields: (t) => ({
      attempt: t.exposeInt('attempt'),
      error: t.exposeString('error', { description: 'What the handler threw, or why the stale rule took the attempt back.' }),
      failedAt: t.expose('failedAt', { type: 'DateTime' }),
      worker: t.exposeString('worker', { nullable: true, description: 'The worker instance that ran the attempt (or lost it).' }),
    }),
  });

  // Read only when a query asks for it: a list's jobs share one read of job_attempt_error (loaders.ts).
  builder.objectField(Job, 'attempts', (t) =>
    t.field({
      type: [AttemptErrorRef],
      description:
        'Its failed attempts, oldest first, each with its error, time and worker; a job that never failed has none. An attempt lost to the stale rule (its worker presumed dead) is one of them, as timed out.',
      resolve: (job, _args, { loaders }) => serviceCall(() => loaders.attempts.load(job.id)),
    }),
  );

  const JsonField = builder.enumType('JsonField', { values: { INPUT: { value: 'input' }, RESULT: { value: 'result' } } as const });
  const JsonMatch = builder.inputType('JsonMatch', {
    description: 'Jobs whose input (or result) holds `value` at `path`: JSON containment, so an object or array value matches what contains it.',
    fields: (t) => ({
      in: t.field({ type: JsonField, required: false, description: 'Default: INPUT.' }),
      path: t.string({ required: true, description: 'Keys separated by dots, such as `customer.id`.' }),
      value: t.field({ type: 'JSON', required: true }),
    }),
  });

  const JobFilter = builder.inputType('JobFilter', {
    description: 'Every field given must hold. Each is served by an index (README, "The operator console").',
    fields: (t) => ({
      kind: t.string({ required: false }),
      status: t.field({ type: JobStatus, required: false }),
      owner: t.string({ required: false, description: 'An owner as jobs show it; operator keys only (FORBIDDEN otherwise).' }),
      id: t.id({ required: false }),
      uniqueKey: t.string({ required: false, description: 'Jobs submitted with this unique key, in any state.' }),
      concurrencyKey: t.string({ required: false, description: 'Jobs submitted with this concurrency key.' }),
      idempotencyKey: t.string({ required: false, description: "Jobs submitted with this idempotency key. Keys are each owner's own: an operator names the owner too (BAD_USER_INPUT on owner otherwise)." }),
      createdAfter: t.field({ type: 'DateTime', required: false, description: 'Created at or after.' }),
      createdBefore: t.field({ type: 'DateTime', required: false, description: 'Created before.' }),
      match: t.field({
        type: JsonMatch,
        required: false,
        description: 'A JSON search, within createdAfter … createdBefore; without createdAfter, within the 24 hours before createdBefore (or now).',
      }),
    }),
  });

  const JobOrder = builder.enumType('JobOrder', { values: { NEWEST: { value: 'newest' }, OLDEST: { value: 'oldest' } } as const });

  const JobCountRef = builder.objectRef<JobCount>('JobCount').implement({
    description: `A number of jobs, counted up to \`cap\` (${BULK_MAX}); \`more\` says there are more.`,
    fields: (t) => ({ count: t.exposeInt('count'), more: t.exposeBoolean('more'), cap: t.exposeInt('cap') }),
  });

  builder.queryField('searchJobs', (t) =>
    t.field({
      type: JobConnection,
      description: "Jobs a filter finds, a page at a time. A customer's key finds its own; an operator's every owner's.",
      args: {
        filter: t.arg({ type: JobFilter, required: false }),
        order: t.arg({ type: JobOrder, required: false, description: 'Default: NEWEST.' }),
        first: t.arg.int({ required: false, description: 'Page size, 1 to 100; default 20.' }),
        after: t.arg.string({ required: false }),
      },
      resolve: (_root, { filter, ...page }, { jobs, caller }) => serviceCall(() => jobs.console.list(filter ?? {}, page, caller)),
    }),
  );

  builder.queryField('jobCount', (t) =>
    t.field({
      type: JobCountRef,
      description: 'How many jobs a filter finds: what a bulk action would touch, given the status it acts on.',
      args: { filter: t.arg({ type: JobFilter, required: false }) },
      resolve: (_root, { filter }, { jobs, caller }) => serviceCall(() => jobs.console.count(filter ?? {}, caller)),
    }),
  );

  // Nullable, as every mutation field (see addJob): one failing mutation must not null the others.
  builder.mutationField('retryJob', (t) =>
    t.field({
      type: Job,
      nullable: true,
      description: 'A FAILED job runs again: a new attempt of the same job, its attempts, last error and history (`attempts`) kept. Another state is CONFLICT.',
      args: { id: t.arg.id({ required: true }) },
      resolve: (_root, { id }, { jobs, caller }) => serviceCall(() => jobs.console.retry(String(id), caller)),
    }),
  );

  for (const [field, action, description] of [
    ['retryJobs', 'retry', 'Retries the FAILED jobs the filter finds.'],
    ['cancelJobs', 'cancel', 'Cancels the PENDING jobs the filter finds.'],
    ['retrieveJobs', 'retrieve', 'Marks the COMPLETED jobs the filter finds RETRIEVED.'],
  ] as const satisfies readonly (readonly [string, ConsoleAction, string])[]) {
    builder.mutationField(field, (t) =>
      t.field({
        type: JobCountRef,
        nullable: true,
        description: `${description} At most ${BULK_MAX} a call, oldest first (\`more\`: call again). Operator keys only. Count first with jobCount.`,
        args: { filter: t.arg({ type: JobFilter, required: true }) },
        resolve: (_root, { filter }, { jobs, caller }) => serviceCall(() => jobs.console.bulk(action, filter, caller)),
      }),
    );
  }

  builder.mutationField('runSchedule', (t) =>
    t.field({
      type: Job,
      nullable: true,
      description: "Makes one job of the schedule now, outside its ticks, owned by the schedule's owner.",
      args: { id: t.arg.id({ required: true }) },
      resolve: (_root, { id }, { jobs, caller }) =>
        serviceCall(async () => {
          const { job } = await jobs.console.runSchedule(String(id), caller);
          const read = await jobs.getJob(job.id, caller);
          if (!read) throw jobNotFound(job.id);
          return read;
        }),
    }),
  );

  const Minute = builder.objectRef<Overview['kinds'][number]['minutes'][number]>('KindMinute').implement({
    fields: (t) => ({
      minute: t.field({ type: 'DateTime', resolve: (row) => new Date(row.minute) }),
      completed: t.exposeInt('completed'),
      failed: t.exposeInt('failed'),
      p50: t.exposeFloat('p50', { nullable: true, description: 'Milliseconds from creation to completion, median.' }),
      p99: t.exposeFloat('p99', { nullable: true }),
    }),
  });

  const KindOverview = builder.objectRef<Overview['kinds'][number]>('KindOverview').implement({
    fields: (t) => ({
      kind: t.exposeString('kind'),
      paused: t.exposeBoolean('paused'),
      due: t.exposeInt('due', { description: 'Pending and due now.' }),
      delayed: t.exposeInt('delayed', { description: 'Pending, due later.' }),
      running: t.exposeInt('running'),
      completedLastHour: t.exposeInt('completedLastHour', { description: 'Of the jobs created in the last hour.' }),
      failedLastHour: t.exposeInt('failedLastHour'),
      minutes: t.field({ type: [Minute], description: 'The last hour, minute by minute (minutes with nothing finished are absent).', resolve: (kind) => kind.minutes }),
    }),
  });

  const OverviewRef = builder.objectRef<Overview>('Overview').implement({
    description: 'Each kind now and over the last hour. Operator keys only.',
    fields: (t) => ({
      at: t.expose('at', { type: 'DateTime' }),
      kinds: t.field({ type: [KindOverview], resolve: (overview) => overview.kinds }),
      queueCap: t.exposeInt('queueCap', { description: 'Pending and running counts stop here.' }),
      sampled: t.exposeBoolean('sampled', { description: "The hour held more jobs than one reading takes: the charts show the newest." }),
    }),
  });

  builder.queryField('overview', (t) =>
    t.field({ type: OverviewRef, resolve: (_root, _args, { jobs, caller }) => serviceCall(() => jobs.console.overview(caller)) }),
  );

  builder.subscriptionField('overviewUpdated', (t) =>
    t.field({
      type: OverviewRef,
      description: `The overview now, then every ${OVERVIEW_PERIOD_MS / 1000} s. Operator keys only.`,
      subscribe: (_root, _args, { jobs, caller }) =>
        serviceCall(async () => {
          const first = await jobs.console.overview(caller);
          // A Repeater, not an async generator: a subscriber who leaves ends it at once, where a
          // generator's return() would wait out the sleep it is suspended in.
          return new Repeater<Overview>(async (push, stop) => {
            await push(first);
            const timer = setInterval(() => {
              jobs.console.overview(caller).then(push, stop);
            }, OVERVIEW_PERIOD_MS);
            await stop;
            clearInterval(timer);
          });
        }),
      resolve: (overview) => overview,
    }),
  );
}
