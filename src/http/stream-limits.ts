/** Bounds on the long-lived streams (WebSocket connections, or SSE responses) one process holds. */
export interface StreamLimits {
  /** For one API key (all callers together while the service has no keys). */
  perKey: number;
  /** For the whole process. */
  total: number;
}

export type StreamSlot = { ok: true; release: () => void } | { ok: false; message: string };

/**
 * Counts open streams per owner and in total. A slot is taken and checked in one synchronous
 * step, so a burst of requests cannot all pass a check before any of them is counted.
 */
export class StreamBudget {
  private readonly byOwner = new Map<string, number>();
  private open = 0;

  private readonly limits: StreamLimits;
  /** What is counted, for the refusal's message: "WebSocket connections", "SSE streams". */
  private readonly what: string;

  constructor(limits: StreamLimits, what: string) {
    this.limits = limits;
    this.what = what;
  }

  acquire(owner: string): StreamSlot {
    const held = this.byOwner.get(owner) ?? 0;
    if (held >= this.limits.perKey) {
      return { ok: false, message: `at most ${this.limits.perKey} ${this.what} per API key; close one first` };
    }
    if (this.open >= this.limits.total) {
      return { ok: false, message: `this server holds its most ${this.what} (${this.limits.total}); retry later` };
    }
    this.byOwner.set(owner, held + 1);
    this.open += 1;
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        this.open -= 1;
        const left = (this.byOwner.get(owner) ?? 1) - 1;
        if (left === 0) this.byOwner.delete(owner);
        else this.byOwner.set(owner, left);
      },
    };
  }

  /** Streams open now. */
  get size(): number {
    return this.open;
  }
}

/**
 * The operations running on one WebSocket, counted per id with repeats: a client may reuse an id
 * once it has sent `complete` for it, while the first operation is still being set up or ended,
 * and a set of ids would count those two as one.
 */
export class OperationSlots {
  private readonly byId = new Map<string, number>();
  private running = 0;

  private readonly limit: number;

  constructor(limit: number) {
    this.limit = limit;
  }

  /** Takes a slot for operation `id`, or says false when all are taken. */
  take(id: string): boolean {
    if (this.running >= this.limit) return false;
    this.running += 1;
    this.byId.set(id, (this.byId.get(id) ?? 0) + 1);
    return true;
  }

  /** Gives back one slot of operation `id`; nothing when it holds none. */
  give(id: string): void {
    const held = this.byId.get(id);
    if (held === undefined) return;
    this.running -= 1;
    if (held === 1) this.byId.delete(id);
    else this.byId.set(id, held - 1);
  }
}
