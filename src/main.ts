import { loadConfig } from './config.ts';
import { openDatabase } from './db/open.ts';
import { JobEventHub } from './jobs/events.ts';
import { createHandlers } from './jobs/handlers.ts';
import { createLogger } from './logger.ts';
import { Worker } from './worker/worker.ts';

/** The composition root: config → database → events → worker → signals. */
async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config);
  process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled rejection'));

  const db = await openDatabase(config, logger);
  const hub = new JobEventHub(db, logger);
  await hub.start();
  const worker =
    config.ROLE === 'api'
      ? undefined
      : new Worker({
          db,
          hub,
          handlers: createHandlers(),
          logger,
          concurrency: config.WORKER_CONCURRENCY,
          pollIntervalMs: config.WORKER_POLL_INTERVAL_MS,
          jobTimeoutSeconds: config.JOB_TIMEOUT_SECONDS,
          retry: { baseDelayMs: config.RETRY_BASE_DELAY_MS, maxDelayMs: config.RETRY_MAX_DELAY_MS },
          shutdownGraceMs: config.SHUTDOWN_GRACE_MS,
        });
  await worker?.start();

  let shuttingDown = false;
  const shutDown = (signal: NodeJS.Signals) => {
    if (shuttingDown) {
      logger.warn({ signal }, 'second signal: exiting at once');
      process.exit(1);
    }
    shuttingDown = true;
    logger.info({ signal }, 'shutting down');
    (async () => {
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

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
