import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import type { Tracer } from '@opentelemetry/api';
import { type Config, DEFAULT_OPS_PORT } from './config.ts';
import { checkListenHears } from './db/listen-check.ts';
import { checkAutovacuum } from './db/vacuum-check.ts';
import type { Database } from './db/database.ts';
import { type Migration, readMigrations } from './db/migrate.ts';
import { MIGRATIONS_DIR, openDatabase } from './db/open.ts';
import { type AppDeps, createApp } from './http/app.ts';
import { createAuthenticator } from './http/auth.ts';
import { createHealthHandler } from './http/health.ts';
import { createMetricsHandler } from './http/metrics.ts';
import { OpsServer } from './http/ops-server.ts';
import { HttpServer } from './http/server.ts';
import { JobEventHub } from './jobs/events.ts';
import { JobIdGenerator } from './jobs/ids.ts';
import { Pruner } from './jobs/pruner.ts';
import { Scheduler } from './schedules/scheduler.ts';
import { JobService } from './jobs/service.ts';
import { addKind } from './kinds/add.ts';
import { digestKind } from './kinds/digest.ts';
import { primesKind } from './kinds/primes.ts';
import type { JobKind } from './kinds/define.ts';
import { loadKindsModule } from './kinds/load.ts';
import { KindRegistry } from './kinds/registry.ts';
import type { Logger } from './logger.ts';
import { StartStop } from './lifecycle.ts';
import { createMetrics, type Metrics, registerStateGauges } from './metrics/metrics.ts';
import { createQueueStatsReader } from './metrics/queue-stats.ts';
import { Tracing, tracingSettings } from './tracing.ts';
import type { ThreadRunner } from './worker/executor.ts';
import { ThreadPool } from './worker/thread-pool.ts';
import { Worker, type WorkerOptions } from './worker/worker.ts';

/** The built-in kinds as the settings shape them, and `extra` kinds next to them. */
export function kindsFromConfig(config: Config, extra: readonly JobKind[] = []): KindRegistry {
  return new KindRegistry([
    addKind({ maxDigits: config.NUMBER_MAX_DIGITS, delayMs: config.JOB_ADD_DELAY_MS }),
    primesKind(),
    digestKind(),
    ...extra,
  ]);
}

/** The worker as the settings describe it; the benchmarks build theirs here too. */
export function workerFromConfig(
  config: Config,
  parts: Pick<WorkerOptions, 'db' | 'hub' | 'logger' | 'metrics' | 'kinds' | 'threads' | 'tracer'>,
): Worker {
  return new Worker({
    ...parts,
    maxResultBytes: config.JOB_PAYLOAD_MAX_BYTES,
    progressMinIntervalMs: config.PROGRESS_MIN_INTERVAL_MS,
    maxProgressBytes: config.PROGRESS_MAX_BYTES,
    concurrency: config.WORKER_CONCURRENCY,
    prefetch: config.WORKER_PREFETCH,
    pollIntervalMs: config.WORKER_POLL_INTERVAL_MS,
    jobTimeoutSeconds: config.JOB_TIMEOUT_SECONDS,
    retry: { baseDelayMs: config.RETRY_BASE_DELAY_MS, maxDelayMs: config.RETRY_MAX_DELAY_MS },
    shutdownGraceMs: config.SHUTDOWN_GRACE_MS,
  });
}

export interface RuntimeOptions {
  /** Kinds to run next to the built-in ones and JOB_KINDS_MODULE's: for a service embedded in a team's own process. */
  kinds?: readonly JobKind[];
}

/**
 * Every part the role asks for, started in order: database (migrated) → events → worker,
 * pruner and scheduler → HTTP. Each part gets what it needs as arguments; nothing here is global, so tests can
 * run several in one process. A part that fails to start, or a stop that arrives meanwhile, stops
 * the parts already started, in reverse order (StartStop's contract).
 */
export class Runtime extends StartStop {
  /** Where the API listens (ROLE all or api), once started. */
  api: AddressInfo | undefined;
  /** Where /health, /ready and /metrics listen: always for ROLE worker, with OPS_PORT for the others. */
  ops: AddressInfo | undefined;
  /** How to stop each part started so far, in the order they started. */
  private readonly started: Array<() => Promise<void>> = [];

  private readonly config: Config;
  private readonly logger: Logger;
  private readonly options: RuntimeOptions;

  constructor(config: Config, logger: Logger, options: RuntimeOptions = {}) {
    super();
    this.config = config;
    this.logger = logger;
    this.options = options;
  }

  protected async onStart(signal: AbortSignal): Promise<void> {
    const { config, logger } = this;
    // First: a bad kinds module fails the start before anything else is opened.
    const ownKinds = [...(this.options.kinds ?? []), ...(config.JOB_KINDS_MODULE ? await loadKindsModule(config.JOB_KINDS_MODULE) : [])];
    const kinds = kindsFromConfig(config, ownKinds);
    // Started first and stopped last: the spans of everything stopped before it are still sent.
    const tracer = await this.startTracing(signal);
    const migrations = await readMigrations(MIGRATIONS_DIR);
    const db = await openDatabase(config, migrations, logger);
    this.started.push(() => db.close());
    const metrics = createMetrics({ processMetrics: true });
    const hub = new JobEventHub(db, logger, { metrics });
    await this.begin(hub, signal);
    // In the background: a LISTEN that hears nothing (through PgBouncer) fails silently otherwise.
    if (db.kind === 'postgres') {
      void checkListenHears(db, logger);
      void checkAutovacuum(db, logger);
    }
    const jobs = new JobService({
      db,
      hub,
      kinds,
      limits: { maxAttempts: config.MAX_ATTEMPTS, maxBatchSize: config.BATCH_MAX_JOBS, maxInputBytes: config.JOB_PAYLOAD_MAX_BYTES },
      metrics,
      logger,
      tracer,
    });

    const runsJobs = config.ROLE !== 'api';
    const threads = runsJobs ? this.threadsFor(kinds) : undefined;
    const worker = runsJobs ? workerFromConfig(config, { db, hub, logger, metrics, kinds, threads, tracer }) : undefined;
    registerStateGauges(metrics, {
      queueStats: createQueueStatsReader(db, {
        cacheMs: config.METRICS_CACHE_MS,
        exactCountLimit: config.METRICS_EXACT_COUNT_LIMIT,
      }),
      db,
      hub,
      worker,
      kinds: () => jobs.kindControl.list(),
      logger,
      oldTransactionWarnSeconds: config.OLD_TRANSACTION_WARN_SECONDS,
    });
    if (worker) await this.begin(worker, signal);
    if (runsJobs) {
      const pruner = new Pruner({
        db,
        logger,
        retentionDays: config.RETENTION_DAYS,
        completedRetentionDays: config.COMPLETED_RETENTION_DAYS,
        intervalMs: config.PRUNE_INTERVAL_SECONDS * 1000,
        batchSize: config.PRUNE_BATCH_SIZE,
      });
      await this.begin(pruner, signal);
      const scheduler = new Scheduler({
        db,
        kinds,
        ids: new JobIdGenerator(),
        logger,
        maxAttempts: config.MAX_ATTEMPTS,
        maxInputBytes: config.JOB_PAYLOAD_MAX_BYTES,
        missedAfterMs: config.SCHEDULE_MISSED_AFTER_MS,
      });
      await this.begin(scheduler, signal);
    }

    // A worker always serves /health, /ready and /metrics on its ops port; an API process does when
    // OPS_PORT is set, so several APIs on one host need no port each unless scraped there.
    const opsPort = config.ROLE === 'worker' ? (config.OPS_PORT ?? DEFAULT_OPS_PORT) : config.OPS_PORT;
    if (config.ROLE !== 'worker') await this.serveApi({ jobs, db, migrations, logger, metrics }, tracer, signal);
    if (opsPort !== undefined) await this.serveOps(db, migrations, metrics, opsPort, signal);
  }

  /** The tracer, when the OTEL_* settings turn tracing on (src/tracing.ts); undefined, and nothing started, when off. */
  private async startTracing(signal: AbortSignal): Promise<Tracer | undefined> {
    const settings = tracingSettings(this.config, `${this.config.ROLE}:${hostname()}:${process.pid}`);
    if (!settings) return undefined;
    const tracing = new Tracing(settings, this.logger);
    await this.begin(tracing, signal);
    return tracing.tracer;
  }

  /**
   * The thread pool, when a kind runs in threads. It starts with the first such job, so a
   * process that never runs one pays nothing for it: no threads, no start-up time. It stops after
   * the worker, which gives its jobs back first.
   */
  private threadsFor(kinds: KindRegistry): ThreadRunner | undefined {
    if (!kinds.usesThreads) return undefined;
    const pool = new ThreadPool({ size: this.config.WORKER_THREADS, logger: this.logger });
    this.started.push(() => pool.stop());
    return {
      async run(handler, input, context) {
        await pool.start();
        return pool.run(handler, input, context);
      },
    };
  }

  /** /health, /ready and /metrics on the ops port, for the process manager and Prometheus. */
  private async serveOps(db: Database, migrations: Migration[], metrics: Metrics, port: number, signal: AbortSignal): Promise<void> {
    const { config, logger } = this;
    const health = createHealthHandler({ db, migrations, logger });
    const scrape = createMetricsHandler({ registry: metrics.registry, logger });
    const ops = new OpsServer([(pathname) => health(pathname), scrape], { host: config.HOST, port });
    await this.begin(ops, signal);
    this.ops = ops.address;
  }

  private async serveApi(parts: Omit<AppDeps, 'auth' | 'limits'>, tracer: Tracer | undefined, signal: AbortSignal): Promise<void> {
    const { config, logger } = this;
    const auth = createAuthenticator(config.API_KEYS, config.ADMIN_API_KEYS);
    if (!auth.enabled) {
      const reach = ['127.0.0.1', 'localhost', '::1'].includes(config.HOST)
        ? `on ${config.HOST} only (HOST=0.0.0.0 opens it to the network)`
        : `on ${config.HOST}, as HOST asks`;
      logger.warn(
        { host: config.HOST },
        `API_KEYS is not set: the API is open, and every caller sees every job (development mode); it listens ${reach}`,
      );
    }
    const limits = {
      maxBodyBytes: config.MAX_BODY_BYTES,
      maxDepth: config.GRAPHQL_MAX_DEPTH,
      maxCost: config.GRAPHQL_MAX_COST,
      maxTokens: config.GRAPHQL_MAX_TOKENS,
      maxAliases: config.GRAPHQL_MAX_ALIASES,
      maxDirectives: config.GRAPHQL_MAX_DIRECTIVES,
    };
    const app = createApp({
      ...parts,
      auth,
      limits,
      serveMetrics: config.METRICS_ON_API_PORT,
      corsOrigins: config.CORS_ORIGINS,
      sseStreams: { perKey: config.SSE_MAX_STREAMS_PER_KEY, total: config.SSE_MAX_STREAMS },
    });
    const server = new HttpServer(app, {
      host: config.HOST,
      port: config.PORT,
      logger,
      auth,
      maxSubscriptionsPerConnection: config.WS_MAX_SUBSCRIPTIONS,
      connections: { perKey: config.WS_MAX_CONNECTIONS_PER_KEY, total: config.WS_MAX_CONNECTIONS },
      corsOrigins: config.CORS_ORIGINS,
      maxMessageBytes: config.MAX_BODY_BYTES,
      tracer,
    });
    await this.begin(server, signal);
    this.api = server.address;
  }

  /** Starts one part, after the ones before it, unless a stop has arrived meanwhile. */
  private async begin(part: StartStop, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    // Remembered first: a part whose own start fails has unwound itself, and its stop() is a no-op.
    this.started.push(() => part.stop());
    await part.start();
  }

  /**
   * Stops the parts in the reverse order of their start: new requests stop first; then the worker
   * finishes or hands back its jobs; the pools close last. A part that fails to stop is logged,
   * and the ones before it still stop.
   */
  protected async onStop(): Promise<void> {
    for (const stop of this.started.splice(0).reverse()) {
      await stop().catch((error: unknown) => this.logger.error({ err: error }, 'a part of the service failed to stop'));
    }
    this.api = undefined;
    this.ops = undefined;
  }
}
