import { isAbsolute } from 'node:path';
import { pathToFileURL } from 'node:url';
import { MessageChannel, type MessagePort, receiveMessageOnPort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { type JobContext, PermanentJobError, type ThreadHandler } from '../kinds/define.ts';
import { StartStop } from '../lifecycle.ts';
import type { Logger } from '../logger.ts';
import { siblingModule } from '../sibling-module.ts';
import type { ThreadMessage, ThreadOutcome, ThreadReply, ThreadTask } from './thread-entry.ts';

export interface ThreadPoolOptions {
  /** Threads kept running: at most this many thread jobs run at once, the rest wait their turn. */
  size: number;
  logger: Logger;
}

/** What run() rejects with when the pool is not running. */
export class ThreadPoolNotRunningError extends Error {
  override name = 'ThreadPoolNotRunningError';
  constructor() {
    super('the thread pool is not running');
  }
}

/** What run() rejects with when the pool was stopped while the task waited or ran. */
export class ThreadPoolStoppedError extends Error {
  override name = 'ThreadPoolStoppedError';
  constructor(options?: ErrorOptions) {
    super('the thread pool stopped before the task was done', options);
  }
}

/**
 * Runs the handlers of kinds whose `handler` is a ThreadHandler in worker threads, so CPU-bound
 * work does not hold up the event loop, where heartbeats, API answers and every other job run.
 * Constructing it costs nothing; start() brings the threads up and stop() terminates them,
 * failing the tasks they were running.
 */
export class ThreadPool extends StartStop {
  private readonly options: ThreadPoolOptions;
  private pool: Piscina | undefined;

  constructor(options: ThreadPoolOptions) {
    super();
    if (!Number.isInteger(options.size) || options.size < 1) {
      throw new RangeError(`thread pool size must be a positive integer, not ${options.size}`);
    }
    this.options = options;
  }

  protected async onStart(signal: AbortSignal): Promise<void> {
    const { size, logger } = this.options;
    const pool = new Piscina({
      filename: siblingModule('thread-entry', import.meta.url).href,
      minThreads: size,
      maxThreads: size,
      execArgv: threadExecArgv(),
    });
    this.pool = pool;
    // Piscina reports a thread that fails outside any task here; unheard, the 'error' would crash
    // the process. It replaces the thread itself.
    pool.on('error', (error: unknown) => logger.error({ err: error }, 'a worker thread failed'));
    // One round trip proves a thread can load the entry, TypeScript and all, so a broken setup
    // fails the start rather than the first thread job.
    await pool.run({} satisfies ThreadTask, { signal });
    logger.info({ threads: size }, 'thread pool started');
  }

  protected async onStop(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    if (!pool) return;
    await pool.destroy();
    this.options.logger.info('thread pool stopped');
  }

  /**
   * Runs `handler`'s export with `input` and the context's jobId, attempt and maxAttempts in a
   * pooled thread, waiting for a free thread first if all are busy. When `context.signal` aborts,
   * a waiting task is dropped and a running one's thread is terminated (and replaced), and the
   * promise rejects with the signal's reason.
   */
  async run(handler: ThreadHandler, input: unknown, context: JobContext): Promise<unknown> {
    const pool = this.pool;
    if (!pool) throw new ThreadPoolNotRunningError();
    const { signal } = context;
    // The thread's progress values, and its requests for its parents' outcomes, come on a port of
    // their own: a function cannot cross.
    const { port1: progress, port2: progressPort } = new MessageChannel();
    progress.on('message', (message: ThreadMessage) => {
      if ('progress' in message) context.progress(message.progress);
      else void answerParents(progress, message.parents, context);
    });
    const task: ThreadTask = {
      module: moduleUrl(handler.module),
      export: handler.export ?? 'default',
      input,
      context: { jobId: context.jobId, attempt: context.attempt, maxAttempts: context.maxAttempts },
      progressPort,
    };
    let outcome: ThreadOutcome;
    try {
      outcome = (await pool.run(task, { signal, transferList: [progressPort] })) as ThreadOutcome;
    } catch (error) {
      // Piscina wraps the reason in its own AbortError; the job's caller expects the reason itself.
      if (signal.aborted) throw signal.reason;
      if (this.pool !== pool) throw new ThreadPoolStoppedError({ cause: error });
      throw error;
    } finally {
      // The answer comes on Piscina's port, which may overtake the last values on this one; they
      // were queued before it was sent, so they are taken here, before the handler counts as returned.
      for (let queued = receiveMessageOnPort(progress); queued; queued = receiveMessageOnPort(progress)) {
        const message = queued.message as ThreadMessage;
        if ('progress' in message) context.progress(message.progress);
      }
      progress.close();
    }
    if (outcome.ok) return outcome.value;
    // A thread's PermanentJobError must still fail its job at once, so it becomes one again.
    const error = outcome.error.name === 'PermanentJobError' ? new PermanentJobError(outcome.error.message) : new Error(outcome.error.message);
    error.name = outcome.error.name;
    if (outcome.error.stack !== undefined) error.stack = outcome.error.stack;
    throw error;
  }
}

/** Reads the job's parents for its thread (JobContext.parents), and answers on the task's port. */
async function answerParents(port: MessagePort, id: number, context: JobContext): Promise<void> {
  let reply: ThreadReply;
  try {
    reply = { parents: id, ok: true, value: await context.parents() };
  } catch (error) {
    reply = { parents: id, ok: false, message: error instanceof Error ? error.message : String(error) };
  }
  try {
    port.postMessage(reply);
  } catch {
    // The task has ended and its port closed: nobody waits for the answer.
  }
}

/**
 * Node 22.18 and later strip types themselves, in threads too, and from 22.2 threads share the
 * main thread's module hooks. Node 20 gives each thread hooks of its own, so a thread preloads
 * tsx's (src/worker/thread-typescript.js) whether or not the process itself was started with a
 * loader (a test runner's process was not).
 */
function threadExecArgv(): string[] | undefined {
  const stripsTypes = Boolean((process.features as { typescript?: unknown }).typescript);
  if (stripsTypes || Number(process.versions.node.split('.')[0]) >= 22) return undefined;
  return [...process.execArgv, '--import', new URL('./thread-typescript.js', import.meta.url).href];
}

/** A ThreadHandler's module as a file URL: a URL, a URL's text, or an absolute path. */
function moduleUrl(module: string | URL): string {
  if (module instanceof URL) return module.href;
  if (isAbsolute(module)) return pathToFileURL(module).href;
  if (/^[a-z][a-z\d+.-]+:/i.test(module)) return new URL(module).href;
  throw new TypeError(`a thread handler's module must be a file URL or an absolute path, not ${JSON.stringify(module)}`);
}
