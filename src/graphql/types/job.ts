import type { Job as JobRow } from '../../generated/prisma/client.ts';
import { addNumbersOf } from '../../kinds/add.ts';
import type { Builder } from '../builder.ts';

export type JobTypes = ReturnType<typeof addJobType>;

export function addJobType(builder: Builder) {
  const JobStatus = builder.enumType('JobStatus', {
    values: {
      PENDING: { value: 'pending', description: 'Waiting for a worker, or for its next attempt.' },
      WIP: { value: 'wip', description: 'A worker is running it.' },
      COMPLETED: { value: 'completed', description: 'Done; the result is ready.' },
      FAILED: { value: 'failed', description: 'Every attempt failed; see lastError.' },
      RETRIEVED: { value: 'retrieved', description: 'Done, and the customer has fetched the result.' },
      CANCELLED: { value: 'cancelled', description: 'Cancelled before a worker took it (or a job it depends on failed).' },
      WAITING: { value: 'waiting', description: 'Waits for the jobs it depends on to finish; never taken by a worker until then.' },
    } as const,
  });

  // A plain object type over the job the service returns. Every resolver is given whole jobs by the
  // service, so nothing here queries (README.md, "Prisma's place").
  const Job = builder.objectRef<JobRow>('Job').implement({
    description: 'One job of any kind: its input, its state, and its result once completed.',
    fields: (t) => ({
      id: t.exposeID('id'),
      kind: t.exposeString('kind', { description: 'The name of its kind (see `kinds`).' }),
      status: t.expose('status', { type: JobStatus }),
      input: t.field({ type: 'JSON', description: "As its kind's input schema made it.", resolve: (job) => job.input }),
      result: t.field({
        type: 'JSON',
        nullable: true,
        description: "What the handler returned, as its kind's result schema describes it; null until completed. An `add` job's is the sum, a Decimal string.",
        resolve: (job) => job.result,
      }),
      progress: t.field({
        type: 'JSON',
        nullable: true,
        description:
          "How far the handler has got, as it last reported (a JSON object, such as `{ percent: 40 }`); null until it reports. A retried job keeps the failed attempt's until the next attempt reports its own.",
        resolve: (job) => job.progress,
      }),
      num1: t.field({
        type: 'Decimal',
        nullable: true,
        description: 'The first number of an `add` job; null for other kinds.',
        resolve: (job) => addNumbersOf(job)?.num1 ?? null,
      }),
      num2: t.field({
        type: 'Decimal',
        nullable: true,
        description: 'The second number of an `add` job; null for other kinds.',
        resolve: (job) => addNumbersOf(job)?.num2 ?? null,
      }),
      attempt: t.exposeInt('attempt', { description: 'Attempts started so far.' }),
      maxAttempts: t.exposeInt('maxAttempts'),
      lastError: t.exposeString('lastError', { nullable: true, description: 'Why the last attempt failed.' }),
      priority: t.exposeInt('priority'),
      idempotencyKey: t.exposeString('idempotencyKey', { nullable: true }),
      uniqueKey: t.exposeString('uniqueKey', {
        nullable: true,
        description: 'Held while the job is pending or running: no other job of its kind may take it meanwhile.',
      }),
      concurrencyKey: t.exposeString('concurrencyKey', {
        nullable: true,
        description: "Jobs of one key run at most their kind's `concurrencyPerKey` at once, and start at most as its per-key `rateLimit` allows, in submission order.",
      }),
      version: t.exposeInt('version', { description: 'Grows with every change of the job.' }),
      runAt: t.expose('runAt', { type: 'DateTime' }),
      createdAt: t.expose('createdAt', { type: 'DateTime' }),
      lastUpdated: t.expose('lastUpdated', { type: 'DateTime' }),
      completedOn: t.expose('completedOn', { type: 'DateTime', nullable: true }),
      retrievedAt: t.expose('retrievedAt', { type: 'DateTime', nullable: true }),
    }),
  });

  return { Job, JobStatus };
}
