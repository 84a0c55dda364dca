/**
 * What each thread of a ThreadPool runs for a task: it loads the kind's handler module (once per
 * thread) and calls the named export with the job's input and context.
 *
 * Piscina may load this file with require() (tsx's CommonJS hook on Node 20, require(esm) on
 * Node 24) or with import(), so it has no top-level await and does not read import.meta.
 */

import type { MessagePort } from 'node:worker_threads';
import type { ParentOutcome } from '../jobs/sql/workflows.ts';

/** The part of a JobContext a thread sees: an AbortSignal cannot cross to a thread. */
export interface ThreadJobContext {
  jobId: string;
  attempt: number;
  maxAttempts: number;
}

/** What the handler in a thread is given: the context and, when the task has a port, `progress`. */
export interface ThreadHandlerContext extends ThreadJobContext {
  /**
   * Posts a progress value to the main thread, whose JobContext.progress takes it from there.
   * Never throws: a value that cannot be cloned is dropped.
   */
  progress(value: unknown): void;
  /**
   * The outcomes of the job's parents, as JobContext.parents gives them: the main thread reads
   * them when asked (one read a call), and answers on the task's port.
   */
  parents(): Promise<Record<string, ParentOutcome>>;
}

/** What a thread posts on its task's port: a progress value, or a request for the parents' outcomes. */
export type ThreadMessage = { progress: unknown } | { parents: number };

/** The main thread's answer to `{ parents: n }`, naming the same n. */
export type ThreadReply = { parents: number; ok: true; value: Record<string, ParentOutcome> } | { parents: number; ok: false; message: string };

/** One task: a job's handler to call, or, with no module, a ping that proves the thread is up. */
export interface ThreadTask {
  /** The file URL of the handler module. */
  module?: string;
  export?: string;
  input?: unknown;
  context?: ThreadJobContext;
  /** Where the handler's progress values and requests for its parents go (transferred with the task). */
  progressPort?: MessagePort;
}

/**
 * A structured clone keeps an Error's message and stack but not a name of its own (such as
 * PermanentJobError), so the thread hands failures back as plain data for the pool to rebuild.
 */
export type ThreadOutcome =
  | { ok: true; value: unknown }
  | { ok: false; error: { name: string; message: string; stack?: string } };

type ThreadHandlerFunction = (input: unknown, context: ThreadHandlerContext) => unknown;

/**
 * Loaded modules by URL. It lives as long as the thread, which is what the cache is for: the
 * first job of a kind on a thread pays for the import, later ones find the module here.
 */
const modules = new Map<string, Promise<Record<string, unknown>>>();

export default async function runThreadTask(task: ThreadTask): Promise<ThreadOutcome> {
  if (task.module === undefined) return { ok: true, value: 'ready' };
  const port = task.progressPort;
  try {
    const handler = await handlerOf(task.module, task.export ?? 'default');
    // Not enumerable: a handler that hands its context back (or logs it) must not meet a function
    // that a structured clone cannot copy.
    const context = Object.defineProperties({ ...(task.context as ThreadJobContext) }, {
      progress: { value: (value: unknown) => post(port, value) },
      parents: { value: parentsAsker(port) },
    }) as ThreadHandlerContext;
    return { ok: true, value: await handler(task.input, context) };
  } catch (error) {
    return { ok: false, error: describe(error) };
  } finally {
    port?.close();
  }
}

function post(port: MessagePort | undefined, value: unknown): void {
  try {
    port?.postMessage({ progress: value } satisfies ThreadMessage);
  } catch {
    // Not cloneable (a function, say): dropped, as the main thread drops a value that is not JSON.
  }
}

/**
 * Asks the main thread for the parents' outcomes. The port listens only once asked: a handler that
 * never asks leaves it as it was, and the port closes with the task either way.
 */
function parentsAsker(port: MessagePort | undefined): () => Promise<Record<string, ParentOutcome>> {
  const waiting = new Map<number, { resolve: (value: Record<string, ParentOutcome>) => void; reject: (error: Error) => void }>();
  let asked = 0;
  return () => {
    if (!port) return Promise.reject(new Error('this task has no port to ask for its parents on'));
    if (asked === 0) {
      port.on('message', (reply: ThreadReply) => {
        const request = waiting.get(reply.parents);
        waiting.delete(reply.parents);
        if (reply.ok) request?.resolve(reply.value);
        else request?.reject(new Error(reply.message));
      });
    }
    asked += 1;
    const id = asked;
    return new Promise((resolve, reject) => {
      waiting.set(id, { resolve, reject });
      port.postMessage({ parents: id } satisfies ThreadMessage);
    });
  };
}

async function handlerOf(url: string, name: string): Promise<ThreadHandlerFunction> {
  let loading = modules.get(url);
  if (!loading) {
    loading = import(url) as Promise<Record<string, unknown>>;
    modules.set(url, loading);
    // A failed import is not kept, so a fixed file is picked up without a restart of the pool.
    loading.catch(() => modules.delete(url));
  }
  const handler = (await loading)[name];
  if (typeof handler !== 'function') throw new TypeError(`${url} has no function export named ${JSON.stringify(name)}`);
  return handler as ThreadHandlerFunction;
}

function describe(error: unknown): { name: string; message: string; stack?: string } {
  if (error instanceof Error) return { name: error.name, message: error.message, stack: error.stack };
  return { name: 'Error', message: String(error) };
}
