/**
 * Workflows over REST and GraphQL (issue 26): a graph submitted whole, refused whole (a cycle, an
 * unknown name, another key's job), run by a worker in this process with each step handed its
 * parents' results, and the failure policies: a failed step cancels exactly its dependents, or
 * they run and see the failure. Cancelling a workflow, or a waiting job, cancels what has not
 * started. workflowUpdated follows it to the end. An operator reads any owner's workflow; a job names
 * the workflow it is a step of.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Database } from '../src/db/database.ts';
import { defineKind, PermanentJobError } from '../src/kinds/define.ts';
import { KindRegistry } from '../src/kinds/registry.ts';
import { ThreadPool } from '../src/worker/thread-pool.ts';
import type { Worker } from '../src/worker/worker.ts';
import { closeTestApp, openTestApp, sseEvents, type TestApp } from './helpers/api.ts';
import { type TestDatabase, testLogger } from './helpers/database.ts';
import { createWorker } from './helpers/jobs.ts';
import { pruneJobsStatement } from '../src/jobs/sql/prune.ts';

const node = defineKind({
  name: 'node',
  input: z.object({ value: z.number(), fail: z.boolean().default(false) }),
  result: z.object({ value: z.number(), parents: z.record(z.string(), z.unknown()) }),
  handler: async ({ value, fail }, context) => {
    if (fail) throw new PermanentJobError(`made to fail (${value})`);
    const parents = await context.parents();
    const seen = Object.fromEntries(Object.entries(parents).map(([name, p]) => [name, { status: p.status, result: p.result, error: p.error }]));
    return { value, parents: seen };
  },
});
// Its handler runs in a worker thread, which asks the main thread for its parents.
const threadNode = defineKind({
  name: 'thread-node',
  input: z.object({}),
  result: z.unknown(),
  handler: { module: new URL('./fixtures/thread-handlers.ts', import.meta.url), export: 'parentsSeen' },
});
// One job at a time per concurrency key: its claim finds jobs by the order they drew at insert.
const ledger = defineKind({
  name: 'ledger',
  input: z.object({ cents: z.number() }),
  result: z.object({ cents: z.number(), after: z.array(z.string()) }),
  options: { concurrencyPerKey: 1 },
  handler: async ({ cents }, context) => ({ cents, after: Object.keys(await context.parents()).sort() }),
});
const kinds = new KindRegistry([node, threadNode, ledger]);
const KEY = 'workflows-test-key-one';
const OTHER_KEY = 'workflows-test-key-two';
const OPERATOR_KEY = 'workflows-test-operator-key';

let testDb: TestDatabase;
let db: Database;
let api: TestApp;
let worker: Worker | undefined;
let threads: ThreadPool | undefined;

beforeAll(async () => {
  ({ testDb, db, api } = await openTestApp(import.meta.filename, { service: { kinds }, apiKeys: [KEY, OTHER_KEY], adminKeys: [OPERATOR_KEY] }));
});

afterAll(async () => {
  await worker?.stop();
  await threads?.stop();
  await closeTestApp({ testDb, api });
});

async function startWorker(): Promise<void> {
  if (worker) return;
  threads = new ThreadPool({ size: 1, logger: testLogger() });
  await threads.start();
  worker = createWorker(db, api.hub, { kinds, pollIntervalMs: 100, threads });
  await worker.start();
}

async function rest(method: string, path: string, body?: unknown, key = KEY) {
  const response = await api.app.fetch(`http://yoga${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, headers: response.headers, body: (await response.json()) as Record<string, any> };
}

async function graphql(query: string, variables?: Record<string, unknown>, key = KEY) {
  const response = await api.app.fetch('http://yoga/graphql', {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()) as { data?: Record<string, any>; errors?: Array<{ message: string; extensions?: Record<string, unknown> }> };
}

async function rowCounts(): Promise<{ jobs: number; workflows: number; edges: number }> {
  const [row] = await db.query<{ jobs: number; workflows: number; edges: number }>({
    name: 'test_wf_api_counts',
    text: `SELECT (SELECT count(*)::int FROM job) AS jobs, (SELECT count(*)::int FROM workflow) AS workflows,
                  (SELECT count(*)::int FROM job_dependency) AS edges`,
  });
  return row!;
}

/** Reads the workflow over REST until `done` holds; the deadline only turns a hang into a failure. */
async function untilWorkflow(id: string, done: (body: Record<string, any>) => boolean): Promise<Record<string, any>> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const { body } = await rest('GET', `/api/v1/workflows/${id}`);
    if (done(body)) return body;
    if (Date.now() > deadline) throw new Error(`workflow never got there: ${JSON.stringify(body)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const statusByName = (body: Record<string, any>) =>
  Object.fromEntries((body.steps as Array<{ name: string; status: string }>).map((step) => [step.name, step.status]));

const DIAMOND = {
  steps: [
    { name: 'a', kind: 'node', input: { value: 1 } },
    { name: 'b', kind: 'node', input: { value: 2 }, dependsOn: ['a'] },
    { name: 'c', kind: 'node', input: { value: 3 }, dependsOn: ['a'] },
    { name: 'd', kind: 'node', input: { value: 4 }, dependsOn: ['b', 'c'] },
  ],
};

describe('refused before anything is written', () => {
  const cases: Array<[string, unknown, number, string, string]> = [
    [
      'a cycle',
      { steps: [{ name: 'a', kind: 'node', input: { value: 1 }, dependsOn: ['c'] }, { name: 'b', kind: 'node', input: { value: 1 }, dependsOn: ['a'] }, { name: 'c', kind: 'node', input: { value: 1 }, dependsOn: ['b'] }] },
      400,
      'BAD_USER_INPUT',
      'steps.0.dependsOn',
    ],
    ['a step that depends on itself', { steps: [{ name: 'a', kind: 'node', input: { value: 1 }, dependsOn: ['a'] }] }, 400, 'BAD_USER_INPUT', 'steps.0.dependsOn'],
    ['an unknown name', { steps: [{ name: 'a', kind: 'node', input: { value: 1 } }, { name: 'b', kind: 'node', input: { value: 1 }, dependsOn: ['z'] }] }, 400, 'BAD_USER_INPUT', 'steps.1.dependsOn.0'],
    ['two steps of one name', { steps: [{ name: 'a', kind: 'node', input: { value: 1 } }, { name: 'a', kind: 'node', input: { value: 1 } }] }, 400, 'BAD_USER_INPUT', 'steps.1.name'],
    ['input its kind refuses', { steps: [{ name: 'a', kind: 'node', input: { value: 'x' } }] }, 400, 'BAD_USER_INPUT', 'steps.0.input.value'],
    ['no steps', { steps: [] }, 400, 'BAD_USER_INPUT', 'steps'],
  ];

  it.each(cases)('REST: %s', async (_name, body, status, code, field) => {
    const before = await rowCounts();
    const answer = await rest('POST', '/api/v1/workflows', body);
    expect({ status: answer.status, code: answer.body.error?.code, field: answer.body.error?.field }).toEqual({ status, code, field });
    expect(await rowCounts()).toEqual(before);
  });

  it("REST and GraphQL: another key's job in dependsOnJobs is not found, and nothing is written", async () => {
    const other = await rest('POST', '/api/v1/jobs', { kind: 'node', input: { value: 1 } }, OTHER_KEY);
    expect(other.status).toBe(202);
    const before = await rowCounts();
    const body = { steps: [{ name: 'a', kind: 'node', input: { value: 1 }, dependsOnJobs: [other.body.jobId] }] };
    const answer = await rest('POST', '/api/v1/workflows', body);
    expect({ status: answer.status, code: answer.body.error.code, field: answer.body.error.field }).toEqual({
      status: 404,
      code: 'NOT_FOUND',
      field: 'steps.0.dependsOnJobs.0',
    });
    const viaGraphql = await graphql(`mutation($steps: [WorkflowStepInput!]!) { submitWorkflow(steps: $steps) { id } }`, body);
    expect(viaGraphql.errors?.map((e) => e.extensions?.code)).toEqual(['NOT_FOUND']);
    expect(await rowCounts()).toEqual(before);
  });

  it('GraphQL: a cycle is BAD_USER_INPUT naming the field', async () => {
    const answer = await graphql(`mutation($steps: [WorkflowStepInput!]!) { submitWorkflow(steps: $steps) { id } }`, {
      steps: [
        { name: 'x', kind: 'node', input: { value: 1 }, dependsOn: ['y'] },
        { name: 'y', kind: 'node', input: { value: 1 }, dependsOn: ['x'] },
      ],
    });
    expect(answer.data?.submitWorkflow).toBeNull();
    expect(answer.errors?.map((e) => [e.extensions?.code, e.extensions?.field])).toEqual([['BAD_USER_INPUT', 'steps.0.dependsOn']]);
  });

  it("answers another key's workflow as not found", async () => {
    const made = await rest('POST', '/api/v1/workflows', DIAMOND);
    const read = await rest('GET', `/api/v1/workflows/${made.body.workflowId}`, undefined, OTHER_KEY);
    expect({ status: read.status, code: read.body.error.code }).toEqual({ status: 404, code: 'NOT_FOUND' });
    expect((await rest('POST', `/api/v1/workflows/${made.body.workflowId}/cancel`)).status).toBe(200);
  });

});

describe('who reads a workflow, and from where', () => {
  it("an operator's key reads any owner's workflow (the console), but cancels only its own", async () => {
    const made = await rest('POST', '/api/v1/workflows', DIAMOND);
    const id = made.body.workflowId;
    const read = await graphql(`query($id: ID!) { workflow(id: $id) { id steps { name } } }`, { id }, OPERATOR_KEY);
    expect(read.data?.workflow.steps.map((step: { name: string }) => step.name)).toEqual(['a', 'b', 'c', 'd']);
    expect((await rest('GET', `/api/v1/workflows/${id}`, undefined, OPERATOR_KEY)).status).toBe(200);
    const cancel = await rest('POST', `/api/v1/workflows/${id}/cancel`, undefined, OPERATOR_KEY);
    expect({ status: cancel.status, code: cancel.body.error?.code }).toEqual({ status: 404, code: 'NOT_FOUND' });
    expect(statusByName((await rest('GET', `/api/v1/workflows/${id}`)).body)).toEqual({ a: 'pending', b: 'waiting', c: 'waiting', d: 'waiting' });
    await rest('POST', `/api/v1/workflows/${id}/cancel`);
  });

  it('lists the steps in the order they were submitted, whatever their names, over REST and GraphQL', async () => {
    const names = ['zeta', 'alpha', 'mu', 'beta', 'omega', 'delta', 'kappa', 'gamma'];
    const steps = names.map((name, index) => ({
      name,
      kind: 'node',
      input: { value: index },
      dependsOn: index === 0 ? [] : [names[0]],
      runAt: new Date(Date.now() + 3600_000).toISOString(),
    }));
    const made = await rest('POST', '/api/v1/workflows', { steps });
    expect(made.status).toBe(201);
    const stepNames = (body: Record<string, unknown>) => (body['steps'] as { name: string }[]).map((step) => step.name);
    expect(stepNames(made.body)).toEqual(names);
    expect(stepNames((await rest('GET', `/api/v1/workflows/${made.body.workflowId}`)).body)).toEqual(names);
    const read = await graphql(`query($id: ID!) { workflow(id: $id) { steps { name } } }`, { id: made.body.workflowId });
    expect(stepNames(read.data!.workflow)).toEqual(names);
    await rest('POST', `/api/v1/workflows/${made.body.workflowId}/cancel`);
  });

  it('a job names the workflow it is a step of (workflowStep), and a job outside any is null', async () => {
    const made = await rest('POST', '/api/v1/workflows', DIAMOND);
    const step = made.body.steps.find((s: { name: string }) => s.name === 'c');
    const alone = await rest('POST', '/api/v1/jobs', { kind: 'node', input: { value: 9 }, runAt: new Date(Date.now() + 3600_000).toISOString() });
    const query = `query($id: ID!) { job(id: $id) { workflowStep { workflowId name } } }`;
    expect((await graphql(query, { id: step.jobId })).data?.job.workflowStep).toEqual({ workflowId: made.body.workflowId, name: 'c' });
    expect((await graphql(query, { id: alone.body.jobId })).data?.job.workflowStep).toBeNull();
    await rest('POST', `/api/v1/workflows/${made.body.workflowId}/cancel`);
  });
});

describe('a workflow that runs', () => {
  it('REST: a diamond waits, then runs each step after its parents, and the last sees both results', async () => {
    const made = await rest('POST', '/api/v1/workflows', DIAMOND);
    expect(made.status).toBe(201);
    expect(made.headers.get('location')).toBe(`/api/v1/workflows/${made.body.workflowId}`);
    expect(statusByName(made.body)).toEqual({ a: 'pending', b: 'waiting', c: 'waiting', d: 'waiting' });
    expect(made.body.steps.find((step: { name: string }) => step.name === 'd').dependsOn).toEqual(['b', 'c']);
    await startWorker();
    const done = await untilWorkflow(made.body.workflowId, (body) => body.finished);
    expect(statusByName(done)).toEqual({ a: 'completed', b: 'completed', c: 'completed', d: 'completed' });
    const last = done.steps.find((step: { name: string }) => step.name === 'd');
    expect(last.result).toEqual({
      value: 4,
      parents: {
        b: { status: 'completed', error: null, result: { value: 2, parents: { a: { status: 'completed', error: null, result: { value: 1, parents: {} } } } } },
        c: { status: 'completed', error: null, result: { value: 3, parents: { a: { status: 'completed', error: null, result: { value: 1, parents: {} } } } } },
      },
    });
  });

  it('GraphQL: submitWorkflow, then workflow(id) with steps, states and dependsOn', async () => {
    const made = await graphql(
      `mutation($steps: [WorkflowStepInput!]!) { submitWorkflow(steps: $steps) { id steps { name jobId kind status dependsOn } } }`,
      DIAMOND,
    );
    expect(made.errors).toBeUndefined();
    const id = made.data!.submitWorkflow.id;
    await startWorker();
    await untilWorkflow(id, (body) => body.finished);
    const read = await graphql(`query($id: ID!) { workflow(id: $id) { id finished onParentFailure steps { name kind status dependsOn job { result } } } }`, { id });
    expect(read.data!.workflow).toMatchObject({ id, finished: true, onParentFailure: 'CANCEL' });
    expect(read.data!.workflow.steps.map((s: { name: string; status: string; dependsOn: string[] }) => [s.name, s.status, s.dependsOn])).toEqual([
      ['a', 'COMPLETED', []],
      ['b', 'COMPLETED', ['a']],
      ['c', 'COMPLETED', ['a']],
      ['d', 'COMPLETED', ['b', 'c']],
    ]);
    const unknown = await graphql(`query { workflow(id: "01a2f7a0-0000-7000-8000-000000000000") { id } }`);
    expect(unknown.errors?.map((e) => e.extensions?.code)).toEqual(['NOT_FOUND']);
  });

  it('workflowUpdated over SSE: the workflow now, then after changes, ending once every step finished', async () => {
    const made = await rest('POST', '/api/v1/workflows', DIAMOND);
    const response = await api.app.fetch('http://yoga/graphql', {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({
        query: 'subscription($id: ID!) { workflowUpdated(id: $id) { id finished steps { name status } } }',
        variables: { id: made.body.workflowId },
      }),
    });
    const events: Array<{ data: { workflowUpdated: { finished: boolean } } }> = [];
    await startWorker();
    for await (const event of sseEvents(response)) events.push(event as never);
    expect(events.length).toBeGreaterThanOrEqual(2);
    expect(events.at(-1)!.data.workflowUpdated.finished).toBe(true);
    expect(events.slice(0, -1).every((event) => !event.data.workflowUpdated.finished)).toBe(true);
  });

  it("a step whose handler runs in a worker thread sees its parents' results too", async () => {
    const made = await rest('POST', '/api/v1/workflows', {
      steps: [
        { name: 'a', kind: 'node', input: { value: 1 } },
        { name: 'b', kind: 'node', input: { value: 2 } },
        { name: 'join', kind: 'thread-node', input: {}, dependsOn: ['a', 'b'] },
      ],
    });
    await startWorker();
    const done = await untilWorkflow(made.body.workflowId, (body) => body.finished);
    const join = done.steps.find((step: { name: string }) => step.name === 'join');
    expect(join.status).toBe('completed');
    const seen = Object.fromEntries(Object.entries(join.result.first).map(([name, parent]: [string, any]) => [name, [parent.status, parent.result.value]]));
    expect(seen).toEqual({ a: ['completed', 1], b: ['completed', 2] });
    expect(join.result.second).toEqual(join.result.first);
  });

  it('a step of a kind limited per concurrency key waits, then runs, and its dependents after it', async () => {
    const made = await rest('POST', '/api/v1/workflows', {
      steps: [
        { name: 'first', kind: 'ledger', input: { cents: 1 } },
        { name: 'a', kind: 'node', input: { value: 1 } },
        { name: 'book', kind: 'ledger', input: { cents: 2 }, dependsOn: ['a', 'first'] },
        { name: 'after', kind: 'node', input: { value: 3 }, dependsOn: ['book'] },
      ],
    });
    expect(made.status).toBe(201);
    const orders = await db.prisma.job.findMany({ where: { kind: 'ledger', id: { in: made.body.steps.map((step: { jobId: string }) => step.jobId) } } });
    expect(orders.map((job) => job.concurrencyOrder)).not.toContain(null);
    await startWorker();
    const done = await untilWorkflow(made.body.workflowId, (body) => body.finished);
    const step = (name: string) => done.steps.find((s: { name: string }) => s.name === name);
    expect(done.steps.map((s: { status: string }) => s.status)).toEqual(['completed', 'completed', 'completed', 'completed']);
    expect(step('book').result).toEqual({ cents: 2, after: ['a', 'first'] });
    expect(step('after').result.parents.book).toMatchObject({ status: 'completed', result: { cents: 2, after: ['a', 'first'] } });
  });

  it('depends on an existing job of the caller: waits for it, or starts at once when it has completed', async () => {
    const parent = await rest('POST', '/api/v1/jobs', { kind: 'node', input: { value: 10 }, runAt: new Date(Date.now() + 60_000).toISOString() });
    const made = await rest('POST', '/api/v1/workflows', {
      steps: [{ name: 'after', kind: 'node', input: { value: 11 }, dependsOnJobs: [parent.body.jobId] }],
    });
    expect(statusByName(made.body)).toEqual({ after: 'waiting' });
    expect(made.body.steps[0].dependsOn).toEqual([parent.body.jobId]);
    await db.query({ name: 'test_wf_due_now', text: `UPDATE job SET run_at = now() WHERE id = $1` }, [parent.body.jobId]);
    await startWorker();
    const done = await untilWorkflow(made.body.workflowId, (body) => body.finished);
    expect(done.steps[0].result.parents[parent.body.jobId]).toMatchObject({ status: 'completed', result: { value: 10 } });
    const again = await rest('POST', '/api/v1/workflows', {
      steps: [{ name: 'late', kind: 'node', input: { value: 12 }, dependsOnJobs: [parent.body.jobId] }],
    });
    // Due at once: pending, unless the running worker has taken it already.
    expect(['pending', 'wip', 'completed']).toContain(statusByName(again.body).late);
  });
});

describe('a single job with dependsOn', () => {
  it('REST and GraphQL: waits for the jobs it names, sees their results by id; refuses another key\'s job', async () => {
    const parent = await rest('POST', '/api/v1/jobs', { kind: 'node', input: { value: 7 }, runAt: new Date(Date.now() + 60_000).toISOString() });
    const parentId = parent.body.jobId as string;
    const child = await rest('POST', '/api/v1/jobs', { kind: 'node', input: { value: 8 }, dependsOn: [parentId] });
    expect({ status: child.status, jobStatus: child.body.status }).toEqual({ status: 202, jobStatus: 'waiting' });
    const viaGraphql = await graphql(`mutation($input: SubmitJobInput!) { submitJob(input: $input) { job { id status } } }`, {
      input: { kind: 'node', input: { value: 9 }, dependsOn: [parentId] },
    });
    expect(viaGraphql.data!.submitJob.job.status).toBe('WAITING');

    const foreign = await rest('POST', '/api/v1/jobs', { kind: 'node', input: { value: 8 }, dependsOn: [parentId] }, OTHER_KEY);
    expect({ status: foreign.status, code: foreign.body.error.code, field: foreign.body.error.field }).toEqual({ status: 404, code: 'NOT_FOUND', field: 'dependsOn.0' });
    const keyed = await rest('POST', '/api/v1/jobs', { kind: 'node', input: { value: 8 }, dependsOn: [parentId], idempotencyKey: 'k' });
    expect({ status: keyed.status, field: keyed.body.error.field }).toEqual({ status: 400, field: 'dependsOn' });

    await db.query({ name: 'test_wf_due_now', text: `UPDATE job SET run_at = now() WHERE id = $1` }, [parentId]);
    await startWorker();
    const deadline = Date.now() + 15_000;
    let read = await rest('GET', `/api/v1/jobs/${child.body.jobId}`);
    while (read.body.status !== 'completed' && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      read = await rest('GET', `/api/v1/jobs/${child.body.jobId}`);
    }
    expect(read.body.result).toEqual({ value: 8, parents: { [parentId]: { status: 'completed', error: null, result: { value: 7, parents: {} } } } });
  });
});

describe('a batch (submitJobs) with dependsOn', () => {
  it("waits for the caller's jobs it names, all or none; refuses another key's job, a key, a bad input, each naming its field", async () => {
    const parent = await rest('POST', '/api/v1/jobs', { kind: 'node', input: { value: 20 }, runAt: new Date(Date.now() + 60_000).toISOString() });
    const parentId = parent.body.jobId as string;
    const mutation = `mutation($inputs: [SubmitJobInput!]!) { submitJobs(inputs: $inputs) { job { id status } created } }`;
    const refusal = async (inputs: unknown[], key = KEY) =>
      (await graphql(mutation, { inputs }, key)).errors?.map((error) => [error.extensions?.code, error.extensions?.field]);
    const before = await rowCounts();
    const waiting = { kind: 'node', input: { value: 2 }, dependsOn: [parentId] };
    expect(await refusal([{ kind: 'node', input: { value: 1 } }, waiting], OTHER_KEY)).toEqual([['NOT_FOUND', 'inputs.1.dependsOn.0']]);
    expect(await refusal([{ kind: 'node', input: { value: 1 }, uniqueKey: 'u' }, waiting])).toEqual([['BAD_USER_INPUT', 'inputs.0.uniqueKey']]);
    expect(await refusal([waiting, { ...waiting, input: { value: 'two' } }])).toEqual([['BAD_USER_INPUT', 'inputs.1.input.value']]);
    expect(await refusal([waiting, { ...waiting, dependsOn: ['not-an-id'] }])).toEqual([['BAD_USER_INPUT', 'inputs.1.dependsOn.0']]);
    expect(await rowCounts()).toEqual(before);

    const made = await graphql(mutation, { inputs: [{ ...waiting, input: { value: 21 } }, { kind: 'node', input: { value: 22 }, runAt: new Date(Date.now() + 60_000).toISOString() }, { ...waiting, input: { value: 23 } }] });
    expect(made.data!.submitJobs.map((answer: { job: { status: string }; created: boolean }) => [answer.job.status, answer.created])).toEqual([
      ['WAITING', true],
      ['PENDING', true],
      ['WAITING', true],
    ]);
    await db.query({ name: 'test_wf_due_now', text: `UPDATE job SET run_at = now() WHERE id = $1` }, [parentId]);
    await startWorker();
    for (const index of [0, 2]) {
      const id = made.data!.submitJobs[index].job.id;
      const deadline = Date.now() + 15_000;
      let read = await rest('GET', `/api/v1/jobs/${id}`);
      while (read.body.status !== 'completed' && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        read = await rest('GET', `/api/v1/jobs/${id}`);
      }
      expect(read.body.result).toEqual({ value: 21 + index, parents: { [parentId]: { status: 'completed', error: null, result: { value: 20, parents: {} } } } });
    }
  });
});

describe('failure policies and cancelling', () => {
  const graph = (policy?: 'cancel' | 'continue', step?: 'cancel' | 'continue') => ({
    ...(policy ? { onParentFailure: policy } : {}),
    steps: [
      { name: 'root', kind: 'node', input: { value: 0 } },
      { name: 'bad', kind: 'node', input: { value: 1, fail: true }, dependsOn: ['root'], maxAttempts: 1 },
      { name: 'child', kind: 'node', input: { value: 2 }, dependsOn: ['bad'], ...(step ? { onParentFailure: step } : {}) },
      { name: 'grandchild', kind: 'node', input: { value: 3 }, dependsOn: ['child', 'side'] },
      { name: 'side', kind: 'node', input: { value: 4 }, dependsOn: ['root'] },
    ],
  });

  it('cancel (the default): exactly the descendants of the failed step are cancelled, the rest completes', async () => {
    const made = await rest('POST', '/api/v1/workflows', graph());
    await startWorker();
    const done = await untilWorkflow(made.body.workflowId, (body) => body.finished);
    expect(statusByName(done)).toEqual({ root: 'completed', bad: 'failed', child: 'cancelled', grandchild: 'cancelled', side: 'completed' });
  });

  it('continue, for one dependency: the dependent runs and sees the failure; its own dependents run', async () => {
    const made = await rest('POST', '/api/v1/workflows', graph(undefined, 'continue'));
    await startWorker();
    const done = await untilWorkflow(made.body.workflowId, (body) => body.finished);
    expect(statusByName(done)).toEqual({ root: 'completed', bad: 'failed', child: 'completed', grandchild: 'completed', side: 'completed' });
    const child = done.steps.find((step: { name: string }) => step.name === 'child');
    expect(child.result.parents.bad).toEqual({ status: 'failed', result: null, error: 'made to fail (1)' });
  });

  it('a step failed by the stale rule on its last attempt (its worker died) cancels its dependents too', async () => {
    const made = await rest('POST', '/api/v1/workflows', {
      steps: [
        { name: 'lost', kind: 'node', input: { value: 1 }, runAt: new Date(Date.now() + 60_000).toISOString(), maxAttempts: 1 },
        { name: 'after', kind: 'node', input: { value: 2 }, dependsOn: ['lost'] },
      ],
    });
    const lost = made.body.steps.find((step: { name: string }) => step.name === 'lost');
    // As a worker that claimed it and died an hour ago would have left it.
    await db.query(
      { name: 'test_wf_dead_worker', text: `UPDATE job SET status = 'wip', attempt = 1, locked_by = 'dead', last_updated = now() - interval '1 hour' WHERE id = $1` },
      [lost.jobId],
    );
    await startWorker();
    const done = await untilWorkflow(made.body.workflowId, (body) => body.finished);
    expect(statusByName(done)).toEqual({ lost: 'failed', after: 'cancelled' });
  });

  it('cancelling a workflow cancels what has not started; cancelling a waiting job cancels its dependents', async () => {
    const made = await rest('POST', '/api/v1/workflows', {
      steps: [
        { name: 'later', kind: 'node', input: { value: 1 }, runAt: new Date(Date.now() + 60_000).toISOString() },
        { name: 'next', kind: 'node', input: { value: 2 }, dependsOn: ['later'] },
      ],
    });
    const cancelled = await rest('POST', `/api/v1/workflows/${made.body.workflowId}/cancel`);
    expect(statusByName(cancelled.body)).toEqual({ later: 'cancelled', next: 'cancelled' });
    expect(cancelled.body.finished).toBe(true);

    const second = await rest('POST', '/api/v1/workflows', {
      steps: [
        { name: 'later', kind: 'node', input: { value: 1 }, runAt: new Date(Date.now() + 60_000).toISOString() },
        { name: 'next', kind: 'node', input: { value: 2 }, dependsOn: ['later'] },
        { name: 'last', kind: 'node', input: { value: 3 }, dependsOn: ['next'] },
      ],
    });
    const next = second.body.steps.find((step: { name: string }) => step.name === 'next');
    expect((await rest('POST', `/api/v1/jobs/${next.jobId}/cancel`)).body.status).toBe('cancelled');
    const read = await rest('GET', `/api/v1/workflows/${second.body.workflowId}`);
    expect(statusByName(read.body)).toEqual({ later: 'pending', next: 'cancelled', last: 'cancelled' });
  });
});

// Last: it prunes every finished job of this file's database.
describe('retention', () => {
  it('a pruned step takes its edges and name with it, and the workflow goes with its last step', async () => {
    const made = await rest('POST', '/api/v1/workflows', DIAMOND);
    await startWorker();
    await untilWorkflow(made.body.workflowId, (body) => body.finished);
    const kept = await rest('POST', '/api/v1/workflows', {
      steps: [{ name: 'later', kind: 'node', input: { value: 1 }, runAt: new Date(Date.now() + 60_000).toISOString() }],
    });
    while ((await pruneJobsStatement(db, ['completed', 'retrieved', 'failed', 'cancelled'], new Date(Date.now() + 60_000), 1000)) > 0);
    expect((await rest('GET', `/api/v1/workflows/${made.body.workflowId}`)).status).toBe(404);
    expect((await rest('GET', `/api/v1/workflows/${kept.body.workflowId}`)).status).toBe(200);
    const [left] = await db.query<{ edges: number; steps: number; workflows: number }>({
      name: 'test_wf_pruned',
      text: `SELECT (SELECT count(*)::int FROM job_dependency d WHERE NOT EXISTS (SELECT 1 FROM job WHERE job.id = d.child_id)) AS edges,
                    (SELECT count(*)::int FROM workflow_step s WHERE NOT EXISTS (SELECT 1 FROM job WHERE job.id = s.job_id)) AS steps,
                    (SELECT count(*)::int FROM workflow w WHERE NOT EXISTS (SELECT 1 FROM workflow_step s WHERE s.workflow_id = w.id)) AS workflows`,
    });
    expect(left).toEqual({ edges: 0, steps: 0, workflows: 0 });
  });
});
