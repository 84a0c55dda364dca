import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../src/ports.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface ServiceProcess {
  pid: number;
  /** http://127.0.0.1:<port>: the API (ROLE all or api) or the ops port (ROLE worker). */
  base: string;
  /** The process's resident set, from /proc: what the machine actually pays for it. */
  rssBytes(): number;
  /** SIGTERM (a graceful stop, as in production), SIGKILL after 10 s. */
  stop(): Promise<void>;
  stderr(): string;
}

/**
 * Starts `src/main.ts` as its own process, as `npm start` does, and resolves once /ready answers
 * 200. LOG_LEVEL is warn: at info every request writes a log line, and that would be measured too.
 * NODE_ENV is production, as deployed (see the README, "Deploying").
 */
export async function startServiceProcess(
  env: Record<string, string>,
  options: { execArgv?: string[]; readyTimeoutMs?: number } = {},
): Promise<ServiceProcess> {
  // The service is told its port, so it can log at warn and still be found.
  const port = await freePort();
  const role = env['ROLE'] ?? 'all';
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', ...(options.execArgv ?? []), 'src/main.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      NODE_ENV: 'production',
      ...env,
      ...(role === 'worker' ? { OPS_PORT: String(port), PORT: '0' } : { PORT: String(port), OPS_PORT: '0' }),
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-8000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let gone = false;
  void exited.then(() => (gone = true));
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (options.readyTimeoutMs ?? 30_000);
  for (;;) {
    if (gone) throw new Error(`service (${role}) exited while starting: ${stderr}`);
    try {
      if ((await fetch(`${base}/ready`)).ok) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`service (${role}) not ready after ${options.readyTimeoutMs ?? 30_000} ms: ${stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const pid = child.pid!;
  return {
    pid,
    base,
    rssBytes: () => readRssBytes(pid),
    stderr: () => stderr,
    async stop() {
      if (gone) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export function readRssBytes(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((entry) => entry.startsWith('VmRSS:'));
  if (!line) throw new Error(`no VmRSS for ${pid}`);
  return Number(line.split(/\s+/)[1]) * 1024;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

export const ms = (value: number) => (value >= 10 ? value.toFixed(1) : value.toFixed(2));
