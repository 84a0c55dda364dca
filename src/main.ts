import { loadConfig } from './config.ts';
import { readMigrations } from './db/migrate.ts';
import { MIGRATIONS_DIR, openDatabase } from './db/open.ts';
import { createApp } from './http/app.ts';
import { createAuthenticator } from './http/auth.ts';
import { HttpServer } from './http/server.ts';
import { JobEventHub } from './jobs/events.ts';
import { createHandlers } from './jobs/handlers.ts';
import { Pruner } from './jobs/pruner.ts';
import { JobService } from './jobs/service.ts';
import { createLogger } from './logger.ts';
import { createMetrics, registerStateGauges } from './metrics/metrics.ts';
import { createQueueStatsReader } from './metrics/queue-stats.ts';
import { Worker } from './worker/worker.ts';

/** The composition root: config → database → events → worker → server → signals. */
async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config);
  process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled rejection'));

  const migrations = await readMigrations(MIGRATIONS_DIR);
  const db = await openDatabase(config, migrations, logger);
  const metrics = createMetrics({ processMetrics: true });
  const hub = new JobEventHub(db, logger, { metrics });
  await hub.start();
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

  const worker =
    config.ROLE === 'api'
      ? undefined
      : new Worker({
          db,
          hub,
          handlers: createHandlers({}, { addDelayMs: config.JOB_ADD_DELAY_MS }),
          logger,
          concurrency: config.WORKER_CONCURRENCY,
          pollIntervalMs: config.WORKER_POLL_INTERVAL_MS,
          jobTimeoutSeconds: config.JOB_TIMEOUT_SECONDS,
          retry: { baseDelayMs: config.RETRY_BASE_DELAY_MS, maxDelayMs: config.RETRY_MAX_DELAY_MS },
          shutdownGraceMs: config.SHUTDOWN_GRACE_MS,
          metrics,
        });
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
  const pruner =
    config.ROLE === 'api'
      ? undefined
      : new Pruner({
          db,
          logger,
          retentionDays: config.RETENTION_DAYS,
          completedRetentionDays: config.COMPLETED_RETENTION_DAYS,
          intervalMs: config.PRUNE_INTERVAL_SECONDS * 1000,
          batchSize: config.PRUNE_BATCH_SIZE,
        });
  pruner?.start();

  const auth = createAuthenticator(config.API_KEYS);
  if (!auth.enabled && config.ROLE !== 'worker') {
    logger.warn('API_KEYS is not set: the API is open, and every caller sees every job (development mode)');
  }
  const limits = {
    maxBodyBytes: config.MAX_BODY_BYTES,
    maxDepth: config.GRAPHQL_MAX_DEPTH,
    maxCost: config.GRAPHQL_MAX_COST,
    maxTokens: config.GRAPHQL_MAX_TOKENS,
    maxAliases: config.GRAPHQL_MAX_ALIASES,
    maxDirectives: config.GRAPHQL_MAX_DIRECTIVES,
  };
  const server =
    config.ROLE === 'worker'
      ? undefined
      : new HttpServer(createApp({ jobs, db, migrations, logger, auth, limits, metrics }), {
          host: config.HOST,
          port: config.PORT,
          logger,
          auth,
          maxSubscriptionsPerConnection: config.WS_MAX_SUBSCRIPTIONS,
          maxMessageBytes: config.MAX_BODY_BYTES,
        });
  const address = await server?.start();
  if (address) announce(address.port, logger);

  let shuttingDown = false;
  const shutDown = (signal: NodeJS.Signals) => {
    if (shuttingDown) {
      logger.warn({ signal }, 'second signal: exiting at once');
      process.exit(1);
    }
    shuttingDown = true;
    logger.info({ signal }, 'shutting down');
    // New requests stop first; then the worker finishes or hands back its jobs; pools close last.
    (async () => {
      await server?.stop();
      await pruner?.stop();
      await worker?.stop();
      await hub.stop();
      await db.close();
    })().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', shutDown);
  process.on('SIGINT', shutDown);
}

function announce(port: number, logger: ReturnType<typeof createLogger>): void {
  const base = `http://localhost:${port}`;
  const urls = {
    page: `${base}/`,
    graphql: `${base}/graphql`,
    graphiql: `${base}/graphql`,
    websocket: `ws://localhost:${port}/graphql`,
    add: `${base}/api/v1/add/:num1/:num2`,
    job: `${base}/api/v1/job/:id`,
    health: `${base}/health`,
    metrics: `${base}/metrics`,
  };
  logger.info({ urls }, 'listening');
  if (process.stdout.isTTY) {
    process.stdout.write(
      [
        '',
        `  Jobs page (open in a browser) ${urls.page}`,
        `  GraphiQL (open in a browser)  ${urls.graphiql}`,
        `  GraphQL over HTTP and SSE      ${urls.graphql}`,
        `  GraphQL over WebSocket         ${urls.websocket}`,
        `  REST: add two numbers          curl -X POST ${base}/api/v1/add/2/3`,
        `  REST: read a job               curl ${urls.job}`,
        `  Health / readiness             ${urls.health}  ${base}/ready`,
        `  Prometheus metrics             ${urls.metrics}`,
        '',
        '',
      ].join('\n'),
    );
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
