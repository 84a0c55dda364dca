/** What bench/run.ts hands every benchmark module, and what each gives back. */
export interface BenchContext {
  /** Trials per system. */
  runs: number;
  /** Names of the systems to run (see each benchmark's list); empty for all. */
  systems: string[];
  /** Settings for our service, as environment strings, e.g. `{ WORKER_CONCURRENCY: '200' }`. */
  oursEnv: Record<string, string>;
  /** Node flags for every trial's process, e.g. `--cpu-prof`. */
  execArgv: string[];
  /** Overrides of the benchmark's own sizes, e.g. `{ jobs: 5000 }`. */
  sizes: Record<string, number>;
  log(line: string): void;
}

export interface BenchResult {
  name: string;
  /** One line: what is measured. */
  measures: string;
  /** The printed table: column titles, then rows of cells in that order. */
  columns: string[];
  rows: string[][];
  notes: string[];
  /** Everything measured, for the JSON file. */
  data: unknown;
}

export type Benchmark = (context: BenchContext) => Promise<BenchResult>;

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}
