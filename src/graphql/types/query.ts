import { jobNotFound } from '../../jobs/errors.ts';
import { type JobPage, MAX_PAGE_SIZE } from '../../jobs/service.ts';
import type { Builder } from '../builder.ts';
import { serviceCall } from '../errors.ts';
import type { JobTypes } from './job.ts';

export function addQueryType(builder: Builder, { Job, JobStatus }: JobTypes) {
  builder.queryType({});

  builder.queryField('job', (t) =>
    t.field({
      type: Job,
      nullable: true,
      description: 'Reads a job without changing it. An unknown id is a NOT_FOUND error.',
      args: { id: t.arg.id({ required: true }) },
      resolve: (_root, { id }, { jobs, caller }) =>
        serviceCall(async () => {
          const job = await jobs.getJob(String(id), caller);
          if (!job) throw jobNotFound(String(id));
          return job;
        }),
    }),
  );

  const PageInfo = builder.objectRef<{ hasNextPage: boolean; endCursor: string | null }>('PageInfo').implement({
    fields: (t) => ({
      hasNextPage: t.exposeBoolean('hasNextPage'),
      endCursor: t.exposeString('endCursor', { nullable: true, description: 'Pass as `after` for the next page.' }),
    }),
  });

  const JobEdge = builder.objectRef<{ cursor: string; node: (typeof Job)['$inferType'] }>('JobEdge').implement({
    fields: (t) => ({
      cursor: t.exposeString('cursor'),
      node: t.field({ type: Job, resolve: (edge) => edge.node }),
    }),
  });

  const JobConnection = builder
    .objectRef<JobPage>('JobConnection')
    .implement({
      fields: (t) => ({
        edges: t.field({
          type: [JobEdge],
          resolve: (page) => page.jobs.map((job) => ({ cursor: job.id, node: job })),
        }),
        nodes: t.field({ type: [Job], resolve: (page) => page.jobs }),
        pageInfo: t.field({
          type: PageInfo,
          resolve: (page) => ({ hasNextPage: page.hasNextPage, endCursor: page.endCursor }),
        }),
      }),
    });

  builder.queryField('jobs', (t) =>
    t.field({
      type: JobConnection,
      description: `Your jobs, newest first, ${MAX_PAGE_SIZE} at most per page.`,
      args: {
        status: t.arg({ type: JobStatus, required: false }),
        kind: t.arg.string({ required: false, description: 'Only jobs of this kind.' }),
        first: t.arg.int({ required: false, description: 'Page size, 1 to 100; default 20.' }),
        after: t.arg.string({ required: false }),
      },
      resolve: (_root, args, { jobs, caller }) => serviceCall(() => jobs.listJobs(args, caller)),
    }),
  );

  return { JobConnection };
}
