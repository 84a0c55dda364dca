/**
 * How long each fault lasts. `full` is the (`npm run chaos`); `short` is the same
 * scenarios cut down to a few seconds each, for `npm test` on a loaded 2-core CI machine.
 */
export interface ChaosProfile {
  name: 'short' | 'full';
  /** Jobs a second the load adds, over HTTP. */
  rate: number;
  /** Every n-th acknowledged job gets a live subscriber. */
  subscribeEvery: number;
  /** Load before the fault: the throughput recovery is measured against. */
  baselineMs: number;
  /** Load after the fault. */
  afterMs: number;
  /** How long acknowledged jobs may take to finish once the load stops. */
  drainDeadlineMs: number;
  restartDownMs: number;
  killBackendsMs: number;
  exhaustionMs: number;
  openTransactionMs: number;
  /** Repeated worker kills after the first one: how many, and how far apart. */
  workerKills: number;
  workerKillEveryMs: number;
  deafListenMs: number;
  diskFullMs: number;
}

export const PROFILES: Record<ChaosProfile['name'], ChaosProfile> = {
  full: {
    name: 'full',
    rate: 50,
    subscribeEvery: 5,
    baselineMs: 15_000,
    afterMs: 30_000,
    drainDeadlineMs: 120_000,
    restartDownMs: 30_000,
    killBackendsMs: 60_000,
    exhaustionMs: 60_000,
    openTransactionMs: 240_000,
    workerKills: 6,
    workerKillEveryMs: 20_000,
    deafListenMs: 30_000,
    diskFullMs: 60_000,
  },
  short: {
    name: 'short',
    rate: 30,
    subscribeEvery: 5,
    baselineMs: 3_000,
    afterMs: 4_000,
    drainDeadlineMs: 60_000,
    restartDownMs: 3_000,
    killBackendsMs: 10_000,
    exhaustionMs: 10_000,
    openTransactionMs: 15_000,
    workerKills: 2,
    workerKillEveryMs: 3_000,
    deafListenMs: 6_000,
    diskFullMs: 6_000,
  },
};

export function chaosProfile(): ChaosProfile {
  const name = process.env.CHAOS_PROFILE ?? 'short';
  if (name !== 'short' && name !== 'full') throw new Error(`CHAOS_PROFILE must be short or full, not ${name}`);
  return PROFILES[name];
}
