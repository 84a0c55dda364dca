import { copyFile, mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { type Browser, type BrowserContext, type BrowserContextOptions, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/database.ts';
import type { HttpServer } from '../../src/http/server.ts';
import { addDecimals } from '../../src/jobs/decimal.ts';
import { PermanentJobError } from '../../src/kinds/define.ts';
import type { Worker } from '../../src/worker/worker.ts';
import { createTestApp, type TestApp, testServer } from '../helpers/api.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { ANONYMOUS, createWorker, statusOf, waitForJob } from '../helpers/jobs.ts';

/** Debian's Chromium (test/browser/ensure-chromium.sh installs it), headless, quiet on the network. */
const CHROMIUM = '/usr/bin/chromium';
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));
const README_SCREENSHOT = fileURLToPath(new URL('../../docs/jobs-page.png', import.meta.url));
const DESKTOP: BrowserContextOptions = { viewport: { width: 1280, height: 800 } };
const PHONE: BrowserContextOptions = {
  viewport: { width: 360, height: 780 },
  deviceScaleFactor: 2,
  isMobile: true,
  hasTouch: true,
};
/** Waits on the page; they only turn a hang into a readable failure, and measure nothing. */
const PATIENCE = { timeout: 15_000 };

let testDb: TestDatabase;
let db: Database;
let api: TestApp;
let server: HttpServer;
let worker: Worker;
let browser: Browser;
let base: string;
const contexts: BrowserContext[] = [];
/** Uncaught errors and console errors of each page; a test ends by expecting none. */
const problems = new WeakMap<Page, string[]>();

/** Holds the job 2 + 3 in its worker until the test has seen it running. */
let releaseTwoPlusThree!: () => void;
const twoPlusThreeMayFinish = new Promise<void>((resolve) => {
  releaseTwoPlusThree = resolve;
});

beforeAll(async () => {
  testDb = await createTestDatabase(import.meta.filename);
  db = testDb.open();
  api = await createTestApp(db);
  server = testServer(api);
  await server.start();
  base = `http://127.0.0.1:${server.address.port}`;
  worker = createWorker(db, api.hub, {
    metrics: api.metrics,
    handlers: {
      add: async (input) => {
        if (input.num1 === '2' && input.num2 === '3') await twoPlusThreeMayFinish;
        if (input.num1 === '13') throw new PermanentJobError('13 is refused on principle');
        return addDecimals(input.num1, input.num2);
      },
    },
  });
  await worker.start();
  browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS, headless: true });
  await mkdir(ARTIFACTS, { recursive: true });
});

afterAll(async () => {
  releaseTwoPlusThree();
  for (const context of contexts) await context.close();
  await browser?.close();
  await worker?.stop();
  await server?.stop();
  await api?.close();
  await testDb?.drop();
});

async function open(path: string, options: BrowserContextOptions = DESKTOP): Promise<Page> {
  const context = await browser.newContext(options);
  contexts.push(context);
  const page = await context.newPage();
  const seen: string[] = [];
  problems.set(page, seen);
  page.on('pageerror', (error) => seen.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') seen.push(message.text());
  });
  await page.goto(`${base}${path}`);
  return page;
}

function problemsOf(page: Page): string[] {
  return problems.get(page) ?? [];
}

/** The page is ready once its list is loaded and its WebSocket is up. */
async function openJobsPage(options?: BrowserContextOptions): Promise<Page> {
  const page = await open('/', options);
  await page.locator('#live[data-state="connected"]').waitFor(PATIENCE);
  await page.locator('#counts li').first().waitFor(PATIENCE);
  return page;
}

const AUDIT = { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'] } };

/** axe-core's WCAG A and AA rules (contrast, labels, names, roles…) on the page as it is. */
async function audit(page: Page) {
  await page.addScriptTag({ path: createRequire(import.meta.url).resolve('axe-core/axe.min.js') });
  const violations = await page.evaluate(async (options) => {
    const axe = (window as unknown as { axe: { run: (context: Document, options: unknown) => Promise<any> } }).axe;
    const result = await axe.run(document, options);
    return result.violations.map((violation: any) => ({
      rule: violation.id,
      nodes: violation.nodes.map((node: any) => node.target.join(' ')),
    }));
  }, AUDIT);
  return violations;
}


describe('the jobs page', () => {
  it('adds 2 + 3, and the chip turns COMPLETED with the result 5 without a reload', async () => {
    const page = await openJobsPage();
    await page.evaluate(() => Object.assign(window, { loadedOnce: true }));

    await page.getByLabel('First number').fill('2');
    await page.getByLabel('Second number').fill('3');
    await page.getByLabel('Second number').press('Enter');

    const job = page.getByRole('listitem').filter({ has: page.getByRole('heading', { name: /^2 \+ 3/ }) });
    await job.locator('.chip[data-status="WIP"]').waitFor(PATIENCE);
    expect(await job.getByRole('heading').innerText()).toBe('2 + 3');

    releaseTwoPlusThree();
    await job.locator('.chip[data-status="COMPLETED"]').waitFor(PATIENCE);
    expect(await job.getByRole('heading').innerText()).toBe('2 + 3 = 5');
    expect(await job.locator('.chip').innerText()).toBe('Completed');
    expect(await page.locator('#announcer').innerText()).toBe('2 + 3: completed, result 5');
    expect(await page.locator('#counts li[data-status="COMPLETED"] strong').innerText()).toBe('1');
    expect(await page.evaluate(() => (window as unknown as { loadedOnce?: boolean }).loadedOnce)).toBe(true);

    // Retrieve, from the keyboard.
    await job.getByRole('button', { name: 'Retrieve the result of 2 + 3' }).focus();
    await page.keyboard.press('Enter');
    await job.locator('.chip[data-status="RETRIEVED"]').waitFor(PATIENCE);
    expect(await job.getByRole('button').count()).toBe(0);
    expect(await job.getByText('Retrieved', { exact: true }).count()).toBe(2);
    expect(problemsOf(page)).toEqual([]);
  });

  it('names the field a number is wrong in, and adds nothing', async () => {
    const page = await openJobsPage();
    const before = await page.locator('#jobs > li').count();
    await page.getByLabel('First number').fill('1e5');
    await page.getByLabel('Second number').fill('1');
    await page.getByRole('button', { name: 'Add', exact: true }).click();
    await expect.poll(() => page.getByLabel('First number').getAttribute('aria-invalid')).toBe('true');
    expect(await page.locator('#num1-error').innerText()).toMatch(/plain decimal/);
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('num1');
    expect(await page.locator('#jobs > li').count()).toBe(before);
  });
});

describe('the jobs page on a service with API keys', () => {
  const KEY = 'browser-test-key-0123456789';
  let keyed: TestApp;
  let keyedServer: HttpServer;
  let keyedBase: string;

  beforeAll(async () => {
    keyed = await createTestApp(db, { apiKeys: [KEY] });
    keyedServer = testServer(keyed);
    await keyedServer.start();
    keyedBase = `http://127.0.0.1:${keyedServer.address.port}`;
  });

  afterAll(async () => {
    await keyedServer.stop();
    await keyed.close();
  });

  it('asks for the key, refuses a wrong one, and works with the right one', async () => {
    // Without the page's policy, so the audit script can run; the other tests keep it.
    const context = await browser.newContext({ ...DESKTOP, bypassCSP: true });
    contexts.push(context);
    const page = await context.newPage();
    await page.goto(`${keyedBase}/`);

    const key = page.getByLabel('API key', { exact: true });
    await key.waitFor(PATIENCE);
    expect(await audit(page)).toEqual([]);
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('api-key');
    await page.locator('#live[data-state="closed"]').waitFor(PATIENCE);
    expect(await page.locator('#live').innerText()).toBe('Live updates need an API key');

    await key.fill('not-the-key-0123456789');
    await key.press('Enter');
    await page.getByText('That key was not accepted.').waitFor(PATIENCE);

    await key.fill(KEY);
    await key.press('Enter');
    await page.locator('#key-panel').waitFor({ state: 'hidden', ...PATIENCE });
    await page.locator('#live[data-state="connected"]').waitFor(PATIENCE);
    // The other tests' jobs belong to nobody with a key: this key's list starts empty.
    expect(await page.locator('#jobs > li').count()).toBe(0);

    await page.getByLabel('First number').fill('1');
    await page.getByLabel('Second number').fill('1');
    await page.getByRole('button', { name: 'Add', exact: true }).click();
    const job = page.getByRole('listitem').filter({ has: page.getByRole('heading', { name: /^1 \+ 1/ }) });
    await job.locator('.chip[data-status="COMPLETED"]').waitFor(PATIENCE);
    expect(await job.getByRole('heading').innerText()).toBe('1 + 1 = 2');

    await page.getByRole('button', { name: 'Forget API key' }).click();
    await key.waitFor(PATIENCE);
    expect(await page.locator('#jobs > li').count()).toBe(0);
  });
});

describe('GraphiQL', () => {
  it('runs an addJob mutation and shows the answer', async () => {
    const page = await open('/graphql');
    try {
      const editor = page.locator('.graphiql-query-editor .monaco-editor').first();
      await editor.waitFor(PATIENCE);
      // GraphiQL quietly ignores a run until its response editor exists, which comes a little later.
      await page.locator('.graphiql-response .monaco-editor').first().waitFor({ state: 'attached', ...PATIENCE });
      await editor.click();
      await page.keyboard.press('Control+A');
      // Typed as one input event: key by key, the editor would add closing brackets of its own.
      await page.keyboard.insertText(
        'mutation AddFromGraphiQL { addJob(input: { num1: "20", num2: "22" }) { job { id status num1 num2 } } }',
      );
      // The tab takes the operation's name once GraphiQL has parsed the new text.
      await page.getByRole('button', { name: 'AddFromGraphiQL' }).waitFor(PATIENCE);
      await page.getByRole('button', { name: /^Execute/ }).click();

      const answer = page.locator('.graphiql-response');
      await answer.getByText('"PENDING"').waitFor(PATIENCE);
      // The editor wraps long lines and pads with non-breaking spaces; no value here holds a space.
      const text = (await answer.innerText()).replace(/\s+/g, '');
      const shown = JSON.parse(text) as { data: { addJob: { job: { id: string; num1: string } } } };
      expect(shown.data.addJob.job).toMatchObject({ status: 'PENDING', num1: '20', num2: '22' });
      const stored = await waitForJob(api.jobs, api.hub, shown.data.addJob.job.id, statusOf('completed'));
      expect(stored.result).toBe('42');
      expect(problemsOf(page)).toEqual([]);
    } finally {
      await page.screenshot({ path: `${ARTIFACTS}graphiql.png` });
    }
  });
});

describe('accessibility and small screens', () => {
  beforeAll(async () => {
    // A list with every status in it, for the audit and the screenshots.
    const add = async (num1: string, num2: string, runAt?: Date) =>
      (await api.jobs.addJob({ num1, num2, runAt }, ANONYMOUS)).job.id;
    const later = new Date(Date.now() + 3_600_000);
    await add('5', '5', later);
    await api.jobs.cancelJob(await add('7', '8', later), ANONYMOUS);
    const failed = await add('13', '1');
    const completed = [await add('9007199254740993', '1'), await add('0.1', '0.2')];
    for (const id of completed) await waitForJob(api.jobs, api.hub, id, statusOf('completed'));
    await waitForJob(api.jobs, api.hub, failed, statusOf('failed'));
  });

  for (const [name, size] of [
    ['desktop', DESKTOP],
    ['phone', PHONE],
  ] as const) {
    it(`passes the WCAG A/AA audit on a ${name}, and is screenshotted`, async () => {
      // The audit script is injected inline, which the page's own policy rightly forbids.
      const page = await openJobsPage({ ...size, bypassCSP: true });
      await page.locator('#jobs .chip[data-status="FAILED"]').waitFor(PATIENCE);
      expect(await audit(page)).toEqual([]);
      expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
      await page.screenshot({ path: `${ARTIFACTS}jobs-page-${name}.png` });
      expect(problemsOf(page)).toEqual([]);
    });
  }

  it('can be used from the keyboard, with the focus always visible', async () => {
    const page = await openJobsPage();
    const stops: string[] = [];
    for (let i = 0; i < 6; i += 1) {
      await page.keyboard.press('Tab');
      const focused = await page.evaluate(() => {
        const element = document.activeElement as HTMLElement;
        const style = getComputedStyle(element);
        return { name: element.id || element.textContent?.trim() || element.tagName, outline: style.outlineStyle };
      });
      expect(focused.outline, focused.name).toBe('solid');
      stops.push(focused.name);
    }
    expect(stops).toEqual(['GraphiQL', 'Metrics', 'num1', 'num2', 'Add', 'refresh']);
  });

  // Screenshots change with every run (times, ids), so the README's copy is refreshed on request.
  afterAll(async () => {
    if (process.env.UPDATE_DOCS_SCREENSHOT === '1') await copyFile(`${ARTIFACTS}jobs-page-desktop.png`, README_SCREENSHOT);
  });
});
