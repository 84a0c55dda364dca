/**
 * The console's workflow view in Chromium against the real server, with a real worker: a diamond
 * drawn as a graph whose nodes change state live (running, waiting, then completed) without a
 * reload; a node opens its step's job, whose view links back to the graph; a workflow opened by
 * #workflow/<id> before the key was entered; another customer's workflow not shown; 1,000 steps
 * listed by layer; the layout's layers and ordering; edges that skip layers routed through lanes
 * of their own, never behind a step; the view audited with axe-core (WCAG A/AA)
 * at 1280 and 360 px, light and dark, and screenshotted into test-artifacts/ (and, with
 * UPDATE_DOCS_SCREENSHOT=1, into docs/workflow.png).
 */
import { copyFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { BrowserContextOptions, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Database } from '../../src/db/database.ts';
import type { HttpServer } from '../../src/http/server.ts';
import type { Caller } from '../../src/jobs/service.ts';
import type { WorkflowStepInput } from '../../src/jobs/workflows.ts';
import { defineKind } from '../../src/kinds/define.ts';
import type { Worker } from '../../src/worker/worker.ts';
import { createTestApp, type TestApp, testServer } from '../helpers/api.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { createWorker, testKinds } from '../helpers/jobs.ts';
import { ARTIFACTS, audit, DESKTOP, PATIENCE, PHONE, TestBrowser } from './chromium.ts';

const README_SCREENSHOT = fileURLToPath(new URL('../../docs/workflow.png', import.meta.url));
const OPERATOR_KEY = 'workflow-graph-browser-operator-key';
const CUSTOMER_KEY = 'workflow-graph-browser-customer-key';
const OTHER_KEY = 'workflow-graph-browser-other-key';

let testDb: TestDatabase;
let db: Database;
let api: TestApp;
let server: HttpServer;
let worker: Worker;
let browser: TestBrowser;
let base: string;
let customer: Caller;
/** A held stage runs until the test lets it go. */
let letGo: () => void = () => undefined;
let held = new Promise<void>((resolve) => (letGo = resolve));

const stage = defineKind({
  name: 'stage',
  input: z.object({ hold: z.boolean().default(false) }),
  result: z.object({ parents: z.number() }),
  handler: async ({ hold }, context) => {
    if (hold) await held;
    return { parents: Object.keys(await context.parents()).length };
  },
});

beforeAll(async () => {
  testDb = await createTestDatabase(import.meta.filename);
  db = testDb.open();
  const kinds = testKinds({}, { extra: [stage] });
  api = await createTestApp(db, { service: { kinds }, apiKeys: [CUSTOMER_KEY, OTHER_KEY], adminKeys: [OPERATOR_KEY] });
  customer = api.auth.authenticate(`Bearer ${CUSTOMER_KEY}`)!;
  server = testServer(api);
  await server.start();
  base = `http://127.0.0.1:${server.address.port}`;
  worker = createWorker(db, api.hub, { kinds, pollIntervalMs: 100 });
  await worker.start();
  browser = await TestBrowser.launch();
}, 120_000);

afterAll(async () => {
  letGo();
  await browser?.close();
  await worker?.stop();
  await server?.stop();
  await api?.close();
  await testDb?.drop();
});

/** The page at `path` with `key` entered, once the live connection is up. */
async function openConsole(key: string, options: BrowserContextOptions = DESKTOP, path = '/'): Promise<Page> {
  // The page's first requests go out before a key is entered, and are refused, as they should be.
  const page = await browser.open(`${base}${path}`, options, /401|Unauthorized/i);
  await page.getByLabel('API key', { exact: true }).fill(key);
  await page.getByLabel('API key', { exact: true }).press('Enter');
  await page.locator('#live[data-state="connected"]').waitFor(PATIENCE);
  return page;
}


/**
 * In the page, as a string to evaluate: (paths, boxes) => which paths ({ element, name }) pass
 * behind which steps' boxes ({ x, y, width, height, name }, in the drawing's own units), from
 * points every 2 px along each. A box's border is not inside it, so an edge may leave its
 * parent's bottom; it ends above its child's top, where the arrow's tip is.
 */
const BEHIND = `(paths, boxes) => {
  const found = new Set();
  for (const { element, name } of paths) {
    const matrix = element.getCTM();
    for (let at = 0; at <= element.getTotalLength(); at += 2) {
      const { x, y } = element.getPointAtLength(at).matrixTransform(matrix);
      for (const box of boxes) {
        if (x > box.x + 0.5 && x < box.x + box.width - 0.5 && y > box.y + 0.5 && y < box.y + box.height - 0.5) found.add(name + ' behind ' + box.name);
      }
    }
  }
  return [...found];
}`;

/** `held` names the stage that runs until the test lets it go. */
function diamond(held?: 'fetch' | 'resize'): WorkflowStepInput[] {
  return [
    { name: 'fetch', kind: 'stage', input: { hold: held === 'fetch' } },
    { name: 'resize', kind: 'stage', input: { hold: held === 'resize' }, dependsOn: ['fetch'] },
    { name: 'describe', kind: 'add', input: { num1: '1', num2: '2' }, dependsOn: ['fetch'] },
    { name: 'publish', kind: 'stage', input: {}, dependsOn: ['resize', 'describe'] },
  ];
}

const node = (page: Page, name: string) => page.locator(`#workflow-view g.step[data-name="${name}"]`);

async function states(page: Page): Promise<Record<string, string>> {
  return page.evaluate(() =>
    Object.fromEntries([...document.querySelectorAll<SVGGElement>('#workflow-view g.step')].map((step) => [step.dataset.name, step.dataset.status])),
  );
}

async function showWorkflow(page: Page, id: string): Promise<void> {
  await page.evaluate((hash) => (location.hash = hash), `#workflow/${id}`);
  await page.locator('#workflow-view g.step').first().waitFor(PATIENCE);
}

describe("the console's workflow view", () => {
  it("draws a diamond whose steps change state live, from a hash given before the key; a node opens its step's job, which links back", async () => {
    held = new Promise<void>((resolve) => (letGo = resolve));
    const workflow = await api.jobs.workflows.submit({ steps: diamond('fetch') }, customer);
    const page = await openConsole(CUSTOMER_KEY, DESKTOP, `/#workflow/${workflow.id}`);
    await node(page, 'fetch').and(page.locator('[data-status="WIP"]')).waitFor(PATIENCE);
    expect(await states(page)).toEqual({ fetch: 'WIP', resize: 'WAITING', describe: 'WAITING', publish: 'WAITING' });
    expect(await page.locator('#workflow-view .edges path').count()).toBe(4);
    await page.getByRole('button', { name: 'resize stage Waiting', exact: true }).waitFor(PATIENCE);
    expect([await node(page, 'fetch').locator('text.glyph').textContent(), await node(page, 'fetch').locator('text.state').textContent()]).toEqual(['▶', 'Running']);
    // Parents above children: each layer lower on the page than the one before.
    const top = async (name: string) => (await node(page, name).boundingBox())!.y;
    expect(await top('fetch')).toBeLessThan(await top('resize'));
    expect(await top('resize')).toBe(await top('describe'));
    expect(await top('describe')).toBeLessThan(await top('publish'));
    await page.screenshot({ path: `${ARTIFACTS}workflow-running.png`, fullPage: true });

    letGo();
    await page.locator('#workflows[data-finished="true"]').waitFor(PATIENCE);
    expect(await states(page)).toEqual({ fetch: 'COMPLETED', resize: 'COMPLETED', describe: 'COMPLETED', publish: 'COMPLETED' });
    expect([await node(page, 'publish').locator('text.glyph').textContent(), await node(page, 'publish').locator('text.state').textContent()]).toEqual(['✓', 'Completed']);
    await expect.poll(() => page.locator('#workflow-status').textContent(), PATIENCE).toMatch(/4 steps, 4 completed\. Finished\./);

    await node(page, 'describe').focus();
    await page.keyboard.press('Enter');
    const describeJob = workflow.steps.find((step) => step.name === 'describe')!.job.id;
    await page.locator('#detail-heading', { hasText: describeJob }).waitFor(PATIENCE);
    await page.locator('#detail-workflow:not([hidden])').waitFor(PATIENCE);
    expect(await page.locator('#detail-workflow').innerText()).toContain(`Step describe of workflow ${workflow.id}.`);
    await page.evaluate(() => (location.hash = ''));
    await page.getByRole('link', { name: 'Show the workflow graph' }).click();
    await page.waitForFunction(() => document.activeElement?.id === 'workflows', undefined, PATIENCE);
    await page.locator('#workflows[data-finished="true"]').waitFor(PATIENCE);
    await node(page, 'fetch').click();
    await page.locator('#detail-heading', { hasText: workflow.steps.find((step) => step.name === 'fetch')!.job.id }).waitFor(PATIENCE);
    expect(browser.problemsOf(page)).toEqual([]);
  });

  it("shows an operator any owner's workflow, and tells another customer it has none of that id", async () => {
    const workflow = await api.jobs.workflows.submit({ steps: diamond() }, customer);
    const operator = await openConsole(OPERATOR_KEY);
    await showWorkflow(operator, workflow.id);
    expect(Object.keys(await states(operator)).sort()).toEqual(['describe', 'fetch', 'publish', 'resize']);
    const other = await openConsole(OTHER_KEY);
    await other.getByLabel('Workflow ID').fill(workflow.id);
    await other.getByRole('button', { name: 'Show', exact: true }).click();
    await other.locator('#workflow-error', { hasText: `No workflow ${workflow.id} is yours to see.` }).waitFor(PATIENCE);
    expect(await other.locator('#workflow-view g.step').count()).toBe(0);
  });

  it('lists 1,000 steps by layer instead of drawing them, and keeps them live', async () => {
    // A fan-out of 998 between a root and a fan-in: one layer far too wide to draw.
    const steps: WorkflowStepInput[] = [{ name: 'root', kind: 'stage', input: {} }];
    for (let index = 0; index < 998; index += 1) steps.push({ name: `leaf-${index}`, kind: 'stage', input: {}, dependsOn: ['root'] });
    steps.push({ name: 'join', kind: 'stage', input: {}, dependsOn: steps.slice(1).map((step) => step.name) });
    const workflow = await api.jobs.workflows.submit({ steps }, customer);
    const page = await openConsole(CUSTOMER_KEY);
    await page.evaluate((hash) => (location.hash = hash), `#workflow/${workflow.id}`);
    await page.locator('#workflows[data-finished="true"]').waitFor({ timeout: 60_000 });
    const rows = page.locator('#workflow-view tbody tr');
    expect(await rows.count()).toBe(1000);
    expect(await page.locator('#workflow-view svg').count()).toBe(0);
    expect(await rows.first().locator('td').first().textContent()).toBe('1');
    expect(await page.locator('#workflow-view tr[data-name="join"] td').first().textContent()).toBe('3');
    expect(await page.locator('#workflow-view tbody tr:not([data-status="COMPLETED"])').count()).toBe(0);
    expect(await page.locator('#workflow-status').textContent()).toMatch(/1000 steps, 1000 completed\. Finished\. Listed by layer/);
    expect(browser.problemsOf(page)).toEqual([]);
  });

  it('lists a graph whose arrows would need more lanes than a drawing can show apart', async () => {
    // 100 steps, each waiting for every step before it: one per row, and 161,700 lanes.
    const steps: WorkflowStepInput[] = Array.from({ length: 100 }, (_, index) => ({
      name: `s${index}`,
      kind: 'add',
      input: { num1: String(index), num2: '0' },
      dependsOn: Array.from({ length: index }, (_, parent) => `s${parent}`),
    }));
    const workflow = await api.jobs.workflows.submit({ steps }, customer);
    const page = await openConsole(CUSTOMER_KEY);
    await page.evaluate((hash) => (location.hash = hash), `#workflow/${workflow.id}`);
    await page.locator('#workflow-view tbody tr').first().waitFor(PATIENCE);
    expect(await page.locator('#workflow-view tbody tr').count()).toBe(100);
    expect(await page.locator('#workflow-view svg').count()).toBe(0);
    expect(await page.locator('#workflow-view tr[data-name="s99"] td').first().textContent()).toBe('100');
    expect(await page.locator('#workflow-status').textContent()).toMatch(/100 steps, .*Listed by layer: its arrows skip more rows than a drawing could show apart/);
    expect(browser.problemsOf(page)).toEqual([]);
  });

  it('lays out by longest path from the roots, and orders each layer to cut crossings', async () => {
    const page = await openConsole(CUSTOMER_KEY);
    // As a string: vitest would rewrite an import() written in this file, and the page has no such helper.
    const layout: { chain: string[][]; crossed: string[][] } = await page.evaluate(`(async () => {
      const { layoutWorkflow } = await import('/assets/workflow-graph.js');
      const step = (name, ...dependsOn) => ({ name, dependsOn });
      const names = (steps, layers) => layers.map((layer) => layer.map((index) => steps[index].name));
      // 'late' hangs off the root and off the end of a chain: its layer is the chain's length, not 1.
      const chain = [step('root'), step('one', 'root'), step('two', 'one'), step('late', 'root', 'two'), step('outside', 'a-job-id')];
      // Submitted crossed: x1 under b, x2 under a; the ordering puts each child under its parent.
      const crossed = [step('a'), step('b'), step('x1', 'b'), step('x2', 'a')];
      return { chain: names(chain, layoutWorkflow(chain).layers), crossed: names(crossed, layoutWorkflow(crossed).layers) };
    })()`);
    expect(layout.chain).toEqual([['root', 'outside'], ['one'], ['two'], ['late']]);
    expect(layout.crossed).toEqual([['a', 'b'], ['x2', 'x1']]);
  });

  it('routes an edge that skips layers through a lane of its own in each, beside the steps it skips, not behind them', async () => {
    const page = await openConsole(CUSTOMER_KEY);
    // 'late' waits for 'root' and for the end of the chain below it: that edge skips two layers.
    const routed: { layers: string[][]; via: number[]; width: number; behind: string[]; shuffled: string[]; unlaned: number[]; laned: boolean[] } = await page.evaluate(`(async () => {
      const { layoutWorkflow, placeWorkflow } = await import('/assets/workflow-graph.js');
      const step = (name, ...dependsOn) => ({ name, dependsOn });
      const behind = (steps, layout) => {
        const { boxes, edges } = placeWorkflow(layout);
        const drawing = document.body.appendChild(document.createElementNS('http://www.w3.org/2000/svg', 'svg'));
        const paths = edges.map(({ parent, child, d }) => {
          const element = drawing.appendChild(document.createElementNS('http://www.w3.org/2000/svg', 'path'));
          element.setAttribute('d', d);
          return { element, name: steps[parent].name + '→' + steps[child].name };
        });
        const found = (${BEHIND})(paths, boxes.map((box, index) => ({ ...box, name: steps[index].name })));
        drawing.remove();
        return found;
      };
      const chain = [step('root'), step('one', 'root'), step('two', 'one'), step('late', 'root', 'two')];
      const layout = layoutWorkflow(chain);
      const long = layout.edges.find((edge) => chain[edge.parent].name === 'root' && chain[edge.child].name === 'late');
      // 60 steps, each waiting for up to three earlier ones picked by a fixed pseudo-random sequence.
      let seed = 7;
      const next = (below) => ((seed = (seed * 48271) % 2147483647), seed % below);
      const shuffled = [step('s0')];
      for (let index = 1; index < 60; index += 1) {
        const parents = new Set(Array.from({ length: 1 + next(3) }, () => 's' + next(index)));
        shuffled.push(step('s' + index, ...(next(8) === 0 ? [] : parents)));
      }
      return {
        layers: layout.layers.map((layer) => layer.map((index) => chain[index].name)),
        via: long.via.map((point) => layout.order.findIndex((layer) => layer.includes(point))),
        width: placeWorkflow(layout).width,
        behind: behind(chain, layout),
        shuffled: behind(shuffled, layoutWorkflow(shuffled)),
        unlaned: layoutWorkflow(chain, { maxLanes: 1 }).edges.map((edge) => edge.via.length),
        laned: [layout.laned, layoutWorkflow(chain, { maxLanes: 1 }).laned],
      };
    })()`);
    expect(routed.layers).toEqual([['root'], ['one'], ['two'], ['late']]);
    // A virtual point in each layer the edge skips, and a lane far narrower than a second step.
    expect(routed.via).toEqual([1, 2]);
    expect(routed.width).toBeLessThan(2 * 168);
    expect(routed.behind).toEqual([]);
    expect(routed.shuffled).toEqual([]);
    // Past its budget of lanes a graph gets none, and says so: the view lists it (the next test).
    expect(routed.unlaned).toEqual([0, 0, 0, 0]);
    expect(routed.laned).toEqual([true, false]);

    // The same chain drawn: one path per edge, none behind a step.
    const steps: WorkflowStepInput[] = [
      { name: 'root', kind: 'stage', input: {} },
      { name: 'one', kind: 'stage', input: {}, dependsOn: ['root'] },
      { name: 'two', kind: 'stage', input: {}, dependsOn: ['one'] },
      { name: 'late', kind: 'stage', input: {}, dependsOn: ['root', 'two'] },
    ];
    const workflow = await api.jobs.workflows.submit({ steps }, customer);
    await showWorkflow(page, workflow.id);
    expect(await page.locator('#workflow-view .edges path').count()).toBe(4);
    const drawn: string[] = await page.evaluate(`(${BEHIND})(
      [...document.querySelectorAll('#workflow-view .edges path')].map((element, index) => ({ element, name: 'edge ' + index })),
      [...document.querySelectorAll('#workflow-view g.step')].map((node) => {
        const box = node.querySelector('rect.box');
        const { x, y, width, height } = box.getBBox();
        const corner = new DOMPoint(x, y).matrixTransform(box.getCTM());
        return { x: corner.x, y: corner.y, width, height, name: node.dataset.name };
      }),
    )`);
    expect(drawn).toEqual([]);
    expect(browser.problemsOf(page)).toEqual([]);
  });

  for (const [name, options] of [
    ['desktop', DESKTOP],
    ['phone', PHONE],
    ['desktop-dark', { ...DESKTOP, colorScheme: 'dark' }],
    ['phone-dark', { ...PHONE, colorScheme: 'dark' }],
  ] as const) {
    it(`passes the WCAG A/AA audit on a ${name}, with no sideways scroll, and is screenshotted`, async () => {
      held = new Promise<void>((resolve) => (letGo = resolve));
      const workflow = await api.jobs.workflows.submit({ steps: diamond('resize') }, customer);
      // The audit script is injected inline, which the page's own policy rightly forbids.
      const page = await openConsole(CUSTOMER_KEY, { ...options, bypassCSP: true });
      await showWorkflow(page, workflow.id);
      await node(page, 'resize').and(page.locator('[data-status="WIP"]')).waitFor(PATIENCE);
      await node(page, 'describe').and(page.locator('[data-status="COMPLETED"]')).waitFor(PATIENCE);
      await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
      await page.locator('#workflows').screenshot({ path: `${ARTIFACTS}workflow-${name}.png` });
      // The focus ring too must pass.
      await node(page, 'fetch').focus();
      expect(await audit(page)).toEqual([]);
      const width = await page.evaluate(() => document.documentElement.scrollWidth);
      expect(width).toBeLessThanOrEqual(options.viewport!.width);
      // A diamond is a little wider than a phone's panel: scaled down to fit, not scrolled.
      const graph = await page.locator('#workflow-view .workflow-graph').evaluate((wrap) => ({ fit: wrap.classList.contains('fit'), scrolls: wrap.scrollWidth > wrap.clientWidth }));
      expect(graph).toEqual({ fit: true, scrolls: false });
      letGo();
      await page.locator('#workflows[data-finished="true"]').waitFor(PATIENCE);
      await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
      await page.locator('#workflows').screenshot({ path: `${ARTIFACTS}workflow-${name}-finished.png` });
      if (name === 'desktop' && process.env.UPDATE_DOCS_SCREENSHOT === '1') await copyFile(`${ARTIFACTS}workflow-desktop.png`, README_SCREENSHOT);
      expect(browser.problemsOf(page)).toEqual([]);
    });
  }
});
