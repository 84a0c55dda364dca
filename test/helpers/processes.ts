import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface ServiceProcess {
  child: ChildProcess;
  /** The API's port (ROLE api or all), or the ops port of /health, /ready, /metrics (ROLE worker). */
  port: number | undefined;
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  /** Log lines (parsed JSON) seen so far. */
  logs: Array<Record<string, unknown>>;
  /** The last few kilobytes the process wrote to stderr: where a crash would show. */
  stderr(): string;
}

/**
 * Starts `src/main.ts` as its own process, exactly as `npm start` does, and resolves once it is
 * serving (ROLE api or all) or its worker runs (ROLE worker). It reads the process's info-level
 * log lines to know that, so LOG_LEVEL is always info.
 */
export function startService(env: Record<string, string>): Promise<ServiceProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    env: { ...process.env, PORT: '0', OPS_PORT: '0', HOST: '127.0.0.1', ...env, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const logs: Array<Record<string, unknown>> = [];
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-8000);
  });
  const role = env['ROLE'] ?? 'all';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
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
      const url = role === 'worker' ? urls?.health : urls?.graphql;
      if (url) {
        clearTimeout(timer);
        const port = Number(new URL(url).port);
        resolve({ child, port, exited, logs, stderr: () => stderr });
      }
    });
  });
}
