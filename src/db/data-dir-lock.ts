import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

export const LOCK_FILE = 'job-service.lock';

interface Holder {
  pid: number;
  host: string;
}

function readHolder(path: string): Holder | null {
  try {
    const holder = JSON.parse(readFileSync(path, 'utf8')) as Partial<Holder>;
    return typeof holder.pid === 'number' && typeof holder.host === 'string' ? { pid: holder.pid, host: holder.host } : null;
  } catch {
    return null;
  }
}

/** Whether a process with this pid runs on this machine, ours or another user's. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Makes this process the only one using a PGlite data folder. PGlite keeps no lock of its own,
 * and two processes writing the same files corrupt the database. The lock is a file created
 * with O_EXCL naming the holder's pid and host. A holder that died without removing it (SIGKILL,
 * a crash) is detected on the same host by its pid, and its lock is taken over. Returns the
 * release function.
 */
export function lockDataDir(dataDir: string): () => void {
  const path = join(dataDir, LOCK_FILE);
  const me: Holder = { pid: process.pid, host: hostname() };
  for (let attempt = 0; attempt < 2; attempt += 1) {
    let fd: number;
    try {
      fd = openSync(path, 'wx');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = readHolder(path);
      const stale = holder !== null && holder.host === me.host && !isAlive(holder.pid);
      if (!stale) {
        const who = holder ? `process ${holder.pid} on ${holder.host}` : 'another process';
        throw new Error(
          `the data folder ${dataDir} is in use by ${who}: the embedded database allows one process. ` +
            `Stop that process, or remove ${path} if it is gone.`,
        );
      }
      rmSync(path, { force: true });
      continue;
    }
    writeSync(fd, JSON.stringify(me));
    closeSync(fd);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (readHolder(path)?.pid === me.pid) rmSync(path, { force: true });
    };
  }
  throw new Error(`could not lock the data folder ${dataDir}: another process took it over at the same moment`);
}
