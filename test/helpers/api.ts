import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { type FormattedExecutionResult, print } from 'graphql';
import type { Database } from '../../src/db/database.ts';
import { readMigrations } from '../../src/db/migrate.ts';
import { MIGRATIONS_DIR } from '../../src/db/open.ts';
import { type ApiLimits, type App, createApp } from '../../src/http/app.ts';
import { type Authenticator, createAuthenticator } from '../../src/http/auth.ts';
import { HttpServer, type HttpServerOptions } from '../../src/http/server.ts';
import type { StreamLimits } from '../../src/http/stream-limits.ts';
import type { JobEventHub } from '../../src/jobs/events.ts';
import type { JobService } from '../../src/jobs/service.ts';
import { createMetrics, type Metrics, registerStateGauges } from '../../src/metrics/metrics.ts';
import { createQueueStatsReader } from '../../src/metrics/queue-stats.ts';
import { createTestDatabase, type TestDatabase, testLogger } from './database.ts';
import { createHub, createService } from './jobs.ts';

export const TEST_LIMITS: ApiLimits = {
  maxBodyBytes: 1_000_000,
  maxDepth: 10,
  maxCost: 5000,
  maxTokens: 10_000,
  maxAliases: 15,
  maxDirectives: 10,
};

export interface TestAppOptions {
  service?: Parameters<typeof createService>[2];
  apiKeys?: string[];
  /** ADMIN_API_KEYS: operator keys. */
  adminKeys?: string[];
  limits?: Partial<ApiLimits>;
  corsOrigins?: string[];
  /** Whether /metrics is served (METRICS_ON_API_PORT); true unless told. */
  serveMetrics?: boolean;
  sseStreams?: StreamLimits;
}

export interface TestApp {
  app: App;
  auth: Authenticator;
  hub: JobEventHub;
  jobs: JobService;
  /** This app's own registry; pass it to test workers so their counts show at /metrics. */
  metrics: Metrics;
  close(): Promise<void>;
}

export async function createTestApp(db: Database, options: TestAppOptions = {}): Promise<TestApp> {
  const metrics = createMetrics();
  const logger = testLogger();
  const hub = createHub(db, metrics);
  await hub.start();
  const jobs = createService(db, hub, options.service, { metrics, logger });
  // No cache: a test scrapes right after its workload and must see all of it.
  const queueStats = createQueueStatsReader(db, { cacheMs: 0, exactCountLimit: 100_000 });
  registerStateGauges(metrics, { queueStats, db, hub, logger, kinds: () => jobs.kindControl.list() });
  const auth = createAuthenticator(options.apiKeys, options.adminKeys);
  const app = createApp({
    jobs,
    db,
    migrations: await readMigrations(MIGRATIONS_DIR),
    logger,
    auth,
    limits: { ...TEST_LIMITS, ...options.limits },
    metrics,
    // Tests scrape the app they made; a service serves /metrics here only with METRICS_ON_API_PORT.
    serveMetrics: options.serveMetrics ?? true,
    corsOrigins: options.corsOrigins,
    sseStreams: options.sseStreams,
  });
  return { app, auth, hub, jobs, metrics, close: () => hub.stop() };
}

export interface TestAppDatabase {
  testDb: TestDatabase;
  db: Database;
  api: TestApp;
}

/** A test file's own migrated database, with a pool and the whole app on it. */
export async function openTestApp(file: string, options?: TestAppOptions): Promise<TestAppDatabase> {
  const testDb = await createTestDatabase(file);
  const db = testDb.open();
  return { testDb, db, api: await createTestApp(db, options) };
}

export async function closeTestApp({ testDb, api }: Pick<TestAppDatabase, 'testDb' | 'api'>): Promise<void> {
  await api.close();
  await testDb.drop();
}

/**
 * An HttpServer for a test's app on 127.0.0.1 and a free port, not yet started; a test overrides
 * the options it is about.
 */
export function testServer(api: Pick<TestApp, 'app' | 'auth'>, options: Partial<HttpServerOptions> = {}): HttpServer {
  return new HttpServer(api.app, {
    host: '127.0.0.1',
    port: 0,
    logger: testLogger(),
    auth: api.auth,
    maxSubscriptionsPerConnection: 100,
    maxMessageBytes: 1_000_000,
    ...options,
  });
}

/** Runs a typed operation in-process, as a client would over HTTP. */
export async function execute<Result, Variables>(
  app: App,
  document: TypedDocumentNode<Result, Variables>,
  variables?: Variables,
  headers: Record<string, string> = {},
): Promise<FormattedExecutionResult<Result>> {
  const response = await app.fetch('http://yoga/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query: print(document), variables }),
  });
  return (await response.json()) as FormattedExecutionResult<Result>;
}

/** Sends a raw GraphQL request body and returns the HTTP status and parsed answer. */
export async function post(app: App, body: unknown): Promise<{ status: number; body: FormattedExecutionResult }> {
  const response = await app.fetch('http://yoga/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as FormattedExecutionResult };
}

export function codes(result: FormattedExecutionResult): unknown[] {
  return (result.errors ?? []).map((error) => error.extensions?.code);
}

/** Reads server-sent events from a response body, yielding each `data:` payload parsed. */
export async function* sseEvents(response: Response): AsyncGenerator<unknown> {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = block
          .split('\n')
          .filter((line) => line.startsWith('data:'))
          .map((line) => line.slice(5).trim())
          .join('\n');
        if (data) yield JSON.parse(data);
        if (block.startsWith('event: complete')) return;
      }
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}

export type KeyedGraphQLAnswer = { data?: Record<string, any> | null; errors?: Array<{ message: string; extensions?: Record<string, unknown> }> };

/** The app as a client holding an API key: a REST call or a GraphQL operation, sent with `key`. */
export function keyedClient(app: Pick<App, 'fetch'>) {
  return {
    async rest(method: string, path: string, key: string, body?: unknown) {
      const response = await app.fetch(`http://yoga${path}`, {
        method,
        headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: response.status, body: (await response.json()) as Record<string, any> };
    },
    async graphql(key: string, query: string, variables?: Record<string, unknown>): Promise<KeyedGraphQLAnswer> {
      const response = await app.fetch('http://yoga/graphql', {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ query, variables }),
      });
      return (await response.json()) as KeyedGraphQLAnswer;
    },
  };
}
