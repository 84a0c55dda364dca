import type { Logger } from '../logger.ts';
import type { Database, Statement } from './database.ts';

/*
 * Whether autovacuum visits the job table: the server's setting, and the table's own
 * `autovacuum_enabled`, which an operator may have turned off for it alone. A read of settings and
 * of the catalog, no lock.
 */
const autovacuumState: Statement = {
  name: 'vacuum_check_autovacuum',
  text: `
  SELECT current_setting('autovacuum') = 'on' AS server,
         NOT coalesce('autovacuum_enabled=false' = ANY (c.reloptions), false) AS "table"
  FROM pg_class c WHERE c.oid = 'job'::regclass`,
};

/**
 * Warns, at start, when autovacuum will not clean the job table. Every transition of a job leaves
 * a dead row version and dead index entries (README, "Vacuum"); without vacuum the claim's index
 * scans walk more of them with every job, and the table grows without bound, slowly enough to be
 * found late. Resolves whether autovacuum is on for the table; never rejects, since a database
 * that is away at this moment is reported elsewhere.
 */
export async function checkAutovacuum(db: Database, logger: Logger): Promise<boolean> {
  try {
    const [state] = await db.query<{ server: boolean; table: boolean }>(autovacuumState);
    if (state && state.server && state.table) return true;
    logger.warn(
      { autovacuum: state?.server ? 'on' : 'off', jobTableAutovacuum: state?.table ? 'on' : 'off' },
      'autovacuum does not visit the job table: dead row versions will pile up and claims slow down; ' +
        'turn it on (README, "Vacuum") or vacuum the table on a schedule',
    );
    return false;
  } catch (error) {
    logger.debug({ err: error }, 'could not read the autovacuum setting');
    return true;
  }
}
