import type { JobStatus } from '../generated/prisma/client.ts';
import type { JobEventHub } from './events.ts';
import type { Workflow } from './workflows.ts';

/** Whether a step has finished: nothing more happens to it but a retrieve. */
export function isFinished(status: JobStatus): boolean {
  return status === 'completed' || status === 'retrieved' || status === 'failed' || status === 'cancelled';
}

/**
 * The workflow now, then again after each change of one of its steps, until every step has
 * finished. Changes that land while a read is under way are shown by the next read. It listens
 * before its first read, so no change falls between the two. An iterator object rather than an
 * async generator: return() must let go at once, even while next() waits for a change. `read`
 * answers the workflow as the caller may see it, or rejects (NOT_FOUND) and ends the watch.
 */
export function watchWorkflow(hub: JobEventHub, read: () => Promise<Workflow>): AsyncIterableIterator<Workflow> {
  let stepIds: Set<string> | undefined;
  const early: string[] = [];
  let dirty = false;
  let closed = false;
  let current: Workflow | undefined;
  let wake: (() => void) | undefined;
  const changed = () => {
    dirty = true;
    wake?.();
  };
  const stopEvents = hub.onEvents((events) => {
    for (const event of events) {
      if (!stepIds) early.push(event.id);
      else if (stepIds.has(event.id)) return changed();
    }
  });
  const stopResync = hub.onResync(changed);
  const close = () => {
    closed = true;
    stopEvents();
    stopResync();
    wake?.();
  };
  const done = { value: undefined, done: true } as const;
  const iterator: AsyncIterableIterator<Workflow> = {
    next: async () => {
      try {
        if (closed) return done;
        if (!current) {
          current = await read();
          stepIds = new Set(current.steps.map((step) => step.job.id));
          dirty = early.some((id) => stepIds!.has(id));
          return { value: current, done: false };
        }
        if (current.steps.every((step) => isFinished(step.job.status))) {
          close();
          return done;
        }
        if (!dirty) await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
        if (closed) return done;
        dirty = false;
        current = await read();
        return { value: current, done: false };
      } catch (error) {
        close();
        throw error;
      }
    },
    return: async () => {
      close();
      return done;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
  return iterator;
}
