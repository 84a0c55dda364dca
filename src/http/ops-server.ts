import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { errorResponse } from './json.ts';
import { listen } from './listen.ts';

type Route = (pathname: string, method: string) => Promise<Response | null>;

/**
 * A small HTTP server for a process that serves no API (ROLE=worker): /health, /ready and
 * /metrics, so a supervisor can probe it and Prometheus can scrape it. No Yoga, no GraphQL.
 */
export class OpsServer {
  private readonly server: Server;
  private starting: Promise<AddressInfo> | undefined;
  private stopping: Promise<void> | undefined;

  constructor(
    private readonly routes: readonly Route[],
    private readonly options: { host: string; port: number },
  ) {
    this.server = createServer((request, response) => {
      void this.answer(request.url ?? '/', request.method ?? 'GET').then(async (answer) => {
        response.writeHead(answer.status, Object.fromEntries(answer.headers));
        response.end(request.method === 'HEAD' ? undefined : Buffer.from(await answer.arrayBuffer()));
      });
    });
  }

  start(): Promise<AddressInfo> {
    this.starting ??= listen(this.server, this.options.port, this.options.host);
    return this.starting;
  }

  stop(): Promise<void> {
    if (!this.starting) return Promise.resolve();
    this.stopping ??= (async () => {
      await this.starting?.catch(() => undefined);
      await new Promise<void>((resolve) => {
        this.server.close(() => resolve());
        this.server.closeAllConnections();
      });
    })();
    return this.stopping;
  }

  private async answer(target: string, method: string): Promise<Response> {
    const pathname = target.split('?')[0] ?? '/';
    try {
      for (const route of this.routes) {
        const response = await route(pathname, method);
        if (response) return response;
      }
      return errorResponse(404, 'NOT_FOUND', `no route ${method} ${pathname}`);
    } catch {
      return errorResponse(503, 'UNAVAILABLE', 'unavailable; retry shortly');
    }
  }
}
