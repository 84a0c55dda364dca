/**
 * The chaos suite (issue 15): every fault a PostgreSQL queue meets in production, each on its own
 * database of a PostgreSQL cluster of the suite's own, against an API process and two worker
 * processes under a steady HTTP load with live subscribers, and every acknowledged job accounted
 * for. `npm test` runs the short profile (a few seconds per fault); `npm run chaos` the full one,
 * and writes its table to test-artifacts/chaos-full.md. See README "Chaos".
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runScenario, type ScenarioReport } from './chaos/harness.ts';
import { type PgCluster, startPgCluster } from './chaos/pg-cluster.ts';
import { chaosProfile } from './chaos/profiles.ts';
import { chaosTable } from './chaos/report.ts';
import { SCENARIOS } from './chaos/scenarios.ts';

const profile = chaosProfile();
const SCENARIO_TIMEOUT_MS = profile.name === 'full' ? 900_000 : 150_000;

// CI's second pass (.ci/run) leaves this file out: the suite runs on a cluster of its own
// whatever the pass's server, so once is enough.
describe(`chaos (${profile.name})`, () => {
  let cluster: PgCluster;
  const reports: ScenarioReport[] = [];

  beforeAll(async () => {
    cluster = await startPgCluster({ maxConnections: 40, diskMb: 256 });
  });

  afterAll(async () => {
    await cluster?.destroy();
    if (reports.length === 0) return;
    mkdirSync('test-artifacts', { recursive: true });
    writeFileSync(`test-artifacts/chaos-${profile.name}.json`, JSON.stringify(reports, null, 2));
    writeFileSync(`test-artifacts/chaos-${profile.name}.md`, chaosTable(reports));
  });

  for (const scenario of SCENARIOS) {
    it(scenario.title, async () => {
      // A fault this machine cannot make fails the run rather than passing unseen.
      const unavailable = scenario.unavailable?.(cluster);
      if (unavailable) throw new Error(`cannot make this fault here: ${unavailable}`);
      const report = await runScenario(cluster, scenario, profile);
      reports.push(report);
      expect(report.problems).toEqual([]);
    }, SCENARIO_TIMEOUT_MS);
  }
});
