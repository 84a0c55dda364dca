import { availableParallelism } from 'node:os';
import { z } from 'zod';

const integer = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const postgresUrl = z
  .string()
  .url()
  .refine((url) => /^postgres(ql)?:\/\//.test(url), 'must be a postgres:// URL');
const flag = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((value) => value === 'true' || value === '1' || value === 'yes');

const httpUrl = z
  .string()
  .url()
  .refine((url) => /^https?:\/\//.test(url), 'must be an http:// or https:// URL');
// This service sends OTLP over HTTP as JSON (@opentelemetry/exporter-trace-otlp-http); any other
// protocol would be ignored silently, and an OTLP/HTTP receiver (the Collector's) takes JSON too.
const otlpProtocol = z.literal('http/json', {
  error: 'this service sends OTLP over HTTP as JSON: set http/json (an OTLP/HTTP receiver, such as the Collector, accepts it)',
});
// The exporters OTEL_TRACES_EXPORTER may name, comma-separated: only `otlp` is built in.
const tracesExporters = z
  .string()
  .transform((value) => value.split(',').map((name) => name.trim()).filter(Boolean))
  .pipe(z.array(z.enum(['otlp', 'none'], { error: 'each must be otlp or none (no other exporter is built in)' })).min(1));

/** `https://example.com` or `http://localhost:8080`, exactly as a browser sends it in `Origin`. */
const isOrigin = (text: string) => URL.canParse(text) && new URL(text).origin === text;

/** Defaults that `enqueue` applies too, outside a running service's settings. */
export const DEFAULT_MAX_ATTEMPTS = 5;
export const DEFAULT_PAYLOAD_MAX_BYTES = 262_144;

/**
 * Every setting the service reads from its environment. Parsed once, at start, by `loadConfig`;
 * nothing else reads `process.env`. Names and defaults are documented in the README.
 */
const ConfigSchema = z.object({
  DATABASE_URL: postgresUrl.optional(),
  LISTEN_DATABASE_URL: postgresUrl.optional(),
  // Without DATABASE_URL: which embedded database, in DATA_DIR (default .data/<EMBEDDED_DATABASE>).
  EMBEDDED_DATABASE: z.enum(['postgres', 'pglite']).default('postgres'),
  DATA_DIR: z.string().min(1).optional(),
  ROLE: z.enum(['all', 'api', 'worker']).default('all'),
  // Without API_KEYS the API is open, so by default it listens on loopback only (see loadConfig).
  HOST: z.string().min(1).optional(),
  PORT: integer(0, 65_535).default(4000),
  // A worker always serves its ops server (DEFAULT_OPS_PORT when unset); an API, only when set.
  OPS_PORT: integer(0, 65_535).optional(),
  METRICS_ON_API_PORT: flag.default(false),
  CORS_ORIGINS: z
    .string()
    .transform((value) => value.split(',').map((origin) => origin.trim()).filter(Boolean))
    .pipe(z.array(z.string().refine(isOrigin, 'each must be an origin, scheme://host[:port], with no path')))
    .default([]),
  DB_POOL_SIZE: integer(1, 1000).default(10),
  DB_PREPARED_STATEMENTS: flag.default(true),
  LISTEN_PROBE_INTERVAL_MS: integer(100, 600_000).default(5000),
  WORKER_CONCURRENCY: integer(1, 10_000).default(100),
  WORKER_PREFETCH: integer(0, 100_000).default(400),
  WORKER_POLL_INTERVAL_MS: integer(10, 600_000).default(2000),
  // Threads for kinds whose handler runs in one; a core is left to the event loop.
  WORKER_THREADS: integer(1, 1024).default(() => Math.max(1, availableParallelism() - 1)),
  JOB_TIMEOUT_SECONDS: integer(1, 86_400).default(30),
  MAX_ATTEMPTS: integer(1, 100).default(DEFAULT_MAX_ATTEMPTS),
  RETRY_BASE_DELAY_MS: integer(0, 3_600_000).default(1000),
  RETRY_MAX_DELAY_MS: integer(0, 86_400_000).default(300_000),
  SHUTDOWN_GRACE_MS: integer(0, 600_000).default(10_000),
  NUMBER_MAX_DIGITS: integer(1, 1000).default(100),
  BATCH_MAX_JOBS: integer(1, 100_000).default(5000),
  JOB_ADD_DELAY_MS: integer(0, 600_000).default(0),
  JOB_PAYLOAD_MAX_BYTES: integer(1024, 100_000_000).default(DEFAULT_PAYLOAD_MAX_BYTES),
  // A running job's progress is written at most this often; reports in between are coalesced.
  PROGRESS_MIN_INTERVAL_MS: integer(0, 600_000).default(250),
  PROGRESS_MAX_BYTES: integer(64, 1_000_000).default(4096),
  // A module whose exported kinds run next to the built-in ones (src/kinds/load.ts).
  JOB_KINDS_MODULE: z.string().min(1).optional(),
  API_KEYS: z
    .string()
    .transform((value) => value.split(',').map((key) => key.trim()).filter(Boolean))
    .pipe(z.array(z.string().min(16, 'each API key needs at least 16 characters')).min(1))
    .optional(),
  // Operator keys: they see every owner's jobs, and may pause kinds, act in bulk and manage every
  // schedule (README, "The operator console"). Checked as API_KEYS are, and never one of them.
  ADMIN_API_KEYS: z
    .string()
    .transform((value) => value.split(',').map((key) => key.trim()).filter(Boolean))
    .pipe(z.array(z.string().min(16, 'each admin API key needs at least 16 characters')).min(1))
    .optional(),
  MAX_BODY_BYTES: integer(1024, 100_000_000).default(1_000_000),
  GRAPHQL_MAX_DEPTH: integer(1, 100).default(10),
  GRAPHQL_MAX_COST: integer(1, 1_000_000).default(5000),
  GRAPHQL_MAX_TOKENS: integer(10, 1_000_000).default(10_000),
  GRAPHQL_MAX_ALIASES: integer(0, 1000).default(15),
  GRAPHQL_MAX_DIRECTIVES: integer(0, 1000).default(10),
  WS_MAX_SUBSCRIPTIONS: integer(1, 100_000).default(100),
  WS_MAX_CONNECTIONS_PER_KEY: integer(1, 1_000_000).default(500),
  WS_MAX_CONNECTIONS: integer(1, 1_000_000).default(10_000),
  SSE_MAX_STREAMS_PER_KEY: integer(1, 1_000_000).default(500),
  SSE_MAX_STREAMS: integer(1, 1_000_000).default(10_000),
  RETENTION_DAYS: z.coerce.number().positive().max(3650).default(7),
  COMPLETED_RETENTION_DAYS: z.coerce.number().positive().max(3650).default(30),
  PRUNE_INTERVAL_SECONDS: integer(1, 86_400).default(3600),
  PRUNE_BATCH_SIZE: integer(1, 100_000).default(1000),
  // A schedule's tick later than this was missed (no scheduler ran), and its catch-up policy decides.
  SCHEDULE_MISSED_AFTER_MS: integer(100, 86_400_000).default(10_000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  // Unset: pretty on a terminal, JSON elsewhere (chooseLogFormat in logger.ts).
  LOG_FORMAT: z.enum(['pretty', 'json']).optional(),
  // Deprecated for LOG_FORMAT, and still read: true is LOG_FORMAT=pretty, false is json.
  LOG_PRETTY: flag.optional(),
  METRICS_CACHE_MS: integer(0, 600_000).default(5000),
  OLD_TRANSACTION_WARN_SECONDS: integer(1, 86_400).default(60),
  METRICS_EXACT_COUNT_LIMIT: integer(0, 1_000_000_000).default(100_000),
  // OpenTelemetry's standard variables, as far as this service reads them: whether tracing is on
  // and where spans go (see tracingSettings in src/tracing.ts). The exporter reads
  // OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT and _COMPRESSION itself.
  OTEL_SDK_DISABLED: flag.default(false),
  OTEL_TRACES_EXPORTER: tracesExporters.optional(),
  OTEL_EXPORTER_OTLP_ENDPOINT: httpUrl.optional(),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: httpUrl.optional(),
  OTEL_EXPORTER_OTLP_PROTOCOL: otlpProtocol.optional(),
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: otlpProtocol.optional(),
  OTEL_SERVICE_NAME: z.string().min(1).default('job-service'),
  OTEL_TRACES_SAMPLER: z
    .enum(['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'])
    .default('parentbased_always_on'),
  OTEL_TRACES_SAMPLER_ARG: z.coerce.number().min(0).max(1).optional(),
  OTEL_BSP_SCHEDULE_DELAY: integer(0, 3_600_000).default(5000),
  OTEL_BSP_EXPORT_TIMEOUT: integer(1, 3_600_000).default(30_000),
  OTEL_BSP_MAX_QUEUE_SIZE: integer(1, 10_000_000).default(2048),
  OTEL_BSP_MAX_EXPORT_BATCH_SIZE: integer(1, 10_000_000).default(512),
});

export type Config = Omit<z.infer<typeof ConfigSchema>, 'HOST' | 'DATA_DIR'> & { HOST: string; DATA_DIR: string };

/** Where a worker's /health, /ready and /metrics listen when OPS_PORT is unset. */
export const DEFAULT_OPS_PORT = 9464;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Reads the settings from `env`, and throws one error naming every invalid value. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const present = Object.fromEntries(
    Object.keys(ConfigSchema.shape)
      .filter((key) => env[key] !== undefined && env[key] !== '')
      .map((key) => [key, env[key]]),
  );
  const parsed = ConfigSchema.safeParse(present);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${String(issue.path[0])}: ${issue.message}`);
    throw new ConfigError(`Invalid configuration:\n  ${problems.join('\n  ')}`);
  }
  if (parsed.data.RETRY_MAX_DELAY_MS < parsed.data.RETRY_BASE_DELAY_MS) {
    throw new ConfigError('Invalid configuration:\n  RETRY_MAX_DELAY_MS: must be at least RETRY_BASE_DELAY_MS');
  }
  if (parsed.data.OTEL_BSP_MAX_EXPORT_BATCH_SIZE > parsed.data.OTEL_BSP_MAX_QUEUE_SIZE) {
    throw new ConfigError('Invalid configuration:\n  OTEL_BSP_MAX_EXPORT_BATCH_SIZE: must be at most OTEL_BSP_MAX_QUEUE_SIZE');
  }
  const { HOST, API_KEYS, ADMIN_API_KEYS, LOG_FORMAT, LOG_PRETTY, DATA_DIR, EMBEDDED_DATABASE } = parsed.data;
  // A key in both lists would be a customer and an operator at once: which one it is must not
  // depend on the order the lists are read in.
  const both = (ADMIN_API_KEYS ?? []).filter((key) => API_KEYS?.includes(key));
  if (both.length > 0) {
    throw new ConfigError(`Invalid configuration:\n  ADMIN_API_KEYS: ${both.length} key(s) also in API_KEYS; a key is a customer's or an operator's, not both`);
  }
  return {
    ...parsed.data,
    // One folder per kind of embedded database: neither can open the other's files.
    DATA_DIR: DATA_DIR ?? `.data/${EMBEDDED_DATABASE}`,
    // An open API (no keys) on every interface lets anyone on the network, or any web page a
    // neighbour's browser visits through DNS rebinding, use it: loopback unless asked otherwise.
    HOST: HOST ?? (API_KEYS || ADMIN_API_KEYS ? '0.0.0.0' : '127.0.0.1'),
    LOG_FORMAT: LOG_FORMAT ?? (LOG_PRETTY === undefined ? undefined : LOG_PRETTY ? 'pretty' : 'json'),
  };
}
