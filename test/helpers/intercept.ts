import type { Database, Statement, TransactionClient } from '../../src/db/database.ts';

export interface StatementHooks {
  /** Before the statement is sent. May wait, as a slow database would, or throw, as a refusing one would. */
  before?(statement: Statement, values: readonly unknown[] | undefined): void | Promise<void>;
  /**
   * Once the statement's effect is committed: as it returns when sent alone, after COMMIT when
   * sent inside `transaction()`. May wait, as a late answer would, or throw, as a lost one would.
   */
  after?(statement: Statement, values: readonly unknown[] | undefined, rows: readonly object[]): void | Promise<void>;
}

export interface InterceptedDatabase extends Database {
  /** How many statements whose name starts with `prefix` were sent through here. */
  seen(prefix: string): number;
}

/**
 * The database with its named statements passed through `hooks`, those sent inside
 * `transaction()` too: a wrapper of `query` alone would be bypassed, silently, by code that moves
 * its statement into a transaction. `seen` lets a test also check that the statement it slows
 * down or counts was really sent.
 */
export function interceptStatements(db: Database, hooks: StatementHooks): InterceptedDatabase {
  const counts = new Map<string, number>();
  async function send<Row extends object>(
    target: { query: Database['query'] },
    statement: Statement,
    values: readonly unknown[] | undefined,
  ): Promise<Row[]> {
    counts.set(statement.name, (counts.get(statement.name) ?? 0) + 1);
    await hooks.before?.(statement, values);
    return target.query<Row>(statement, values);
  }
  return {
    ...db,
    seen: (prefix) => [...counts].reduce((sum, [name, count]) => (name.startsWith(prefix) ? sum + count : sum), 0),
    async query<Row extends object>(statement: Statement, values?: readonly unknown[]) {
      const rows = await send<Row>(db, statement, values);
      await hooks.after?.(statement, values, rows);
      return rows;
    },
    async transaction(work) {
      const sent: Array<[Statement, readonly unknown[] | undefined, readonly object[]]> = [];
      const result = await db.transaction((tx) => {
        const intercepted: TransactionClient = {
          async query<Row extends object>(statement: Statement, values?: readonly unknown[]) {
            const rows = await send<Row>(tx, statement, values);
            sent.push([statement, values, rows]);
            return rows;
          },
          exec: (script) => tx.exec(script),
        };
        return work(intercepted);
      });
      for (const [statement, values, rows] of sent) await hooks.after?.(statement, values, rows);
      return result;
    },
  };
}
