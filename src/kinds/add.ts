/** The seed's job: adding two exact decimals. Numbers travel as strings, so no digit is ever lost. */
import { setTimeout } from 'node:timers/promises';
import { z } from 'zod';
import { addDecimals, checkDecimal, isCanonicalDecimal } from '../jobs/decimal.ts';
import { defineKind } from './define.ts';

export interface AddKindOptions {
  /** The most digits a number may have (NUMBER_MAX_DIGITS). */
  maxDigits: number;
  /** Makes each job wait this long first (JOB_ADD_DELAY_MS): for demos and the crash tests. */
  delayMs?: number;
}

/** A JSON number may have lost digits in the customer's parser already, so only strings are taken. */
function decimalInput(maxDigits: number) {
  return z
    .string({ error: 'must be a decimal number as a string, like "12" or "-0.5"' })
    .transform((text, context) => {
      const checked = checkDecimal(text, maxDigits);
      if ('value' in checked) return checked.value;
      context.addIssue({ code: 'custom', message: checked.problem });
      return z.NEVER;
    })
    .describe(`A decimal number as a string, like "12" or "-0.5"; at most ${maxDigits} digits.`);
}

export function addKind({ maxDigits, delayMs = 0 }: AddKindOptions) {
  return defineKind({
    name: 'add',
    description: 'Adds two exact decimal numbers.',
    input: z.object({ num1: decimalInput(maxDigits), num2: decimalInput(maxDigits) }),
    result: z
      .string()
      .refine(isCanonicalDecimal, 'must be a decimal number written as the service writes them, like 12 or -0.5')
      .describe('The exact sum, as a string.'),
    async handler({ num1, num2 }, context) {
      // The signal is made when first read: an AbortController per job was 8 % of a drain's CPU
      // (BENCHMARKS.md, "No AbortController per job"), so a job that never waits leaves it unmade.
      if (delayMs > 0) await setTimeout(delayMs, undefined, { signal: context.signal });
      return addDecimals(num1, num2);
    },
  });
}

/** An `add` job's numbers, for the seed's surfaces that show them as fields; null for other kinds. */
export function addNumbersOf(job: { kind: string; input: unknown }): { num1: string; num2: string } | null {
  return job.kind === 'add' ? (job.input as { num1: string; num2: string }) : null;
}
