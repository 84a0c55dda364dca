import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface ServiceProcess {
  /** The process started: node itself, or npm when started with `npmScript`. */
  child: ChildProcess;
  /** The pid of the node process running the service (from its log lines). */
  pid: number;
  /** The API's port (ROLE api or all), or the ops port of /health, /ready, /metrics (ROLE worker). */
  port: number | undefined;
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  /** Log lines (parsed JSON) seen so far. */
  logs: Array<Record<string, unknown>>;
  /** The last few kilobytes the process wrote to stderr: where a crash would show. */
  stderr(): string;
  /** Signals the service, and npm with it when started through npm. */
  kill(signal: NodeJS.Signals): void;
  /** SIGTERM, then waits until the service's node process is gone; SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

export interface StartOptions {
  /**
   * Starts the service with `npm run <script>`, as an operator would, instead of node directly.
   * npm and node then share a process group of their own, so one signal reaches both.
   */
  npmScript?: string;
  /** Starts the service with `sh -c <command>`, as a Procfile runner does; also in its own group. */
  shell?: string;
}

/** node's arguments in `npm start`: the sources as they are where Node strips types, tsx elsewhere. */
export const SERVICE_ARGS = ['--conditions=job-service-source', '--import', './src/run-typescript.js', 'src/main.ts'];

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts `src/main.ts` as its own process, exactly as `npm start` does, and resolves once it is
 * serving (ROLE api or all) or its worker runs (ROLE worker). It reads the process's info-level
 * JSON log lines to know that, so LOG_LEVEL is always info and LOG_FORMAT json.
 */
export function startService(env: Record<string, string>, options: StartOptions = {}): Promise<ServiceProcess> {
  const { npmScript, shell } = options;
  const [command, args] = npmScript
    ? ['npm', ['run', '--silent', npmScript]]
    : shell
      ? ['sh', ['-c', shell]]
      : [process.execPath, SERVICE_ARGS];
  const grouped = npmScript !== undefined || shell !== undefined;
  const child = spawn(command, args, {
    env: { ...process.env, PORT: '0', OPS_PORT: '0', HOST: '127.0.0.1', ...env, LOG_LEVEL: 'info', LOG_FORMAT: 'json' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: grouped,
  });
  const kill = (signal: NodeJS.Signals) => {
    try {
      if (grouped && child.pid) process.kill(-child.pid, signal);
      else child.kill(signal);
    } catch {
      // Already gone.
    }
  };
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const logs: Array<Record<string, unknown>> = [];
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-8000);
  });
  const role = shell ?? npmScript ?? env['ROLE'] ?? 'all';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      kill('SIGKILL');
      reject(new Error(`service (${role}) did not start: ${JSON.stringify(logs)}`));
    }, 30_000);
    void exited.then((code) => reject(new Error(`service (${role}) exited with ${code} while starting`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      logs.push(entry);
      const urls = entry['urls'] as { graphql?: string; health?: string } | undefined;
      // An API announces its GraphQL URL; a worker-only process, its ops server's.
      const url = urls?.graphql ?? urls?.health;
      if (url) {
        clearTimeout(timer);
        const port = Number(new URL(url).port);
        const pid = Number(entry['pid']);
        const stop = async (graceMs = 30_000) => {
          kill('SIGTERM');
          const deadline = Date.now() + graceMs;
          while (isAlive(pid) && Date.now() < deadline) await new Promise((done) => setTimeout(done, 50));
          if (isAlive(pid)) kill('SIGKILL');
          await exited;
        };
        resolve({ child, pid, port, exited, logs, stderr: () => stderr, kill, stop });
      }
    });
  });
}
