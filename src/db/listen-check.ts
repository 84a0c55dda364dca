import { randomUUID } from 'node:crypto';
import type { Logger } from '../logger.ts';
import type { Database, Statement } from './database.ts';

const PROBE_CHANNEL = 'job_service_listen_probe';

const notify: Statement = { name: 'listen_probe_notify', text: 'SELECT pg_notify($1, $2)' };

/**
 * Sends a NOTIFY of its own through the pool and waits for the LISTEN connection to hear it.
 *
 * Through PgBouncer in transaction mode a LISTEN succeeds and then hears nothing, with no error
 * anywhere: workers wait for their poll, subscriptions never update. That is the mistake this
 * catches, at start, with a warning that names it. Resolves whether the probe was heard; never
 * rejects, since a database that is away at this moment is reported elsewhere.
 */
export async function checkListenHears(db: Database, logger: Logger, timeoutMs = 5_000): Promise<boolean> {
  const token = randomUUID();
  let heard: () => void = () => undefined;
  const arrived = new Promise<boolean>((resolve) => {
    heard = () => resolve(true);
  });
  let timer: NodeJS.Timeout | undefined;
  let unlisten: (() => Promise<void>) | undefined;
  try {
    unlisten = await db.listen(PROBE_CHANNEL, {
      onNotification: (payload) => {
        if (payload === token) heard();
      },
      onReconnect: () => undefined,
    });
    await db.query(notify, [PROBE_CHANNEL, token]);
    const ok = await Promise.race([
      arrived,
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
        timer.unref();
      }),
    ]);
    if (!ok) {
      logger.warn(
        { waitedMs: timeoutMs },
        'the LISTEN connection did not hear a NOTIFY of its own: job events will not arrive. ' +
          'Is it going through PgBouncer in transaction mode? Point LISTEN_DATABASE_URL at PostgreSQL itself.',
      );
    }
    return ok;
  } catch (error) {
    logger.debug({ err: error }, 'the LISTEN check could not run');
    return false;
  } finally {
    clearTimeout(timer);
    await unlisten?.().catch(() => undefined);
  }
}
