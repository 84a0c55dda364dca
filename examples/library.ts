/**
 * The service inside your own process: start it with your kinds, and enqueue a job in the same
 * transaction as your own writes. Run: `DATABASE_URL=postgresql://... node --conditions=job-service-source
 * examples/library.ts` (Node >= 22.18; on Node 20, `npx tsx --conditions=job-service-source …`). The
 * condition gives `job-service` this checkout's sources; an installed package has dist/ instead.
 */
import pg from 'pg';
import { enqueue, startService } from 'job-service';
import { invoice } from './kinds.ts';

const databaseUrl = process.env.DATABASE_URL;
if (!databaseUrl) throw new Error('set DATABASE_URL to a PostgreSQL database');

// ROLE=worker runs only the worker; the default, all, serves the API too (PORT, 4000 by default).
const service = await startService({ kinds: [invoice], settings: { DATABASE_URL: databaseUrl, PORT: '0' } });

const client = new pg.Client({ connectionString: databaseUrl });
await client.connect();
try {
  await client.query('BEGIN');
  // Your own writes here; the job exists only if they commit with it.
  const { job } = await enqueue(client, invoice, { customer: 'ada', lines: [{ item: 'tea', cents: 250, quantity: 4 }] });
  await client.query('COMMIT');
  console.log(`enqueued ${job.id}; the API is on port ${service.api?.port}`);
} finally {
  await client.end();
}
await new Promise((resolve) => setTimeout(resolve, 1000));
await service.stop();
