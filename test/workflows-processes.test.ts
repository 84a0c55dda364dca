/**
 * Workflows across processes (issue 26, "done when"): seeded random graphs (a random DAG, a wide
 * diamond, a long chain, each ending in one step that depends on every sink), about 900 steps in
 * all, run by three worker processes while one of them is SIGKILLed twice. A trigger of this
 * test's own records every status change with the database's clock, so the order of events is
 * the database's, not the test's.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkflowStepInput } from '../src/jobs/workflows.ts';
import { KindRegistry } from '../src/kinds/registry.ts';
import { step } from './fixtures/workflow-kinds.ts';
import { ANONYMOUS, closeJobsDatabase, type JobsDatabase, openJobsDatabase } from './helpers/jobs.ts';
import { type ServiceProcess, startService } from './helpers/processes.ts';

const kinds = new KindRegistry([step]);
const TIMEOUT_SECONDS = 2;

let jobs: JobsDatabase;
const workers: ServiceProcess[] = [];

function startWorker(): Promise<ServiceProcess> {
  return startService({
    DATABASE_URL: jobs.testDb.url,
    ROLE: 'worker',
    JOB_KINDS_MODULE: './test/fixtures/workflow-kinds.ts',
    WORKER_CONCURRENCY: '8',
    WORKER_POLL_INTERVAL_MS: '500',
    JOB_TIMEOUT_SECONDS: String(TIMEOUT_SECONDS),
    RETRY_BASE_DELAY_MS: '50',
    LOG_LEVEL: 'warn',
  }).then((worker) => {
    workers.push(worker);
    return worker;
  });
}

beforeAll(async () => {
  jobs = await openJobsDatabase(import.meta.filename, { kinds });
  await jobs.db.transaction(async (tx) => {
    await tx.exec(`
      CREATE TABLE test_transition (job_id uuid NOT NULL, status job_status NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());
      CREATE FUNCTION test_record_transition() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO test_transition (job_id, status) VALUES (NEW.id, NEW.status);
        RETURN NULL;
      END $$;
      CREATE TRIGGER test_record_transition AFTER INSERT OR UPDATE OF status ON job
        FOR EACH ROW EXECUTE FUNCTION test_record_transition();`);
  });
}, 60_000);

afterAll(async () => {
  await Promise.all(workers.map((worker) => worker.stop()));
  if (jobs) await closeJobsDatabase(jobs);
});

/** A small seeded generator (mulberry32), so that a failing graph can be made again. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Graph = Map<string, string[]>;

/** Steps s0..s{n-1}, each depending on up to three earlier ones, and `final` on every sink. */
function randomDag(prefix: string, n: number, next: () => number): Graph {
  const graph: Graph = new Map();
  for (let i = 0; i < n; i += 1) {
    const parents = new Set<string>();
    const count = i === 0 ? 0 : Math.floor(next() * 4);
    for (let k = 0; k < count; k += 1) parents.add(`${prefix}${Math.floor(next() * i)}`);
    graph.set(`${prefix}${i}`, [...parents]);
  }
  return withFinal(graph);
}

function diamond(width: number): Graph {
  const graph: Graph = new Map([['top', []]]);
  for (let i = 0; i < width; i += 1) graph.set(`mid${i}`, ['top']);
  return withFinal(graph);
}

function chain(length: number): Graph {
  const graph: Graph = new Map();
  for (let i = 0; i < length; i += 1) graph.set(`c${i}`, i === 0 ? [] : [`c${i - 1}`]);
  return withFinal(graph);
}

function withFinal(graph: Graph): Graph {
  const hasChild = new Set([...graph.values()].flat());
  graph.set('final', [...graph.keys()].filter((name) => !hasChild.has(name)));
  return graph;
}

function stepsOf(graph: Graph, failing?: string): WorkflowStepInput[] {
  return [...graph].map(([name, dependsOn]) => ({
    name,
    kind: 'step',
    input: { name, ms: 1 + (name.length % 3), fail: name === failing },
    dependsOn,
    maxAttempts: 5,
  }));
}

function descendants(graph: Graph, of: string): Set<string> {
  const found = new Set<string>();
  let grew = true;
  while (grew) {
    grew = false;
    for (const [name, parents] of graph) {
      if (found.has(name)) continue;
      if (parents.some((parent) => parent === of || found.has(parent))) {
        found.add(name);
        grew = true;
      }
    }
  }
  return found;
}

async function unfinished(): Promise<number> {
  const [row] = await jobs.db.query<{ count: number }>(
    { name: 'test_wf_unfinished', text: `SELECT count(*)::int AS count FROM job WHERE status IN ('waiting', 'pending', 'wip')` },
    [],
  );
  return row!.count;
}

async function finishedCount(): Promise<number> {
  const [row] = await jobs.db.query<{ count: number }>(
    { name: 'test_wf_finished', text: `SELECT count(*)::int AS count FROM job WHERE status IN ('completed', 'failed', 'cancelled')` },
    [],
  );
  return row!.count;
}

async function until(condition: () => Promise<boolean>, what: string, deadlineMs = 45_000): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await sleep(25);
  }
}

describe('workflows run by three worker processes, one of them killed twice', () => {
  it('starts each step after all its parents completed, completes each once, and cancels exactly what a failure reaches', async () => {
    const next = random(26);
    const graphs = { dag: randomDag('s', 420, next), diamond: diamond(200), chain: chain(150) };
    const failing = randomDag('f', 120, next);
    const failingStep = 'f7';

    const submitted = new Map<string, { graph: Graph; ids: Map<string, string> }>();
    for (const [label, graph] of [...Object.entries(graphs), ['failing', failing] as const]) {
      const workflow = await jobs.service.workflows.submit(
        { steps: stepsOf(graph, label === 'failing' ? failingStep : undefined) },
        ANONYMOUS,
      );
      submitted.set(label, { graph, ids: new Map(workflow.steps.map((s) => [s.name, s.job.id])) });
    }
    const total = [...submitted.values()].reduce((sum, { graph }) => sum + graph.size, 0);

    await Promise.all([startWorker(), startWorker(), startWorker()]);
    for (const share of [0.25, 0.55]) {
      await until(async () => (await finishedCount()) >= total * share, `${share} of the steps finished`);
      const victim = workers.find((worker) => worker.child.exitCode === null && worker.child.signalCode === null)!;
      victim.kill('SIGKILL');
      await victim.exited;
      await startWorker();
    }
    await until(async () => (await unfinished()) === 0, 'every step finished');

    const rows = await jobs.db.query<{ id: string; status: string; result: { name: string; parents: Record<string, { status: string; name: string | null }> } | null; completions: number; firstWip: number | null; completedAt: number | null }>(
      {
        name: 'test_wf_rows',
        text: `
        SELECT job.id, job.status::text, job.result,
               (SELECT count(*)::int FROM test_transition t WHERE t.job_id = job.id AND t.status = 'completed') AS completions,
               (SELECT extract(epoch FROM min(t.at)) * 1e6 FROM test_transition t WHERE t.job_id = job.id AND t.status = 'wip')::float8 AS "firstWip",
               (SELECT extract(epoch FROM min(t.at)) * 1e6 FROM test_transition t WHERE t.job_id = job.id AND t.status = 'completed')::float8 AS "completedAt"
        FROM job`,
      },
      [],
    );
    const byId = new Map(rows.map((row) => [row.id, row]));
    expect(rows).toHaveLength(total);

    for (const [label, { graph, ids }] of submitted) {
      const doomed = label === 'failing' ? descendants(graph, failingStep) : new Set<string>();
      for (const [name, parents] of graph) {
        const row = byId.get(ids.get(name)!)!;
        if (name === failingStep && label === 'failing') {
          expect(row.status).toBe('failed');
          continue;
        }
        if (doomed.has(name)) {
          expect({ label, name, status: row.status, ran: row.firstWip }).toEqual({ label, name, status: 'cancelled', ran: null });
          continue;
        }
        expect({ label, name, status: row.status, completions: row.completions }).toEqual({ label, name, status: 'completed', completions: 1 });
        for (const parent of parents) {
          const before = byId.get(ids.get(parent)!)!;
          // Every attempt of the step began after its parent's completion was committed.
          expect(before.completedAt).not.toBeNull();
          expect(row.firstWip!).toBeGreaterThan(before.completedAt!);
        }
        // What the handler saw: every parent, completed, with its own result.
        expect(row.result!.parents).toEqual(Object.fromEntries(parents.map((parent) => [parent, { status: 'completed', name: parent }])));
      }
    }
    // The final steps saw every parent's result (the check above), and there are many of them.
    expect(submitted.get('diamond')!.graph.get('final')).toHaveLength(200);
    expect(descendants(failing, failingStep).size).toBeGreaterThan(5);
    expect(workers.length).toBe(5);
  }, 60_000);
});
