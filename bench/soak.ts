/**
 * The soak (bench/soak/run.ts) from the command line:
 *
 *   npm run soak -- [--minutes 30] [--rate 2000] [--subscribers 200] [--retention-seconds 120]
 *                   [--autovacuum on|as-is]
 *
 * Autovacuum: a queue deletes (the pruner) and updates every row several times, so without vacuum
 * its table and indexes grow for ever and the soak would only measure that (README, "Vacuum").
 * This machine's server runs with autovacuum off; `--autovacuum on` (the default) turns it on for
 * the run (ALTER SYSTEM and a reload, as an operator would), and puts the server's setting back
 * at the end, on Ctrl-C too. `--autovacuum as-is` leaves the server alone, to see what happens
 * without it.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { describeMachine } from './lib/machine.ts';
import { ADMIN_URL, createFreshDatabase, withClient } from './lib/pg.ts';
import { runSoak } from './soak/run.ts';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '30' },
    rate: { type: 'string', default: '2000' },
    subscribers: { type: 'string', default: '200' },
    'retention-seconds': { type: 'string', default: '120' },
    autovacuum: { type: 'string', default: 'on' },
    'report-seconds': { type: 'string', default: '60' },
  },
});
if (values.autovacuum !== 'on' && values.autovacuum !== 'as-is') throw new Error('--autovacuum is on or as-is');

async function setAutovacuum(on: boolean | 'reset'): Promise<void> {
  await withClient(ADMIN_URL, async (admin) => {
    await admin.query(on === 'reset' ? 'ALTER SYSTEM RESET autovacuum' : `ALTER SYSTEM SET autovacuum = ${on ? 'on' : 'off'}`);
    await admin.query('SELECT pg_reload_conf()');
  });
}

const wasOn = await withClient(ADMIN_URL, async (admin) => (await admin.query(`SELECT current_setting('autovacuum') = 'on' AS on`)).rows[0].on as boolean);
const turnedOn = values.autovacuum === 'on' && !wasOn;
const restore = async () => {
  if (turnedOn) await setAutovacuum('reset');
};
process.once('SIGINT', () => void restore().finally(() => process.exit(130)));
if (turnedOn) {
  await setAutovacuum(true);
  console.error('autovacuum turned on for the soak (ALTER SYSTEM); it is reset at the end');
}

const machine = await describeMachine();
const database = await createFreshDatabase('soak');
const startedAt = new Date();
try {
  const { migrate, readMigrations } = await import('../src/db/migrate.ts');
  const { MIGRATIONS_DIR } = await import('../src/db/open.ts');
  const { openPostgres } = await import('../src/db/postgres.ts');
  const { pino } = await import('pino');
  const db = openPostgres({ connectionString: database.url, poolSize: 1, logger: pino({ level: 'silent' }) });
  await migrate(db, await readMigrations(MIGRATIONS_DIR), pino({ level: 'silent' }));
  await db.close();

  const options = {
    databaseUrl: database.url,
    minutes: Number(values.minutes),
    rate: Number(values.rate),
    subscribers: Number(values.subscribers),
    retentionSeconds: Number(values['retention-seconds']),
    reportSeconds: Number(values['report-seconds']),
  };
  const report = await runSoak({ ...options, log: (line) => console.error(line) });

  const fixed = (value: number, digits = 1) => value.toFixed(digits);
  console.log(`\n${machine.cores} × ${machine.cpu}, ${machine.memoryGiB} GiB; Node ${machine.node}; ${machine.postgres}`);
  console.log(`soak: ${options.rate} jobs/s offered over HTTP, ${options.subscribers} subscribers, retention ${options.retentionSeconds} s, autovacuum ${report.autovacuum ? 'on' : 'off'}\n`);
  console.log(`| ${options.reportSeconds === 60 ? 'minute' : `${options.reportSeconds} s`} | submitted | completed/s | e2e p50 ms | e2e p99 ms | RSS MiB | table MiB | indexes MiB | live | dead | autovacuums | backlog |`);
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const m of report.minutes) {
    console.log(
      `| ${m.minute} | ${m.submitted} | ${fixed(m.completedPerSecond, 0)} | ${fixed(m.e2eP50Ms, 2)} | ${fixed(m.e2eP99Ms, 2)} | ${fixed(m.rssMiB)} | ${fixed(m.tableMiB)} | ${fixed(m.indexesMiB)} | ${m.liveTuples} | ${m.deadTuples} | ${m.autovacuumRuns} | ${m.backlog} |`,
    );
  }
  console.log(`\naccepted ${report.accepted}, refused ${report.refused}, sent again (a 503, or a reused socket reset) ${report.sentAgain}, shed by the load (service behind) ${report.shed}, completed ${report.completed}, failed ${report.failed}, lost ${report.lost}`);
  const resultsDir = fileURLToPath(new URL('./results/', import.meta.url));
  mkdirSync(resultsDir, { recursive: true });
  const file = `${resultsDir}soak-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`;
  writeFileSync(file, `${JSON.stringify({ startedAt, options, machine, report }, null, 2)}\n`);
  console.log(`written to ${file}`);
  if (report.lost > 0 || report.refused > 0) process.exitCode = 1;
} finally {
  await database.drop();
  await restore();
}
