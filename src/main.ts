import { announceStart } from './banner.ts';
import { loadConfig } from './config.ts';
import { chooseLogFormat, createLogger } from './logger.ts';
import { StoppedDuringStartError } from './lifecycle.ts';
import { Runtime } from './runtime.ts';

/**
 * The composition root: config → runtime (database, events, worker, server) → signals. The signal
 * handlers are in place before the start, so a SIGTERM during it stops what has started.
 */
async function main(): Promise<void> {
  const config = loadConfig();
  const format = chooseLogFormat(config.LOG_FORMAT, process.stdout.isTTY === true);
  const logger = createLogger({ level: config.LOG_LEVEL, format });
  if (config.LOG_PRETTY !== undefined) {
    logger.warn(`LOG_PRETTY is deprecated: set LOG_FORMAT=${config.LOG_PRETTY ? 'pretty' : 'json'} instead`);
  }
  process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled rejection'));

  const runtime = new Runtime(config, logger);
  let shuttingDown = false;
  const shutDown = (signal: NodeJS.Signals) => {
    if (shuttingDown) {
      logger.warn({ signal }, 'second signal: exiting at once');
      process.exit(1);
    }
    shuttingDown = true;
    logger.info({ signal }, 'shutting down');
    runtime.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', shutDown);
  process.on('SIGINT', shutDown);

  try {
    await runtime.start();
  } catch (error) {
    // A signal during the start: the handler above exits once the parts are down.
    if (error instanceof StoppedDuringStartError) return;
    throw error;
  }
  announceStart(
    { apiPort: runtime.api?.port, opsPort: runtime.ops?.port, metricsOnApiPort: config.METRICS_ON_API_PORT },
    format,
    logger,
  );
}

main().catch((error: unknown) => {
  // The runtime has stopped what it started; the message is what an operator reads.
  console.error(`the service could not start: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
