/**
 * A job id is a UUID, and a client may spell it in upper case (Swift's `UUID().uuidString` does).
 * Every path that takes an id must treat both spellings as the same job, including the live
 * ones: the event hub finds watchers by the lower-case `id::text` of a NOTIFY.
 */
import { print } from 'graphql';
import { v7 as uuidv7 } from 'uuid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../src/db/database.ts';
import { uuidv7Floor } from '../src/jobs/ids.ts';
import type { Job } from '../src/jobs/service.ts';
import {
  AddJobDocument,
  CancelJobDocument,
  JobDocument,
  JobsDocument,
  JobUpdatedDocument,
  RetrieveJobDocument,
} from './graphql/generated/graphql.ts';
import { closeTestApp, execute, openTestApp, sseEvents, type TestApp } from './helpers/api.ts';
import type { TestDatabase } from './helpers/database.ts';
import { ANONYMOUS, createWorker } from './helpers/jobs.ts';

let testDb: TestDatabase;
let db: Database;
let api: TestApp;

beforeAll(async () => {
  ({ testDb, db, api } = await openTestApp(import.meta.filename));
});

afterAll(() => closeTestApp({ testDb, api }));

async function addJob(): Promise<string> {
  const added = await execute(api.app, AddJobDocument, { input: { num1: '2', num2: '3' } });
  return added.data!.addJob!.job.id;
}

describe('a job id in upper case', () => {
  it('names the same job in GraphQL queries and mutations', async () => {
    const id = await addJob();
    const upper = id.toUpperCase();
    expect(upper).not.toBe(id);

    const read = await execute(api.app, JobDocument, { id: upper });
    expect(read.data?.job).toMatchObject({ id, status: 'PENDING' });
    const older = await addJob();
    const page = await execute(api.app, JobsDocument, { first: 1, after: older.toUpperCase() });
    expect(page.data?.jobs.edges.map((edge) => edge.node.id)).toEqual([id]);
    const cancelled = await execute(api.app, CancelJobDocument, { id: upper });
    expect(cancelled.data?.cancelJob).toMatchObject({ id, status: 'CANCELLED' });
    const retrieved = await execute(api.app, RetrieveJobDocument, { id: older.toUpperCase() });
    expect(retrieved.data?.retrieveJob).toMatchObject({ id: older, status: 'PENDING' });
  });

  it('names the same job on the REST route', async () => {
    const id = await addJob();
    const response = await api.app.fetch(`http://yoga/api/v1/job/${id.toUpperCase()}`);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ jobId: id, status: 'pending' });
  });

  it('follows the job to the end in a subscription, in the service and over SSE', async () => {
    const id = await addJob();
    const upper = id.toUpperCase();
    const watched = await api.jobs.watchJob(upper, ANONYMOUS);
    const response = await api.app.fetch('http://yoga/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query: print(JobUpdatedDocument), variables: { id: upper } }),
    });
    const sse = sseEvents(response);
    // Both have shown the first state before anything changes.
    expect((await watched.next()).value).toMatchObject({ id, status: 'pending' });
    const first = (await sse.next()).value as { data: { jobUpdated: { status: string } } };
    expect(first.data.jobUpdated.status).toBe('PENDING');

    const worker = createWorker(db, api.hub);
    await worker.start();
    try {
      const statuses: string[] = [];
      for await (const job of watched as AsyncIterable<Job>) {
        statuses.push(job.status);
        if (job.status === 'completed') await api.jobs.retrieveJob(upper, ANONYMOUS);
      }
      expect(statuses).toContain('completed');
      expect(statuses.at(-1)).toBe('retrieved');
      const overSse: string[] = [];
      for await (const event of sse) {
        overSse.push((event as { data: { jobUpdated: { status: string } } }).data.jobUpdated.status);
      }
      // Read only now, it may have had COMPLETED superseded by RETRIEVED (see watchJob).
      expect(overSse.at(-1)).toBe('RETRIEVED');
    } finally {
      await worker.stop();
    }
  });
});

// The pruner's id bound: jobs older than a cutoff are exactly the ids below this.
describe('uuidv7Floor', () => {
  it('bounds ids by creation time exactly', () => {
    const at = new Date('2026-01-02T03:04:05.678Z');
    const floor = uuidv7Floor(at);
    expect(uuidv7({ msecs: at.getTime() - 1 }) < floor).toBe(true);
    expect(uuidv7({ msecs: at.getTime() }) >= floor).toBe(true);
  });
});
