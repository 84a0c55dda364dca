import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import type { GraphiQLOptions } from 'graphql-yoga';

const gzipAsync = promisify(gzip);

interface Asset {
  contentType: string;
  body: Uint8Array<ArrayBuffer>;
  gzipped?: Promise<Uint8Array<ArrayBuffer>>;
}

/** What a first-time visitor finds in the editor: the two operations that show the service. */
export const GRAPHIQL_DEFAULT_QUERY = `# Add two numbers. The answer is the job, still PENDING: a worker computes it.
mutation Add {
  addJob(input: { num1: "2", num2: "3" }) {
    job { id status }
  }
}

# Then put its id here to see it change live, until you retrieve it.
subscription Watch {
  jobUpdated(id: "<the job id>") { status result attempt completedOn }
}
`;

/** Keys are what Monaco passes as `label` when it asks for a worker. */
const WORKERS = { editorWorkerService: 'editor.worker.js', json: 'json.worker.js', graphql: 'graphql.worker.js' };

/** Text that sits inside an inline <script>: JSON with no way to close the element. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c');
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * GraphiQL served by the service itself. Yoga's own page loads GraphiQL from a public CDN, which
 * fails on a network that cannot reach it (and under a strict content security policy). Yoga's
 * self-hosting package inlines the whole 9 MB bundle into every page; here the same bundle is
 * split into its files under a versioned path, cached by browsers for good, and gzipped once.
 * The bundle is imported on the first asset request, so a process nobody opens GraphiQL on never
 * loads it.
 */
export function createGraphiQL() {
  const require = createRequire(import.meta.url);
  const version = (require('@graphql-yoga/render-graphiql/package.json') as { version: string }).version;
  const prefix = `/assets/graphiql/${version}/`;
  let assets: Promise<Map<string, Asset>> | undefined;

  const load = () =>
    (assets ??= import('@graphql-yoga/render-graphiql/graphiql').then((bundle) => {
      const js = 'text/javascript; charset=utf-8';
      const utf8 = new TextEncoder();
      return new Map<string, Asset>([
        ['graphiql.js', { contentType: js, body: utf8.encode(bundle.js) }],
        ['graphiql.css', { contentType: 'text/css; charset=utf-8', body: utf8.encode(bundle.css) }],
        [WORKERS.editorWorkerService, { contentType: js, body: utf8.encode(bundle.editorWorkerService) }],
        [WORKERS.json, { contentType: js, body: utf8.encode(bundle.jsonWorker) }],
        [WORKERS.graphql, { contentType: js, body: utf8.encode(bundle.graphqlWorker) }],
      ]);
    }));

  function render(options: GraphiQLOptions): string {
    const workers = Object.fromEntries(Object.entries(WORKERS).map(([label, file]) => [label, prefix + file]));
    return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(options.title ?? 'GraphiQL')}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${prefix}graphiql.css">
</head>
<body id="body" class="no-focus-outline">
<noscript>GraphiQL needs JavaScript.</noscript>
<div id="root"></div>
<script>
const workers = ${scriptJson(workers)};
self.MonacoEnvironment = { globalAPI: false, getWorkerUrl: (_moduleId, label) => workers[label] };
</script>
<script src="${prefix}graphiql.js"></script>
<script>YogaGraphiQL.renderYogaGraphiQL(document.querySelector('#root'), ${scriptJson(options)});</script>
</body>
</html>
`;
  }

  async function serveAsset(request: Request, pathname: string): Promise<Response | null> {
    if (!pathname.startsWith(prefix)) return null;
    const asset = (await load()).get(pathname.slice(prefix.length));
    if (!asset) return null;
    const headers: Record<string, string> = {
      'content-type': asset.contentType,
      // The version is in the path, so a file never changes under its URL.
      'cache-control': 'public, max-age=31536000, immutable',
      vary: 'accept-encoding',
    };
    if (!/\bgzip\b/.test(request.headers.get('accept-encoding') ?? '')) return new Response(asset.body, { headers });
    asset.gzipped ??= gzipAsync(asset.body).then((zipped) => new Uint8Array(zipped));
    return new Response(await asset.gzipped, { headers: { ...headers, 'content-encoding': 'gzip' } });
  }

  return { render, serveAsset, prefix };
}
