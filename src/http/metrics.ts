import type { Registry } from 'prom-client';
import type { Logger } from '../logger.ts';

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
  return async (pathname: string): Promise<Response | null> => {
    if (pathname !== METRICS_PATH) return null;
    try {
      const { contentType, body } = await renderMetrics(registry);
      return new Response(body, { headers: { 'content-type': contentType, 'cache-control': 'no-store' } });
    } catch (error) {
      logger.error({ err: error }, 'rendering metrics failed');
      return new Response('metrics unavailable\n', { status: 500, headers: { 'content-type': 'text/plain' } });
    }
  };
}
