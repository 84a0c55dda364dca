import type { Registry } from 'prom-client';
import type { Logger } from '../logger.ts';
import { errorResponse } from './json.ts';

export const METRICS_PATH = '/metrics';

/** The exposition text of a registry. Plain data, so any server can send it. */
export async function renderMetrics(registry: Registry): Promise<{ contentType: string; body: string }> {
  return { contentType: registry.contentType, body: await registry.metrics() };
}

/**
 * `GET /metrics` in the Prometheus text format. It knows nothing of Yoga: the app routes to it,
 * and a worker-only process can put the same handler behind a bare node:http server.
 */
export function createMetricsHandler({ registry, logger }: { registry: Registry; logger: Logger }) {
  return async (pathname: string, method = 'GET'): Promise<Response | null> => {
    if (pathname !== METRICS_PATH) return null;
    if (method !== 'GET' && method !== 'HEAD') {
      return errorResponse(405, 'METHOD_NOT_ALLOWED', `${method} is not allowed here`);
    }
    try {
      const { contentType, body } = await renderMetrics(registry);
      return new Response(body, { headers: { 'content-type': contentType, 'cache-control': 'no-store' } });
    } catch (error) {
      // A collector failed (the database may be away); the scrape shows as down, and is retried.
      logger.error({ err: error }, 'rendering metrics failed');
      return errorResponse(503, 'UNAVAILABLE', 'metrics are unavailable; retry shortly');
    }
  };
}
