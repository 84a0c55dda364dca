import type { Database } from '../db/database.ts';
import { heartbeatStatement } from '../jobs/sql/heartbeat.ts';
import type { Logger } from '../logger.ts';
import type { HeldJob } from './executor.ts';

export interface HeartbeatOptions {
  db: Database;
  logger: Logger;
  /** The shortest stale timeout of the kinds this worker runs: it beats three times within it. */
  timeoutSeconds: number;
  /** The jobs to keep: those queued or running. */
  jobs: () => HeldJob[];
  /** Told of a job the statement no longer found; true when that job was still ours to lose. */
  lose: (entry: HeldJob) => boolean;
}

/*
 * One statement refreshes every queued and running job, every third of the timeout, so the stale
 * rule never takes a live job. A job the statement no longer finds was taken over: its handler is
 * told to stop, and its outcome is dropped; a queued one is never started.
 */
export class Heartbeat {
  private timer: NodeJS.Timeout | undefined;

  private readonly options: HeartbeatOptions;

  constructor(options: HeartbeatOptions) {
    this.options = options;
  }

  /** Beats from now on, while jobs are held; a running heartbeat goes on as it is. */
  start(): void {
    if (this.timer) return;
    const intervalMs = Math.max(100, (this.options.timeoutSeconds * 1000) / 3);
    this.timer = setInterval(() => void this.beat(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private async beat(): Promise<void> {
    const { db, logger, jobs, lose } = this.options;
    const entries = jobs();
    if (entries.length === 0) return;
    try {
      const held = await heartbeatStatement(
        db,
        entries.map((entry) => ({ id: entry.job.id, attempt: entry.job.attempt })),
      );
      for (const entry of entries) {
        if (held.has(entry.job.id) || !lose(entry)) continue;
        logger.warn({ jobId: entry.job.id, attempt: entry.job.attempt }, 'lost job to the stale rule');
      }
    } catch (error) {
      logger.warn({ err: error }, 'heartbeat failed');
    }
  }
}
