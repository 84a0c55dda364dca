/**
 * Who may do what in the operator console (issue 20, item 5), over GraphQL and REST: a customer's
 * key sees and acts on its own jobs one at a time; an operator's key (ADMIN_API_KEYS) sees every
 * owner's, filters by owner, pauses kinds, acts in bulk and manages every schedule. And what the
 * console's actions do: a retry is a new attempt of the same job, a bulk action changes what its
 * count said.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Database } from '../src/db/database.ts';
import { ConfigError, loadConfig } from '../src/config.ts';
import { defineKind } from '../src/kinds/define.ts';
import { KindRegistry } from '../src/kinds/registry.ts';
import { closeTestApp, type KeyedGraphQLAnswer, keyedClient, openTestApp, type TestApp } from './helpers/api.ts';
import type { TestDatabase } from './helpers/database.ts';

const note = defineKind({
  name: 'note',
  input: z.object({ text: z.string(), customer: z.object({ id: z.number() }).optional() }),
  result: z.null(),
  handler: () => null,
});
const kinds = new KindRegistry([note]);
const CUSTOMER = 'console-access-customer-a';
const OTHER = 'console-access-customer-b';
const OPERATOR = 'console-access-operator-key';

let testDb: TestDatabase;
let db: Database;
let api: TestApp;
let client: ReturnType<typeof keyedClient>;

beforeAll(async () => {
  ({ testDb, db, api } = await openTestApp(import.meta.filename, {
    service: { kinds },
    apiKeys: [CUSTOMER, OTHER],
    adminKeys: [OPERATOR],
  }));
  client = keyedClient(api.app);
});

afterAll(() => closeTestApp({ testDb, api }));

const codes = (answer: KeyedGraphQLAnswer) => (answer.errors ?? []).map((error) => error.extensions?.['code']);

/** A job of `key`'s, not yet due (no worker runs in this file), optionally failed at once. */
async function submit(key: string, text: string, { failed = false, customer }: { failed?: boolean; customer?: number } = {}) {
  const answer = await client.rest('POST', '/api/v1/jobs', key, {
    kind: 'note',
    input: { text, ...(customer === undefined ? {} : { customer: { id: customer } }) },
    runAt: new Date(Date.now() + 3_600_000).toISOString(),
    maxAttempts: 2,
  });
  expect(answer.status).toBe(202);
  const id = answer.body['jobId'] as string;
  if (failed) {
    await db.query(
      { name: 'console_access_fail', text: `UPDATE job SET status = 'failed', attempt = 2, last_error = 'boom', completed_on = now() WHERE id = $1` },
      [id],
    );
  }
  return id;
}

const SEARCH = `query($filter: JobFilter, $first: Int, $after: String, $order: JobOrder) {
  searchJobs(filter: $filter, first: $first, after: $after, order: $order) { nodes { id owner status attempt maxAttempts lastError } pageInfo { hasNextPage endCursor } }
}`;

describe('seeing jobs', () => {
  it("a customer finds its own jobs only, and may not filter by owner; an operator finds every owner's and filters by owner", async () => {
    const mine = await submit(CUSTOMER, 'seeing: mine');
    const theirs = await submit(OTHER, 'seeing: theirs');
    const filter = { kind: 'note', match: { path: 'text', value: 'seeing: mine' } };
    const asCustomer = await client.graphql(CUSTOMER, SEARCH, { filter: { kind: 'note' } });
    const customerIds = asCustomer.data!['searchJobs'].nodes.map((job: { id: string }) => job.id);
    expect(customerIds).toContain(mine);
    expect(customerIds).not.toContain(theirs);
    const asOperator = await client.graphql(OPERATOR, SEARCH, { filter: { kind: 'note' } });
    const operatorIds = asOperator.data!['searchJobs'].nodes.map((job: { id: string }) => job.id);
    expect(operatorIds).toEqual(expect.arrayContaining([mine, theirs]));
    const ownerOfMine = asOperator.data!['searchJobs'].nodes.find((job: { id: string }) => job.id === mine).owner as string;

    const byOwner = await client.graphql(OPERATOR, SEARCH, { filter: { kind: 'note', owner: ownerOfMine } });
    expect(byOwner.data!['searchJobs'].nodes.every((job: { owner: string }) => job.owner === ownerOfMine)).toBe(true);
    expect(codes(await client.graphql(CUSTOMER, SEARCH, { filter: { owner: 'f'.repeat(64) } }))).toEqual(['FORBIDDEN']);
    const refused = await client.rest('GET', `/api/v1/console/jobs?owner=${'f'.repeat(64)}`, CUSTOMER);
    expect(refused).toEqual({ status: 403, body: { error: expect.objectContaining({ code: 'FORBIDDEN' }) } });

    const matched = await client.graphql(OPERATOR, SEARCH, { filter });
    expect(matched.data!['searchJobs'].nodes.map((job: { id: string }) => job.id)).toEqual([mine]);
    // job(id): an operator reads any owner's job; the other customer does not see it.
    expect((await client.graphql(OPERATOR, 'query($id: ID!) { job(id: $id) { id } }', { id: mine })).data).toEqual({ job: { id: mine } });
    expect(codes(await client.graphql(OTHER, 'query($id: ID!) { job(id: $id) { id } }', { id: mine }))).toEqual(['NOT_FOUND']);
  });

  it('pages through a cursor, newest or oldest first, and finds by a JSON path inside the input', async () => {
    const ids = [];
    for (let customer = 1; customer <= 5; customer += 1) ids.push(await submit(CUSTOMER, 'paging', { customer }));
    const filter = { kind: 'note', match: { path: 'text', value: 'paging' } };
    const first = await client.graphql(CUSTOMER, SEARCH, { filter, first: 2 });
    const second = await client.graphql(CUSTOMER, SEARCH, { filter, first: 2, after: first.data!['searchJobs'].pageInfo.endCursor });
    const seen = [...first.data!['searchJobs'].nodes, ...second.data!['searchJobs'].nodes].map((job: { id: string }) => job.id);
    expect(seen).toEqual([ids[4], ids[3], ids[2], ids[1]]);
    expect(first.data!['searchJobs'].pageInfo.hasNextPage).toBe(true);
    const oldest = await client.graphql(CUSTOMER, SEARCH, { filter, first: 1, order: 'OLDEST' });
    expect(oldest.data!['searchJobs'].nodes.map((job: { id: string }) => job.id)).toEqual([ids[0]]);
    const nested = await client.graphql(CUSTOMER, SEARCH, { filter: { match: { path: 'customer.id', value: 3 } } });
    expect(nested.data!['searchJobs'].nodes.map((job: { id: string }) => job.id)).toEqual([ids[2]]);
    const rested = await client.rest('GET', '/api/v1/console/jobs?matchPath=customer.id&matchValue=4', CUSTOMER);
    expect((rested.body['jobs'] as { jobId: string }[]).map((job) => job.jobId)).toEqual([ids[3]]);
    expect(codes(await client.graphql(CUSTOMER, SEARCH, { filter: { match: { path: 'a..b', value: 1 } } }))).toEqual(['BAD_USER_INPUT']);
    const before = await client.graphql(CUSTOMER, SEARCH, { filter: { kind: 'note', createdBefore: new Date(Date.now() - 3_600_000).toISOString() } });
    expect(before.data!['searchJobs'].nodes).toEqual([]);
  });
});

describe('finding jobs by a key', () => {
  it('finds the jobs of a unique, concurrency or idempotency key, over GraphQL and REST, a customer its own only', async () => {
    const post = async (key: string, fields: Record<string, string>) => {
      const answer = await client.rest('POST', '/api/v1/jobs', key, {
        kind: 'note',
        input: { text: 'keyed' },
        runAt: new Date(Date.now() + 3_600_000).toISOString(),
        ...fields,
      });
      expect(answer.status).toBe(202);
      return answer.body['jobId'] as string;
    };
    const unique = await post(CUSTOMER, { uniqueKey: 'key-filter-order-7' });
    const theirsUnique = await post(OTHER, { uniqueKey: 'key-filter-order-7' });
    const idempotent = await post(CUSTOMER, { idempotencyKey: 'key-filter-request-9' });
    const theirsIdempotent = await post(OTHER, { idempotencyKey: 'key-filter-request-9' });
    // `note` takes no concurrency key at submission: one is set as a keyed kind's submission would.
    const tenant = await post(CUSTOMER, {});
    await db.query({ name: 'console_access_tenant', text: `UPDATE job SET concurrency_key = 'key-filter-tenant-3' WHERE id = $1` }, [tenant]);
    await post(CUSTOMER, {});

    const ids = (answer: KeyedGraphQLAnswer) => answer.data!['searchJobs'].nodes.map((job: { id: string }) => job.id).sort();
    expect(ids(await client.graphql(CUSTOMER, SEARCH, { filter: { uniqueKey: 'key-filter-order-7' } }))).toEqual([unique]);
    expect(ids(await client.graphql(OPERATOR, SEARCH, { filter: { uniqueKey: 'key-filter-order-7' } }))).toEqual([unique, theirsUnique].sort());
    expect(ids(await client.graphql(CUSTOMER, SEARCH, { filter: { idempotencyKey: 'key-filter-request-9' } }))).toEqual([idempotent]);
    // Idempotency keys are each owner's own: an operator names the owner (its only index).
    const refused = await client.graphql(OPERATOR, SEARCH, { filter: { idempotencyKey: 'key-filter-request-9', kind: 'note' } });
    expect(refused.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'owner' });
    const theirOwner = (await client.graphql(OPERATOR, 'query($id: ID!) { job(id: $id) { owner } }', { id: theirsIdempotent })).data!['job'].owner;
    expect(ids(await client.graphql(OPERATOR, SEARCH, { filter: { idempotencyKey: 'key-filter-request-9', owner: theirOwner } }))).toEqual([theirsIdempotent]);
    expect(ids(await client.graphql(CUSTOMER, SEARCH, { filter: { concurrencyKey: 'key-filter-tenant-3', status: 'PENDING' } }))).toEqual([tenant]);
    expect(ids(await client.graphql(CUSTOMER, SEARCH, { filter: { uniqueKey: 'key-filter-request-9' } }))).toEqual([]);

    const counted = await client.graphql(OPERATOR, 'query($filter: JobFilter) { jobCount(filter: $filter) { count } }', { filter: { uniqueKey: 'key-filter-order-7' } });
    expect(counted.data).toEqual({ jobCount: { count: 2 } });
    const rested = await client.rest('GET', '/api/v1/console/jobs?concurrencyKey=key-filter-tenant-3', CUSTOMER);
    expect((rested.body['jobs'] as { jobId: string }[]).map((job) => job.jobId)).toEqual([tenant]);
    const restCount = await client.rest('GET', `/api/v1/console/jobs/count?idempotencyKey=key-filter-request-9&owner=${theirOwner}`, OPERATOR);
    expect(restCount.body).toMatchObject({ count: 1 });
    const restRefused = await client.rest('GET', '/api/v1/console/jobs/count?idempotencyKey=key-filter-request-9', OPERATOR);
    expect(restRefused.status).toBe(400);
    expect(restRefused.body).toMatchObject({ error: { code: 'BAD_USER_INPUT', field: 'owner' } });
    // A bulk action takes the filter too: the operator cancels one customer's keyed job.
    const owner = (await client.graphql(OPERATOR, 'query($id: ID!) { job(id: $id) { owner } }', { id: theirsUnique })).data!['job'].owner;
    const cancelled = await client.rest('POST', '/api/v1/console/jobs/cancel', OPERATOR, { filter: { uniqueKey: 'key-filter-order-7', owner } });
    expect(cancelled.body).toMatchObject({ count: 1 });
  });
});

describe('acting', () => {
  it('a customer retries its own failed job (a new attempt, its history kept), not another owner\'s', async () => {
    const id = await submit(CUSTOMER, 'retry one', { failed: true });
    const RETRY = 'mutation($id: ID!) { retryJob(id: $id) { id status attempt maxAttempts lastError } }';
    expect(codes(await client.graphql(OTHER, RETRY, { id }))).toEqual(['NOT_FOUND']);
    const retried = await client.graphql(CUSTOMER, RETRY, { id });
    expect(retried.data).toEqual({ retryJob: { id, status: 'PENDING', attempt: 2, maxAttempts: 3, lastError: 'boom' } });
    expect(codes(await client.graphql(CUSTOMER, RETRY, { id }))).toEqual(['CONFLICT']);
    expect((await client.rest('POST', `/api/v1/jobs/${id}/retry`, CUSTOMER)).status).toBe(409);
  });

  it('bulk actions are an operator\'s: counted first, then done, changing as many jobs as the count said', async () => {
    const failed = [await submit(CUSTOMER, 'bulk', { failed: true }), await submit(OTHER, 'bulk', { failed: true })];
    const filter = { kind: 'note', status: 'FAILED', match: { path: 'text', value: 'bulk' } };
    const BULK = 'mutation($filter: JobFilter!) { retryJobs(filter: $filter) { count more } }';
    expect(codes(await client.graphql(CUSTOMER, BULK, { filter }))).toEqual(['FORBIDDEN']);
    const refused = await client.rest('POST', '/api/v1/console/jobs/retry', CUSTOMER, { filter: { kind: 'note' } });
    expect(refused.status).toBe(403);
    expect(refused.body).toEqual({ error: expect.objectContaining({ code: 'FORBIDDEN' }) });

    const counted = await client.graphql(OPERATOR, 'query($filter: JobFilter) { jobCount(filter: $filter) { count more cap } }', { filter });
    expect(counted.data).toEqual({ jobCount: { count: 2, more: false, cap: 10_000 } });
    expect((await client.graphql(OPERATOR, BULK, { filter })).data).toEqual({ retryJobs: { count: 2, more: false } });
    const after = await client.graphql(OPERATOR, SEARCH, { filter: { ...filter, status: 'PENDING' } });
    expect(after.data!['searchJobs'].nodes.map((job: { id: string }) => job.id).sort()).toEqual([...failed].sort());

    const cancelled = await client.rest('POST', '/api/v1/console/jobs/cancel', OPERATOR, { filter: { kind: 'note', matchPath: 'text', matchValue: '"bulk"' } });
    expect(cancelled.body).toMatchObject({ count: 2 });
  });

  it('pausing kinds is an operator\'s', async () => {
    expect(codes(await client.graphql(CUSTOMER, 'mutation { pauseKind(kind: "note") { paused } }'))).toEqual(['FORBIDDEN']);
    expect(codes(await client.graphql(CUSTOMER, 'mutation { pauseAllKinds { paused } }'))).toEqual(['FORBIDDEN']);
    expect((await client.rest('POST', '/api/v1/kinds/note/pause', CUSTOMER)).status).toBe(403);
    expect((await client.rest('POST', '/api/v1/kinds/resume', CUSTOMER)).status).toBe(403);
    expect((await client.graphql(OPERATOR, 'mutation { pauseKind(kind: "note") { paused } }')).data).toEqual({ pauseKind: { paused: true } });
    expect((await client.rest('POST', '/api/v1/kinds/note/resume', OPERATOR)).body).toMatchObject({ paused: false });
  });

  it("the overview is an operator's", async () => {
    expect(codes(await client.graphql(CUSTOMER, 'query { overview { at } }'))).toEqual(['FORBIDDEN']);
    expect((await client.rest('GET', '/api/v1/console/overview', CUSTOMER)).status).toBe(403);
    const overview = await client.graphql(OPERATOR, 'query { overview { kinds { kind delayed paused } } }');
    expect(overview.data!['overview'].kinds).toEqual([expect.objectContaining({ kind: 'note', paused: false })]);
  });
});

describe('schedules', () => {
  it("a customer manages its own; an operator sees and manages every one, and runs one now", async () => {
    const made = await client.rest('POST', '/api/v1/schedules', CUSTOMER, { kind: 'note', input: { text: 'scheduled' }, cron: '0 9 * * MON' });
    const id = made.body['scheduleId'] as string;
    expect((await client.rest('GET', `/api/v1/schedules/${id}`, OTHER)).status).toBe(404);
    expect((await client.rest('POST', `/api/v1/schedules/${id}/run`, OTHER)).status).toBe(404);
    const listed = await client.graphql(OPERATOR, 'query { schedules { id nextFireAt lastJobId } }');
    expect(listed.data!['schedules']).toEqual([{ id, nextFireAt: expect.any(String), lastJobId: null }]);
    expect((await client.rest('POST', `/api/v1/schedules/${id}/pause`, OPERATOR)).body).toMatchObject({ paused: true });

    const ran = await client.graphql(CUSTOMER, 'mutation($id: ID!) { runSchedule(id: $id) { id kind input owner } }', { id });
    expect(ran.data!['runSchedule']).toMatchObject({ kind: 'note', input: { text: 'scheduled' } });
    const byOperator = await client.rest('POST', `/api/v1/schedules/${id}/run`, OPERATOR);
    expect(byOperator.status).toBe(202);
    // The job is the schedule's owner's, whoever ran it.
    const found = await client.graphql(CUSTOMER, SEARCH, { filter: { id: byOperator.body['jobId'] } });
    expect(found.data!['searchJobs'].nodes).toHaveLength(1);

    expect((await client.graphql(OPERATOR, 'mutation($id: ID!) { deleteSchedule(id: $id) }', { id })).data).toEqual({ deleteSchedule: id });
    expect((await client.rest('GET', `/api/v1/schedules/${id}`, CUSTOMER)).status).toBe(404);
  });
});

describe('ADMIN_API_KEYS', () => {
  it('is parsed once with the other settings, and fails fast on a short key or a key that is also a customer\'s', () => {
    expect(loadConfig({ ADMIN_API_KEYS: ` ${'a'.repeat(16)} , ${'b'.repeat(16)} ` }).ADMIN_API_KEYS).toEqual(['a'.repeat(16), 'b'.repeat(16)]);
    expect(loadConfig({ ADMIN_API_KEYS: 'a'.repeat(16) }).HOST).toBe('0.0.0.0');
    expect(() => loadConfig({ ADMIN_API_KEYS: 'short' })).toThrow(/ADMIN_API_KEYS: each admin API key needs at least 16 characters/);
    expect(() => loadConfig({ ADMIN_API_KEYS: 'k'.repeat(16), API_KEYS: 'k'.repeat(16) })).toThrow(ConfigError);
  });
});
