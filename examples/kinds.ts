/**
 * A team's own kinds, in one file: `JOB_KINDS_MODULE=./examples/kinds.ts npm start` runs them next
 * to the built-in ones. Every export made by defineKind is a kind (or export an array as default).
 */
import { z } from 'zod';
import { defineKind, PermanentJobError } from 'job-service';

export const slugify = defineKind({
  name: 'slugify',
  description: 'Turns a title into a URL slug.',
  input: z.object({ title: z.string().min(1).max(500) }),
  result: z.object({ slug: z.string() }),
  handler: ({ title }) => ({
    slug: title
      .normalize('NFKD')
      .replace(/[\u0300-\u036f]/g, '')
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, ''),
  }),
});

export const invoice = defineKind({
  name: 'invoice',
  description: 'Totals the lines of an invoice, in cents.',
  input: z.object({
    customer: z.string().min(1),
    lines: z.array(z.object({ item: z.string(), cents: z.number().int().nonnegative(), quantity: z.number().int().positive() })).min(1),
  }),
  result: z.object({ customer: z.string(), totalCents: z.number().int() }),
  options: { maxAttempts: 3, priority: 10, timeoutSeconds: 60, backoff: { baseDelayMs: 500, maxDelayMs: 10_000 } },
  async handler({ customer, lines }, { signal }) {
    signal.throwIfAborted();
    if (customer === 'nobody') throw new PermanentJobError('no such customer');
    return { customer, totalCents: lines.reduce((sum, line) => sum + line.cents * line.quantity, 0) };
  },
});
