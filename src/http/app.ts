import { GraphQLError } from 'graphql';
import { createGraphQLError, createYoga, maskError, type Plugin, type YogaServerInstance } from 'graphql-yoga';
import type { Database } from '../db/database.ts';
import { isConnectionError } from '../db/errors.ts';
import type { Migration } from '../db/migrate.ts';
import type { GraphQLContext } from '../graphql/builder.ts';
import { buildSchema } from '../graphql/schema.ts';
import type { Caller, JobService } from '../jobs/service.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { createGraphiQL, GRAPHIQL_DEFAULT_QUERY } from './graphiql.ts';
import { createHealthHandler } from './health.ts';
import { createMetricsHandler } from './metrics.ts';
import { createPageHandler } from './page.ts';
import { createRequestLogPlugin } from './request-log.ts';
import { createRestHandler } from './rest.ts';

export interface AppDeps {
  jobs: JobService;
  db: Database;
  migrations: readonly Migration[];
  logger: Logger;
  /** Served at /metrics when given. */
  metrics?: Metrics;
}

export type App = YogaServerInstance<Record<string, unknown>, GraphQLContext>;

export const GRAPHQL_PATH = '/graphql';

/** Jobs belong to the key that made them; until keys exist everybody is the same caller. */
function callerOf(_request: Request): Caller {
  return { owner: '' };
}

/** GraphQL errors we created on purpose carry a code already; everything else is masked. */
function isExpected(error: unknown): boolean {
  return (
    error instanceof GraphQLError &&
    (error.originalError === undefined || error.originalError === null || error.originalError instanceof GraphQLError)
  );
}

/**
 * The whole HTTP surface as one fetch handler, with no listen(): GraphQL (and GraphiQL) at
 * /graphql, the REST aliases under /api/v1, and the health checks. Tests call `app.fetch`
 * in-process; `server.ts` puts it on a port next to the WebSocket endpoint.
 */
export function createApp({ jobs, db, migrations, logger, metrics }: AppDeps): App {
  const rest = createRestHandler({ jobs, logger });
  const health = createHealthHandler({ db, migrations, logger });
  const metricsHandler = metrics ? createMetricsHandler({ registry: metrics.registry, logger }) : async () => null;
  const graphiql = createGraphiQL();
  const page = createPageHandler();

  const routes: Plugin = {
    async onRequest({ request, url, endResponse }) {
      if (url.pathname === GRAPHQL_PATH) return;
      const response =
        (await health(url.pathname)) ??
        (await metricsHandler(url.pathname)) ??
        (await graphiql.serveAsset(request, url.pathname)) ??
        (await page(request, url.pathname)) ??
        (await rest(request, url.pathname, callerOf(request)));
      endResponse(response ?? Response.json({ error: { code: 'NOT_FOUND', message: 'not found' } }, { status: 404 }));
    },
  };

  return createYoga<Record<string, unknown>, GraphQLContext>({
    schema: buildSchema(),
    graphqlEndpoint: GRAPHQL_PATH,
    landingPage: false,
    // Yoga's built-in check would take /health with an empty body; ours answers JSON next to /ready.
    healthCheckEndpoint: `${GRAPHQL_PATH}/health`,
    graphiql: { title: 'Job service', subscriptionsProtocol: 'WS', defaultQuery: GRAPHIQL_DEFAULT_QUERY },
    renderGraphiQL: graphiql.render,
    context: ({ request }) => ({ jobs, caller: callerOf(request), prisma: db.prisma }),
    logging: {
      debug: (...args) => logger.debug(args.map(String).join(' ')),
      info: (...args) => logger.info(args.map(String).join(' ')),
      warn: (...args) => logger.warn(args.map(String).join(' ')),
      error: (...args) => logger.error(args.map(String).join(' ')),
    },
    maskedErrors: {
      maskError(error, message) {
        if (isExpected(error)) return error as Error;
        const cause = error instanceof GraphQLError ? error.originalError : error;
        if (isConnectionError(cause)) {
          logger.warn({ err: cause }, 'database unavailable');
          return createGraphQLError('the database is unavailable; retry shortly', {
            extensions: { code: 'UNAVAILABLE' },
          });
        }
        logger.error({ err: cause }, 'unexpected error in a GraphQL operation');
        return maskError(error, message, false);
      },
    },
    plugins: [createRequestLogPlugin(logger), routes],
  });
}
