import { setTimeout } from 'node:timers/promises';
import type { Tracer } from '@opentelemetry/api';
import { type Push, Repeater, type Stop } from '@repeaterjs/repeater';
import { isTransient } from '../db/errors.ts';
import type { Job, JobStatus } from '../generated/prisma/client.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { jobDeleted, jobNotFound } from './errors.ts';
import type { JobEventHub } from './events.ts';
import { contextOf, JOB_ID, JOB_KIND, JOB_STATUS } from './job-spans.ts';
import type { JobEvent } from './sql/job-events.ts';

/** States a job never leaves. A subscription ends after delivering one. */
const FINAL_STATUSES: ReadonlySet<JobStatus> = new Set(['retrieved', 'failed', 'cancelled']);
const READ_RETRY_MS = 1000;
/** States whose hand-over is a span while tracing is on: the outcomes, not every step to them. */
const TRACED_DELIVERIES: ReadonlySet<JobStatus> = new Set(['completed', 'retrieved', 'failed', 'cancelled']);

export interface JobWatchOptions {
  hub: JobEventHub;
  /** The job as the subscriber may see it now: null when it does not exist or is not theirs. */
  read: () => Promise<Job | null>;
  metrics?: Metrics;
  /** Set while tracing is on: the hand-over of an outcome is a span in the job's trace. */
  tracer?: Tracer;
}

/**
 * Job `id` as it is now, then each later state, ending after a final one (see JobService.watchJob
 * for the promise made to subscribers). Rejects with NOT_FOUND when `read` finds no job.
 */
export async function openJobWatch(id: string, options: JobWatchOptions): Promise<AsyncIterableIterator<Job>> {
  const watch = new JobWatch(id, options);
  const first = await watch.open();
  return new Repeater<Job>((push, stop) => watch.run(first, push, stop));
}

/**
 * One subscriber's watch of one job: it hears the job's events and turns them into reads. Every
 * event that arrives before a read coalesces into that read, so a slow consumer gets the latest
 * state instead of a backlog.
 *
 * Many subscribers of one job share one watch: the shared subscriptions (graphql/shared-
 * subscriptions.ts) run one execution, and so one watch, for all subscribers of the same
 * operation and owner. This module and the hub therefore keep no shared state between watches.
 */
class JobWatch {
  /** A change was heard that no read or hand-over has covered yet. */
  private changed = false;
  private wake: (() => void) | undefined;
  /**
   * The newest version heard of or shown: an event about it, or an older one, needs nothing. A
   * version arrives twice when a worker of this process hands it over (JobEventHub.deliverLocally)
   * and its NOTIFY follows, in either order; the second is dropped here.
   */
  private heard = -1;
  /** The newest state heard of, handed over whole by a worker of this process: shown without a read. */
  private delivered: Job | undefined;
  private stopped = false;
  private release: () => void = () => undefined;

  private readonly id: string;
  private readonly options: JobWatchOptions;

  constructor(id: string, options: JobWatchOptions) {
    this.id = id;
    this.options = options;
  }

  /** Subscribes to the job's events before it reads, so no change falls between the read and the first event. */
  async open(): Promise<Job> {
    const { hub, read } = this.options;
    const unwatch = hub.watch(this.id, (event) => this.hear(event));
    const unresync = hub.onResync(() => this.hear());
    this.release = () => {
      unwatch();
      unresync();
    };
    let first: Job | null;
    try {
      first = await read();
    } catch (error) {
      this.release();
      throw error;
    }
    if (!first) {
      this.release();
      throw jobNotFound(this.id);
    }
    return first;
  }

  async run(first: Job, push: Push<Job>, stop: Stop): Promise<void> {
    void stop.then(() => {
      this.stopped = true;
      this.release();
      this.wake?.();
    });
    try {
      let current = first;
      this.heard = Math.max(this.heard, current.version);
      await (this.options.tracer ? this.deliverTraced(this.options.tracer, current, push) : push(current));
      while (!this.stopped && !FINAL_STATUSES.has(current.status)) {
        const next = await this.afterChange();
        if (!next || next.version <= current.version) continue;
        // lastUpdated is the database's clock: host clock skew shifts this a little.
        this.options.metrics?.updateDelivery.observe(Math.max(0, Date.now() - next.lastUpdated.getTime()) / 1000);
        current = next;
        this.heard = Math.max(this.heard, current.version);
        await (this.options.tracer ? this.deliverTraced(this.options.tracer, current, push) : push(current));
      }
      stop();
    } catch (error) {
      stop(error);
    }
  }

  /**
   * Hands `job` to the subscribers. Resolves once they have taken it (the shared execution of
   * shared-subscriptions.ts asks for the next state after it has offered this one to all), which
   * is how long the `job.deliver` span lasts.
   */
  private async deliverTraced(tracer: Tracer, job: Job, push: Push<Job>): Promise<void> {
    if (!TRACED_DELIVERIES.has(job.status)) {
      await push(job);
      return;
    }
    const attributes = { [JOB_ID]: job.id, [JOB_KIND]: job.kind, [JOB_STATUS]: job.status };
    const span = tracer.startSpan('job.deliver', { attributes }, contextOf(job.traceparent));
    try {
      await push(job);
    } finally {
      span.end();
    }
  }

  /**
   * A job event, or a resync (no event: the LISTEN connection was lost, and events with it). A job
   * handed over here is the caller's own: a watch the first read turns away (another owner's, or
   * no such job) is released before it could show anything.
   */
  private hear(event?: JobEvent): void {
    if (event) {
      if (event.version <= this.heard) return;
      this.heard = event.version;
    }
    // Only the newest state heard of can stand in for a read; after a resync nothing is known.
    this.delivered = event?.job;
    this.changed = true;
    this.wake?.();
  }

  /**
   * Waits for a change, then the job as it is now; undefined when there is nothing to show yet
   * (the watch stopped, or the database is away).
   */
  private async afterChange(): Promise<Job | undefined> {
    if (!this.changed) await new Promise<void>((resolve) => (this.wake = resolve));
    this.wake = undefined;
    if (this.stopped) return undefined;
    this.changed = false;
    const handedOver = this.delivered;
    this.delivered = undefined;
    if (handedOver) return handedOver;
    let next: Job | null;
    try {
      next = await this.options.read();
    } catch (error) {
      // While the database is away the subscriber waits: its stream must neither end nor
      // report a state it cannot confirm. It reads again after the hub's resync, or soon.
      if (!isTransient(error)) throw error;
      this.changed = true;
      await Promise.race([new Promise<void>((resolve) => (this.wake = resolve)), setTimeout(READ_RETRY_MS)]);
      return undefined;
    }
    // Gone since it was shown: the pruner deleted it (and announced it). Saying NOT_FOUND
    // tells the subscriber so; a plain end would look like a final state it missed.
    if (!next) throw jobDeleted(this.id);
    return next;
  }
}
