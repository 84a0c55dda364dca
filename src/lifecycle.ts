/**
 * The one start/stop contract of every long-lived part (the event hub, the worker, the pruner, the
 * HTTP and ops servers, the runtime that composes them), after River's `startstop.BaseStartStop`:
 *
 * - `start()` is idempotent: a running part resolves at once, and concurrent callers share one
 *   in-flight start.
 * - `stop()` is idempotent and safe before `start()`; concurrent callers share one in-flight stop.
 * - A stop that arrives during start wins. The start's signal aborts, `onStop` runs once `onStart`
 *   has returned, `start()` rejects with `StoppedDuringStartError`, and `stop()` resolves when
 *   the part is down.
 * - A start that fails half-way unwinds: `onStop` runs, then `start()` rejects with the failure.
 *   So `onStop` must cope with a part that started only in part.
 * - `start()` after `stop()` starts the part again from scratch: `onStart` builds anew whatever
 *   `onStop` tore down. A start called while a stop is under way waits for it, then starts.
 */
export abstract class StartStop {
  #state: LifecycleState = 'stopped';
  #starting: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;
  #abort: AbortController | undefined;

  /** What the part is doing now. */
  get state(): LifecycleState {
    return this.#state;
  }

  /**
   * Brings the part up. `signal` aborts when a stop arrives meanwhile: a part whose start has
   * several steps checks it between them, so a stop does not wait for the remaining ones.
   */
  protected abstract onStart(signal: AbortSignal): Promise<void> | void;
  /** Takes down whatever `onStart` brought up, all of it or the part it reached. */
  protected abstract onStop(): Promise<void> | void;

  start(): Promise<void> {
    switch (this.#state) {
      case 'running':
        return Promise.resolve();
      case 'starting':
        return this.#starting as Promise<void>;
      case 'stopping':
        return (this.#stopping as Promise<void>).then(
          () => this.start(),
          () => this.start(),
        );
      case 'stopped': {
        this.#state = 'starting';
        const abort = new AbortController();
        this.#abort = abort;
        this.#starting = this.#runStart(abort.signal);
        return this.#starting;
      }
    }
  }

  stop(): Promise<void> {
    switch (this.#state) {
      case 'stopped':
        return Promise.resolve();
      case 'stopping':
        return this.#stopping as Promise<void>;
      case 'starting':
        this.#abort?.abort(new StoppedDuringStartError());
        // The start unwinds itself; its rejection is for start()'s callers, not for this one.
        return (this.#starting as Promise<void>).then(
          () => undefined,
          () => undefined,
        );
      case 'running':
        return this.#runStop();
    }
  }

  async #runStart(signal: AbortSignal): Promise<void> {
    try {
      await this.onStart(signal);
      signal.throwIfAborted();
      this.#state = 'running';
    } catch (error) {
      await this.#runStop().catch(() => undefined);
      throw signal.aborted ? signal.reason : error;
    } finally {
      this.#starting = undefined;
      this.#abort = undefined;
    }
  }

  #runStop(): Promise<void> {
    this.#state = 'stopping';
    this.#stopping = (async () => {
      try {
        await this.onStop();
      } finally {
        this.#state = 'stopped';
        this.#stopping = undefined;
      }
    })();
    return this.#stopping;
  }
}

export type LifecycleState = 'stopped' | 'starting' | 'running' | 'stopping';

/** What `start()` rejects with when a `stop()` arrived before the start was done. */
export class StoppedDuringStartError extends Error {
  override name = 'StoppedDuringStartError';
  constructor() {
    super('stopped before the start was done');
  }
}
