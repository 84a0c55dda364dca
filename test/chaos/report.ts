import type { ScenarioReport } from './harness.ts';

/** The BENCHMARKS.md "Chaos" table, from a run's reports. */
export function chaosTable(reports: readonly ScenarioReport[]): string {
  const header = [
    'scenario',
    'fault s',
    'jobs acknowledged',
    'lost',
    'wrong',
    'duplicated completions',
    'subscribers (missed)',
    'recovery s',
    'subscriber delay p50 / max ms (jobs added during the fault)',
    'refused (status: count)',
    'create→complete p50 / max ms: before · during · after',
    'what the logs and metrics said',
  ];
  const rows = reports.map((report) => {
    const { before, during, after } = report.latency;
    const delay = report.subscriberDelayDuringFault;
    const logs = Object.entries(report.logs)
      .sort((a, b) => b[1] - a[1])
      .map(([msg, count]) => `"${msg}" ×${count}`)
      .join('; ');
    return [
      report.scenario,
      report.faultSeconds,
      report.acknowledged,
      report.lost,
      report.wrong,
      report.duplicatedCompletions,
      `${report.subscribers} (${report.subscribersMissed})`,
      report.recoverySeconds ?? 'never',
      delay.subscribers === 0 ? 'none added' : `${delay.p50} / ${delay.max}`,
      Object.entries(report.refusals).map(([status, count]) => `${status}: ${count}`).join(', ') || 'none',
      [before, during, after].map((phase) => (phase.jobs === 0 ? 'none added' : `${phase.p50}/${phase.max}`)).join(' · '),
      [...report.notes, logs || 'no warnings'].join('. '),
    ];
  });
  return [header, header.map(() => '---'), ...rows].map((cells) => `| ${cells.join(' | ')} |`).join('\n') + '\n';
}
