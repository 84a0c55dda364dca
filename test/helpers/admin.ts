import pg from 'pg';

/** The local server of the development set-up; the tests and the benchmarks default to it. */
export const LOCAL_SERVER_URL = 'postgresql://postgres@127.0.0.1:5432/postgres';

/**
 * The server the tests run on. Each test file gets its own database there. test/global-setup.ts
 * chooses it (test/embedded-postgres/server.ts) and hands it to the test files, and to the
 * processes they start, in TEST_DATABASE_URL.
 */
export const ADMIN_URL = process.env.TEST_DATABASE_URL ?? LOCAL_SERVER_URL;

/** The URL of database `name` on the server of `serverUrl`. */
export function databaseUrl(name: string, serverUrl = ADMIN_URL): string {
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Runs `work` on a client of its own connected to `url`, and ends the client after. */
export async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

export function withAdmin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  return withClient(ADMIN_URL, work);
}
