import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { StartStop } from '../lifecycle.ts';
import { errorResponse } from './json.ts';
import { listen } from './listen.ts';

type Route = (pathname: string, method: string) => Promise<Response | null>;

/**
 * A small HTTP server for a process that serves no API (ROLE=worker): /health, /ready and
 * /metrics, so a supervisor can probe it and Prometheus can scrape it. No Yoga, no GraphQL.
 */
export class OpsServer extends StartStop {
  private server: Server | undefined;
  private bound: AddressInfo | undefined;

  private readonly routes: readonly Route[];
  private readonly options: { host: string; port: number };

  constructor(routes: readonly Route[], options: { host: string; port: number }) {
    super();
    this.routes = routes;
    this.options = options;
  }

  /** Where the server listens; set once it has started (useful with port 0). */
  get address(): AddressInfo {
    if (!this.bound) throw new Error('the ops server is not listening');
    return this.bound;
  }

  protected async onStart(): Promise<void> {
    const server = createServer((request, response) => {
      void this.answer(request.url ?? '/', request.method ?? 'GET').then(async (answer) => {
        response.writeHead(answer.status, Object.fromEntries(answer.headers));
        response.end(request.method === 'HEAD' ? undefined : Buffer.from(await answer.arrayBuffer()));
      });
    });
    this.server = server;
    this.bound = await listen(server, this.options.port, this.options.host);
  }

  protected async onStop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.bound = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
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
