/** What a handler is given for its job: the context, and its signal, made only when asked for. */
import type { ParentOutcome } from '../jobs/sql/workflows.ts';
import type { JobContext, JobKind } from '../kinds/define.ts';
import type { HeldJob } from './executor.ts';
import type { OutcomeWriter } from './outcome-writer.ts';
import type { ProgressReporter } from './progress.ts';

/**
 * The context a handler is given. A class, so that its getters and `progress` live on the
 * prototype: building one per job allocates one object, and the AbortController and the bound
 * progress function are made only for a handler that asks for them.
 */
export class RunningJobContext implements JobContext {
  readonly jobId: string;
  readonly attempt: number;
  readonly maxAttempts: number;
  readonly #entry: HeldJob;
  readonly #kind: JobKind;
  readonly #writer: OutcomeWriter;
  readonly #reporter: ProgressReporter;
  #progress: ((value: unknown) => void) | undefined;

  constructor(entry: HeldJob, kind: JobKind, writer: OutcomeWriter, reporter: ProgressReporter) {
    this.jobId = entry.job.id;
    this.attempt = entry.job.attempt;
    this.maxAttempts = entry.job.maxAttempts;
    this.#entry = entry;
    this.#kind = kind;
    this.#writer = writer;
    this.#reporter = reporter;
  }

  get signal(): AbortSignal {
    return signalOf(this.#entry);
  }

  parents(): Promise<Record<string, ParentOutcome>> {
    return this.#writer.parentsOf(this.jobId);
  }

  /** Bound, so that a handler may pass it on or destructure it (`const { progress } = context`). */
  get progress(): (value: unknown) => void {
    this.#progress ??= (value) => this.#reporter.report(this.#entry, this.#kind, this.#writer, value);
    return this.#progress;
  }
}

export function abort(entry: HeldJob, reason: Error): void {
  entry.abortedWith = reason;
  entry.controller?.abort(reason);
}

function signalOf(entry: HeldJob): AbortSignal {
  if (!entry.controller) {
    entry.controller = new AbortController();
    if (entry.abortedWith) entry.controller.abort(entry.abortedWith);
  }
  return entry.controller.signal;
}
