import autocannon from 'autocannon';

export interface LoadArgs {
  url: string;
  method: 'POST';
  body?: string;
  connections: number;
  seconds: number;
  warmupSeconds: number;
}

export interface LoadResult {
  connections: number;
  seconds: number;
  /** 2xx answers in the warm-up: its jobs are in the database too. */
  warmup2xx: number;
  requests: number;
  ok2xx: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  requestsPerSecond: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  /** CPU time of this load process over the warm-up and the timed run. */
  cpuMs: number;
}

/**
 * One autocannon run in this (load) process, so the client's CPU is not the service's. The
 * warm-up run lets the service's JIT, pool and PostgreSQL's caches settle and is not reported.
 */
export async function load(args: LoadArgs): Promise<LoadResult> {
  const options = {
    url: args.url,
    method: args.method,
    headers: (args.body ? { 'content-type': 'application/json' } : {}) as Record<string, string>,
    ...(args.body ? { body: args.body } : {}),
    connections: args.connections,
    pipelining: 1,
    timeout: 30,
  };
  const cpu = process.cpuUsage();
  const warmup = args.warmupSeconds > 0 ? await autocannon({ ...options, duration: args.warmupSeconds }) : undefined;
  const result = await autocannon({ ...options, duration: args.seconds });
  const used = process.cpuUsage(cpu);
  return {
    cpuMs: (used.user + used.system) / 1000,
    connections: args.connections,
    seconds: result.duration,
    warmup2xx: warmup?.['2xx'] ?? 0,
    requests: result.requests.total,
    ok2xx: result['2xx'],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    requestsPerSecond: result['2xx'] / result.duration,
    latencyP50Ms: result.latency.p50,
    latencyP99Ms: result.latency.p99,
  };
}
