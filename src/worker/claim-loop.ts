import type { Database } from '../db/database.ts';
import type { JobEventHub } from '../jobs/events.ts';
import {
  type ClaimedJob,
  type ClaimResult,
  type ClaimScope,
  claimBatchStatement,
  FIRST_OWNER_CURSOR,
} from '../jobs/sql/claim.ts';
import { claimLimitedStatement, type LimitedKindScope } from '../jobs/sql/claim-limited.ts';
import type { JobEvent } from '../jobs/sql/job-events.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { DueWakeups } from './due-wakeups.ts';
import type { Executor } from './executor.ts';
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
 * How much work, at the handlers' observed speed, the local queue may hold. A queued job is
 * claimed but not started: another worker that falls idle cannot take it, and a more urgent job
 * that arrives meanwhile starts after it. Bounding the queue by time rather than by count keeps
 * that wait this short whatever the job type: `add` (microseconds) fills the whole `prefetch`,
 * a one-second job queues a few jobs at most.
 */
const PREFETCH_HORIZON_MS = 100;

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
  /**
   * Limited kinds whose last claim found nothing to do: it took no job, none of theirs was wip,
   * and no rate limit held any back. Their claims (a transaction of four round trips each) are
   * skipped until something may have changed that: a pending job heard of (events do not name
   * their kind, so of any kind), a due wake-up, a resync, or a poll interval since the last
   * clearing, which catches what a missed NOTIFY left (counted by the clock, not by the loop's
   * sleeps: a loop kept busy by other kinds never sleeps out its poll). Without this, a worker that runs a limited kind beside unlimited ones paid
   * that transaction every claim cycle, idle or not (a quarter of an unlimited kind's drain).
   */
  private readonly idleLimited = new Set<string>();
  /**
   * Counts the clearings of `idleLimited`: a claim that began before one (a job added while it
   * ran, its NOTIFY heard before it returned) may not have seen that job, so it marks no kind idle.
   */
  private idleClearings = 0;
  private idleClearedAt = performance.now();
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
    this.clearIdle();
    const loop = this.loop;
    this.loop = undefined;
    if (this.mode !== 'stopped') this.mode = 'stopping';
    this.endSleep?.();
    await loop;
    this.mode = 'stopped';
  }

  /** A slot or a held place freed. */
  placeFreed(): void {
    if ((this.mode === 'full' || this.mode === 'claimingMore') && this.claimable() > 0) this.wake();
  }

  private async run(): Promise<void> {
    const { logger, pollIntervalMs, executor } = this.options;
    let claimFailures = 0;
    /** The last claim filled every free place, or none was free: more work is probably waiting. */
    let followsFull = false;
    while (this.mode !== 'stopping') {
      const free = this.claimable();
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
    const { db, workerId, scope, limited, pollIntervalMs } = this.options;
    if (limited.length > 0) {
      if (this.idleLimited.size > 0 && performance.now() - this.idleClearedAt >= pollIntervalMs) this.clearIdle();
      this.leftWipDuringClaim = new Set();
      const holders = new Set<string>();
      try {
        for (const kind of limited) {
          const room = free - claimed.length;
          if (room <= 0) break;
          if (this.idleLimited.has(kind.kind)) continue;
          const clearings = this.idleClearings;
          const batch = await claimLimitedStatement(db, workerId, room, kind);
          this.failTimedOut(batch.timedOut);
          claimed.push(...batch.claimed);
          if (batch.rateDueInMs !== null) this.dueWakeups.add(batch.rateDueInMs);
          if (batch.claimed.length === 0 && batch.holders.length === 0 && batch.rateDueInMs === null && clearings === this.idleClearings) {
            this.idleLimited.add(kind.kind);
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
   * How many jobs the next claim may take; 0 while the local queue is still deep enough.
   *
   * Capacity is the slots plus the local queue's depth. The queue is refilled in bulk, once it is
   * down to half its depth, so a drain costs one claim per few hundred jobs rather than one per
   * freed slot. A job whose handler has returned gives its place back while its outcome is being
   * written, so the next claim overlaps that write instead of waiting for it; up to a capacity's
   * worth of jobs may wait for their write, and beyond that a slow database holds claims back.
   */
  private claimable(): number {
    const { executor, concurrency } = this.options;
    const depth = this.queueDepth();
    const queued = executor.queuedJobs;
    if (queued > 0 && queued >= depth / 2) return 0;
    const capacity = concurrency + depth;
    return Math.min(capacity - executor.runningHandlers - queued, 2 * capacity - executor.heldJobs);
  }

  /** Jobs to queue beyond the slots: `PREFETCH_HORIZON_MS` of work for all slots, up to `prefetch`. */
  private queueDepth(): number {
    const { prefetch, concurrency, executor } = this.options;
    const handlerMs = executor.handlerMs;
    // Before any handler has returned there is nothing to go by, so the first claim fills the slots only.
    if (prefetch === 0 || handlerMs === undefined) return 0;
    const perSlot = PREFETCH_HORIZON_MS / Math.max(handlerMs, 0.001);
    return Math.min(prefetch, Math.floor(concurrency * perSlot));
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
      if (event.status === 'pending') this.clearIdle();
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
    this.clearIdle();
    this.wake();
  }

  private clearIdle(): void {
    this.idleLimited.clear();
    this.idleClearings += 1;
    this.idleClearedAt = performance.now();
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
