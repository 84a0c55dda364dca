import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat's utime and stime (USER_HZ, 100 on Linux). */
export const TICK_MS = 10;

function machineTicks(): { busy: number; total: number } | null {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const total = fields.reduce((sum, value) => sum + value, 0);
    return { busy: total - fields[3]! - fields[4]!, total };
  } catch {
    return null;
  }
}

/** CPU ticks used so far by the server processes serving `database` (their title names it). */
export function postgresTicks(database: string): Map<string, number> {
  const ticks = new Map<string, number>();
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const title = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!title.startsWith('postgres:') || !title.includes(` ${database} `)) continue;
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      ticks.set(pid, Number(fields[11]) + Number(fields[12]));
    } catch {
      // The process ended meanwhile.
    }
  }
  return ticks;
}

/** CPU time used so far by process `pid`, in ms; null when it cannot be read. */
export function processCpuMs(pid: number): number | null {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
  } catch {
    return null;
  }
}

/**
 * Measures the CPU time the service process `pid` and the PostgreSQL backends of `database` use
 * until the returned function is called. Backends that exit meanwhile are not counted.
 */
export function watchServerCpu(pid: number, database: string): () => { serviceMs: number | null; postgresMs: number } {
  const service = processCpuMs(pid);
  const postgres = postgresTicks(database);
  return () => {
    const serviceNow = processCpuMs(pid);
    let postgresMs = 0;
    for (const [backend, ticks] of postgresTicks(database)) postgresMs += (ticks - (postgres.get(backend) ?? 0)) * TICK_MS;
    return { serviceMs: service === null || serviceNow === null ? null : serviceNow - service, postgresMs };
  };
}

export interface CpuReport {
  /** CPU time of this Node process during the interval. */
  nodeMs: number;
  /** CPU time of the PostgreSQL backends serving the trial's database (those alive at the end). */
  postgresMs: number;
  /** CPU time of the redis-server process, for a system on Redis whose server runs here. */
  redisMs?: number;
  /**
   * Share of the machine's CPU time used by anything else (other processes, the server's shared
   * background processes) while the trial ran. Above ~10 % the trial was slowed down by others.
   * The Redis server of a system on Redis is not "else": it is that system's database.
   */
  othersPercent: number;
}

/**
 * Starts measuring who uses the CPU; the returned function ends it. Linux only (/proc); elsewhere
 * it reports null. Used around the timed part of a trial, so a figure taken while something else
 * ran on the machine can be told apart from one taken on a quiet machine. `database` is null for
 * a system that does not use PostgreSQL; `redisPid` is the Redis server of a system on Redis.
 */
export function watchCpu(database: string | null, redisPid: number | null = null): () => CpuReport | null {
  const backends = () => (database === null ? new Map<string, number>() : postgresTicks(database));
  const machine = machineTicks();
  const node = process.cpuUsage();
  const postgres = backends();
  const redis = redisPid === null ? null : processCpuMs(redisPid);
  return () => {
    const machineNow = machineTicks();
    if (!machine || !machineNow || machineNow.total === machine.total) return null;
    const nodeUsage = process.cpuUsage(node);
    const nodeMs = (nodeUsage.user + nodeUsage.system) / 1000;
    let postgresMs = 0;
    for (const [pid, ticks] of backends()) postgresMs += (ticks - (postgres.get(pid) ?? 0)) * TICK_MS;
    const redisNow = redisPid === null ? null : processCpuMs(redisPid);
    const redisMs = redis === null || redisNow === null ? undefined : redisNow - redis;
    const busyMs = (machineNow.busy - machine.busy) * TICK_MS;
    const totalMs = (machineNow.total - machine.total) * TICK_MS;
    return {
      nodeMs: Math.round(nodeMs),
      postgresMs: Math.round(postgresMs),
      ...(redisMs === undefined ? {} : { redisMs }),
      othersPercent: Math.max(0, Math.round((100 * (busyMs - nodeMs - postgresMs - (redisMs ?? 0))) / totalMs)),
    };
  };
}
