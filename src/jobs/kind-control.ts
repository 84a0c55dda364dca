import type { Database } from '../db/database.ts';
import type { KindDescription, KindRegistry } from '../kinds/registry.ts';
import type { Logger } from '../logger.ts';
import { JobServiceError, operatorsOnly } from './errors.ts';
import type { Caller } from './service.ts';
import { ALL_KINDS, pauseKindStatement, pausedKindsStatement, resumeKindStatement } from './sql/kind-pause.ts';

/** A kind as `GET /api/v1/kinds` and the `kinds` query show it: its description, and whether it is paused now. */
export interface KindState extends KindDescription {
  paused: boolean;
}

/** The kinds a service runs, as its callers see them, and pausing them across every worker process. */
export class KindControl {
  private readonly db: Database;
  private readonly kinds: KindRegistry;
  private readonly logger: Logger | undefined;

  constructor({ db, kinds, logger }: { db: Database; kinds: KindRegistry; logger?: Logger }) {
    this.db = db;
    this.kinds = kinds;
    this.logger = logger;
  }

  /** The kinds a submission may name, with the JSON Schemas of their input and result, their limits, and whether they are paused. */
  async list(): Promise<KindState[]> {
    const paused = await pausedKindsStatement(this.db);
    const all = paused.has(ALL_KINDS);
    return this.kinds.describe().map((kind) => ({ ...kind, paused: all || paused.has(kind.name) }));
  }

  /**
   * Stops every worker process from starting jobs of `kind` until it is resumed; jobs already
   * started finish. Pausing a paused kind changes nothing. An unknown kind is NOT_FOUND. Pausing
   * stops every owner's jobs, so an API caller must be an operator (FORBIDDEN otherwise); a caller
   * in the same process (the library, tests) passes none.
   */
  async pause(kind: string, caller?: Caller): Promise<KindState> {
    mayPause(caller);
    this.knownKind(kind);
    await pauseKindStatement(this.db, kind);
    this.logger?.info({ kind }, 'kind paused');
    return this.kindState(kind);
  }

  /** Lets workers start jobs of `kind` again, unless every kind is paused (see pauseAll). */
  async resume(kind: string, caller?: Caller): Promise<KindState> {
    mayPause(caller);
    this.knownKind(kind);
    await resumeKindStatement(this.db, kind);
    this.logger?.info({ kind }, 'kind resumed');
    return this.kindState(kind);
  }

  /** Pauses every kind, those a later deploy adds too, until resumeAll. */
  async pauseAll(caller?: Caller): Promise<KindState[]> {
    mayPause(caller);
    await pauseKindStatement(this.db, ALL_KINDS);
    this.logger?.info('all kinds paused');
    return this.list();
  }

  /** Resumes every kind: the pause of all kinds and each kind's own. */
  async resumeAll(caller?: Caller): Promise<KindState[]> {
    mayPause(caller);
    await resumeKindStatement(this.db, null);
    this.logger?.info('all kinds resumed');
    return this.list();
  }

  private knownKind(kind: string): void {
    if (this.kinds.get(kind)) return;
    throw new JobServiceError('NOT_FOUND', `no kind named ${JSON.stringify(kind)}; this service runs ${this.kinds.names.join(', ')}`, 'kind');
  }

  private async kindState(kind: string): Promise<KindState> {
    return (await this.list()).find((state) => state.name === kind)!;
  }
}

function mayPause(caller: Caller | undefined): void {
  if (caller && !caller.operator) throw operatorsOnly('pause or resume kinds');
}
