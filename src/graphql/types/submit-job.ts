import type { Builder } from '../builder.ts';
import { serviceCall } from '../errors.ts';
import type { AddJobTypes } from './add-job.ts';

/** Jobs of any kind. */
export function addSubmitJobTypes(builder: Builder, { AddJobPayload }: AddJobTypes) {
  const OnUnique = builder.enumType('OnUnique', {
    description: 'What a submission answers when a pending or running job of its kind holds its uniqueKey.',
    values: {
      REFUSE: { value: 'refuse', description: 'Refused with CONFLICT, extensions.field uniqueKey; nothing of the request is added.' },
      EXISTING: { value: 'existing', description: 'Answered with the job that holds the key (created: false).' },
    } as const,
  });

  const SubmitJobInput = builder.inputType('SubmitJobInput', {
    fields: (t) => ({
      kind: t.string({ required: true, description: 'The name of a kind the service runs (see `kinds`).' }),
      input: t.field({ type: 'JSON', required: true, description: "Checked by the kind's input schema; a field it refuses is named in the error." }),
      idempotencyKey: t.string({
        required: false,
        description:
          'Submitting again with the same key and input returns the first job instead of a new one; the same key with other input is refused with CONFLICT.',
      }),
      uniqueKey: t.string({
        required: false,
        description:
          'While a job of this kind with the same key is pending or running, no other is added (see onUnique). Unlike idempotencyKey, the key is free again once that job completes, fails or is cancelled.',
      }),
      onUnique: t.field({ type: OnUnique, required: false, description: 'What a held uniqueKey answers. Default: REFUSE.' }),
      runAt: t.field({ type: 'DateTime', required: false, description: 'Do not start before this moment.' }),
      priority: t.int({ required: false, description: "Higher runs first; -1000 to 1000. Default: the kind's, else 0." }),
      maxAttempts: t.int({ required: false, description: "1 to 100. Default: the kind's, else MAX_ATTEMPTS." }),
      dependsOn: t.idList({
        required: false,
        description:
          'Ids of your jobs that must finish first: the job is WAITING till then (see submitWorkflow). Such a job takes no idempotency, unique or concurrency key, nor does any job of a submitJobs batch where one names dependsOn.',
      }),
      concurrencyKey: t.string({
        required: false,
        description:
          "1 to 200 characters. Jobs of one key run at most the kind's `concurrencyPerKey` at once, and start at most as its per-key `rateLimit` allows, in submission order; only for kinds that set one of them.",
      }),
    }),
  });

  // Nullable, as every mutation field (see addJob): one failing mutation must not null the others.
  builder.mutationField('submitJob', (t) =>
    t.field({
      type: AddJobPayload,
      nullable: true,
      description: 'Submits a job of any kind.',
      args: { input: t.arg({ type: SubmitJobInput, required: true }) },
      resolve: (_root, { input }, { jobs, caller }) => serviceCall(() => jobs.submitJob(input, caller)),
    }),
  );

  builder.mutationField('submitJobs', (t) =>
    t.field({
      type: [AddJobPayload],
      nullable: true,
      description: 'Submits many jobs, of any kinds, in one statement: all of them, or none. The answer keeps the order of the inputs.',
      args: { inputs: t.arg({ type: [SubmitJobInput], required: true }) },
      resolve: (_root, { inputs }, { jobs, caller }) => serviceCall(() => jobs.submitJobs(inputs, caller)),
    }),
  );
}
