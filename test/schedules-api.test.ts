/**
 * Schedules over REST and GraphQL: made, listed, paused, resumed and deleted by the API key that
 * owns them, and refused with the offending field when the kind, cron expression, time zone or
 * input is wrong. A kind's declared schedules are made, updated and deleted by a scheduler's start.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Database } from '../src/db/database.ts';
import { JobIdGenerator } from '../src/jobs/ids.ts';
import { defineKind, type KindSchedule } from '../src/kinds/define.ts';
import { KindRegistry } from '../src/kinds/registry.ts';
import { Scheduler } from '../src/schedules/scheduler.ts';
import { closeTestApp, openTestApp, type TestApp } from './helpers/api.ts';
import { type TestDatabase, testLogger } from './helpers/database.ts';

const report = defineKind({
  name: 'report',
  input: z.object({ of: z.string().min(1) }),
  result: z.null(),
  handler: () => null,
});
const kinds = new KindRegistry([report]);
const KEY = 'schedules-test-key-one';
const OTHER_KEY = 'schedules-test-key-two';

let testDb: TestDatabase;
let db: Database;
let api: TestApp;

beforeAll(async () => {
  ({ testDb, db, api } = await openTestApp(import.meta.filename, { service: { kinds }, apiKeys: [KEY, OTHER_KEY] }));
});

afterAll(() => closeTestApp({ testDb, api }));

async function rest(method: string, path: string, body?: unknown, key = KEY) {
  const response = await api.app.fetch(`http://yoga${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, headers: response.headers, body: (await response.json()) as Record<string, unknown> };
}

async function graphql(query: string, variables?: Record<string, unknown>, key = KEY) {
  const response = await api.app.fetch('http://yoga/graphql', {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()) as { data?: Record<string, unknown>; errors?: Array<{ extensions?: Record<string, unknown> }> };
}

const GOOD = { kind: 'report', input: { of: 'sales' }, cron: '0 30 9 * * MON-FRI', timeZone: 'America/New_York' };

describe('bad input', () => {
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['a cron expression that is not one', { cron: 'every day' }, 'cron'],
    ['a cron field out of range', { cron: '61 * * * *' }, 'cron'],
    ['a cron expression that never fires', { cron: '0 0 31 2 *' }, 'cron'],
    ['an unknown time zone', { timeZone: 'Mars/Olympus_Mons' }, 'timeZone'],
    ['an unknown kind', { kind: 'resize' }, 'kind'],
    ['input the kind refuses', { input: { of: '' } }, 'input.of'],
    ['an unknown catch-up policy', { catchUp: 'most' }, 'catchUp'],
    ['a catch-up limit out of range', { catchUpLimit: 0 }, 'catchUpLimit'],
  ];

  it.each(cases)('REST: %s is 400 BAD_USER_INPUT naming the field', async (_name, fields, field) => {
    const answer = await rest('POST', '/api/v1/schedules', { ...GOOD, ...fields });
    expect(answer.status).toBe(400);
    expect(answer.body).toMatchObject({ error: { code: 'BAD_USER_INPUT', field } });
  });

  it.each(cases.filter(([, fields]) => !('catchUp' in fields)))('GraphQL: %s is BAD_USER_INPUT naming the field', async (_name, fields, field) => {
    const result = await graphql('mutation ($input: CreateScheduleInput!) { createSchedule(input: $input) { id } }', {
      input: { ...GOOD, ...fields },
    });
    expect(result.data).toEqual({ createSchedule: null });
    expect(result.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
  });

  it('writes nothing', async () => {
    expect(await db.prisma.schedule.count({ where: { kind: { not: 'report' } } })).toBe(0);
  });
});

describe('a schedule over GraphQL', () => {
  it('is made, listed, paused, resumed and deleted by its owner, and by no one else', async () => {
    const made = await graphql(
      `mutation { createSchedule(input: { kind: "report", input: { of: "graphql" }, cron: "*/15 * * * *", timeZone: "Europe/Berlin", catchUp: ALL, catchUpLimit: 3 }) {
        id kind input cron timeZone catchUp catchUpLimit paused nextFireAt lastFireAt lastJobId declared } }`,
    );
    const schedule = made.data!.createSchedule as { id: string; nextFireAt: string };
    expect(made.data!.createSchedule).toMatchObject({ kind: 'report', input: { of: 'graphql' }, catchUp: 'ALL', catchUpLimit: 3, paused: false, declared: false, lastJobId: null });
    expect(new Date(schedule.nextFireAt).getUTCMinutes() % 15).toBe(0);

    const listed = await graphql('{ schedules { id } }');
    expect(listed.data!.schedules).toContainEqual({ id: schedule.id });
    expect((await graphql('{ schedules { id } }', undefined, OTHER_KEY)).data!.schedules).toEqual([]);
    const foreign = await graphql(`mutation { pauseSchedule(id: "${schedule.id}") { id } }`, undefined, OTHER_KEY);
    expect(foreign.errors?.[0]?.extensions).toMatchObject({ code: 'NOT_FOUND' });

    const paused = await graphql(`mutation { pauseSchedule(id: "${schedule.id}") { paused nextFireAt } }`);
    expect(paused.data!.pauseSchedule).toEqual({ paused: true, nextFireAt: null });
    const resumed = await graphql(`mutation { resumeSchedule(id: "${schedule.id}") { paused lastFireAt } }`);
    expect(resumed.data!.resumeSchedule).toMatchObject({ paused: false });
    // The ticks of the pause are settled: a resumed schedule does not catch them up.
    expect((resumed.data!.resumeSchedule as { lastFireAt: string | null }).lastFireAt).not.toBeNull();

    expect((await graphql(`mutation { deleteSchedule(id: "${schedule.id}") }`)).data).toEqual({ deleteSchedule: schedule.id });
    const gone = await graphql(`{ schedule(id: "${schedule.id}") { id } }`);
    expect(gone.errors?.[0]?.extensions).toMatchObject({ code: 'NOT_FOUND' });
  });
});

describe('a schedule over REST', () => {
  it('is made with 201 and a Location, and is its owner only', async () => {
    const made = await rest('POST', '/api/v1/schedules', GOOD);
    expect(made.status).toBe(201);
    expect(made.headers.get('location')).toBe(`/api/v1/schedules/${made.body.scheduleId}`);
    expect(made.body).toMatchObject({ ...GOOD, catchUp: 'one', catchUpLimit: 10, paused: false });
    expect((await rest('GET', `/api/v1/schedules/${made.body.scheduleId}`, undefined, OTHER_KEY)).status).toBe(404);
    expect((await rest('DELETE', `/api/v1/schedules/${made.body.scheduleId}`, undefined, OTHER_KEY)).status).toBe(404);
    expect((await rest('DELETE', `/api/v1/schedules/${made.body.scheduleId}`)).status).toBe(200);
  });
});

describe("a kind's declared schedules", () => {
  const declaring = (schedules: KindSchedule[]) =>
    new KindRegistry([defineKind({ ...report, name: 'digest', schedules })]);
  const start = async (registry: KindRegistry) => {
    const scheduler = new Scheduler({ db, kinds: registry, ids: new JobIdGenerator(), logger: testLogger(), maxAttempts: 1, maxInputBytes: 10_000, missedAfterMs: 10_000 });
    await scheduler.start();
    await scheduler.stop();
  };
  const declared = () => db.prisma.schedule.findMany({ where: { kind: 'digest', declared: true }, orderBy: { name: 'asc' } });

  it('are made at start, updated when the definition changes, and deleted when it no longer declares them', async () => {
    await start(declaring([{ name: 'nightly', cron: '0 3 * * *', timeZone: 'Europe/Berlin', input: { of: 'night' } }, { name: 'hourly', cron: '0 * * * *', input: { of: 'hour' } }]));
    expect((await declared()).map((s) => [s.name, s.cron, s.owner])).toEqual([['hourly', '0 * * * *', ''], ['nightly', '0 3 * * *', '']]);
    const [hourly] = await declared();
    // Started again, by a second process as it might be: the same rows, one of them changed.
    await start(declaring([{ name: 'nightly', cron: '0 4 * * *', timeZone: 'Europe/Berlin', input: { of: 'night' } }, { name: 'hourly', cron: '0 * * * *', input: { of: 'hour' } }]));
    const again = await declared();
    expect(again.map((s) => [s.name, s.cron])).toEqual([['hourly', '0 * * * *'], ['nightly', '0 4 * * *']]);
    expect(again[0]!.id).toBe(hourly!.id);
    await start(declaring([{ name: 'nightly', cron: '0 4 * * *', timeZone: 'Europe/Berlin', input: { of: 'night' } }]));
    expect((await declared()).map((s) => s.name)).toEqual(['nightly']);
  });

  it('are checked where the kind is defined', () => {
    expect(() => declaring([{ name: 'bad', cron: 'never' }])).toThrow(/schedules\.0\.cron/);
    expect(() => declaring([{ name: 'bad', cron: '* * * * *', timeZone: 'Nowhere/Special' }])).toThrow(/schedules\.0\.timeZone/);
    expect(() => declaring([{ name: 'bad', cron: '* * * * *', input: { of: '' } }])).toThrow(/schedules\.0\.input\.of/);
    expect(() => declaring([{ name: 'twice', cron: '* * * * *', input: { of: 'a' } }, { name: 'twice', cron: '* * * * *', input: { of: 'a' } }])).toThrow(/repeats/);
  });
});
