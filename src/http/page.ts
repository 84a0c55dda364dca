import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorResponse } from './json.ts';

interface StaticFile {
  path: string;
  contentType: string;
  headers?: Record<string, string>;
}

interface Loaded {
  body: Uint8Array<ArrayBuffer>;
  etag: string;
}

const PAGE_DIR = fileURLToPath(new URL('./page/', import.meta.url));

/*
 * The page loads nothing from another origin and runs no inline script, so the policy can be
 * strict. `connect-src 'self'` covers fetch to /graphql and the WebSocket to the same host.
 */
const PAGE_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

/**
 * The jobs page at `/`: one HTML file, its scripts (app.js imports schema-form.js and console.js,
 * which imports workflow-graph.js), its stylesheet,
 * and graphql-ws's browser build from node_modules. No build step; files are read once, on first
 * request. They are revalidated on every load (ETag), so a deploy shows at once and an unchanged
 * file costs a 304.
 */
export function createPageHandler() {
  const require = createRequire(import.meta.url);
  const graphqlWs = join(dirname(require.resolve('graphql-ws')), '..', 'umd', 'graphql-ws.min.js');
  // uPlot draws the console's charts; served from node_modules like graphql-ws, never another origin.
  const uplot = dirname(require.resolve('uplot'));
  const javascript = 'text/javascript; charset=utf-8';
  const files = new Map<string, StaticFile>([
    ['/', { path: join(PAGE_DIR, 'index.html'), contentType: 'text/html; charset=utf-8', headers: PAGE_HEADERS }],
    ['/assets/app.js', { path: join(PAGE_DIR, 'app.js'), contentType: javascript }],
    ['/assets/schema-form.js', { path: join(PAGE_DIR, 'schema-form.js'), contentType: javascript }],
    ['/assets/app.css', { path: join(PAGE_DIR, 'app.css'), contentType: 'text/css; charset=utf-8' }],
    ['/assets/graphql-ws.js', { path: graphqlWs, contentType: javascript }],
    ['/assets/console.js', { path: join(PAGE_DIR, 'console.js'), contentType: javascript }],
    ['/assets/workflow-graph.js', { path: join(PAGE_DIR, 'workflow-graph.js'), contentType: javascript }],
    ['/assets/uplot.js', { path: join(uplot, 'uPlot.iife.min.js'), contentType: javascript }],
    ['/assets/uplot.css', { path: join(uplot, 'uPlot.min.css'), contentType: 'text/css; charset=utf-8' }],
  ]);
  const loaded = new Map<string, Promise<Loaded>>();

  const load = (file: StaticFile) => {
    let content = loaded.get(file.path);
    if (!content) {
      content = readFile(file.path).then((buffer) => ({
        body: new Uint8Array(buffer),
        etag: `"${createHash('sha256').update(buffer).digest('base64url').slice(0, 22)}"`,
      }));
      content.catch(() => loaded.delete(file.path));
      loaded.set(file.path, content);
    }
    return content;
  };

  return async (request: Request, pathname: string): Promise<Response | null> => {
    const file = files.get(pathname);
    if (!file) return null;
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      return errorResponse(405, 'METHOD_NOT_ALLOWED', `${request.method} is not allowed here`);
    }
    const { body, etag } = await load(file);
    const headers = {
      'content-type': file.contentType,
      'cache-control': 'no-cache',
      etag,
      'x-content-type-options': 'nosniff',
      ...file.headers,
    };
    if (request.headers.get('if-none-match') === etag) return new Response(null, { status: 304, headers });
    return new Response(request.method === 'HEAD' ? null : body, { headers });
  };
}
