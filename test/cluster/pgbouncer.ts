import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, portAnswers } from '../../src/ports.ts';
import { ADMIN_URL } from '../helpers/admin.ts';

export interface PgBouncer {
  /** Its version, as [major, minor]. */
  version: [number, number];
  /** The URL of `database` through this PgBouncer. */
  url(database: string): string;
  stop(): Promise<void>;
}

export function pgbouncerVersion(): [number, number] {
  const text = execFileSync('pgbouncer', ['--version'], { encoding: 'utf8' });
  const match = /PgBouncer (\d+)\.(\d+)/.exec(text);
  if (!match) throw new Error(`cannot read PgBouncer's version from: ${text}`);
  return [Number(match[1]), Number(match[2])];
}

/** PgBouncer carries named prepared statements in transaction mode from 1.21 on. */
export function carriesPreparedStatements([major, minor]: [number, number]): boolean {
  return major > 1 || (major === 1 && minor >= 21);
}

/**
 * Starts Debian's PgBouncer in transaction mode in front of the test server, in a folder of its
 * own, on a free port. It refuses to run as root, so as root it becomes postgres.
 */
export async function startPgBouncer(): Promise<PgBouncer> {
  const version = pgbouncerVersion();
  const dir = mkdtempSync(join(tmpdir(), 'pgbouncer-'));
  chmodSync(dir, 0o755);
  const server = new URL(ADMIN_URL);
  const port = await freePort();
  const user = decodeURIComponent(server.username || 'postgres');
  writeFileSync(join(dir, 'userlist.txt'), `"${user}" "${decodeURIComponent(server.password)}"\n`);
  writeFileSync(
    join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `* = host=${server.hostname} port=${server.port || 5432}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = trust',
      `auth_file = ${join(dir, 'userlist.txt')}`,
      'pool_mode = transaction',
      'max_client_conn = 1000',
      'default_pool_size = 20',
      // pg sends it at connect; PgBouncer would refuse the connection over a parameter it cannot track.
      'ignore_startup_parameters = extra_float_digits',
      ...(carriesPreparedStatements(version) ? ['max_prepared_statements = 200'] : []),
      '',
    ].join('\n'),
  );
  const asRoot = process.getuid?.() === 0;
  const child: ChildProcess = spawn('pgbouncer', [...(asRoot ? ['-u', 'postgres'] : []), join(dir, 'pgbouncer.ini')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = (database: string) => {
    const through = new URL(ADMIN_URL);
    through.hostname = '127.0.0.1';
    through.port = String(port);
    through.pathname = `/${database}`;
    return through.toString();
  };
  // Ready once it accepts a connection.
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (await portAnswers('127.0.0.1', port)) break;
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`PgBouncer did not start: ${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    version,
    url,
    async stop() {
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
