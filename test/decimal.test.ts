import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addDecimals, checkDecimal } from '../src/jobs/decimal.ts';
import { addKind } from '../src/kinds/add.ts';
import type { Worker } from '../src/worker/worker.ts';
import { ANONYMOUS, closeJobsDatabase, createWorker, type JobsDatabase, openJobsDatabase, statusOf, waitForJob } from './helpers/jobs.ts';

describe('checkDecimal', () => {
  it.each([
    ['0', '0'],
    ['-0', '0'],
    ['+0', '0'],
    ['0.000', '0'],
    ['-0.0', '0'],
    ['00012', '12'],
    ['12', '12'],
    ['-12', '-12'],
    ['+12', '12'],
    ['1.50', '1.5'],
    ['1.', '1'],
    ['.5', '0.5'],
    ['-.5', '-0.5'],
    ['0.5', '0.5'],
    ['-0.5', '-0.5'],
    ['00.5', '0.5'],
    ['10.01', '10.01'],
    ['100', '100'],
    ['-100.000100', '-100.0001'],
    [' 7 ', '7'],
    ['9007199254740993', '9007199254740993'],
  ])('writes %j as %j', (input, canonical) => {
    expect(checkDecimal(input, 100)).toEqual({ value: canonical });
  });

  it.each(['abc', '', '1e5', '1e999999', 'NaN', 'Infinity', '0x10', '1.2.3', '- 1', '1'.repeat(101)])(
    'refuses %j, and the add kind names the field',
    (input) => {
      expect(checkDecimal(input, 100)).toEqual({ problem: expect.stringMatching(/^(must be a decimal number|has \d+ digits)/) });
      const parsed = addKind({ maxDigits: 100 }).input.safeParse({ num1: input, num2: '1' });
      expect(parsed.error?.issues.map((issue) => issue.path)).toEqual([['num1']]);
    },
  );

  it('gives every sum in the form it would give the same number typed in', () => {
    for (const [a, b] of [
      ['0.1', '0.2'],
      ['1.25', '-1.25'],
      ['-0.5', '0.25'],
      ['999.999', '0.001'],
      ['-3', '1.5'],
    ] as const) {
      const sum = addDecimals(a, b);
      expect(checkDecimal(sum, 100)).toEqual({ value: sum });
    }
  });
});

/**
 * The whole path at the digit limit: submission, the numeric column, the worker's sum, the stored
 * result. NUMBER_MAX_DIGITS (100 by default) is what the service promises to add exactly.
 */
describe('numbers at the digit limit, end to end', () => {
  let jobs: JobsDatabase;
  let worker: Worker;

  beforeAll(async () => {
    jobs = await openJobsDatabase(import.meta.filename);
    worker = createWorker(jobs.db, jobs.hub);
    await worker.start();
  });

  afterAll(async () => {
    await worker.stop();
    await closeJobsDatabase(jobs);
  });

  it.each([
    ['9'.repeat(100), '1', `1${'0'.repeat(100)}`],
    [`${'9'.repeat(60)}.${'9'.repeat(40)}`, `0.${'0'.repeat(39)}1`, `1${'0'.repeat(60)}`],
    [`-${'1'.repeat(50)}.${'2'.repeat(50)}`, `${'1'.repeat(50)}.${'2'.repeat(49)}3`, `0.${'0'.repeat(49)}1`],
    [`0.${'0'.repeat(98)}1`, `-${'9'.repeat(100)}`, `-${'9'.repeat(99)}8.${'9'.repeat(98)}9`],
  ])('adds %s and %s exactly', async (num1, num2, sum) => {
    const { job } = await jobs.service.addJob({ num1, num2 }, ANONYMOUS);
    const done = await waitForJob(jobs.service, jobs.hub, job.id, statusOf('completed'));
    expect(done.result).toBe(sum);
    expect(addDecimals(num1, num2)).toBe(sum);
  });

  it('refuses one digit past the limit, and writes nothing', async () => {
    const before = (await jobs.service.listJobs({ first: 100 }, ANONYMOUS)).jobs.length;
    await expect(jobs.service.addJob({ num1: '9'.repeat(101), num2: '1' }, ANONYMOUS)).rejects.toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'num1',
    });
    await expect(jobs.service.addJob({ num1: '1', num2: `0.${'0'.repeat(99)}1` }, ANONYMOUS)).rejects.toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'num2',
    });
    expect((await jobs.service.listJobs({ first: 100 }, ANONYMOUS)).jobs.length).toBe(before);
  });
});
