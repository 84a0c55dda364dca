/* eslint-disable */
import * as types from './graphql.js';
import type { TypedDocumentNode as DocumentNode } from '@graphql-typed-document-node/core';

/**
 * Map of all GraphQL operations in the project.
 *
 * This map has several performance disadvantages:
 * 1. It is not tree-shakeable, so it will include all operations in the project.
 * 2. It is not minifiable, so the string of a GraphQL query will be multiple times inside the bundle.
 * 3. It does not support dead code elimination, so it will add unused operations.
 *
 * Therefore it is highly recommended to use the babel or swc plugin for production.
 * Learn more about it here: https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#reducing-bundle-size
 */
type Documents = {
    "fragment JobFields on Job {\n  id\n  kind\n  status\n  input\n  num1\n  num2\n  result\n  progress\n  attempt\n  maxAttempts\n  lastError\n  priority\n  idempotencyKey\n  version\n  runAt\n  createdAt\n  lastUpdated\n  completedOn\n  retrievedAt\n}\n\nmutation AddJob($input: AddJobInput!) {\n  addJob(input: $input) {\n    created\n    job {\n      ...JobFields\n    }\n  }\n}\n\nmutation AddJobs($inputs: [AddJobInput!]!) {\n  addJobs(inputs: $inputs) {\n    created\n    job {\n      ...JobFields\n    }\n  }\n}\n\nmutation RetrieveJob($id: ID!) {\n  retrieveJob(id: $id) {\n    ...JobFields\n  }\n}\n\nmutation CancelJob($id: ID!) {\n  cancelJob(id: $id) {\n    ...JobFields\n  }\n}\n\nquery Job($id: ID!) {\n  job(id: $id) {\n    ...JobFields\n  }\n}\n\nquery Jobs($status: JobStatus, $kind: String, $first: Int, $after: String) {\n  jobs(status: $status, kind: $kind, first: $first, after: $after) {\n    nodes {\n      ...JobFields\n    }\n    edges {\n      cursor\n      node {\n        id\n      }\n    }\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n  }\n}\n\nsubscription JobUpdated($id: ID!) {\n  jobUpdated(id: $id) {\n    ...JobFields\n  }\n}\n\nmutation SubmitJob($input: SubmitJobInput!) {\n  submitJob(input: $input) {\n    created\n    job {\n      ...JobFields\n    }\n  }\n}\n\nmutation SubmitJobs($inputs: [SubmitJobInput!]!) {\n  submitJobs(inputs: $inputs) {\n    created\n    job {\n      ...JobFields\n    }\n  }\n}\n\nquery Kinds {\n  kinds {\n    name\n    description\n    inputSchema\n    resultSchema\n  }\n}": typeof types.JobFieldsFragmentDoc,
};
const documents: Documents = {
    "fragment JobFields on Job {\n  id\n  kind\n  status\n  input\n  num1\n  num2\n  result\n  progress\n  attempt\n  maxAttempts\n  lastError\n  priority\n  idempotencyKey\n  version\n  runAt\n  createdAt\n  lastUpdated\n  completedOn\n  retrievedAt\n}\n\nmutation AddJob($input: AddJobInput!) {\n  addJob(input: $input) {\n    created\n    job {\n      ...JobFields\n    }\n  }\n}\n\nmutation AddJobs($inputs: [AddJobInput!]!) {\n  addJobs(inputs: $inputs) {\n    created\n    job {\n      ...JobFields\n    }\n  }\n}\n\nmutation RetrieveJob($id: ID!) {\n  retrieveJob(id: $id) {\n    ...JobFields\n  }\n}\n\nmutation CancelJob($id: ID!) {\n  cancelJob(id: $id) {\n    ...JobFields\n  }\n}\n\nquery Job($id: ID!) {\n  job(id: $id) {\n    ...JobFields\n  }\n}\n\nquery Jobs($status: JobStatus, $kind: String, $first: Int, $after: String) {\n  jobs(status: $status, kind: $kind, first: $first, after: $after) {\n    nodes {\n      ...JobFields\n    }\n    edges {\n      cursor\n      node {\n        id\n      }\n    }\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n  }\n}\n\nsubscription JobUpdated($id: ID!) {\n  jobUpdated(id: $id) {\n    ...JobFields\n  }\n}\n\nmutation SubmitJob($input: SubmitJobInput!) {\n  submitJob(input: $input) {\n    created\n    job {\n      ...JobFields\n    }\n  }\n}\n\nmutation SubmitJobs($inputs: [SubmitJobInput!]!) {\n  submitJobs(inputs: $inputs) {\n    created\n    job {\n      ...JobFields\n    }\n  }\n}\n\nquery Kinds {\n  kinds {\n    name\n    description\n    inputSchema\n    resultSchema\n  }\n}": types.JobFieldsFragmentDoc,
};

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 *
 *
 * @example
 * ```ts
 * const query = graphql(`query GetUser($id: ID!) { user(id: $id) { name } }`);
 * ```
 *
 * The query argument is unknown!
 * Please regenerate the types.
 */
export function graphql(source: string): unknown;

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "fragment JobFields on Job {\n  id\n  kind\n  status\n  input\n  num1\n  num2\n  result\n  progress\n  attempt\n  maxAttempts\n  lastError\n  priority\n  idempotencyKey\n  version\n  runAt\n  createdAt\n  lastUpdated\n  completedOn\n  retrievedAt\n}\n\nmutation AddJob($input: AddJobInput!) {\n  addJob(input: $input) {\n    created\n    job {\n      ...JobFields\n    }\n  }\n}\n\nmutation AddJobs($inputs: [AddJobInput!]!) {\n  addJobs(inputs: $inputs) {\n    created\n    job {\n      ...JobFields\n    }\n  }\n}\n\nmutation RetrieveJob($id: ID!) {\n  retrieveJob(id: $id) {\n    ...JobFields\n  }\n}\n\nmutation CancelJob($id: ID!) {\n  cancelJob(id: $id) {\n    ...JobFields\n  }\n}\n\nquery Job($id: ID!) {\n  job(id: $id) {\n    ...JobFields\n  }\n}\n\nquery Jobs($status: JobStatus, $kind: String, $first: Int, $after: String) {\n  jobs(status: $status, kind: $kind, first: $first, after: $after) {\n    nodes {\n      ...JobFields\n    }\n    edges {\n      cursor\n      node {\n        id\n      }\n    }\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n  }\n}\n\nsubscription JobUpdated($id: ID!) {\n  jobUpdated(id: $id) {\n    ...JobFields\n  }\n}\n\nmutation SubmitJob($input: SubmitJobInput!) {\n  submitJob(input: $input) {\n    created\n    job {\n      ...JobFields\n    }\n  }\n}\n\nmutation SubmitJobs($inputs: [SubmitJobInput!]!) {\n  submitJobs(inputs: $inputs) {\n    created\n    job {\n      ...JobFields\n    }\n  }\n}\n\nquery Kinds {\n  kinds {\n    name\n    description\n    inputSchema\n    resultSchema\n  }\n}"): (typeof documents)["fragment JobFields on Job {\n  id\n  kind\n  status\n  input\n  num1\n  num2\n  result\n  progress\n  attempt\n  maxAttempts\n  lastError\n  priority\n  idempotencyKey\n  version\n  runAt\n  createdAt\n  lastUpdated\n  completedOn\n  retrievedAt\n}\n\nmutation AddJob($input: AddJobInput!) {\n  addJob(input: $input) {\n    created\n    job {\n      ...JobFields\n    }\n  }\n}\n\nmutation AddJobs($inputs: [AddJobInput!]!) {\n  addJobs(inputs: $inputs) {\n    created\n    job {\n      ...JobFields\n    }\n  }\n}\n\nmutation RetrieveJob($id: ID!) {\n  retrieveJob(id: $id) {\n    ...JobFields\n  }\n}\n\nmutation CancelJob($id: ID!) {\n  cancelJob(id: $id) {\n    ...JobFields\n  }\n}\n\nquery Job($id: ID!) {\n  job(id: $id) {\n    ...JobFields\n  }\n}\n\nquery Jobs($status: JobStatus, $kind: String, $first: Int, $after: String) {\n  jobs(status: $status, kind: $kind, first: $first, after: $after) {\n    nodes {\n      ...JobFields\n    }\n    edges {\n      cursor\n      node {\n        id\n      }\n    }\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n  }\n}\n\nsubscription JobUpdated($id: ID!) {\n  jobUpdated(id: $id) {\n    ...JobFields\n  }\n}\n\nmutation SubmitJob($input: SubmitJobInput!) {\n  submitJob(input: $input) {\n    created\n    job {\n      ...JobFields\n    }\n  }\n}\n\nmutation SubmitJobs($inputs: [SubmitJobInput!]!) {\n  submitJobs(inputs: $inputs) {\n    created\n    job {\n      ...JobFields\n    }\n  }\n}\n\nquery Kinds {\n  kinds {\n    name\n    description\n    inputSchema\n    resultSchema\n  }\n}"];

export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}

export type DocumentType<TDocumentNode extends DocumentNode<any, any>> = TDocumentNode extends DocumentNode<  infer TType,  any>  ? TType  : never;