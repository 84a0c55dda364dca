/**
 * The owner_hash migration on a populated database: the queue's owner-led indexes change from
 * the owner to its hash, and every job stays as it was, its hash derived. Afterwards a claim
 * shares between the owners the migration found, and an owner's listing finds its jobs through
 * the new indexes.
 */
import { createHash, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../src/db/database.ts';
import { migrate } from '../src/db/migrate.ts';
import { claimBatchStatement } from '../src/jobs/sql/claim.ts';
import { createUnmigratedDatabase, testLogger, type UnmigratedDatabase } from './helpers/database.ts';
import { createHub, createService } from './helpers/jobs.ts';

const OWNER_HASH_MIGRATION = '20261205200000_owner_hash';
const KEYED = createHash('sha256').update('owner-hash-migration-key').digest('hex');

let unmigrated: UnmigratedDatabase;
let db: Database;

beforeAll(async () => {
  unmigrated = await createUnmigratedDatabase('test_migration_owner_hash');
  db = unmigrated.db;
});

afterAll(() => unmigrated.drop());

/** Every job whole, in id order, without the column the migration adds. */
async function allJobs(): Promise<unknown[]> {
  const rows = await db.query<{ job: unknown }>({ name: 'owner_hash_jobs', text: `SELECT to_jsonb(job) - 'owner_hash' AS job FROM job ORDER BY id` });
  return rows.map((row) => row.job);
}

describe('the owner_hash migration', () => {
  it('keeps every job, derives each hash, and rebuilds the owner-led indexes on it', async () => {
    await migrate(db, unmigrated.before(OWNER_HASH_MIGRATION), testLogger());
    // Pending and completed jobs of a keyed owner and of no owner.
    for (const [owner, status] of [[KEYED, 'pending'], [KEYED, 'completed'], ['', 'pending'], ['', 'completed']]) {
      await db.query(
        {
          name: 'owner_hash_insert',
          text: `INSERT INTO job (id, kind, input, owner, status, max_attempts, result, completed_on)
                 VALUES ($1, 'add', '{"num1": "1", "num2": "2"}', $2, $3::job_status, 3,
                         CASE WHEN $3 = 'completed' THEN '"3"'::jsonb END, CASE WHEN $3 = 'completed' THEN now() END)`,
        },
        [randomUUID(), owner, status],
      );
    }
    const before = await allJobs();

    await migrate(db, unmigrated.migrations, testLogger());

    expect(await allJobs()).toEqual(before);
    const hashes = await db.query<{ matches: boolean }>({
      name: 'owner_hash_check',
      text: `SELECT owner_hash = hashtext(owner) AS matches FROM job`,
    });
    expect(hashes.map((row) => row.matches)).toEqual([true, true, true, true]);
    const indexes = await db.query<{ indexname: string; indexdef: string }>({
      name: 'owner_hash_indexes',
      text: `SELECT indexname, indexdef FROM pg_indexes WHERE indexname IN ('job_pending_claim_idx', 'job_owner_idx') ORDER BY indexname`,
    });
    expect(indexes.map((row) => row.indexdef.replace(/^.* USING btree /, ''))).toEqual([
      `(owner_hash, id) WHERE ((owner <> ''::text) AND ((queue_state IS NULL) OR (queue_state > 2)))`,
      '(owner_hash, priority DESC, run_at, id) WHERE (queue_state = 1)',
    ]);
  });

  it('leaves a claim sharing between the owners it found, and a listing finding an owner’s jobs', async () => {
    const scope = { kinds: ['add'], defaultTimeoutSeconds: 30, shortestTimeoutSeconds: 30 };
    const { claimed } = await claimBatchStatement(db, 'owner-hash-worker', 2, scope);
    const owners = await db.query<{ owner: string }>(
      { name: 'owner_hash_claimed_owners', text: `SELECT owner FROM job WHERE id = ANY ($1::uuid[]) ORDER BY owner` },
      [claimed.map((job) => job.id)],
    );
    expect(owners.map((row) => row.owner)).toEqual(['', KEYED]);

    const hub = createHub(db);
    await hub.start();
    try {
      const service = createService(db, hub);
      const completed = await service.listJobs({ status: 'completed' }, { owner: KEYED });
      expect(completed.jobs.map((job) => [job.owner, job.status])).toEqual([[KEYED, 'completed']]);
      const all = await service.listJobs({}, { owner: KEYED });
      expect(all.jobs.map((job) => job.status).sort()).toEqual(['completed', 'wip']);
    } finally {
      await hub.stop();
    }
  });
});
