import type { Database } from '../db/database.ts';
import type { JobEventHub } from '../jobs/events.ts';
import { type ClaimScope, claimBatchStatement, FIRST_OWNER_CURSOR } from '../jobs/sql/claim.ts';
import type { ClaimedJob, ClaimResult } from '../jobs/sql/claimed.ts';
import { claimLimitedStatement, type LimitedKindScope } from '../jobs/sql/claim-limited.ts';
import type { JobEvent } from '../jobs/sql/job-events.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { claimableJobs } from './claim-capacity.ts';
import { DueWakeups } from './due-wakeups.ts';
import type { Executor } from './executor.ts';
import { IdleLimitedKinds } from './idle-limited-kinds.ts';
import { recordFailed } from './outcome-writer.ts';

/**
 * What the claim loop is doing. A wake-up (a NOTIFY, a due time, a resync) ends any sleep, and
 * during a claim asks for another; a freed place does the same only where the mode says so.
 * - `stopped`: not started, or stopped.
 * - `claiming`: a claim is in flight.
 * - `claimingMore`: a claim is in flight after one that filled every free place, so more work is
 *   probably waiting: a place that frees meanwhile asks for another claim.
 * - `claimAgain`: a claim is in flight, and another was asked for; it follows at once.
 * - `waiting`: asleep after a claim that took all there was, until a wake-up or the poll.
 * - `full`: asleep because no place is free, until one frees, a wake-up, or the poll.
 * - `backingOff`: asleep after a failed claim, until a wake-up or the backoff's end.
 * - `woken`: a sleep ended; the next claim is on its way.
 * - `stopping`: stop() has begun; the loop ends at its next step.
 */
export type ClaimLoopMode =
  | 'stopped'
  | 'claiming'
  | 'claimingMore'
  | 'claimAgain'
  | 'waiting'
  | 'full'
  | 'backingOff'
  | 'woken'
  | 'stopping';

export interface ClaimLoopOptions {
  db: Database;
  hub: JobEventHub;
  logger: Logger;
  metrics?: Metrics;
  workerId: string;
  executor: Executor;
  concurrency: number;
  prefetch: number;
  pollIntervalMs: number;
  scope: ClaimScope;
  /** Kinds with a concurrency limit, claimed one by one before the others (claim-limited.ts). */
  limited: readonly LimitedKindScope[];
}

const MAX_CLAIM_BACKOFF_MS = 30_000;
/** Delayed jobs whose due time a worker remembers; any beyond are found by the poll. */
const MAX_DUE_WAKEUPS = 10_000;

/**
 * Claims jobs into the executor's free slots and a short local queue. It sleeps while there is
 * nothing to do, and wakes when a NOTIFY says a job is pending, when a delayed job or a retry it
 * heard of comes due (see DueWakeups), when the local queue runs low after a full claim, or after
 * `pollIntervalMs` as a safety net. The poll finds jobs left stale by a dead worker, and delayed
 * jobs announced while this worker was not listening.
 */
export class ClaimLoop {
  private mode: ClaimLoopMode = 'stopped';
  private loop: Promise<void> | undefined;
  private endSleep: (() => void) | undefined;
  private unsubscribe: Array<() => void> = [];
  private readonly dueWakeups = new DueWakeups(() => this.wakeAll(), MAX_DUE_WAKEUPS);
  private readonly idleLimited: IdleLimitedKinds;
  /**
   * Jobs that hold the slots of a limited kind this worker could not fill: when one leaves wip,
   * a slot is free, and the loop claims again. Replaced by each claim.
   */
  private holders = new Set<string>();
  /** Jobs heard leaving wip while a claim is in flight, which may free what that claim saw held. */
  private leftWipDuringClaim: Set<string> | undefined;
  /** Where the next claim's turn among owners begins (fair share, see `jobs_claim`). */
  private ownerCursor = FIRST_OWNER_CURSOR;

  private readonly options: ClaimLoopOptions;

  constructor(options: ClaimLoopOptions) {
    this.options = options;
    this.idleLimited = new IdleLimitedKinds(options.pollIntervalMs);
  }

  start(): void {
    const { hub } = this.options;
    this.unsubscribe = [hub.onEvents((events) => this.hear(events)), hub.onResync(() => this.wakeAll())];
    this.mode = 'woken';
    this.loop = this.run();
  }

  /** Ends the loop once the claim in flight, if any, has returned. */
  async stop(): Promise<void> {
    for (const unsubscribe of this.unsubscribe) unsubscribe();
    this.unsubscribe = [];
    this.dueWakeups.clear();
    this.holders.clear();
    this.idleLimited.clear();
    const loop = this.loop;
    this.loop = undefined;
    if (this.mode !== 'stopped') this.mode = 'stopping';
    this.endSleep?.();
    await loop;
    this.mode = 'stopped';
  }

  /** A slot or a held place freed. */
  placeFreed(): void {
    if ((this.mode === 'full' || this.mode === 'claimingMore') && claimableJobs(this.options) > 0) this.wake();
  }

  private async run(): Promise<void> {
    const { logger, pollIntervalMs, executor } = this.options;
    let claimFailures = 0;
    /** The last claim filled every free place, or none was free: more work is probably waiting. */
    let followsFull = false;
    while (this.mode !== 'stopping') {
      const free = claimableJobs(this.options);
      if (free <= 0) {
        followsFull = true;
        await this.sleep('full', pollIntervalMs);
        continue;
      }
      this.mode = followsFull ? 'claimingMore' : 'claiming';
      let claimed: ClaimedJob[];
      try {
        claimed = await this.claim(free);
        claimFailures = 0;
      } catch (error) {
        claimFailures += 1;
        logger.warn({ err: error, failures: claimFailures }, 'claiming jobs failed');
        await this.sleep('backingOff', Math.min(MAX_CLAIM_BACKOFF_MS, pollIntervalMs * 2 ** (claimFailures - 1)));
        continue;
      }
      // Jobs claimed while stop() began are queued too: stop() hands the queue back.
      for (const job of claimed) executor.enqueue(job);
      executor.startQueued();
      followsFull = claimed.length === free;
      if (!followsFull) await this.sleep('waiting', pollIntervalMs);
    }
  }

  /**
   * Claims up to `free` jobs, and fails for good those whose last attempt timed out. Limited
   * kinds come first, one statement each, and the rest goes to the other kinds, so a backlog of
   * unlimited work cannot keep a limited kind from its slots. A statement that fails after
   * others took jobs does not lose them: they are run, and the failure waits for the next claim.
   */
  private async claim(free: number): Promise<ClaimedJob[]> {
    const claimed: ClaimedJob[] = [];
    try {
      await this.claimInto(claimed, free);
    } catch (error) {
      if (claimed.length === 0) throw error;
      this.options.logger.warn({ err: error, claimed: claimed.length }, 'claiming jobs failed part way');
    }
    return claimed;
  }

  private async claimInto(claimed: ClaimedJob[], free: number): Promise<void> {
    const { db, workerId, scope, limited } = this.options;
    if (limited.length > 0) {
      this.idleLimited.clearIfPollDue();
      this.leftWipDuringClaim = new Set();
      const holders = new Set<string>();
      try {
        for (const kind of limited) {
          const room = free - claimed.length;
          if (room <= 0) break;
          if (this.idleLimited.has(kind.kind)) continue;
          const mark = this.idleLimited.mark();
          const batch = await claimLimitedStatement(db, workerId, room, kind);
          this.failTimedOut(batch.timedOut);
          claimed.push(...batch.claimed);
          if (batch.rateDueInMs !== null) this.dueWakeups.add(batch.rateDueInMs);
          if (batch.claimed.length === 0 && batch.holders.length === 0 && batch.rateDueInMs === null) {
            this.idleLimited.markIdle(kind.kind, mark);
          }
          if (batch.claimed.length === room) continue;
          for (const id of batch.holders) holders.add(id);
          for (const job of batch.claimed) holders.add(job.id);
        }
        this.holders = holders;
        // A slot that freed while the claim counted it as held: claim again at once.
        if ([...this.leftWipDuringClaim].some((id) => holders.has(id))) this.wake();
      } finally {
        this.leftWipDuringClaim = undefined;
      }
    }
    if (scope.kinds.length > 0 && claimed.length < free) {
      const batch = await claimBatchStatement(db, workerId, free - claimed.length, scope, this.ownerCursor);
      this.ownerCursor = batch.ownerCursor;
      this.failTimedOut(batch.timedOut);
      claimed.push(...batch.claimed);
    }
  }

  private failTimedOut(jobs: ClaimResult['timedOut']): void {
    for (const job of jobs) recordFailed(this.options, job, 'timeout', job.lastError);
  }

  /**
   * A pending job is claimable now, or when its `runAt` comes; a job that held a limited kind's
   * slot and left wip frees that slot. Anything else is no work for us.
   */
  private hear(events: readonly JobEvent[]): void {
    let dueNow = false;
    // Jobs added together share their delay; one wake-up does for all of them.
    const delays = new Set<number>();
    for (const event of events) {
      if (event.status === 'pending') this.idleLimited.clear();
      if (event.status !== 'wip') {
        if (this.holders.delete(event.id)) dueNow = true;
        this.leftWipDuringClaim?.add(event.id);
      }
      if (event.status !== 'pending') continue;
      if (event.dueInMs === undefined) dueNow = true;
      else delays.add(event.dueInMs);
    }
    for (const delay of delays) this.dueWakeups.add(delay);
    if (dueNow) this.wake();
  }

  /** A wake-up after which every limited kind is claimed again, idle or not. */
  private wakeAll(): void {
    this.idleLimited.clear();
    this.wake();
  }

  private wake(): void {
    switch (this.mode) {
      case 'claiming':
      case 'claimingMore':
        this.mode = 'claimAgain';
        return;
      case 'waiting':
      case 'full':
      case 'backingOff':
        this.mode = 'woken';
        this.endSleep?.();
        return;
      default:
      // `woken` and `claimAgain` claim next anyway; `stopped` and `stopping` never do.
    }
  }

  /**
   * Sleeps in `mode` for up to `ms`; not at all when a claim was asked for meanwhile. Either way
   * the ask is used up, so a NOTIFY that comes while no place is free wakes the loop once, and
   * does not make it spin.
   */
  private sleep(mode: 'waiting' | 'full' | 'backingOff', ms: number): Promise<void> {
    if (this.mode === 'stopping') return Promise.resolve();
    if (this.mode === 'claimAgain') {
      this.mode = 'woken';
      return Promise.resolve();
    }
    this.mode = mode;
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const self = this;
      function done() {
        clearTimeout(timer);
        if (self.endSleep === done) self.endSleep = undefined;
        if (self.mode === mode) self.mode = 'woken';
        resolve();
      }
      this.endSleep = done;
    });
  }
}
