import type { Builder } from '../builder.ts';
import { serviceCall, serviceStream } from '../errors.ts';
import type { JobTypes } from './job.ts';

export function addSubscriptionType(builder: Builder, { Job }: JobTypes) {
  builder.subscriptionType({});

  builder.subscriptionField('jobUpdated', (t) =>
    t.field({
      type: Job,
      description:
        'The job as it is now, then after every change, until it is RETRIEVED, FAILED or CANCELLED. ' +
        'Changes that land faster than they can be read arrive as the latest state. A job deleted ' +
        'after its retention period ends the subscription with a NOT_FOUND error.',
      args: { id: t.arg.id({ required: true }) },
      subscribe: (_root, { id }, { jobs, caller }) =>
        serviceCall(async () => serviceStream(await jobs.watchJob(String(id), caller))),
      resolve: (job) => job,
    }),
  );
}
