import type { Database } from '../db/database.ts';
import { StartStop } from '../lifecycle.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { Job } from '../generated/prisma/client.ts';
import { JOB_EVENTS_CHANNEL, type JobEvent, parseJobEvents } from './sql/job-events.ts';

export type JobEventListener = (event: JobEvent) => void;

export interface JobEventHubOptions {
  metrics?: Metrics;
}

/**
 * Fans the process's one LISTEN connection out to everyone in it who waits for a job: the worker
 * (for any new pending job) and each subscriber (for its own job id). A change written by any
 * process on the database arrives here, because PostgreSQL is the only bus.
 */
export class JobEventHub extends StartStop {
  private readonly byJob = new Map<string, Set<JobEventListener>>();
  private readonly batchListeners = new Set<(events: JobEvent[]) => void>();
  private readonly resyncListeners = new Set<() => void>();
  private unlisten: (() => Promise<void>) | undefined;

  private readonly db: Database;
  private readonly logger: Logger;
  private readonly options: JobEventHubOptions;

  constructor(db: Database, logger: Logger, options: JobEventHubOptions = {}) {
    super();
    this.db = db;
    this.logger = logger;
    this.options = options;
  }

  protected async onStart(): Promise<void> {
    this.unlisten = await this.db.listen(JOB_EVENTS_CHANNEL, {
      onNotification: (payload) => this.receive(payload),
      onReconnect: () => this.resync(),
    });
  }

  protected async onStop(): Promise<void> {
    const unlisten = this.unlisten;
    this.unlisten = undefined;
    await unlisten?.();
  }

  /**
   * Calls `listener` for every change of job `id`; a version handed over by deliverLocally comes
   * again with its NOTIFY. Returns the function that stops it.
   */
  watch(id: string, listener: JobEventListener): () => void {
    let listeners = this.byJob.get(id);
    if (!listeners) {
      listeners = new Set();
      this.byJob.set(id, listeners);
    }
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
      if (listeners.size === 0 && this.byJob.get(id) === listeners) this.byJob.delete(id);
    };
  }

  /** Calls `listener` with every batch of events, whatever the job. */
  onEvents(listener: (events: JobEvent[]) => void): () => void {
    this.batchListeners.add(listener);
    return () => this.batchListeners.delete(listener);
  }

  /** Calls `listener` after the LISTEN connection was lost and restored: events may be missing. */
  onResync(listener: () => void): () => void {
    this.resyncListeners.add(listener);
    return () => this.resyncListeners.delete(listener);
  }

  /** Whether anyone in this process watches job `id`. */
  isWatched(id: string): boolean {
    return this.byJob.has(id);
  }

  /**
   * Hands jobs that a statement of this process has just changed (and committed) to their
   * watchers here, whole, ahead of the NOTIFY that will announce the same versions to everyone.
   * A watcher can show such a job without reading it again. It hears of that version twice, from
   * here and from the NOTIFY, in either order: the job's watch (watch.ts) drops the second along
   * with every other event it has no use for, so the hub keeps no state per job.
   */
  deliverLocally(jobs: readonly Job[]): void {
    for (const job of jobs) {
      const listeners = this.byJob.get(job.id);
      if (!listeners) continue;
      for (const listener of listeners) {
        this.call(() => listener({ id: job.id, status: job.status, version: job.version, job }));
      }
    }
  }

  /** How many job watchers are registered, for metrics. */
  get watcherCount(): number {
    let count = 0;
    for (const listeners of this.byJob.values()) count += listeners.size;
    return count;
  }

  /*
   * The payload carries no send time, so the hub cannot see how long PostgreSQL took to deliver
   * it. What it measures is its own share: the time listeners hold up the LISTEN connection's
   * event handler. The lag a customer feels is `job_update_delivery_seconds`, in the job service.
   */
  private receive(payload: string): void {
    const metrics = this.options.metrics;
    const started = metrics ? performance.now() : 0;
    const events = parseJobEvents(payload);
    this.dispatch(events);
    if (!metrics) return;
    metrics.eventsReceived.inc(events.length);
    metrics.eventDispatch.observe((performance.now() - started) / 1000);
  }

  private dispatch(events: JobEvent[]): void {
    for (const listener of this.batchListeners) this.call(() => listener(events));
    if (this.byJob.size === 0) return;
    for (const event of events) {
      const listeners = this.byJob.get(event.id);
      if (!listeners) continue;
      for (const listener of listeners) this.call(() => listener(event));
    }
  }

  private resync(): void {
    for (const listener of this.resyncListeners) this.call(listener);
  }

  /** One faulty listener must not starve the others or break the LISTEN connection. */
  private call(listener: () => void): void {
    try {
      listener();
    } catch (error) {
      this.logger.error({ err: error }, 'job event listener failed');
    }
  }
}
