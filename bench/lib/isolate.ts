import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const CHILD = fileURLToPath(new URL('./child.ts', import.meta.url));

export interface IsolateOptions {
  /** Extra node flags for the child, e.g. `--cpu-prof`. */
  execArgv?: string[];
  timeoutMs: number;
}

/**
 * Runs `module`'s export `name` with `args` in a fresh Node process and resolves with what it
 * returns. Each trial gets its own heap, JIT state and connections, so one system's leftovers
 * (timers, pools, garbage) cannot slow the next one down.
 */
export function runIsolated<T>(module: string, name: string, args: unknown, options: IsolateOptions): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = fork(CHILD, [], {
      execArgv: ['--import', 'tsx', ...(options.execArgv ?? [])],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let answer: { ok: true; value: T } | { ok: false; error: string } | undefined;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${module}#${name} took longer than ${options.timeoutMs} ms`));
    }, options.timeoutMs);
    child.on('message', (message) => {
      answer = message as typeof answer;
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (answer?.ok) resolve(answer.value);
      else reject(new Error(answer ? answer.error : `${module}#${name} exited with ${signal ?? code} and no answer`));
    });
    child.send({ module, name, args });
  });
}
