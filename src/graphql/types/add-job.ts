import type { InsertedJob } from '../../jobs/sql/insert.ts';
import type { Builder } from '../builder.ts';
import { serviceCall } from '../errors.ts';
import type { JobTypes } from './job.ts';

export type AddJobTypes = ReturnType<typeof addAddJobTypes>;

export function addAddJobTypes(builder: Builder, { Job }: JobTypes) {
  const AddJobInput = builder.inputType('AddJobInput', {
    fields: (t) => ({
      num1: t.field({ type: 'Decimal', required: true }),
      num2: t.field({ type: 'Decimal', required: true }),
      idempotencyKey: t.string({
        required: false,
        description:
          'Submitting again with the same key and numbers returns the first job instead of a new one; the same key with other numbers is refused with CONFLICT.',
      }),
      runAt: t.field({ type: 'DateTime', required: false, description: 'Do not start before this moment.' }),
      priority: t.int({ required: false, description: 'Higher runs first; -1000 to 1000, default 0.' }),
    }),
  });

  const AddJobPayload = builder.objectRef<InsertedJob>('AddJobPayload').implement({
      fields: (t) => ({
        job: t.field({ type: Job, resolve: (payload) => payload.job }),
        created: t.exposeBoolean('created', {
          description: 'False when the idempotency key matched an earlier job, which is returned instead.',
        }),
      }),
    });

  // Mutation fields are nullable: a document may hold several mutations, run one after another,
  // and an error in a non-null one would null the whole answer, hiding the jobs the others added.
  builder.mutationField('addJob', (t) =>
    t.field({
      type: AddJobPayload,
      nullable: true,
      args: { input: t.arg({ type: AddJobInput, required: true }) },
      resolve: (_root, { input }, { jobs, caller }) => serviceCall(() => jobs.addJob(input, caller)),
    }),
  );

  builder.mutationField('addJobs', (t) =>
    t.field({
      type: [AddJobPayload],
      nullable: true,
      description: 'Adds many jobs in one statement: all of them, or none. The answer keeps the order of the inputs.',
      args: { inputs: t.arg({ type: [AddJobInput], required: true }) },
      resolve: (_root, { inputs }, { jobs, caller }) => serviceCall(() => jobs.addJobs(inputs, caller)),
    }),
  );

  return { AddJobPayload };
}
