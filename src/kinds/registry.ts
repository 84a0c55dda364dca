/** The kinds one service knows: looked up by name at submission and by the worker for each job. */
import { z } from 'zod';
import { type JobKind, KindDefinitionError, type RateLimit } from './define.ts';

/** A kind as `GET /api/v1/kinds` and the `kinds` query describe it. */
export interface KindDescription {
  name: string;
  description: string | null;
  inputSchema: Record<string, unknown>;
  resultSchema: Record<string, unknown>;
  /** At most this many of its jobs run at once, across all workers; null for no limit. */
  concurrency: number | null;
  /** At most this many of its jobs of one concurrency key run at once, in submission order; null for no keys. */
  concurrencyPerKey: number | null;
  /** At most `limit` starts per `intervalMs` (per concurrency key with `perKey`); null for no limit. */
  rateLimit: Required<RateLimit> | null;
}

export class KindRegistry {
  private readonly byName = new Map<string, JobKind>();
  private descriptions: KindDescription[] | undefined;

  constructor(kinds: Iterable<JobKind>) {
    for (const kind of kinds) {
      if (this.byName.has(kind.name)) throw new KindDefinitionError(`two kinds are named ${JSON.stringify(kind.name)}`);
      this.byName.set(kind.name, kind);
    }
  }

  get(name: string): JobKind | undefined {
    return this.byName.get(name);
  }

  get names(): string[] {
    return [...this.byName.keys()];
  }

  /** Whether a kind's handler runs in a worker thread. */
  get usesThreads(): boolean {
    return [...this.byName.values()].some((kind) => typeof kind.handler !== 'function');
  }

  /** Kinds whose jobs the claim must count: those with a concurrency limit, one per key, or a rate limit. */
  get limited(): JobKind[] {
    return [...this.byName.values()].filter(
      (kind) =>
        kind.options.concurrency !== undefined || kind.options.concurrencyPerKey !== undefined || kind.options.rateLimit !== undefined,
    );
  }

  /** The shortest stale timeout any kind asks for, or `fallback` when none asks for less. */
  shortestTimeoutSeconds(fallback: number): number {
    return Math.min(fallback, ...[...this.byName.values()].map((kind) => kind.options.timeoutSeconds ?? fallback));
  }

  /**
   * Every kind with the JSON Schemas of what a customer sends (the input schema's input side) and
   * of what a job's `result` holds (the result schema's output side). Made once: zod builds them.
   */
  describe(): KindDescription[] {
    this.descriptions ??= [...this.byName.values()].map((kind) => ({
      name: kind.name,
      description: kind.description ?? null,
      inputSchema: jsonSchema(kind.input, 'input'),
      resultSchema: jsonSchema(kind.result, 'output'),
      concurrency: kind.options.concurrency ?? null,
      concurrencyPerKey: kind.options.concurrencyPerKey ?? null,
      rateLimit: rateLimitOf(kind),
    }));
    return this.descriptions;
  }
}

function rateLimitOf(kind: JobKind): Required<RateLimit> | null {
  const rate = kind.options.rateLimit;
  return rate ? { limit: rate.limit, intervalMs: rate.intervalMs, perKey: rate.perKey ?? false } : null;
}

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  // A part with no JSON Schema form (a transform's output, a Date) becomes `{}`, "anything",
  // rather than failing the whole listing.
  return z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Record<string, unknown>;
}
