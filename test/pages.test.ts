import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeTestApp, createTestApp, openTestApp, type TestApp } from './helpers/api.ts';
import type { TestDatabase } from './helpers/database.ts';

let testDb: TestDatabase;
let api: TestApp;

beforeAll(async () => {
  ({ testDb, api } = await openTestApp(import.meta.filename));
});

afterAll(() => closeTestApp({ testDb, api }));

function get(path: string, headers: Record<string, string> = {}) {
  return api.app.fetch(`http://yoga${path}`, { headers });
}

/** The same-origin URLs a page loads: stylesheets, scripts and Monaco's workers. */
function assetsOf(html: string): string[] {
  return [...html.matchAll(/(?:href|src)="(\/[^"]+)"|"(\/assets\/[^"]+)"/g)].map((match) => match[1] ?? match[2]!);
}

describe('GraphiQL', () => {
  it('is served from this service, with no file from another origin', async () => {
    const response = await get('/graphql', { accept: 'text/html' });
    expect(response.status).toBe(200);
    const html = await response.text();
    expect(html).not.toMatch(/https?:\/\//);
    const assets = assetsOf(html);
    expect(assets).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^\/assets\/graphiql\/[\d.]+\/graphiql\.css$/),
        expect.stringMatching(/\/graphiql\.js$/),
        expect.stringMatching(/\/graphql\.worker\.js$/),
      ]),
    );
    for (const path of assets) {
      const asset = await get(path);
      expect(asset.status, path).toBe(200);
      expect(asset.headers.get('cache-control')).toMatch(/immutable/);
      expect((await asset.arrayBuffer()).byteLength).toBeGreaterThan(1000);
    }
  });

  it('sends its bundle gzipped to a browser that takes gzip', async () => {
    const [script] = assetsOf(await (await get('/graphql', { accept: 'text/html' })).text()).filter((path) =>
      path.endsWith('/graphiql.js'),
    );
    const plain = await get(script!);
    const zipped = await get(script!, { 'accept-encoding': 'gzip, br' });
    expect(zipped.headers.get('content-encoding')).toBe('gzip');
    expect(zipped.headers.get('content-type')).toMatch(/^text\/javascript/);
    const body = Buffer.from(await zipped.arrayBuffer());
    const original = Buffer.from(await plain.arrayBuffer());
    expect(gunzipSync(body).equals(original)).toBe(true);
    expect(body.byteLength).toBeLessThan(original.byteLength / 2);
  });

  it('answers an unknown asset with a 404', async () => {
    expect((await get('/assets/graphiql/0.0.0/graphiql.js')).status).toBe(404);
  });
});

describe('the jobs page', () => {
  it('is served at / with a strict content security policy', async () => {
    const response = await get('/');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(response.headers.get('content-security-policy')).toMatch(/default-src 'none'.*script-src 'self'/);
    const html = await response.text();
    expect(html).toMatch(/<html lang="en">/);
    expect(html).toMatch(/<label for="num1">/);
    expect(html).toMatch(/href="\/graphql"/);
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).not.toMatch(/<script>|<style>|style="/);
  });

  it('loads its script, stylesheets, the graphql-ws client and uPlot from this service', async () => {
    const assets = assetsOf(await (await get('/')).text()).filter((path) => path.startsWith('/assets/'));
    expect(assets).toEqual(['/assets/uplot.css', '/assets/app.css', '/assets/graphql-ws.js', '/assets/uplot.js', '/assets/app.js']);
    const types = await Promise.all(assets.map(async (path) => (await get(path)).headers.get('content-type')));
    const css = 'text/css; charset=utf-8';
    const javascript = 'text/javascript; charset=utf-8';
    expect(types).toEqual([css, css, javascript, javascript, javascript]);
    expect(await (await get('/assets/graphql-ws.js')).text()).toContain('graphqlWs');
    expect(await (await get('/assets/uplot.js')).text()).toContain('uPlot');
  });

  it('serves the modules its script imports', async () => {
    const script = await (await get('/assets/app.js')).text();
    const imports = [...script.matchAll(/^import .* from '\.\/([\w-]+\.js)';$/gm)].map((match) => `/assets/${match[1]}`);
    expect(imports).toEqual(['/assets/console.js', '/assets/schema-form.js']);
    for (const [path, exported] of [[imports[0]!, 'export function startConsole'], [imports[1]!, 'export function buildSchemaForm']] as const) {
      const module = await get(path);
      expect(module.status).toBe(200);
      expect(module.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
      expect(await module.text()).toContain(exported);
    }
  });

  it("serves the module the console imports: the workflow graph's", async () => {
    const script = await (await get('/assets/console.js')).text();
    const imports = [...script.matchAll(/^import .* from '\.\/([\w-]+\.js)';$/gm)].map((match) => `/assets/${match[1]}`);
    expect(imports).toEqual(['/assets/workflow-graph.js']);
    const module = await get(imports[0]!);
    expect(module.status).toBe(200);
    expect(module.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(await module.text()).toContain('export function startWorkflowView');
  });

  it('answers a repeated load with 304 when nothing changed', async () => {
    const first = await get('/assets/app.js');
    const etag = first.headers.get('etag')!;
    expect(first.headers.get('cache-control')).toBe('no-cache');
    const again = await get('/assets/app.js', { 'if-none-match': etag });
    expect(again.status).toBe(304);
  });

  it('refuses other methods', async () => {
    const response = await api.app.fetch('http://yoga/', { method: 'POST' });
    expect(response.status).toBe(405);
    expect((await response.json()).error.code).toBe('METHOD_NOT_ALLOWED');
  });
});

describe('on a service with API keys', () => {
  it('serves the page, its assets, GraphiQL and /metrics without a key, and nothing else', async () => {
    const keyed = await createTestApp(testDb.open(), { apiKeys: ['pages-test-key-0123456789'] });
    try {
      const status = async (path: string, headers: Record<string, string> = {}) =>
        (await keyed.app.fetch(`http://yoga${path}`, { headers })).status;
      for (const path of ['/', '/assets/app.js', '/assets/schema-form.js', '/assets/app.css', '/assets/graphql-ws.js', '/metrics', '/health']) {
        expect(await status(path), path).toBe(200);
      }
      expect(await status('/graphql', { accept: 'text/html' })).toBe(200);
      expect(await status('/api/v1/add/1/2')).toBe(401);
    } finally {
      await keyed.close();
    }
  });
});
