/**
 * A list of jobs that asks for `attempts` and `workflowStep` reads each field once for the whole
 * list (src/graphql/loaders.ts), not once per job: every job gets its own values, and the
 * statements sent stay two however many jobs, for `jobs`, `searchJobs` and a workflow's steps.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Database } from '../src/db/database.ts';
import { failJobsStatement } from '../src/jobs/sql/outcomes.ts';
import { defineKind } from '../src/kinds/define.ts';
import { KindRegistry } from '../src/kinds/registry.ts';
import { createTestApp, keyedClient, type TestApp } from './helpers/api.ts';
import { claimJobsStatement } from './helpers/claim.ts';
import { createTestDatabase, type TestDatabase } from './helpers/database.ts';

/** Never run here: claimed and failed by hand. */
const echo = defineKind({ name: 'echo', input: z.object({ text: z.string() }), result: z.null(), handler: () => null });

const CUSTOMER = 'job-field-reads-customer-a';
const OTHER = 'job-field-reads-customer-b';
const OPERATOR = 'job-field-reads-operator-key';
/** Owns only the big workflow of the last test, so the lists of the others stay as they are. */
const BIG = 'job-field-reads-customer-c';

let testDb: TestDatabase;
let db: Database;
let api: TestApp;
let client: ReturnType<typeof keyedClient>;
/** The names of the statements the app sent through `query`, in order (Prisma's listing is not among them). */
let sent: string[] = [];

interface Expected {
  attempts: { attempt: number; error: string }[];
  workflowStep: { workflowId: string; name: string } | null;
}
/** Every job's expected fields, by id. */
const expected = new Map<string, Expected>();
let workflowA = '';

/** The app's database, counting what goes through `query`; everything else is the real one's. */
function counting(real: Database): Database {
  return new Proxy(real, {
    get(target, property) {
      if (property === 'query') {
        return ((statement, values) => {
          sent.push(statement.name);
          return target.query(statement, values);
        }) as Database['query'];
      }
      const value = Reflect.get(target, property, target) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

async function submitWorkflow(key: string, names: string[]): Promise<string> {
  const answer = await client.graphql(key, 'mutation($steps: [WorkflowStepInput!]!) { submitWorkflow(steps: $steps) { id steps { name jobId } } }', {
    steps: names.map((name) => ({ name, kind: 'echo', input: { text: name }, maxAttempts: 5 })),
  });
  const workflow = answer.data!['submitWorkflow'] as { id: string; steps: { name: string; jobId: string }[] };
  for (const step of workflow.steps) expected.set(step.jobId, { attempts: [], workflowStep: { workflowId: workflow.id, name: step.name } });
  return workflow.id;
}

async function submitJob(key: string, text: string): Promise<void> {
  const answer = await client.rest('POST', '/api/v1/jobs', key, { kind: 'echo', input: { text }, maxAttempts: 5 });
  expect(answer.status).toBe(202);
  expected.set(answer.body['jobId'] as string, { attempts: [], workflowStep: null });
}

/** Fails `ids`' current attempt; a retried one is due again at once. */
async function fail(ids: string[], attempt: number, retryInMs: number): Promise<void> {
  const failures = ids.map((id) => ({ id, attempt, error: `job ${id} failed attempt ${attempt}`, retryInMs }));
  expect(await failJobsStatement(db, failures)).toEqual(new Set(ids));
  for (const id of ids) expected.get(id)!.attempts.push({ attempt, error: `job ${id} failed attempt ${attempt}` });
}

beforeAll(async () => {
  testDb = await createTestDatabase(import.meta.filename);
  db = testDb.open();
  api = await createTestApp(counting(db), { service: { kinds: new KindRegistry([echo]) }, apiKeys: [CUSTOMER, OTHER, BIG], adminKeys: [OPERATOR] });
  client = keyedClient(api.app);

  // 30 of CUSTOMER's jobs: two workflows' steps and jobs outside any; and 2 of OTHER's.
  workflowA = await submitWorkflow(CUSTOMER, Array.from({ length: 10 }, (_, i) => `a${i}`));
  await submitWorkflow(CUSTOMER, Array.from({ length: 5 }, (_, i) => `b${i}`));
  for (let i = 0; i < 15; i += 1) await submitJob(CUSTOMER, `alone ${i}`);
  await submitWorkflow(OTHER, ['theirs']);
  await submitJob(OTHER, 'theirs alone');

  // A third of the jobs never fail, a third fail once, a third twice (the rest stay running).
  const ids = [...expected.keys()];
  const once = ids.filter((_, i) => i % 3 >= 1);
  const twice = ids.filter((_, i) => i % 3 === 2);
  expect((await claimJobsStatement(db, 'hand', 100, 30)).length).toBe(32);
  await fail(once, 1, 0);
  expect((await claimJobsStatement(db, 'hand', 100, 30)).map((job) => job.id).sort()).toEqual([...once].sort());
  await fail(twice, 2, 3_600_000);
});

afterAll(async () => {
  await api?.close();
  await testDb?.drop();
});

const FIELDS = 'id attempts { attempt error } workflowStep { workflowId name }';

type Node = { id: string } & Expected;

/** Runs the operation with `key`, and answers with its data and the statements it sent. */
async function counted(key: string, query: string, variables?: Record<string, unknown>) {
  sent = [];
  const answer = await client.graphql(key, query, variables);
  expect(answer.errors).toBeUndefined();
  return { data: answer.data!, statements: [...sent].sort() };
}

function expectEveryJob(nodes: Node[], count: number): void {
  expect(nodes).toHaveLength(count);
  for (const node of nodes) expect(node, node.id).toEqual({ id: node.id, ...expected.get(node.id) });
}

describe('a list of jobs that asks for attempts and workflowStep', () => {
  it("jobs: each job's own values, in one statement per field for the 30", async () => {
    const { data, statements } = await counted(CUSTOMER, `{ jobs(first: 100) { nodes { ${FIELDS} } } }`);
    const nodes = data['jobs'].nodes as Node[];
    expectEveryJob(nodes, 30);
    // The fixture has what it should: jobs with none, one and two failed attempts, in and outside workflows.
    expect(new Set(nodes.map((node) => node.attempts.length))).toEqual(new Set([0, 1, 2]));
    expect(nodes.filter((node) => node.workflowStep === null)).toHaveLength(15);
    // The listing is console_list_* (the console's statements, by owner); the fields add one statement each.
    expect(statements.filter((name) => !name.startsWith('console_list'))).toEqual(['job_attempt_errors_of_jobs', 'workflow_steps_of_jobs']);
  });

  it("searchJobs: an operator's list of every owner's jobs reads the same way", async () => {
    const { data, statements } = await counted(OPERATOR, `{ searchJobs(first: 100) { nodes { ${FIELDS} } } }`);
    expectEveryJob(data['searchJobs'].nodes as Node[], 32);
    // The listing is console_list_*; the fields add one statement each.
    expect(statements.filter((name) => !name.startsWith('console_list'))).toEqual(['job_attempt_errors_of_jobs', 'workflow_steps_of_jobs']);
  });

  it("a workflow's steps: one statement per field for all of them", async () => {
    const { data, statements } = await counted(CUSTOMER, `query($id: ID!) { workflow(id: $id) { steps { job { ${FIELDS} } } } }`, { id: workflowA });
    expectEveryJob((data['workflow'].steps as { job: Node }[]).map((step) => step.job), 10);
    expect(statements).toEqual(['job_attempt_errors_of_jobs', 'workflow_read', 'workflow_steps_of_jobs']);
  });

  it("one job reads as before, and another owner's jobs stay theirs", async () => {
    const [id] = [...expected.keys()].filter((jobId) => expected.get(jobId)!.attempts.length === 2);
    const { data, statements } = await counted(CUSTOMER, `query($id: ID!) { job(id: $id) { ${FIELDS} } }`, { id });
    expectEveryJob([data['job'] as Node], 1);
    expect(statements).toEqual(['job_attempt_errors_of_jobs', 'jobs_read', 'workflow_steps_of_jobs']);
    const theirs = await client.graphql(OTHER, `{ jobs(first: 100) { nodes { ${FIELDS} } } }`);
    expectEveryJob(theirs.data!['jobs'].nodes as Node[], 2);
    expect((await client.graphql(OTHER, `query($id: ID!) { job(id: $id) { ${FIELDS} } }`, { id })).errors?.map((error) => error.extensions?.['code'])).toEqual([
      'NOT_FOUND',
    ]);
  });

  it('a list of more than 1,000 jobs: a statement per 1,000', async () => {
    const big = await submitWorkflow(BIG, Array.from({ length: 1001 }, (_, i) => `step${i}`));
    const { data, statements } = await counted(BIG, `query($id: ID!) { workflow(id: $id) { steps { job { id workflowStep { workflowId name } } } } }`, { id: big });
    const jobs = (data['workflow'].steps as { job: Omit<Node, 'attempts'> }[]).map((step) => step.job);
    expect(jobs).toHaveLength(1001);
    for (const job of jobs) expect(job.workflowStep, job.id).toEqual(expected.get(job.id)!.workflowStep);
    expect(statements).toEqual(['workflow_read', 'workflow_steps_of_jobs', 'workflow_steps_of_jobs']);
  });
});
