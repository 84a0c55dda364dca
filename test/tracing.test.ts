/**
 * OpenTelemetry traces across processes: an API process and a worker process, started as
 * `npm run api` and `npm run worker` start them, send their spans over OTLP/HTTP (JSON) to a
 * receiver in this test process. A job's spans must form one trace, from the request that added
 * it to the worker's attempts, through the trace context stored with the job; with tracing off,
 * nothing is stored.
 */
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { tracingSettings } from '../src/tracing.ts';
import { ANONYMOUS, closeJobsDatabase, type JobsDatabase, openJobsDatabase } from './helpers/jobs.ts';
import { type ServiceProcess, startService } from './helpers/processes.ts';

/** A span as the receiver keeps it, from OTLP's JSON, with the process that sent it. */
interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  name: string;
  startNs: bigint;
  endNs: bigint;
  attributes: Record<string, string | number | boolean>;
  /** The sender's `service.instance.id`: `<role>:<host>:<pid>`. */
  instance: string;
}

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
}
type OtlpAttributes = Array<{ key: string; value: OtlpValue }> | undefined;

function attributesOf(list: OtlpAttributes): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const { key, value } of list ?? []) {
    out[key] = value.stringValue ?? (value.intValue !== undefined ? Number(value.intValue) : undefined) ?? value.doubleValue ?? value.boolValue ?? '';
  }
  return out;
}

/** An OTLP/HTTP receiver, JSON only: what the service's exporter sends with OTEL_EXPORTER_OTLP_PROTOCOL=http/json. */
function startReceiver(): Promise<{ server: Server; url: string; spans: ReceivedSpan[]; contentTypes: Set<string> }> {
  const spans: ReceivedSpan[] = [];
  const contentTypes = new Set<string>();
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      if (request.method !== 'POST' || request.url !== '/v1/traces') {
        response.writeHead(404).end();
        return;
      }
      contentTypes.add(String(request.headers['content-type']));
      const body = JSON.parse(Buffer.concat(chunks).toString()) as {
        resourceSpans: Array<{
          resource: { attributes: OtlpAttributes };
          scopeSpans: Array<{
            spans: Array<{
              traceId: string;
              spanId: string;
              parentSpanId?: string;
              name: string;
              startTimeUnixNano: string | number;
              endTimeUnixNano: string | number;
              attributes: OtlpAttributes;
            }>;
          }>;
        }>;
      };
      for (const { resource, scopeSpans } of body.resourceSpans) {
        const instance = String(attributesOf(resource.attributes)['service.instance.id']);
        for (const { spans: sent } of scopeSpans) {
          for (const span of sent) {
            spans.push({
              traceId: span.traceId,
              spanId: span.spanId,
              parentSpanId: span.parentSpanId || undefined,
              name: span.name,
              startNs: BigInt(span.startTimeUnixNano),
              endNs: BigInt(span.endTimeUnixNano),
              attributes: attributesOf(span.attributes),
              instance,
            });
          }
        }
      }
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      resolve({ server, url: `http://127.0.0.1:${port}`, spans, contentTypes });
    }),
  );
}

let jobs: JobsDatabase;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
let api: ServiceProcess;
let worker: ServiceProcess;

/** The settings of a traced process of this test: spans to the receiver, a batch every 100 ms. */
function tracedEnv(settings: Record<string, string>): Record<string, string> {
  return {
    DATABASE_URL: jobs.testDb.url,
    JOB_KINDS_MODULE: './test/fixtures/fails-once-kinds.ts',
    OTEL_TRACES_EXPORTER: 'otlp',
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_BSP_SCHEDULE_DELAY: '100',
    ...settings,
  };
}

beforeAll(async () => {
  jobs = await openJobsDatabase(import.meta.filename);
  receiver = await startReceiver();
  [api, worker] = await Promise.all([
    startService(tracedEnv({ ROLE: 'api' })),
    startService(tracedEnv({ ROLE: 'worker', RETRY_BASE_DELAY_MS: '50', RETRY_MAX_DELAY_MS: '100', WORKER_POLL_INTERVAL_MS: '100' })),
  ]);
});

afterAll(async () => {
  await Promise.all([api?.stop(), worker?.stop()]);
  await new Promise((resolve) => receiver?.server.close(resolve));
  await closeJobsDatabase(jobs);
});

async function storedTraceparent(id: string): Promise<string | null> {
  const [row] = await jobs.db.query<{ traceparent: string | null }>(
    { name: 'test_traceparent', text: 'SELECT traceparent FROM job WHERE id = $1' },
    [id],
  );
  return row!.traceparent;
}

async function waitForStatus(id: string, status: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const answer = (await (await fetch(`http://127.0.0.1:${api.port}/api/v1/jobs/${id}`)).json()) as { status: string };
    if (answer.status === status) return;
    if (Date.now() > deadline) throw new Error(`job ${id} is ${answer.status}, not ${status}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The spans of `traceId` once `done` holds for them (the exporters send every 100 ms). */
async function traceOnce(traceId: string, done: (spans: ReceivedSpan[]) => boolean): Promise<ReceivedSpan[]> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const spans = receiver.spans.filter((span) => span.traceId === traceId);
    if (done(spans)) return spans;
    if (Date.now() > deadline) throw new Error(`the trace is incomplete: ${spans.map((span) => span.name).join(', ')}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The first span received that `matches`, once it has arrived. */
async function spanOnce(matches: (span: ReceivedSpan) => boolean): Promise<ReceivedSpan> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const found = receiver.spans.find(matches);
    if (found) return found;
    if (Date.now() > deadline) throw new Error('the span never arrived');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function ancestorsOf(span: ReceivedSpan, spans: readonly ReceivedSpan[]): ReceivedSpan[] {
  const byId = new Map(spans.map((each) => [each.spanId, each]));
  const chain: ReceivedSpan[] = [];
  for (let parent = byId.get(span.parentSpanId ?? ''); parent; parent = byId.get(parent.parentSpanId ?? '')) chain.push(parent);
  return chain;
}

/** The trace as an indented tree: each span with the process that sent it, its time and its job attributes. */
function printTrace(title: string, spans: readonly ReceivedSpan[]): void {
  const roots = spans.filter((span) => !spans.some((other) => other.spanId === span.parentSpanId));
  const origin = spans.reduce((min, span) => (span.startNs < min ? span.startNs : min), spans[0]!.startNs);
  const ms = (ns: bigint) => (Number(ns) / 1e6).toFixed(1);
  const lines = [`${title}: trace ${spans[0]!.traceId}`];
  const walk = (span: ReceivedSpan, depth: number) => {
    const shown = Object.entries(span.attributes)
      .filter(([key]) => key.startsWith('job.') || key.startsWith('http.') || key === 'url.path')
      .map(([key, value]) => `${key}=${value}`)
      .join(' ');
    const process = span.instance.split(':')[0];
    lines.push(
      `${'  '.repeat(depth + 1)}${span.name} [${process} pid ${span.instance.split(':').at(-1)}] +${ms(span.startNs - origin)} ms, ${ms(span.endNs - span.startNs)} ms  ${shown}`,
    );
    const children = spans.filter((child) => child.parentSpanId === span.spanId).sort((a, b) => (a.startNs < b.startNs ? -1 : 1));
    for (const child of children) walk(child, depth + 1);
  };
  for (const root of roots) walk(root, 0);
  console.info(lines.join('\n'));
}

/** Reads an SSE subscription to the job until it shows `status`, so that the API delivers that state. */
async function subscribeUntil(id: string, status: string): Promise<void> {
  const abort = new AbortController();
  const response = await fetch(`http://127.0.0.1:${api.port}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({ query: `subscription { jobUpdated(id: "${id}") { status } }` }),
    signal: abort.signal,
  });
  const reader = response.body!.getReader();
  let text = '';
  try {
    while (!text.includes(`"status":"${status}"`)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the subscription ended before ${status}: ${text}`);
      text += new TextDecoder().decode(value);
    }
  } finally {
    abort.abort();
  }
}

describe('a job traced across an API process and a worker process', () => {
  it('is one trace: the request and job.submit in the API, job.queued, job.run and job.write in the worker, job.deliver back in the API', async () => {
    const answer = await fetch(`http://127.0.0.1:${api.port}/api/v1/add/1/2`, { method: 'POST' });
    expect(answer.status).toBe(202);
    const { jobId } = (await answer.json()) as { jobId: string };
    await subscribeUntil(jobId, 'COMPLETED');
    await waitForStatus(jobId, 'completed');

    const submit = await spanOnce((span) => span.name === 'job.submit' && span.attributes['job.id'] === jobId);
    const spans = await traceOnce(submit.traceId, (found) =>
      ['job.queued', 'job.run', 'job.write', 'job.deliver'].every((name) => found.some((span) => span.name === name)),
    );
    printTrace(`add 1 + 2 (job ${jobId})`, spans);

    const one = (name: string) => {
      const named = spans.filter((span) => span.name === name);
      expect(named, name).toHaveLength(1);
      return named[0]!;
    };
    const request = one('POST');
    const [queued, run, write, deliver] = ['job.queued', 'job.run', 'job.write', 'job.deliver'].map(one) as [
      ReceivedSpan,
      ReceivedSpan,
      ReceivedSpan,
      ReceivedSpan,
    ];
    // Which process sent each: the API's request, submission and delivery; the worker's attempt.
    for (const span of [request, submit, deliver]) expect(span.instance, span.name).toMatch(/^api:/);
    for (const span of [queued, run, write]) expect(span.instance, span.name).toMatch(/^worker:/);

    expect(submit.parentSpanId).toBe(request.spanId);
    expect(submit.attributes).toMatchObject({ 'job.kind': 'add', 'job.count': 1 });
    for (const span of [queued, run, deliver]) expect(ancestorsOf(span, spans), span.name).toContain(submit);
    expect(write.parentSpanId).toBe(run.spanId);
    expect(run.attributes).toMatchObject({ 'job.id': jobId, 'job.kind': 'add', 'job.attempt': 1, 'job.outcome': 'completed' });
    expect(write.attributes).toMatchObject({ 'job.write.what': 'result', 'job.write.outcome': 'stored' });
    expect(deliver.attributes).toMatchObject({ 'job.id': jobId, 'job.status': 'completed' });
    // The wait is from the job's creation to its claim: it begins before the worker's run does.
    expect(queued.startNs).toBeLessThanOrEqual(run.startNs);
    expect(await storedTraceparent(jobId)).toBe(`00-${submit.traceId}-${submit.spanId}-01`);
    expect([...receiver.contentTypes]).toEqual(['application/json']);
    for (const { logs } of [api, worker]) {
      expect(logs.filter((line) => line['msg'] === 'tracing on: spans go to OTLP/HTTP')).toHaveLength(1);
      expect(logs.filter((line) => String(line['msg']).startsWith('tracing: '))).toEqual([]);
    }
  });

  it('joins a retried attempt to the same trace', async () => {
    const answer = await fetch(`http://127.0.0.1:${api.port}/api/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'fails_once', input: {} }),
    });
    expect(answer.status).toBe(202);
    const { jobId } = (await answer.json()) as { jobId: string };
    await waitForStatus(jobId, 'completed');

    const traceparent = await storedTraceparent(jobId);
    const traceId = traceparent!.split('-')[1]!;
    const spans = await traceOnce(traceId, (found) => found.filter((span) => span.name === 'job.write').length === 2);
    printTrace(`fails_once (job ${jobId}), retried once`, spans);

    const submit = spans.find((span) => span.name === 'job.submit')!;
    expect(submit.attributes).toMatchObject({ 'job.kind': 'fails_once', 'job.id': jobId });
    const runs = spans.filter((span) => span.name === 'job.run').sort((a, b) => Number(a.attributes['job.attempt']) - Number(b.attributes['job.attempt']));
    expect(runs.map((run) => [run.attributes['job.attempt'], run.attributes['job.outcome']])).toEqual([
      [1, 'retry'],
      [2, 'completed'],
    ]);
    for (const run of runs) {
      expect(ancestorsOf(run, spans)).toContain(submit);
      const writes = spans.filter((span) => span.parentSpanId === run.spanId && span.name === 'job.write');
      expect(writes).toHaveLength(1);
    }
    expect(spans.filter((span) => span.name === 'job.queued').map((span) => span.attributes['job.attempt']).sort()).toEqual([1, 2]);
  });

  it('traces a GraphQL submission the same way, under its POST /graphql', async () => {
    const answer = await fetch(`http://127.0.0.1:${api.port}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'mutation { addJob(input: { num1: "4", num2: "5" }) { job { id } } }' }),
    });
    const { data } = (await answer.json()) as { data: { addJob: { job: { id: string } } } };
    const jobId = data.addJob.job.id;
    await waitForStatus(jobId, 'completed');
    const submit = await spanOnce((span) => span.name === 'job.submit' && span.attributes['job.id'] === jobId);
    const spans = await traceOnce(submit.traceId, (found) => found.some((span) => span.name === 'job.write'));
    const request = spans.find((span) => span.spanId === submit.parentSpanId);
    expect(request).toMatchObject({ name: 'POST /graphql', attributes: { 'http.route': '/graphql', 'http.response.status_code': 200 } });
    expect(ancestorsOf(spans.find((span) => span.name === 'job.run')!, spans)).toContain(submit);
  });

  it('continues the trace of a caller that sends a traceparent header', async () => {
    const callerTrace = '4bf92f3577b34da6a3ce929e0e0e4736';
    const answer = await fetch(`http://127.0.0.1:${api.port}/api/v1/add/2/3`, {
      method: 'POST',
      headers: { traceparent: `00-${callerTrace}-00f067aa0ba902b7-01` },
    });
    const { jobId } = (await answer.json()) as { jobId: string };
    await waitForStatus(jobId, 'completed');
    expect((await storedTraceparent(jobId))?.split('-')[1]).toBe(callerTrace);
    const spans = await traceOnce(callerTrace, (found) => found.some((span) => span.name === 'job.write'));
    expect(spans.find((span) => span.name === 'POST')!.parentSpanId).toBe('00f067aa0ba902b7');
  });
});

describe('a job whose worker dies mid-attempt', () => {
  let replacement: ServiceProcess | undefined;
  afterAll(() => replacement?.stop());

  it('is taken over by a new worker process whose attempt joins the same trace', async () => {
    // Only the worker started here may hold the job: it sleeps in its handler until it is killed.
    await worker.stop();
    // A timeout a loaded machine's heartbeat keeps to: with 1 s, while the whole suite ran, the
    // worker lost its own job to the stale rule again and again, until it failed.
    const env = tracedEnv({ ROLE: 'worker', WORKER_POLL_INTERVAL_MS: '100', JOB_TIMEOUT_SECONDS: '3' });
    const doomed = await startService({ ...env, JOB_ADD_DELAY_MS: '600000' });
    const answer = await fetch(`http://127.0.0.1:${api.port}/api/v1/add/6/7`, { method: 'POST' });
    const { jobId } = (await answer.json()) as { jobId: string };
    await waitForStatus(jobId, 'wip');
    doomed.kill('SIGKILL');
    await doomed.exited;
    replacement = await startService(env);
    await waitForStatus(jobId, 'completed');

    const traceId = (await storedTraceparent(jobId))!.split('-')[1]!;
    const spans = await traceOnce(traceId, (found) => found.some((span) => span.name === 'job.write'));
    printTrace(`add 6 + 7 (job ${jobId}), its first worker killed`, spans);
    const submit = spans.find((span) => span.name === 'job.submit')!;
    const run = spans.find((span) => span.name === 'job.run')!;
    // The killed worker never ended its attempt's run; the one that took the job over did.
    expect(run.attributes).toMatchObject({ 'job.id': jobId, 'job.attempt': 2, 'job.outcome': 'completed' });
    expect(run.instance).toMatch(new RegExp(`^worker:.*:${replacement.pid}$`));
    expect(ancestorsOf(run, spans)).toContain(submit);
  });
});

describe('with tracing off', () => {
  it('stores no trace context with a job', async () => {
    // The job service as a process without OTEL_* settings builds it: given no tracer.
    const { job } = await jobs.service.addJob({ num1: '1', num2: '1' }, ANONYMOUS);
    expect(job.traceparent).toBeNull();
    expect(await storedTraceparent(job.id)).toBeNull();
  });

  it('is the default, and the OTEL_* settings turn it on or keep it off as the standard says', () => {
    const settings = (env: Record<string, string>) => tracingSettings(loadConfig(env), 'test');
    expect(settings({})).toBeUndefined();
    expect(settings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })?.url).toBe('http://collector:4318/v1/traces');
    expect(settings({ OTEL_TRACES_EXPORTER: 'otlp' })?.url).toBe('http://localhost:4318/v1/traces');
    expect(settings({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:1/t' })?.url).toBe('http://c:1/t');
    expect(settings({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })).toBeUndefined();
    expect(settings({ OTEL_SDK_DISABLED: 'true', OTEL_TRACES_EXPORTER: 'otlp' })).toBeUndefined();
    expect(settings({ OTEL_TRACES_EXPORTER: 'otlp' })?.serviceName).toBe('job-service');
  });

  it('refuses OTEL_* values it cannot honour, naming them, before anything starts', () => {
    expect(() => loadConfig({ OTEL_TRACES_EXPORTER: 'zipkin' })).toThrow(/OTEL_TRACES_EXPORTER: each must be otlp or none/);
    expect(() => loadConfig({ OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toThrow(/OTEL_EXPORTER_OTLP_PROTOCOL: this service sends OTLP over HTTP as JSON/);
    expect(() => loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' })).toThrow(/OTEL_EXPORTER_OTLP_ENDPOINT/);
    expect(() => loadConfig({ OTEL_BSP_SCHEDULE_DELAY: 'soon' })).toThrow(/OTEL_BSP_SCHEDULE_DELAY/);
    expect(() => loadConfig({ OTEL_TRACES_SAMPLER: 'sometimes' })).toThrow(/OTEL_TRACES_SAMPLER/);
  });
});
