import { jobNotFound } from '../../jobs/errors.ts';
import type { Builder } from '../builder.ts';
import { serviceCall } from '../errors.ts';
import type { JobTypes } from './job.ts';

export function addMutationType(builder: Builder, { Job }: JobTypes) {
  builder.mutationType({});

  // Nullable, as every mutation field (see addJob): one failing mutation must not null the others.
  builder.mutationField('retrieveJob', (t) =>
    t.field({
      type: Job,
      nullable: true,
      description:
        'Fetches a job and, if it is COMPLETED, marks it RETRIEVED. A job in any other state is returned as it is.',
      args: { id: t.arg.id({ required: true }) },
      resolve: (_root, { id }, { jobs, caller }) =>
        serviceCall(async () => {
          const job = await jobs.retrieveJob(String(id), caller);
          if (!job) throw jobNotFound(String(id));
          return job;
        }),
    }),
  );

  builder.mutationField('cancelJob', (t) =>
    t.field({
      type: Job,
      nullable: true,
      description: 'Cancels a PENDING job. A job a worker already took cannot be cancelled (CONFLICT).',
      args: { id: t.arg.id({ required: true }) },
      resolve: (_root, { id }, { jobs, caller }) => serviceCall(() => jobs.cancelJob(String(id), caller)),
    }),
  );
}
