import { runIsolated } from './lib/isolate.ts';
import { createFreshDatabase } from './lib/pg.ts';
import { waitForQuiet } from './lib/quiet.ts';
import { ms, startServiceProcess } from './lib/service.ts';
import type { BenchContext, BenchResult } from './lib/types.ts';
import type { FanoutArgs, FanoutResult } from './fanout/load.ts';

const CONNECTIONS = 100;
const PER_CONNECTION = 100;

/**
 * Fan-out: 10,000 jobUpdated subscriptions to ONE job on one ROLE=api process, opened by a load
 * process over 100 WebSockets; the job is then cancelled over HTTP. Sizes: `--size
 * connections=1000,perConnection=100` for 100,000; `fanoutJobs=10000` spreads them over that many
 * jobs (10 subscribers each at 100,000), cancelled 32 requests at a time. Reports the service's RSS per
 * subscriber and the time from the change to the last subscriber's event.
 */
export async function fanoutBenchmark(context: BenchContext): Promise<BenchResult> {
  const connections = context.sizes.connections ?? CONNECTIONS;
  const perConnection = context.sizes.perConnection ?? PER_CONNECTION;
  const jobs = context.sizes.fanoutJobs ?? 1;
  const fresh = await createFreshDatabase('fanout');
  let result: FanoutResult;
  let busyBefore: number | null;
  try {
    const service = await startServiceProcess(
      {
        ROLE: 'api',
        DATABASE_URL: fresh.url,
        WS_MAX_SUBSCRIPTIONS: String(Math.max(perConnection, 100) * 2),
        // The load process is one customer: at 100,000 subscribers it opens more sockets than
        // one key may by default.
        WS_MAX_CONNECTIONS_PER_KEY: String(Math.max(500, connections * 2)),
        WS_MAX_CONNECTIONS: String(Math.max(10_000, connections * 2)),
        ...context.oursEnv,
      },
      { execArgv: context.execArgv },
    );
    try {
      busyBefore = await waitForQuiet(15, 10_000);
      const args: FanoutArgs = { base: service.base, servicePid: service.pid, connections, perConnection, jobs, settleMs: 2_000 };
      result = await runIsolated<FanoutResult>(new URL('./fanout/load.ts', import.meta.url).href, 'fanout', args, {
        timeoutMs: 600_000,
      });
    } finally {
      await service.stop();
    }
  } finally {
    await fresh.drop();
  }
  const kib = (bytes: number) => (bytes / 1024 / result.subscribers).toFixed(1);
  const { idle, connected, subscribed } = result.rssBytes;
  context.log(
    `fanout: ${result.subscribers} subscribers, last delivery ${ms(result.lastDeliveryMs)} ms after the change was sent, ${kib(subscribed - idle)} KiB/subscriber (CPU busy before: ${busyBefore ?? '?'}%)`,
  );
  return {
    name: 'fanout',
    measures:
      jobs === 1
        ? `${result.subscribers} jobUpdated subscriptions to one job (${connections} WebSockets × ${perConnection}) on a ROLE=api process; the job is cancelled over HTTP`
        : `${result.subscribers} jobUpdated subscriptions spread over ${jobs} jobs (${connections} WebSockets × ${perConnection}) on a ROLE=api process; the jobs are cancelled over HTTP, 32 requests at a time`,
    columns: [
      'subscribers',
      'cancelJob answer ms',
      'change → first / median / last delivery ms',
      'RSS idle → subscribed MiB',
      'KiB per subscriber (all)',
      'of which sockets',
      'opening all took ms',
    ],
    rows: [
      [
        String(result.subscribers),
        ms(result.writeMs),
        `${ms(result.firstDeliveryMs)} / ${ms(result.medianDeliveryMs)} / ${ms(result.lastDeliveryMs)}`,
        `${(idle / 2 ** 20).toFixed(0)} → ${(subscribed / 2 ** 20).toFixed(0)}`,
        kib(subscribed - idle),
        kib(connected - idle),
        ms(result.subscribeMs),
      ],
    ],
    notes: [
      'targets (issue): under 100 ms from the change to the last delivery; under 20 KiB per subscriber',
      '"change" = just before the cancelJob request is sent; the load process (another process) times every delivery on its own clock',
      'RSS is the service process\'s VmRSS from /proc, each read 2 s after the step (no forced GC); a 100-subscriber warm-up runs first',
    ],
    data: { connections, perConnection, jobs, busyBefore: busyBefore!, ...result },
  };
}
