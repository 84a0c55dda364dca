import type { GraphQLSchema } from 'graphql';
import { createBuilder } from './builder.ts';
import { addAddJobTypes } from './types/add-job.ts';
import { addConsoleTypes } from './types/console.ts';
import { addJobType } from './types/job.ts';
import { addKindTypes } from './types/kind.ts';
import { addMutationType } from './types/mutation.ts';
import { addQueryType } from './types/query.ts';
import { addScalars } from './types/scalars.ts';
import { addScheduleTypes } from './types/schedule.ts';
import { addSubmitJobTypes } from './types/submit-job.ts';
import { addSubscriptionType } from './types/subscription.ts';
import { addWorkflowTypes } from './types/workflow.ts';

/** Builds the schema from one file per type. Nothing is registered at import time. */
export function buildSchema(): GraphQLSchema {
  const builder = createBuilder();
  addScalars(builder);
  const jobTypes = addJobType(builder);
  const { JobConnection } = addQueryType(builder, jobTypes);
  addMutationType(builder, jobTypes);
  const addJobTypes = addAddJobTypes(builder, jobTypes);
  addSubmitJobTypes(builder, addJobTypes);
  addScheduleTypes(builder);
  addConsoleTypes(builder, { ...jobTypes, JobConnection });
  addKindTypes(builder);
  addSubscriptionType(builder, jobTypes);
  addWorkflowTypes(builder, jobTypes);
  return builder.toSchema({ sortSchema: true });
}
