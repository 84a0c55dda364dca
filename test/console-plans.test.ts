/**
 * The console's list, count, bulk and overview queries, explained on a table of 1,000,000 jobs,
 * use indexes: no plan reads the job table sequentially. Not a timed test: the plans are what a
 * table of millions makes of the queries, and they are read, not run. Each query is explained
 * twice, as a custom plan (the values known) and as a generic plan (what PostgreSQL may switch a
 * named statement to after five runs), since the service sends them as named statements.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database, Statement } from '../src/db/database.ts';
import { type ConsoleAction, JobConsole, type JobFilterInput } from '../src/jobs/console.ts';
import { createTestDatabase, type TestDatabase } from './helpers/database.ts';

const ROWS = 1_000_000;
const DAY = 24 * 3600_000;

let testDb: TestDatabase;
let client: pg.Client;

/**
 * 1,000,000 jobs over the last 7 days: 10 kinds, 100 owners, 1 % pending, 0.2 % wip, 1 % failed,
 * 0.5 % cancelled, the rest finished. 1 % have a unique key (100 keys of 100 jobs each), 1 % a
 * concurrency key (the same), 1 % an idempotency key (one job each); the others have none.
 */
const FILL = `
INSERT INTO job (id, kind, input, result, status, attempt, max_attempts, owner, created_at, run_at, last_updated, completed_on,
                 unique_key, concurrency_key, idempotency_key)
SELECT (lpad(to_hex((extract(epoch FROM t) * 1000)::bigint), 12, '0') || '7' || substr(h, 1, 3) || '8' || substr(h, 4, 15))::uuid,
       'kind' || (i % 10), jsonb_build_object('n', i, 'customer', jsonb_build_object('id', i % 1000)),
       CASE WHEN s IN ('completed', 'retrieved') THEN jsonb_build_object('ok', i % 7) END,
       s, 1, 3, md5((i % 100)::text) || md5((i % 100)::text), t, t, t,
       CASE WHEN s IN ('completed', 'retrieved', 'failed', 'cancelled') THEN t + interval '50 ms' END,
       CASE WHEN i % 100 = 50 THEN 'order-' || (i / 10000) END,
       CASE WHEN i % 100 = 51 THEN 'tenant-' || (i / 10000) END,
       CASE WHEN i % 100 = 52 THEN 'request-' || i END
FROM (
  SELECT i, md5(i::text) AS h, now() - (${ROWS} - i) * (interval '7 days' / ${ROWS}) AS t,
         (CASE WHEN i % 1000 < 10 THEN 'pending' WHEN i % 1000 < 12 THEN 'wip' WHEN i % 1000 < 22 THEN 'failed'
               WHEN i % 1000 < 27 THEN 'cancelled' WHEN i % 1000 < 500 THEN 'completed' ELSE 'retrieved' END)::job_status AS s
  FROM generate_series(1, ${ROWS}) AS i
) g`;

const OWNER = `${'a'.repeat(32)}${'a'.repeat(32)}`;
let someOwner: string;
let someId: string;
/** The owner of the job with idempotency key request-420052. */
let requestOwner: string;

beforeAll(async () => {
  testDb = await createTestDatabase(import.meta.filename);
  client = new pg.Client({ connectionString: testDb.url });
  await client.connect();
  await client.query(FILL);
  await client.query('ANALYZE job');
  someOwner = (await client.query<{ owner: string }>(`SELECT owner FROM job WHERE kind = 'kind3' LIMIT 1`)).rows[0]!.owner;
  someId = (await client.query<{ id: string }>(`SELECT id FROM job WHERE kind = 'kind5' LIMIT 1`)).rows[0]!.id;
  requestOwner = (await client.query<{ owner: string }>(`SELECT owner FROM job WHERE idempotency_key = 'request-420052'`)).rows[0]!.owner;
}, 300_000);

afterAll(async () => {
  await client?.end();
  await testDb?.drop();
});

/** A Database that records the statements the console sends, and answers with nothing. */
function recorder(): { db: Database; sent: { statement: Statement; values: readonly unknown[] }[] } {
  const sent: { statement: Statement; values: readonly unknown[] }[] = [];
  const db = {
    query: async (statement: Statement, values: readonly unknown[] = []) => {
      sent.push({ statement, values });
      return statement.name.startsWith('console_count') ? [{ jobs: 0 }] : [];
    },
  } as unknown as Database;
  return { db, sent };
}

function consoleOn(db: Database): JobConsole {
  return new JobConsole({
    db,
    schedules: {} as never,
    submit: () => Promise.reject(new Error('not here')),
    read: () => Promise.reject(new Error('not here')),
    kinds: async () => [],
  });
}

const OPERATOR = { owner: 'operator', operator: true };

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  Plans?: PlanNode[];
}

function nodes(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodes)];
}

function literal(value: unknown): string {
  return typeof value === 'number' ? String(value) : client.escapeLiteral(String(value));
}

/** The plan's nodes that read `job` (and with `bitmaps`, the index scans under a bitmap's), custom and generic. */
async function plansOf(
  { statement, values }: { statement: Statement; values: readonly unknown[] },
  { bitmaps = false } = {},
): Promise<Record<'custom' | 'generic', PlanNode[]>> {
  const answer = {} as Record<'custom' | 'generic', PlanNode[]>;
  await client.query(`PREPARE explained AS ${statement.text}`);
  try {
    for (const mode of ['custom', 'generic'] as const) {
      await client.query(`SET plan_cache_mode = force_${mode}_plan`);
      const execute = values.length > 0 ? `EXECUTE explained(${values.map(literal).join(', ')})` : 'EXECUTE explained';
      const { rows } = await client.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(`EXPLAIN (FORMAT JSON) ${execute}`);
      // An UPDATE's ModifyTable node names the table it writes, which is no read of it.
      answer[mode] = nodes(rows[0]!['QUERY PLAN'][0].Plan).filter(
        (node) =>
          (node['Relation Name'] === 'job' && node['Node Type'] !== 'ModifyTable') || (bitmaps && node['Node Type'] === 'Bitmap Index Scan'),
      );
    }
  } finally {
    await client.query('DEALLOCATE explained');
    await client.query('RESET plan_cache_mode');
  }
  return answer;
}

async function expectIndexed(sent: { statement: Statement; values: readonly unknown[] }) {
  const plans = await plansOf(sent);
  for (const [mode, reads] of Object.entries(plans)) {
    const label = `${sent.statement.name} (${mode}): ${reads.map((node) => `${node['Node Type']} ${node['Index Name'] ?? ''}`).join(', ')}`;
    expect(reads.length, label).toBeGreaterThan(0);
    expect(reads.filter((node) => node['Node Type'] === 'Seq Scan'), label).toEqual([]);
    expect(reads.every((node) => node['Index Name'] !== undefined || node['Node Type'] === 'Bitmap Heap Scan'), label).toBe(true);
  }
}

const hourAgo = () => new Date(Date.now() - 3600_000);
const FILTERS: Array<[string, () => JobFilterInput]> = [
  ['no filter', () => ({})],
  ['a kind', () => ({ kind: 'kind3' })],
  ['an owner', () => ({ owner: someOwner })],
  ['an owner with no jobs', () => ({ owner: OWNER })],
  ['an owner and a kind', () => ({ owner: someOwner, kind: 'kind3' })],
  ...(['pending', 'wip', 'failed', 'cancelled', 'completed', 'retrieved'] as const).map(
    (status): [string, () => JobFilterInput] => [`status ${status}`, () => ({ status })],
  ),
  ['a kind and a rare status', () => ({ kind: 'kind3', status: 'failed' })],
  ['a time range', () => ({ createdAfter: new Date(Date.now() - 3 * DAY), createdBefore: new Date(Date.now() - 2 * DAY) })],
  ['an id', () => ({ id: someId })],
  ['a unique key', () => ({ uniqueKey: 'order-42' })],
  ['a concurrency key and a kind', () => ({ concurrencyKey: 'tenant-42', kind: 'kind1' })],
  ['an idempotency key and its owner', () => ({ idempotencyKey: 'request-420052', owner: requestOwner })],
  ['a JSON path in the input (the last 24 hours)', () => ({ match: { path: 'customer.id', value: 7 } })],
  ['a JSON path in the result, in a range, of a kind', () => ({ kind: 'kind2', createdAfter: hourAgo(), match: { in: 'result', path: 'ok', value: 3 } })],
];

describe('on 1,000,000 jobs, every console query uses an index', () => {
  it.each(FILTERS)('a page, both orders, and the next page: %s', async (_name, filter) => {
    const { db, sent } = recorder();
    const console = consoleOn(db);
    await console.list(filter(), { first: 20 }, OPERATOR);
    await console.list(filter(), { first: 20, order: 'oldest', after: '01900000-0000-7000-8000-000000000000' }, OPERATOR);
    for (const statement of sent) await expectIndexed(statement);
  });

  it.each(FILTERS)('the count: %s', async (_name, filter) => {
    const { db, sent } = recorder();
    await consoleOn(db).count(filter(), OPERATOR);
    await expectIndexed(sent[0]!);
  });

  it.each([
    ['retry', { kind: 'kind3' }],
    ['cancel', { owner: 'x'.repeat(64) }],
    ['retrieve', { kind: 'kind1', createdAfter: new Date(Date.now() - DAY) }],
    ['retry', { match: { path: 'n', value: 5 } }],
  ] as Array<[ConsoleAction, JobFilterInput]>)('the bulk %s of %j', async (action, filter) => {
    const { db, sent } = recorder();
    await consoleOn(db).bulk(action, filter, OPERATOR);
    await expectIndexed(sent[0]!);
  });

  it.each([
    ['uniqueKey', 'order-42', 'job_unique_key_idx'],
    ['concurrencyKey', 'tenant-42', 'job_concurrency_key_all_idx'],
  ] as const)('a filter by %s reads its own index, which holds only the jobs with that key', async (field, key, index) => {
    const { db, sent } = recorder();
    const console = consoleOn(db);
    await console.list({ [field]: key }, { first: 20 }, OPERATOR);
    await console.list({ [field]: key, status: 'completed' }, { first: 20, order: 'oldest' }, OPERATOR);
    await console.count({ [field]: key, kind: 'kind0' }, OPERATOR);
    for (const statement of sent) {
      const plans = await plansOf(statement);
      for (const reads of Object.values(plans)) expect(reads.map((node) => node['Index Name'])).toEqual([index]);
    }
    // 1 % of the jobs, so well under a twentieth of the primary key's size.
    const { rows } = await client.query<{ share: number }>(
      `SELECT pg_relation_size($1::regclass)::float8 / pg_relation_size('job_pkey') AS share`,
      [index],
    );
    expect(rows[0]!.share).toBeLessThan(0.05);
  });

  it("a customer's pages of its settled and of its pending jobs can find them by the owner's hash", async () => {
    const { db, sent } = recorder();
    const console = consoleOn(db);
    // An owner with no jobs: any other path would read every completed job to find none.
    await console.list({ status: 'completed' }, { first: 20 }, { owner: OWNER });
    await console.list({ status: 'pending' }, { first: 20 }, { owner: someOwner });
    const read: string[][] = [];
    for (const statement of sent) {
      const { custom } = await plansOf(statement, { bitmaps: true });
      read.push([...new Set(custom.flatMap((node) => node['Index Name'] ?? []))].sort());
    }
    expect(read).toEqual([['job_owner_idx'], ['job_pending_claim_idx']]);
  });

  it("a filter by idempotency key, a customer's or an operator's naming the owner, reads the owner's key index", async () => {
    const { db, sent } = recorder();
    await consoleOn(db).list({ idempotencyKey: 'request-420052' }, { first: 20 }, { owner: requestOwner });
    await consoleOn(db).count({ idempotencyKey: 'request-420052', owner: requestOwner, status: 'completed' }, OPERATOR);
    for (const statement of sent) {
      const plans = await plansOf(statement);
      for (const reads of Object.values(plans)) expect(reads.map((node) => node['Index Name'])).toEqual(['job_owner_idempotency_key_key']);
    }
  });

  it("the overview's queue counts and last hour", async () => {
    const { db, sent } = recorder();
    await consoleOn(db).overview(OPERATOR);
    expect(sent.map((entry) => entry.statement.name).sort()).toEqual(['console_kind_queues', 'console_last_hour']);
    for (const statement of sent) await expectIndexed(statement);
  });

  it('the check fails on a query that reads the table', async () => {
    const reads = await plansOf({ statement: { name: 'whole', text: `SELECT count(*) FROM job WHERE input @> '{"n": 5}'` }, values: [] });
    expect(reads.custom.map((node) => node['Node Type'])).toContain('Seq Scan');
  });
});
