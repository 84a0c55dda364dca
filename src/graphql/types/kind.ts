import type { KindState } from '../../jobs/kind-control.ts';
import type { Builder } from '../builder.ts';
import { serviceCall } from '../errors.ts';

/** The kinds, their limits, and pausing them. */
export function addKindTypes(builder: Builder) {
  const RateLimit = builder.objectRef<NonNullable<KindState['rateLimit']>>('RateLimit').implement({
    description: 'At most `limit` of a kind\'s jobs start within any `intervalMs` milliseconds, across all workers (a sliding window).',
    fields: (t) => ({
      limit: t.exposeInt('limit', { description: 'Starts allowed per interval.' }),
      intervalMs: t.exposeInt('intervalMs', { description: 'The interval, in milliseconds.' }),
      perKey: t.exposeBoolean('perKey', {
        description: 'Each `concurrencyKey` has the limit to itself (jobs without a key share one); false: the kind has one.',
      }),
    }),
  });

  const Kind = builder.objectRef<KindState>('Kind').implement({
    description: 'A kind of job the service runs.',
    fields: (t) => ({
      name: t.exposeString('name'),
      description: t.exposeString('description', { nullable: true }),
      inputSchema: t.field({ type: 'JSON', description: 'JSON Schema of the input a submission sends.', resolve: (kind) => kind.inputSchema }),
      resultSchema: t.field({ type: 'JSON', description: "JSON Schema of a completed job's result.", resolve: (kind) => kind.resultSchema }),
      paused: t.exposeBoolean('paused', {
        description: 'No worker starts its jobs until it is resumed (pauseKind, pauseAllKinds); started jobs finish.',
      }),
      concurrency: t.exposeInt('concurrency', {
        nullable: true,
        description: 'At most this many of its jobs run at once, across all workers; null for no limit.',
      }),
      concurrencyPerKey: t.exposeInt('concurrencyPerKey', {
        nullable: true,
        description: 'At most this many of its jobs of one `concurrencyKey` run at once, in submission order; null for no such limit.',
      }),
      rateLimit: t.field({
        type: RateLimit,
        nullable: true,
        description: 'At most so many of its jobs start per interval; jobs over it stay PENDING until it allows. Null for no limit.',
        resolve: (kind) => kind.rateLimit,
      }),
    }),
  });

  builder.queryField('kinds', (t) =>
    t.field({
      type: [Kind],
      description: 'The kinds of job this service runs.',
      resolve: (_root, _args, { jobs }) => serviceCall(() => jobs.kindControl.list()),
    }),
  );

  const kindArg = (t: Parameters<Parameters<typeof builder.mutationField>[1]>[0]) =>
    t.arg.string({ required: true, description: 'The name of a kind the service runs; another is NOT_FOUND.' });

  // Nullable, as every mutation field (see addJob): one failing mutation must not null the others.
  builder.mutationField('pauseKind', (t) =>
    t.field({
      type: Kind,
      nullable: true,
      description:
        'Stops every worker process from starting jobs of the kind: they stay PENDING until resumeKind. Jobs already started finish.',
      args: { kind: kindArg(t) },
      resolve: (_root, { kind }, { jobs, caller }) => serviceCall(() => jobs.kindControl.pause(kind, caller)),
    }),
  );

  builder.mutationField('resumeKind', (t) =>
    t.field({
      type: Kind,
      nullable: true,
      description: 'Lets workers start jobs of the kind again; it stays paused while pauseAllKinds holds.',
      args: { kind: kindArg(t) },
      resolve: (_root, { kind }, { jobs, caller }) => serviceCall(() => jobs.kindControl.resume(kind, caller)),
    }),
  );

  builder.mutationField('pauseAllKinds', (t) =>
    t.field({
      type: [Kind],
      nullable: true,
      description: 'Pauses every kind, those a later deploy adds too, until resumeAllKinds.',
      resolve: (_root, _args, { jobs, caller }) => serviceCall(() => jobs.kindControl.pauseAll(caller)),
    }),
  );

  builder.mutationField('resumeAllKinds', (t) =>
    t.field({
      type: [Kind],
      nullable: true,
      description: "Resumes every kind: undoes pauseAllKinds and each kind's own pause.",
      resolve: (_root, _args, { jobs, caller }) => serviceCall(() => jobs.kindControl.resumeAll(caller)),
    }),
  );
}
