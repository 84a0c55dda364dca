import type { Database, Queryable, Statement, TransactionClient } from '../../src/db/database.ts';

/** Runs one statement; the hook decides when, and may look at the rows it returns. */
export type StatementHook = <Row extends object>(
  statement: Statement,
  values: readonly unknown[] | undefined,
  run: () => Promise<Row[]>,
) => Promise<Row[]>;

export interface InterceptedDatabase extends Database {
  /** How many statements whose name starts with `prefix` went through the hook. */
  seen(prefix: string): number;
}

/**
 * The database with every named statement passed through `hook`, those sent inside
 * `transaction()` too: a wrapper of `query` alone would be bypassed, silently, by code that moves
 * its statement into a transaction. `seen` lets a test also check that the statement it slows
 * down or counts was really sent through here.
 */
export function interceptStatements(db: Database, hook: StatementHook): InterceptedDatabase {
  const counts = new Map<string, number>();
  const through = (target: Queryable) =>
    <Row extends object>(statement: Statement, values?: readonly unknown[]) => {
      counts.set(statement.name, (counts.get(statement.name) ?? 0) + 1);
      return hook<Row>(statement, values, () => target.query<Row>(statement, values));
    };
  return {
    ...db,
    seen: (prefix) => [...counts].reduce((sum, [name, count]) => (name.startsWith(prefix) ? sum + count : sum), 0),
    query: through(db),
    transaction: (work) =>
      db.transaction((tx) => {
        const intercepted: TransactionClient = { query: through(tx), exec: (script) => tx.exec(script) };
        return work(intercepted);
      }),
  };
}
