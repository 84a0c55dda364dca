/**
 * Idempotency under concurrent retries across processes: two API processes on one database each
 * get the same Idempotency-Key at the same moment, so two transactions race for the key (within
 * one process the insert coalescer would put them in one queue). One job comes out, and a key
 * reused with other numbers is refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './helpers/database.ts';
import { type ServiceProcess, startService } from './helpers/processes.ts';

const ROUNDS = 20;

let testDb: TestDatabase;
let apis: ServiceProcess[];

beforeAll(async () => {
  testDb = await createTestDatabase(import.meta.filename);
  apis = await Promise.all([0, 1].map(() => startService({ DATABASE_URL: testDb.url, ROLE: 'api' })));
});

afterAll(async () => {
  await Promise.all(apis.map((api) => api.stop()));
  await testDb.drop();
});

interface Answer {
  status: number;
  body: { jobId?: string; created?: boolean; error?: { code: string; field?: string } };
}

async function add(api: ServiceProcess, numbers: string, key: string): Promise<Answer> {
  const response = await fetch(`http://127.0.0.1:${api.port}/api/v1/add/${numbers}`, {
    method: 'POST',
    headers: { 'idempotency-key': key },
  });
  return { status: response.status, body: (await response.json()) as Answer['body'] };
}

describe('one idempotency key sent to two API processes at once', () => {
  it('makes one job, and the other answer is that job', async () => {
    for (let round = 0; round < ROUNDS; round += 1) {
      const key = `same-${round}`;
      const answers = await Promise.all(apis.map((api) => add(api, '1/2', key)));
      expect(answers.map((answer) => answer.status)).toEqual([202, 202]);
      expect(new Set(answers.map((answer) => answer.body.jobId)).size).toBe(1);
      expect(answers.map((answer) => answer.body.created).sort()).toEqual([false, true]);
    }
  });

  it('refuses the one with other numbers with 409 CONFLICT', async () => {
    for (let round = 0; round < ROUNDS; round += 1) {
      const key = `other-${round}`;
      const answers = await Promise.all([add(apis[0]!, '1/2', key), add(apis[1]!, '3/4', key)]);
      const statuses = answers.map((answer) => answer.status).sort();
      expect(statuses).toEqual([202, 409]);
      const refused = answers.find((answer) => answer.status === 409)!;
      expect(refused.body.error).toMatchObject({ code: 'CONFLICT', field: 'idempotencyKey' });
    }
  });
});
