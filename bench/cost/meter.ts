import pg from 'pg';
import { readFileSync } from 'node:fs';
import { postgresTicks, TICK_MS } from '../lib/cpu.ts';

/** What one phase of a trial cost the database, per job. */
export interface PhaseCost {
  phase: string;
  jobs: number;
  ms: number;
  /** CPU time of the trial database's backends (10 ms ticks; a phase of 20,000 jobs is ~20–60 ticks). */
  postgresCpuUsPerJob: number;
  /**
   * WAL written for this database's blocks and its transactions' commit records, without the
   * full-page images: those depend on when the last checkpoint ran, not on the statements.
   */
  walBytesPerJob: number;
  /** Full-page images: the first change to each page after a checkpoint logs the whole page. */
  fpiBytesPerJob: number;
  heapRecordsPerJob: number;
  /** Row locks written by SELECT … FOR UPDATE (a heap LOCK record each). */
  lockRecordsPerJob: number;
  /** B-tree entries added: leaf inserts, posting-list inserts and the new item of each split. */
  indexInsertsPerJob: number;
  /** Of the row versions written by updates, the share that were HOT (no index entry at all). */
  hotUpdatePercent: number | null;
  /** Row versions left for vacuum (pg_stat_user_tables.n_dead_tup). */
  deadTuplesPerJob: number;
  /** Shared-buffer accesses (hits and reads) of the database. */
  buffersPerJob: number;
  /** WAL records, their bytes without full-page images, and those, by `resource_manager/record_type`. */
  walRecords: Record<string, { records: number; bytes: number; fpiBytes: number }>;
}

interface Counters {
  lsn: string;
  ticks: Map<string, number>;
  stats: { ins: number; upd: number; hot: number; del: number; dead: number; buffers: number };
}

/**
 * Reads what a phase cost, from PostgreSQL's own counters. WAL is taken from pg_walinspect and
 * kept to the records of this database (by the relation in each block reference) and the commit
 * records of the transactions that wrote them, so a test suite running elsewhere on the server
 * does not count. The meter's own connection is a backend of the database too: it reads the CPU
 * ticks before it runs anything costly, and PostgreSQL flushes a backend's table statistics at
 * most once a second, so each reading waits for that first.
 */
export class CostMeter {
  private readonly client: pg.Client;
  private readonly database: string;
  private readonly databaseOid: number;

  private constructor(client: pg.Client, database: string, databaseOid: number) {
    this.client = client;
    this.database = database;
    this.databaseOid = databaseOid;
  }

  static async open(url: string, database: string): Promise<CostMeter> {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query('CREATE EXTENSION IF NOT EXISTS pg_walinspect');
    // A checkpoint (a test suite elsewhere on the server, or max_wal_size) may recycle the WAL
    // before it is read; a slot of this session keeps it, and goes when the session ends.
    await client.query(`SELECT pg_create_physical_replication_slot($1, true, true)`, [`cost_meter_${database}`]);
    const { rows } = await client.query(`SELECT oid::int AS oid FROM pg_database WHERE datname = current_database()`);
    return new CostMeter(client, database, rows[0].oid);
  }

  async close(): Promise<void> {
    await this.client.end();
  }

  /**
   * Runs `work` (which handles `jobs` jobs) and returns what it cost the database. With
   * `backendsExit`, the work's own connections end before it returns (pgbench), so the backends'
   * CPU is sampled while it runs: what a backend uses in its last 20 ms is not counted.
   */
  async measure(phase: string, jobs: number, work: () => Promise<void>, { backendsExit = false } = {}): Promise<PhaseCost> {
    const before = await this.counters();
    const started = performance.now();
    const sampler = backendsExit ? new BackendSampler(this.database, before.ticks) : undefined;
    try {
      await work();
    } finally {
      sampler?.stop();
    }
    const ms = performance.now() - started;
    const ticks = postgresTicks(this.database);
    for (const [pid, count] of sampler?.lastSeen ?? []) if (!ticks.has(pid)) ticks.set(pid, count);
    const after = await this.counters(ticks);
    let cpuMs = 0;
    for (const [pid, count] of after.ticks) cpuMs += (count - (before.ticks.get(pid) ?? 0)) * TICK_MS;
    const wal = await this.wal(before.lsn, after.lsn);
    const per = (value: number) => value / jobs;
    const updates = after.stats.upd - before.stats.upd;
    return {
      phase,
      jobs,
      ms: Math.round(ms),
      postgresCpuUsPerJob: per(cpuMs * 1000),
      walBytesPerJob: per(wal.bytes - wal.fpi),
      fpiBytesPerJob: per(wal.fpi),
      heapRecordsPerJob: per(wal.heap),
      lockRecordsPerJob: per(wal.locks),
      indexInsertsPerJob: per(wal.indexInserts),
      hotUpdatePercent: updates > 0 ? (100 * (after.stats.hot - before.stats.hot)) / updates : null,
      deadTuplesPerJob: per(after.stats.dead - before.stats.dead),
      buffersPerJob: per(after.stats.buffers - before.stats.buffers),
      walRecords: wal.records,
    };
  }

  /** `ticks` given: the phase has ended, so wait for the backends' statistics to be flushed. */
  private async counters(ticks?: Map<string, number>): Promise<Counters> {
    const lsn = (await this.client.query('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0].lsn as string;
    if (ticks) await new Promise((resolve) => setTimeout(resolve, 1_200));
    const { rows } = await this.client.query(`
      SELECT coalesce(sum(n_tup_ins), 0)::float8 AS ins, coalesce(sum(n_tup_upd), 0)::float8 AS upd,
             coalesce(sum(n_tup_hot_upd), 0)::float8 AS hot, coalesce(sum(n_tup_del), 0)::float8 AS del,
             coalesce(sum(n_dead_tup), 0)::float8 AS dead,
             (SELECT blks_hit + blks_read FROM pg_stat_database WHERE datname = current_database())::float8 AS buffers
      FROM pg_stat_user_tables`);
    // A new transaction sees fresh statistics; within one, PostgreSQL keeps the first reading.
    return { lsn, ticks: ticks ?? postgresTicks(this.database), stats: rows[0] };
  }

  private async wal(from: string, to: string): Promise<{
    bytes: number;
    fpi: number;
    heap: number;
    locks: number;
    indexInserts: number;
    records: Record<string, { records: number; bytes: number; fpiBytes: number }>;
  }> {
    const { rows } = await this.client.query(
      `WITH record AS (SELECT * FROM pg_get_wal_records_info($1::pg_lsn, $2::pg_lsn)),
       mine AS (SELECT * FROM record WHERE block_ref LIKE '%rel ' || $3 || '/' || $4 || '/%'),
       commits AS (
         SELECT * FROM record
         WHERE resource_manager = 'Transaction' AND xid IN (SELECT xid FROM mine WHERE xid <> '0'::xid)
       )
       SELECT resource_manager || '/' || record_type AS kind, count(*)::int AS n,
              sum(record_length)::float8 AS bytes, sum(fpi_length)::float8 AS fpi
       FROM (SELECT * FROM mine UNION ALL SELECT * FROM commits) AS both_
       GROUP BY 1 ORDER BY 1`,
      [from, to, 1663, this.databaseOid],
    );
    const total = { bytes: 0, fpi: 0, heap: 0, locks: 0, indexInserts: 0, records: {} as Record<string, { records: number; bytes: number; fpiBytes: number }> };
    for (const row of rows as Array<{ kind: string; n: number; bytes: number; fpi: number }>) {
      total.bytes += row.bytes;
      total.fpi += row.fpi;
      total.records[row.kind] = { records: row.n, bytes: row.bytes - row.fpi, fpiBytes: row.fpi };
      if (row.kind.startsWith('Heap/') || row.kind.startsWith('Heap2/MULTI_INSERT')) total.heap += row.n;
      if (row.kind === 'Heap/LOCK') total.locks += row.n;
      if (/^Btree\/(INSERT_LEAF|INSERT_POST|SPLIT_L|SPLIT_R)$/.test(row.kind)) total.indexInserts += row.n;
    }
    return total;
  }
}

/** Keeps the last CPU ticks seen of each backend of `database` that starts while it runs. */
class BackendSampler {
  readonly lastSeen = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;
  private samples = 0;

  constructor(database: string, known: Map<string, number>) {
    this.timer = setInterval(() => {
      // Finding new backends reads every process's command line; reading known ones is cheap.
      if (this.samples++ % 10 === 0) {
        for (const [pid, ticks] of postgresTicks(database)) if (!known.has(pid)) this.lastSeen.set(pid, ticks);
        return;
      }
      for (const pid of this.lastSeen.keys()) {
        try {
          const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
          this.lastSeen.set(pid, Number(fields[11]) + Number(fields[12]));
        } catch {
          // It has exited: its last reading stands.
        }
      }
    }, 20);
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
