import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import { useCSRFPrevention } from '@graphql-yoga/plugin-csrf-prevention';
import { GraphQLError } from 'graphql';
import { createGraphQLError, createYoga, maskError, type Plugin, type YogaServerInstance } from 'graphql-yoga';
import type { Database } from '../db/database.ts';
import { isTransient } from '../db/errors.ts';
import type { Migration } from '../db/migrate.ts';
import type { GraphQLContext } from '../graphql/builder.ts';
import { withCode } from '../graphql/errors.ts';
import { createJobLoaders } from '../graphql/loaders.ts';
import { buildSchema } from '../graphql/schema.ts';
import { createSharedSubscriptionsPlugin } from '../graphql/shared-subscriptions.ts';
import type { Caller, JobService } from '../jobs/service.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { Authenticator } from './auth.ts';
import { createBodyLimitPlugin } from './body-limit.ts';
import { createErrorLog, isExpected } from './error-log.ts';
import { createGraphiQL, GRAPHIQL_DEFAULT_QUERY } from './graphiql.ts';
import { createHealthHandler } from './health.ts';
import { createHttpSubscriptionsPlugin } from './http-subscriptions.ts';
import { errorResponse } from './json.ts';
import { createMetricsHandler } from './metrics.ts';
import { buildOpenApiDocument } from './openapi.ts';
import { createOriginPolicy, originOfRequest } from './origins.ts';
import { createPageHandler } from './page.ts';
import { createRequestLog } from './request-log.ts';
import { createRestHandler } from './rest.ts';
import { StreamBudget, type StreamLimits } from './stream-limits.ts';

/** Bounds on what one request may ask for; each is a setting (see src/config.ts). */
export interface ApiLimits {
  maxBodyBytes: number;
  maxDepth: number;
  maxCost: number;
  maxTokens: number;
  maxAliases: number;
  maxDirectives: number;
}

export interface AppDeps {
  jobs: JobService;
  db: Database;
  migrations: readonly Migration[];
  logger: Logger;
  auth: Authenticator;
  limits: ApiLimits;
  /** Counts this app's subscriptions; its registry is served at /metrics with `serveMetrics`. */
  metrics?: Metrics;
  /** METRICS_ON_API_PORT: /metrics shows counts across all owners, so it is off unless asked. */
  serveMetrics?: boolean;
  /** CORS_ORIGINS: the only origins whose pages may call the API from a browser. */
  corsOrigins?: readonly string[];
  /** SSE subscription streams open at once; unbounded when not given. */
  sseStreams?: StreamLimits;
}

const UNBOUNDED: StreamLimits = { perKey: Number.POSITIVE_INFINITY, total: Number.POSITIVE_INFINITY };

export type App = YogaServerInstance<Record<string, unknown>, GraphQLContext>;

export const GRAPHQL_PATH = '/graphql';

/** The header every request carries, except a WebSocket one, which may send it at connection init. */
const CSRF_HEADER = 'x-graphql-yoga-csrf';

function unauthenticated() {
  return createGraphQLError('a valid API key is required: send Authorization: Bearer <key>', {
    extensions: { code: 'UNAUTHENTICATED', http: { status: 401, headers: { 'www-authenticate': 'Bearer' } } },
  });
}

/** The Authorization header of an HTTP request, or of a WebSocket's connection_init or upgrade. */
function authorizationOf(initial: Record<string, unknown>): string | null {
  const request = initial['request'] as Request | undefined;
  if (request) return request.headers.get('authorization');
  const params = initial['connectionParams'] as Record<string, unknown> | undefined;
  if (typeof params?.['authorization'] === 'string') return params['authorization'];
  const upgrade = initial['req'] as { headers?: Record<string, string | string[] | undefined> } | undefined;
  const header = upgrade?.headers?.['authorization'];
  return typeof header === 'string' ? header : null;
}

/**
 * graphql-js parses recursively, so a document nested a few thousand brackets deep overflows the
 * stack before the token or depth limits can refuse it (4 kB of `[` does it). The document is at
 * fault, not the server: it becomes a parse error, which Yoga's parse cache then remembers.
 */
const nestingGuard: Plugin = {
  onParse() {
    return ({ result, replaceParseResult }) => {
      if (result instanceof RangeError) {
        replaceParseResult(
          createGraphQLError('the document is nested too deeply to parse', {
            extensions: { code: 'GRAPHQL_PARSE_FAILED' },
          }),
        );
      }
    };
  },
};

/**
 * Yoga reads `variables` and `extensions` from a GET's query string (or a form POST) with a bare
 * JSON.parse, so `?variables={` threw a SyntaxError that was masked as a 500. The request is
 * malformed: a 400, as Yoga answers a POST body that is not JSON.
 */
const paramsGuard: Plugin = {
  onRequestParse({ requestParser, setRequestParser }) {
    if (!requestParser) return;
    setRequestParser(async (request) => {
      try {
        return await requestParser(request);
      } catch (error) {
        if (!(error instanceof SyntaxError)) throw error;
        throw createGraphQLError('variables and extensions must be JSON', {
          extensions: { code: 'BAD_REQUEST', http: { status: 400 } },
        });
      }
    });
  },
};

/**
 * Everything but /graphql: the probes, /metrics, GraphiQL's and the page's files, and the REST
 * routes, which are refused to a foreign browser and to a caller without a key.
 */
interface RouteParts {
  errorLog: ReturnType<typeof createErrorLog>;
  origins: ReturnType<typeof createOriginPolicy>;
  graphiql: ReturnType<typeof createGraphiQL>;
}

function createRoutes(deps: AppDeps, { errorLog, origins, graphiql }: RouteParts): Plugin {
  const { jobs, db, migrations, logger, auth, metrics } = deps;
  // Built on its first request, then kept: it never changes while the app runs.
  let openApi: ReturnType<typeof buildOpenApiDocument> | undefined;
  const rest = createRestHandler({
    jobs,
    errorLog,
    maxBodyBytes: deps.limits.maxBodyBytes,
    openApiDocument: () => (openApi ??= buildOpenApiDocument()),
  });
  const health = createHealthHandler({ db, migrations, logger });
  const metricsHandler =
    metrics && deps.serveMetrics ? createMetricsHandler({ registry: metrics.registry, logger }) : async () => null;
  const page = createPageHandler();
  return {
    async onRequest({ request, url, endResponse }) {
      if (url.pathname === GRAPHQL_PATH) return;
      // Probes, metrics and the static files hold no customer's data and answer without a key
      // (keep /metrics off the public network); the page's own calls to /graphql need one.
      const open =
        (await health(url.pathname)) ??
        (await metricsHandler(url.pathname, request.method)) ??
        (await graphiql.serveAsset(request, url.pathname)) ??
        (await page(request, url.pathname));
      if (open) return endResponse(open);
      // Every REST route writes (adding a job, or handing its result over), and a browser sends
      // a cross-site form POST or <img> GET without asking first; Yoga's CSRF check covers only
      // /graphql. So a browser request from another site is refused here; curl sends neither
      // Origin nor Sec-Fetch-Site and is not affected.
      if (url.pathname.startsWith('/api/') && origins.isForeign(originOfRequest(request))) {
        return endResponse(
          errorResponse(403, 'FORBIDDEN', 'cross-origin requests are refused; list the origin in CORS_ORIGINS to allow it'),
        );
      }
      const caller = auth.authenticate(request.headers.get('authorization'));
      if (!caller && url.pathname.startsWith('/api/')) {
        return endResponse(
          errorResponse(401, 'UNAUTHENTICATED', 'a valid API key is required: send Authorization: Bearer <key>'),
        );
      }
      endResponse(
        (caller && (await rest(request, url.pathname, caller))) ?? errorResponse(404, 'NOT_FOUND', 'not found'),
      );
    },
  };
}

/** Expected errors keep their message and code; a lost database says so; anything else is masked. */
function maskUnexpected(error: unknown, message: string): Error {
  if (isExpected(error)) return withCode(error as GraphQLError, 'GRAPHQL_VALIDATION_FAILED');
  const cause = error instanceof GraphQLError ? error.originalError : error;
  if (isTransient(cause)) {
    return createGraphQLError('the database is unavailable; retry shortly', {
      extensions: { code: 'UNAVAILABLE' },
    });
  }
  return maskError(error, message, false);
}

/**
 * The whole HTTP surface as one fetch handler, with no listen(): GraphQL (and GraphiQL) at
 * /graphql, the REST aliases under /api/v1, and the health checks. Tests call `app.fetch`
 * in-process; `server.ts` puts it on a port next to the WebSocket endpoint.
 */
export function createApp(deps: AppDeps): App {
  const { jobs, logger, auth, limits, metrics } = deps;
  const requestLog = createRequestLog(logger);
  const errorLog = createErrorLog(logger, requestLog.idOf);
  const origins = createOriginPolicy(deps.corsOrigins ?? []);
  const sseStreams = new StreamBudget(deps.sseStreams ?? UNBOUNDED, 'SSE streams');
  const graphiql = createGraphiQL();

  return createYoga<Record<string, unknown>, GraphQLContext>({
    schema: buildSchema(),
    graphqlEndpoint: GRAPHQL_PATH,
    landingPage: false,
    cors: (request) => origins.cors(request),
    // Yoga's built-in check would take /health with an empty body; ours answers JSON next to /ready.
    healthCheckEndpoint: `${GRAPHQL_PATH}/health`,
    graphiql: { title: 'Job service', subscriptionsProtocol: 'WS', defaultQuery: GRAPHIQL_DEFAULT_QUERY },
    renderGraphiQL: graphiql.render,
    // Enforced by createBodyLimitPlugin instead: Yoga's own limit streams every body (see there).
    maxRequestBodySize: false,
    context: (initial) => {
      const caller = auth.authenticate(authorizationOf(initial));
      if (!caller) throw unauthenticated();
      return { jobs, caller, loaders: createJobLoaders(jobs) };
    },
    logging: errorLog.yogaLogger,
    // Logged by errorLog.plugin, with the request's id, before they are masked here.
    maskedErrors: { maskError: maskUnexpected },
    plugins: [
      requestLog.plugin,
      errorLog.plugin,
      createRoutes(deps, { errorLog, origins, graphiql }),
      // A browser will send a "simple" cross-site request without asking; requiring a custom
      // header (or a JSON content type) makes every such request preflighted, so a foreign page
      // cannot make a visitor's browser call the API.
      useCSRFPrevention({ requestHeaders: [CSRF_HEADER] }),
      EnvelopArmorPlugin({
        maxDepth: { n: limits.maxDepth },
        costLimit: { maxCost: limits.maxCost },
        maxTokens: { n: limits.maxTokens },
        maxAliases: { n: limits.maxAliases },
        maxDirectives: { n: limits.maxDirectives },
        // Suggestions would hand the schema to anybody probing with typos; it is public anyway
        // through introspection, but keep the error answers short.
        blockFieldSuggestion: { enabled: true },
      }),
      nestingGuard,
      paramsGuard,
      createBodyLimitPlugin(limits.maxBodyBytes),
      createSharedSubscriptionsPlugin(metrics?.subscriptionsOpen),
      // After the shared subscriptions, so that it wraps what they return.
      createHttpSubscriptionsPlugin(sseStreams),
    ],
  });
}
