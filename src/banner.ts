import type { Logger, LogFormat } from './logger.ts';

export interface StartedAddresses {
  /** The API's port, when this process serves the API (ROLE all or api). */
  apiPort: number | undefined;
  /** The ops server's port (/health, /ready, /metrics), when it runs. */
  opsPort: number | undefined;
  /** METRICS_ON_API_PORT: /metrics on the API's port as well. */
  metricsOnApiPort: boolean;
}

/** The ops server's URLs: /health, /ready and /metrics on its own port. */
type OpsUrls = { health: string; ready: string; metrics: string };

/**
 * Says where a started process serves. In JSON the URLs are fields of the `listening`,
 * `ops server listening` and `worker running` lines, for tools. Pretty, the `listening` (or
 * `worker running`) line is followed by a short block of what a person opens or runs.
 */
export function announceStart(addresses: StartedAddresses, format: LogFormat, logger: Logger): void {
  const { apiPort, opsPort } = addresses;
  const opsBase = opsPort === undefined ? undefined : `http://localhost:${opsPort}`;
  const ops = opsBase ? { health: `${opsBase}/health`, ready: `${opsBase}/ready`, metrics: `${opsBase}/metrics` } : undefined;
  if (apiPort !== undefined) announceApi(apiPort, ops, addresses.metricsOnApiPort, format, logger);
  else if (ops) announceWorker(ops, format, logger);
}

function announceWorker(ops: OpsUrls, format: LogFormat, logger: Logger): void {
  if (format === 'json') {
    logger.info({ urls: ops }, 'worker running');
    return;
  }
  logger.info(
    block('worker running', [
      ['Health / readiness', `${ops.health}  ${ops.ready}`],
      ['Prometheus metrics', ops.metrics],
    ]),
  );
}

function announceApi(port: number, ops: OpsUrls | undefined, metricsOnApiPort: boolean, format: LogFormat, logger: Logger): void {
  const base = `http://localhost:${port}`;
  const metrics = metricsOnApiPort ? `${base}/metrics` : ops?.metrics;
  const urls = {
    page: `${base}/`,
    graphql: `${base}/graphql`,
    graphiql: `${base}/graphql`,
    websocket: `ws://localhost:${port}/graphql`,
    add: `${base}/api/v1/add/:num1/:num2`,
    job: `${base}/api/v1/job/:id`,
    health: `${base}/health`,
    ...(metrics ? { metrics } : {}),
  };
  if (format === 'json') {
    logger.info({ urls }, 'listening');
    if (ops) logger.info({ ops }, 'ops server listening');
    return;
  }
  logger.info(
    block('listening', [
      ['Jobs page (open in a browser)', urls.page],
      ['GraphiQL (open in a browser)', urls.graphiql],
      ['GraphQL over HTTP and SSE', urls.graphql],
      ['GraphQL over WebSocket', urls.websocket],
      ['REST: add two numbers', `curl -X POST ${base}/api/v1/add/2/3`],
      ['REST: read a job', `curl ${urls.job}`],
      ['Health / readiness', `${urls.health}  ${base}/ready`],
      ['Prometheus metrics', metrics ?? 'off (set OPS_PORT or METRICS_ON_API_PORT=true)'],
      ...(ops ? [['Ops server (health, ready)', `${ops.health}  ${ops.ready}`] as const] : []),
    ]),
  );
}

/** `title`, then one indented line per entry, the values lined up in one column. */
function block(title: string, entries: ReadonlyArray<readonly [string, string]>): string {
  const width = Math.max(...entries.map(([label]) => label.length));
  return [title, ...entries.map(([label, value]) => `  ${label.padEnd(width)}  ${value}`)].join('\n');
}
