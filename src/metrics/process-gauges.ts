import { Gauge, type Registry } from 'prom-client';

/** This process's own parts, read at scrape time. */
export interface ProcessGaugeSources {
  db: { poolStats(): { total: number; idle: number; waiting: number } };
  /**
   * The event hub (src/jobs/events.ts). A shape rather than its class: the hub records into these
   * metrics, so importing it here would tie the two modules in a cycle.
   */
  hub?: { readonly watcherCount: number };
  worker?: { readonly activeJobs: number; readonly queuedJobs: number };
}

/** What this process's own parts hold: its pool, its subscriptions, its worker. */
export function registerProcessGauges(registers: Registry[], { db, hub, worker }: ProcessGaugeSources): void {
  new Gauge({
    name: 'db_pool_connections',
    help: 'Connections of the query pool, by state (the LISTEN connection is not in it).',
    labelNames: ['state'],
    registers,
    collect() {
      const stats = db.poolStats();
      this.set({ state: 'in_use' }, stats.total - stats.idle);
      this.set({ state: 'idle' }, stats.idle);
    },
  });
  new Gauge({
    name: 'db_pool_waiting_requests',
    help: 'Queries waiting for a free pool connection.',
    registers,
    collect() {
      this.set(db.poolStats().waiting);
    },
  });
  if (hub) {
    new Gauge({
      name: 'job_subscriptions_open',
      help: 'Job watchers in the event hub: one per subscription execution, which subscribers of the same job and key share.',
      registers,
      collect() {
        this.set(hub.watcherCount);
      },
    });
  }
  if (worker) {
    new Gauge({
      name: 'worker_jobs_running',
      help: "Jobs this process's worker holds right now: queued, running or being stored.",
      registers,
      collect() {
        this.set(worker.activeJobs);
      },
    });
    new Gauge({
      name: 'worker_jobs_queued',
      help: "Claimed jobs waiting in this process's local queue for a free slot.",
      registers,
      collect() {
        this.set(worker.queuedJobs);
      },
    });
  }
}
