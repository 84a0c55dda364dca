/**
 * OpenTelemetry traces, on only when the standard OTEL_* settings ask for them. The rest of the
 * service sees a `Tracer` or nothing: every part given none makes no span, injects and extracts
 * nothing, and so costs nothing while tracing is off.
 */
import { context, diag, DiagLogLevel, type DiagLogger, propagation, type Tracer, trace } from '@opentelemetry/api';
import type { BasicTracerProvider, Sampler } from '@opentelemetry/sdk-trace-base';
import type { Config } from './config.ts';
import { StartStop } from './lifecycle.ts';
import type { Logger } from './logger.ts';

/** What tracing needs from the settings, once they say it is on. */
export interface TracingSettings {
  /** Where spans are sent: OTLP over HTTP, as JSON. */
  url: string;
  serviceName: string;
  /** Tells this process's spans apart from its peers' (several workers of one service). */
  instanceId: string;
  sampler: Config['OTEL_TRACES_SAMPLER'];
  samplerArg: number | undefined;
  batch: { scheduledDelayMillis: number; exportTimeoutMillis: number; maxQueueSize: number; maxExportBatchSize: number };
}

const DEFAULT_TRACES_URL = 'http://localhost:4318/v1/traces';
/**
 * How long a stop waits for the last spans to be sent. An unreachable collector would otherwise
 * hold the exit for the exporter's retries (OTEL_BSP_EXPORT_TIMEOUT, 30 s by default), past the
 * stop timeout a supervisor allows after SHUTDOWN_GRACE_MS.
 */
const FLUSH_AT_STOP_MS = 5000;

/**
 * Whether the settings turn tracing on, and how. Off unless asked: `OTEL_TRACES_EXPORTER=otlp`, or
 * an OTLP endpoint with no exporter named, turns it on; `OTEL_SDK_DISABLED=true` or
 * `OTEL_TRACES_EXPORTER=none` keeps it off whatever else is set.
 */
export function tracingSettings(config: Config, instanceId: string): TracingSettings | undefined {
  if (config.OTEL_SDK_DISABLED) return undefined;
  const tracesUrl = config.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? signalUrl(config.OTEL_EXPORTER_OTLP_ENDPOINT);
  const exporters = config.OTEL_TRACES_EXPORTER;
  const on = exporters ? exporters.includes('otlp') : tracesUrl !== undefined;
  if (!on) return undefined;
  return {
    url: tracesUrl ?? DEFAULT_TRACES_URL,
    serviceName: config.OTEL_SERVICE_NAME,
    instanceId,
    sampler: config.OTEL_TRACES_SAMPLER,
    samplerArg: config.OTEL_TRACES_SAMPLER_ARG,
    batch: {
      scheduledDelayMillis: config.OTEL_BSP_SCHEDULE_DELAY,
      exportTimeoutMillis: config.OTEL_BSP_EXPORT_TIMEOUT,
      maxQueueSize: config.OTEL_BSP_MAX_QUEUE_SIZE,
      maxExportBatchSize: config.OTEL_BSP_MAX_EXPORT_BATCH_SIZE,
    },
  };
}

/** OTEL_EXPORTER_OTLP_ENDPOINT is a base URL: traces go to its `v1/traces`, as the standard says. */
function signalUrl(base: string | undefined): string | undefined {
  if (base === undefined) return undefined;
  return `${base.endsWith('/') ? base : `${base}/`}v1/traces`;
}

/**
 * The SDK's modules, loaded at the start: a process that does not trace never loads them (their
 * import took 310–370 ms on this 2-core machine while it was busy with other work).
 */
async function loadSdk() {
  const [contextHooks, core, exporter, resources, sdk] = await Promise.all([
    import('@opentelemetry/context-async-hooks'),
    import('@opentelemetry/core'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/sdk-trace-base'),
  ]);
  return {
    AsyncLocalStorageContextManager: contextHooks.AsyncLocalStorageContextManager,
    W3CTraceContextPropagator: core.W3CTraceContextPropagator,
    OTLPTraceExporter: exporter.OTLPTraceExporter,
    resourceFromAttributes: resources.resourceFromAttributes,
    BasicTracerProvider: sdk.BasicTracerProvider,
    BatchSpanProcessor: sdk.BatchSpanProcessor,
    AlwaysOnSampler: sdk.AlwaysOnSampler,
    AlwaysOffSampler: sdk.AlwaysOffSampler,
    ParentBasedSampler: sdk.ParentBasedSampler,
    TraceIdRatioBasedSampler: sdk.TraceIdRatioBasedSampler,
  };
}

type Sdk = Awaited<ReturnType<typeof loadSdk>>;

function samplerOf(
  { sampler, samplerArg }: TracingSettings,
  { AlwaysOffSampler, AlwaysOnSampler, ParentBasedSampler, TraceIdRatioBasedSampler }: Sdk,
): Sampler {
  const ratio = () => new TraceIdRatioBasedSampler(samplerArg ?? 1);
  switch (sampler) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return ratio();
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: ratio() });
  }
}

/**
 * The tracer provider of one process, under the start/stop contract: start() builds it and makes
 * it the OpenTelemetry API's global provider, context manager (AsyncLocalStorage, so a request's
 * span is the parent of what the request calls) and W3C propagator; stop() sends the spans still
 * buffered and takes back exactly the globals it set. A global someone else set first (a team's
 * own SDK, in a process that embeds the service) is left in place and used.
 */
export class Tracing extends StartStop {
  private provider: BasicTracerProvider | undefined;
  private readonly undo: Array<() => void> = [];

  private readonly settings: TracingSettings;
  private readonly logger: Logger;

  constructor(settings: TracingSettings, logger: Logger) {
    super();
    this.settings = settings;
    this.logger = logger;
  }

  /** The tracer the service's parts make their spans with; set while running. */
  get tracer(): Tracer {
    if (!this.provider) throw new Error('tracing is not started');
    return this.provider.getTracer('job-service');
  }

  protected async onStart(): Promise<void> {
    const { settings } = this;
    const sdk = await loadSdk();
    const provider = new sdk.BasicTracerProvider({
      // The semantic conventions' stable names, spelt out: their package is large to load for two.
      resource: sdk.resourceFromAttributes({ 'service.name': settings.serviceName, 'service.instance.id': settings.instanceId }),
      sampler: samplerOf(settings, sdk),
      spanProcessors: [new sdk.BatchSpanProcessor(new sdk.OTLPTraceExporter({ url: settings.url }), settings.batch)],
    });
    this.provider = provider;
    if (trace.setGlobalTracerProvider(provider)) {
      this.undo.push(() => trace.disable());
      // The SDK reports what goes wrong (a collector that refuses or cannot be reached) through
      // the API's diagnostic logger, which is silent by default: spans would vanish without a
      // word. It is replaced only when the provider is this one: a team's own SDK keeps its own.
      const warn = (message: string, ...args: unknown[]) =>
        this.logger.warn({ problem: message, details: args.length > 0 ? args.map(String) : undefined }, 'tracing: the OpenTelemetry SDK reports a problem');
      const ignore = () => undefined;
      const diagLogger: DiagLogger = { error: warn, warn, info: ignore, debug: ignore, verbose: ignore };
      diag.setLogger(diagLogger, { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true });
      this.undo.push(() => diag.disable());
    }
    const contextManager = new sdk.AsyncLocalStorageContextManager().enable();
    if (context.setGlobalContextManager(contextManager)) this.undo.push(() => context.disable());
    else contextManager.disable();
    if (propagation.setGlobalPropagator(new sdk.W3CTraceContextPropagator())) this.undo.push(() => propagation.disable());
    this.logger.info({ url: settings.url, serviceName: settings.serviceName, sampler: settings.sampler }, 'tracing on: spans go to OTLP/HTTP');
  }

  /** Sends what is buffered, for FLUSH_AT_STOP_MS at most, then gives the globals back. */
  protected async onStop(): Promise<void> {
    const { provider } = this;
    this.provider = undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      const flushed = await Promise.race([
        provider?.shutdown().then(() => true),
        new Promise<false>((resolve) => (timer = setTimeout(resolve, FLUSH_AT_STOP_MS, false))),
      ]);
      if (flushed === false) this.logger.warn({ waitedMs: FLUSH_AT_STOP_MS }, 'tracing: the last spans were not sent in time; stopping without them');
    } catch (error) {
      this.logger.warn({ err: error }, 'tracing: the last spans could not be sent');
    } finally {
      clearTimeout(timer);
      for (const undo of this.undo.splice(0).reverse()) undo();
    }
  }
}
