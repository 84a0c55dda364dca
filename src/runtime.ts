import type { AddressInfo } from 'node:net';
import { type Config, DEFAULT_OPS_PORT } from './config.ts';
import { checkListenHears } from './db/listen-check.ts';
import { readMigrations } from './db/migrate.ts';
import { MIGRATIONS_DIR, openDatabase } from './db/open.ts';
import { createApp } from './http/app.ts';
import { createAuthenticator } from './http/auth.ts';
import { createHealthHandler } from './http/health.ts';
import { createMetricsHandler } from './http/metrics.ts';
import { OpsServer } from './http/ops-server.ts';
import { HttpServer } from './http/server.ts';
import { JobEventHub } from './jobs/events.ts';
import { createHandlers } from './jobs/handlers.ts';
import { Pruner } from './jobs/pruner.ts';
import { JobService } from './jobs/service.ts';
import type { Logger } from './logger.ts';
import { createMetrics, registerStateGauges } from './metrics/metrics.ts';
import { createQueueStatsReader } from './metrics/queue-stats.ts';
import { Worker, type WorkerOptions } from './worker/worker.ts';

export interface Runtime {
  /** Where the API listens (ROLE all or api). */
  api: AddressInfo | undefined;
  /** Where /health, /ready and /metrics listen: always for ROLE worker, with OPS_PORT for the others. */
  ops: AddressInfo | undefined;
  /** Stops taking requests, lets the worker finish or hand back its jobs, then closes the pools. */
  stop(): Promise<void>;
}

/** The worker as the settings describe it; the benchmarks build theirs here too. */
export function workerFromConfig(
  config: Config,
  parts: Pick<WorkerOptions, 'db' | 'hub' | 'logger' | 'metrics'>,
): Worker {
  return new Worker({
    ...parts,
    handlers: createHandlers({}, { addDelayMs: config.JOB_ADD_DELAY_MS }),
    concurrency: config.WORKER_CONCURRENCY,
    prefetch: config.WORKER_PREFETCH,
    pollIntervalMs: config.WORKER_POLL_INTERVAL_MS,
    jobTimeoutSeconds: config.JOB_TIMEOUT_SECONDS,
    retry: { baseDelayMs: config.RETRY_BASE_DELAY_MS, maxDelayMs: config.RETRY_MAX_DELAY_MS },
    shutdownGraceMs: config.SHUTDOWN_GRACE_MS,
  });
}

/**
 * Builds and starts every part the role asks for, in order: database (migrated) → events → job
 * service → worker and pruner → HTTP. Each part gets what it needs as arguments; nothing here is
 * global, so tests can start several in one process.
 */
export async function startRuntime(config: Config, logger: Logger): Promise<Runtime> {
  const migrations = await readMigrations(MIGRATIONS_DIR);
  const db = await openDatabase(config, migrations, logger);
  const metrics = createMetrics({ processMetrics: true });
  const hub = new JobEventHub(db, logger, { metrics });
  await hub.start();
  // In the background: a LISTEN that hears nothing (through PgBouncer) fails silently otherwise.
  if (db.kind === 'postgres') void checkListenHears(db, logger);
  const jobs = new JobService(
    db,
    hub,
    {
      maxAttempts: config.MAX_ATTEMPTS,
      numberMaxDigits: config.NUMBER_MAX_DIGITS,
      maxBatchSize: config.BATCH_MAX_JOBS,
    },
    { metrics, logger },
  );

  const runsJobs = config.ROLE !== 'api';
  const worker = runsJobs ? workerFromConfig(config, { db, hub, logger, metrics }) : undefined;
  registerStateGauges(metrics, {
    queueStats: createQueueStatsReader(db, {
      cacheMs: config.METRICS_CACHE_MS,
      exactCountLimit: config.METRICS_EXACT_COUNT_LIMIT,
    }),
    db,
    hub,
    worker,
    logger,
  });
  await worker?.start();
  const pruner = runsJobs
    ? new Pruner({
        db,
        logger,
        retentionDays: config.RETENTION_DAYS,
        completedRetentionDays: config.COMPLETED_RETENTION_DAYS,
        intervalMs: config.PRUNE_INTERVAL_SECONDS * 1000,
        batchSize: config.PRUNE_BATCH_SIZE,
      })
    : undefined;
  pruner?.start();

  let server: HttpServer | undefined;
  let ops: OpsServer | undefined;
  // A worker always serves /health, /ready and /metrics on its ops port; an API process does when
  // OPS_PORT is set, so several APIs on one host need no port each unless scraped there.
  const opsPort = config.ROLE === 'worker' ? (config.OPS_PORT ?? DEFAULT_OPS_PORT) : config.OPS_PORT;
  if (opsPort !== undefined) {
    const health = createHealthHandler({ db, migrations, logger });
    const scrape = createMetricsHandler({ registry: metrics.registry, logger });
    ops = new OpsServer([(pathname) => health(pathname), scrape], { host: config.HOST, port: opsPort });
  }
  if (config.ROLE !== 'worker') {
    const auth = createAuthenticator(config.API_KEYS);
    if (!auth.enabled) {
      const reach = ['127.0.0.1', 'localhost', '::1'].includes(config.HOST)
        ? `on ${config.HOST} only (HOST=0.0.0.0 opens it to the network)`
        : `on ${config.HOST}, as HOST asks`;
      logger.warn(
        { host: config.HOST },
        `API_KEYS is not set: the API is open, and every caller sees every job (development mode); it listens ${reach}`,
      );
    }
    const limits = {
      maxBodyBytes: config.MAX_BODY_BYTES,
      maxDepth: config.GRAPHQL_MAX_DEPTH,
      maxCost: config.GRAPHQL_MAX_COST,
      maxTokens: config.GRAPHQL_MAX_TOKENS,
      maxAliases: config.GRAPHQL_MAX_ALIASES,
      maxDirectives: config.GRAPHQL_MAX_DIRECTIVES,
    };
    const app = createApp({
      jobs,
      db,
      migrations,
      logger,
      auth,
      limits,
      metrics,
      serveMetrics: config.METRICS_ON_API_PORT,
      corsOrigins: config.CORS_ORIGINS,
      sseStreams: { perKey: config.SSE_MAX_STREAMS_PER_KEY, total: config.SSE_MAX_STREAMS },
    });
    server = new HttpServer(app, {
      host: config.HOST,
      port: config.PORT,
      logger,
      auth,
      maxSubscriptionsPerConnection: config.WS_MAX_SUBSCRIPTIONS,
      connections: { perKey: config.WS_MAX_CONNECTIONS_PER_KEY, total: config.WS_MAX_CONNECTIONS },
      corsOrigins: config.CORS_ORIGINS,
      maxMessageBytes: config.MAX_BODY_BYTES,
    });
  }
  const api = await server?.start();
  const opsAddress = await ops?.start();

  let stopping: Promise<void> | undefined;
  return {
    api,
    ops: opsAddress,
    stop() {
      // New requests stop first; then the worker finishes or hands back its jobs; pools close last.
      stopping ??= (async () => {
        await server?.stop();
        await ops?.stop();
        await pruner?.stop();
        await worker?.stop();
        await hub.stop();
        await db.close();
      })();
      return stopping;
    },
  };
}
