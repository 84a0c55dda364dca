import { loadConfig } from './config.ts';
import { createLogger } from './logger.ts';
import { StoppedDuringStartError } from './lifecycle.ts';
import { Runtime } from './runtime.ts';

/**
 * The composition root: config → runtime (database, events, worker, server) → signals. The signal
 * handlers are in place before the start, so a SIGTERM during it stops what has started.
 */
async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config);
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
  const opsBase = runtime.ops ? `http://localhost:${runtime.ops.port}` : undefined;
  const opsUrls = opsBase ? { health: `${opsBase}/health`, ready: `${opsBase}/ready`, metrics: `${opsBase}/metrics` } : undefined;
  if (runtime.api) {
    const metricsUrl = config.METRICS_ON_API_PORT ? `http://localhost:${runtime.api.port}/metrics` : opsUrls?.metrics;
    announce(runtime.api.port, metricsUrl, logger);
    if (opsUrls) logger.info({ ops: opsUrls }, 'ops server listening');
  } else if (opsUrls) {
    logger.info({ urls: opsUrls }, 'worker running');
  }
}

function announce(port: number, metricsUrl: string | undefined, logger: ReturnType<typeof createLogger>): void {
  const base = `http://localhost:${port}`;
  const urls = {
    page: `${base}/`,
    graphql: `${base}/graphql`,
    graphiql: `${base}/graphql`,
    websocket: `ws://localhost:${port}/graphql`,
    add: `${base}/api/v1/add/:num1/:num2`,
    job: `${base}/api/v1/job/:id`,
    health: `${base}/health`,
    ...(metricsUrl ? { metrics: metricsUrl } : {}),
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
        `  Prometheus metrics             ${urls.metrics ?? 'off (set OPS_PORT or METRICS_ON_API_PORT=true)'}`,
        '',
        '',
      ].join('\n'),
    );
  }
}

main().catch((error: unknown) => {
  // The runtime has stopped what it started; the message is what an operator reads.
  console.error(`the service could not start: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
