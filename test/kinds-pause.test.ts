/**
 * Pausing and resuming kinds through the API: a paused kind's jobs stay pending while another
 * kind's run, and run once it is resumed; the state and the kinds' limits show in `kinds`,
 * GET /api/v1/kinds and /metrics. Across processes: test/flow-processes.test.ts.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Database } from '../src/db/database.ts';
import { addKind } from '../src/kinds/add.ts';
import { defineKind } from '../src/kinds/define.ts';
import { KindRegistry } from '../src/kinds/registry.ts';
import type { Worker } from '../src/worker/worker.ts';
import { closeTestApp, codes, openTestApp, post, type TestApp } from './helpers/api.ts';
import type { TestDatabase } from './helpers/database.ts';
import { ANONYMOUS, createWorker, statusOf, waitForJob } from './helpers/jobs.ts';

const greet = defineKind({
  name: 'greet',
  input: z.object({ name: z.string() }),
  result: z.object({ greeting: z.string() }),
  handler: ({ name }) => ({ greeting: `hello ${name}` }),
  // Claimed by the limited kinds' claim: pausing holds there too.
  options: { concurrency: 4 },
});

let testDb: TestDatabase;
let db: Database;
let api: TestApp;
let worker: Worker;

beforeAll(async () => {
  const kinds = new KindRegistry([addKind({ maxDigits: 100 }), greet]);
  ({ testDb, db, api } = await openTestApp(import.meta.filename, { service: { kinds } }));
  // A slow poll: a resumed kind's jobs must start on the resume's wake-up, not on the poll.
  worker = createWorker(db, api.hub, { kinds, pollIntervalMs: 60_000 });
  await worker.start();
});

afterAll(async () => {
  await worker?.stop();
  if (api) await closeTestApp({ testDb, api });
});

async function rest(method: string, path: string) {
  const response = await api.app.fetch(`http://yoga${path}`, { method });
  return { status: response.status, body: await response.json() };
}

async function graphql(query: string, variables?: Record<string, unknown>) {
  return (await post(api.app, { query, variables })).body;
}

async function statuses(ids: readonly string[]): Promise<string[]> {
  return Promise.all(ids.map(async (id) => (await api.jobs.getJob(id, ANONYMOUS))!.status));
}

async function scrape(): Promise<string> {
  return (await api.app.fetch('http://yoga/metrics')).text();
}

describe('pausing a kind', () => {
  it('keeps its jobs pending while other kinds run, and runs them once resumed', async () => {
    const paused = await rest('POST', '/api/v1/kinds/greet/pause');
    expect(paused).toMatchObject({ status: 200, body: { name: 'greet', paused: true } });
    expect(await scrape()).toContain('job_kind_paused{kind="greet"} 1');

    const { jobs } = api;
    const held = await jobs.submitJobs([0, 1, 2].map((n) => ({ kind: 'greet', input: { name: `n${n}` } })), ANONYMOUS);
    const { job: sum } = await jobs.addJob({ num1: '1', num2: '2' }, ANONYMOUS);
    await waitForJob(jobs, api.hub, sum.id, statusOf('completed'));
    // The add job ran after the greet jobs were submitted, and the worker has been woken by them.
    await sleep(200);
    const ids = held.map(({ job }) => job.id);
    expect(await statuses(ids)).toEqual(['pending', 'pending', 'pending']);

    const { body } = await rest('GET', '/api/v1/kinds');
    expect(body.kinds.map(({ name, paused, concurrency }: Record<string, unknown>) => ({ name, paused, concurrency }))).toEqual([
      { name: 'add', paused: false, concurrency: null },
      { name: 'greet', paused: true, concurrency: 4 },
    ]);

    expect(await rest('POST', '/api/v1/kinds/greet/resume')).toMatchObject({ status: 200, body: { paused: false } });
    for (const id of ids) await waitForJob(jobs, api.hub, id, statusOf('completed'));
    expect(await scrape()).toContain('job_kind_paused{kind="greet"} 0');
  });

  it('over GraphQL: pauseKind, kinds, resumeKind; pauseAllKinds holds every kind until resumeAllKinds', async () => {
    const paused = await graphql('mutation($kind: String!) { pauseKind(kind: $kind) { name paused } }', { kind: 'add' });
    expect(paused).toEqual({ data: { pauseKind: { name: 'add', paused: true } } });
    expect(await graphql('{ kinds { name paused concurrency } }')).toEqual({
      data: { kinds: [{ name: 'add', paused: true, concurrency: null }, { name: 'greet', paused: false, concurrency: 4 }] },
    });
    await graphql('mutation { resumeKind(kind: "add") { paused } }');

    const all = await graphql('mutation { pauseAllKinds { name paused } }');
    expect(all).toEqual({ data: { pauseAllKinds: [{ name: 'add', paused: true }, { name: 'greet', paused: true }] } });
    // A kind's own resume does not lift the pause of every kind.
    expect(await graphql('mutation { resumeKind(kind: "add") { paused } }')).toEqual({ data: { resumeKind: { paused: true } } });
    const { job } = await api.jobs.addJob({ num1: '2', num2: '2' }, ANONYMOUS);
    await sleep(300);
    expect(await statuses([job.id])).toEqual(['pending']);
    const resumed = await graphql('mutation { resumeAllKinds { paused } }');
    expect(resumed).toEqual({ data: { resumeAllKinds: [{ paused: false }, { paused: false }] } });
    await waitForJob(api.jobs, api.hub, job.id, statusOf('completed'));
  });

  it('refuses a kind the service does not run: 404 over REST, NOT_FOUND over GraphQL', async () => {
    for (const action of ['pause', 'resume']) {
      const answer = await rest('POST', `/api/v1/kinds/nope/${action}`);
      expect(answer).toEqual({
        status: 404,
        body: { error: { code: 'NOT_FOUND', message: 'no kind named "nope"; this service runs add, greet', field: 'kind' } },
      });
    }
    const refused = await graphql('mutation { pauseKind(kind: "nope") { paused } }');
    expect(codes(refused)).toEqual(['NOT_FOUND']);
    expect(refused.data).toEqual({ pauseKind: null });
    expect((await rest('GET', '/api/v1/kinds/greet/pause')).status).toBe(405);
    expect((await rest('GET', '/api/v1/kinds')).body.kinds.some((kind: { paused: boolean }) => kind.paused)).toBe(false);
  });
});
