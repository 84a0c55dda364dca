/**
 * The operator console in Chromium against the real server, with real jobs run by a real worker:
 * a chart that moves as jobs complete, a filter that finds one job among 10,000, a bulk retry of
 * failed jobs that then complete, a pause that stops claims, schedules, an operator's key against
 * a customer's; every view audited with axe-core (WCAG A/AA) at 1280 and 360 px, light and dark,
 * and screenshotted into test-artifacts/.
 */
import { copyFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { BrowserContextOptions, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Database } from '../../src/db/database.ts';
import type { HttpServer } from '../../src/http/server.ts';
import type { Caller } from '../../src/jobs/service.ts';
import { defineKind, PermanentJobError } from '../../src/kinds/define.ts';
import type { Worker } from '../../src/worker/worker.ts';
import { createTestApp, type TestApp, testServer } from '../helpers/api.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { createWorker, testKinds, waitForJob } from '../helpers/jobs.ts';
import { ARTIFACTS, audit, DESKTOP, PATIENCE, PHONE, TestBrowser } from './chromium.ts';

const README_SCREENSHOT = fileURLToPath(new URL('../../docs/console.png', import.meta.url));
const OPERATOR_KEY = 'console-browser-operator-key';
const CUSTOMER_KEY = 'console-browser-customer-key';

let testDb: TestDatabase;
let db: Database;
let api: TestApp;
let server: HttpServer;
let worker: Worker;
let browser: TestBrowser;
let base: string;
let operator: Caller;
let customer: Caller;
/** A flaky job fails for good until it is healed. */
let healed = false;

const note = defineKind({ name: 'note', input: z.object({ text: z.string() }), result: z.object({ seen: z.string() }), handler: ({ text }) => ({ seen: text }) });
const flaky = defineKind({
  name: 'flaky',
  input: z.object({ n: z.number() }),
  result: z.object({ n: z.number() }),
  handler: ({ n }) => {
    if (!healed) throw new PermanentJobError(`flaky ${n} is not healed yet`);
    return { n };
  },
});

beforeAll(async () => {
  testDb = await createTestDatabase(import.meta.filename);
  db = testDb.open();
  const kinds = testKinds({}, { extra: [note, flaky] });
  api = await createTestApp(db, { service: { kinds }, apiKeys: [CUSTOMER_KEY], adminKeys: [OPERATOR_KEY] });
  operator = api.auth.authenticate(`Bearer ${OPERATOR_KEY}`)!;
  customer = api.auth.authenticate(`Bearer ${CUSTOMER_KEY}`)!;
  server = testServer(api);
  await server.start();
  base = `http://127.0.0.1:${server.address.port}`;
  worker = createWorker(db, api.hub, { kinds, pollIntervalMs: 200 });
  await worker.start();
  browser = await TestBrowser.launch();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await worker?.stop();
  await server?.stop();
  await api?.close();
  await testDb?.drop();
});

/** The page with `key` entered, once its overview (operators) or its note (customers) shows. */
async function openConsole(key: string, options: BrowserContextOptions = DESKTOP): Promise<Page> {
  // The page's first requests go out before a key is entered, and are refused, as they should be.
  const page = await browser.open(`${base}/`, options, /401|Unauthorized/i);
  await page.getByLabel('API key', { exact: true }).fill(key);
  await page.getByLabel('API key', { exact: true }).press('Enter');
  await page.locator('#live[data-state="connected"]').waitFor(PATIENCE);
  return page;
}


const kindRow = (page: Page, kind: string) => page.locator(`#kinds-table tbody tr[data-kind="${kind}"]`);

describe('the operator console', () => {
  it('the overview: counts per kind, and a throughput chart that moves as jobs complete', async () => {
    const page = await openConsole(OPERATOR_KEY);
    await kindRow(page, 'note').waitFor(PATIENCE);
    const before = Number((await page.locator('#throughput-chart').getAttribute('data-total')) ?? '0');
    const jobs = await api.jobs.submitJobs(
      Array.from({ length: 20 }, (_, index) => ({ kind: 'note', input: { text: `chart ${index}` } })),
      operator,
    );
    for (const { job } of jobs) await waitForJob(api.jobs, api.hub, job.id, (state) => state.status === 'completed', undefined, operator);
    await page.waitForFunction(
      (least) => Number(document.querySelector('#throughput-chart')?.getAttribute('data-total') ?? 0) >= least,
      before + 20,
      PATIENCE,
    );
    expect(await page.locator('#throughput-chart canvas').count()).toBeGreaterThan(0);
    expect(Number(await kindRow(page, 'note').locator('td').nth(3).innerText())).toBeGreaterThanOrEqual(20);
    await page.screenshot({ path: `${ARTIFACTS}console-overview.png`, fullPage: true });
    expect(browser.problemsOf(page)).toEqual([]);
  });

  it('a filter finds one job among 10,000, and its detail shows input, result, attempts and times', async () => {
    const far = new Date(Date.now() + 24 * 3600_000);
    for (let batch = 0; batch < 10; batch += 1) {
      await api.jobs.submitJobs(
        Array.from({ length: 1000 }, (_, index) => ({ kind: 'note', input: { text: `hay ${batch}-${index}` }, runAt: far })),
        customer,
      );
    }
    const { job: needle } = await api.jobs.submitJob({ kind: 'note', input: { text: 'needle' } }, customer);
    await waitForJob(api.jobs, api.hub, needle.id, (state) => state.status === 'completed', undefined, customer);

    const page = await openConsole(OPERATOR_KEY);
    await page.getByLabel('JSON path').fill('text');
    await page.getByLabel('JSON value').fill('"needle"');
    await page.getByRole('button', { name: 'Find', exact: true }).click();
    await page.locator(`#results tr[data-id="${needle.id}"]`).waitFor(PATIENCE);
    expect(await page.locator('#results tbody tr').count()).toBe(1);
    await page.getByRole('button', { name: `note job ${needle.id}` }).click();
    const detail = page.locator('#job-detail');
    await detail.getByText('"seen": "needle"').waitFor(PATIENCE);
    expect(await detail.getByText('"text": "needle"').count()).toBe(1);
    expect(await detail.locator('time').first().getAttribute('title')).toMatch(/ UTC$/);
    await page.screenshot({ path: `${ARTIFACTS}console-job.png`, fullPage: true });

    // An operator cancels a customer's pending job from its detail, which follows it live.
    await page.getByLabel('JSON value').fill('"hay 0-0"');
    await page.getByRole('button', { name: 'Find', exact: true }).click();
    await page.getByText('1 job shown.').waitFor(PATIENCE);
    await page.locator('#results tbody tr button').first().click();
    await detail.getByRole('button', { name: 'Cancel', exact: true }).click();
    await page.locator('#confirm[open]').waitFor(PATIENCE);
    await page.locator('#confirm-yes').click();
    await detail.locator('.chip[data-status="CANCELLED"]').waitFor(PATIENCE);
    expect(browser.problemsOf(page)).toEqual([]);
  });

  it('a bulk retry of failed jobs, confirmed with their number, and they then complete', async () => {
    healed = false;
    const jobs = await api.jobs.submitJobs(
      Array.from({ length: 5 }, (_, n) => ({ kind: 'flaky', input: { n } })),
      customer,
    );
    for (const { job } of jobs) await waitForJob(api.jobs, api.hub, job.id, (state) => state.status === 'failed', undefined, customer);
    healed = true;

    const page = await openConsole(OPERATOR_KEY);
    await page.locator('#f-kind option[value="flaky"]').waitFor({ state: 'attached', ...PATIENCE });
    await page.getByLabel('Kind', { exact: true }).selectOption('flaky');
    await page.getByRole('button', { name: 'Retry failed jobs…' }).click();
    await page.locator('#confirm[open]').waitFor(PATIENCE);
    expect(await page.locator('#confirm-text').innerText()).toBe('Retry 5 failed jobs?');
    await page.screenshot({ path: `${ARTIFACTS}console-confirm.png` });
    await page.getByRole('button', { name: 'Retry 5' }).click();
    for (const { job } of jobs) {
      const done = await waitForJob(api.jobs, api.hub, job.id, (state) => state.status === 'completed', undefined, customer);
      expect(done).toMatchObject({ status: 'completed', attempt: 2, result: { n: expect.any(Number) } });
    }
    await page.getByText('Retry: 5 jobs changed.').waitFor(PATIENCE);
    expect(browser.problemsOf(page)).toEqual([]);
  });

  it("a key finds a job, whose detail lists each failed attempt's error, time and worker, live as a retry fails again", async () => {
    healed = false;
    try {
      const { job } = await api.jobs.submitJob({ kind: 'flaky', input: { n: 99 }, uniqueKey: 'history-99' }, customer);
      await waitForJob(api.jobs, api.hub, job.id, (state) => state.status === 'failed', undefined, customer);

      const page = await openConsole(OPERATOR_KEY);
      await page.getByLabel('Key kind').selectOption('uniqueKey');
      await page.getByLabel('Key', { exact: true }).fill('history-99');
      await page.getByRole('button', { name: 'Find', exact: true }).click();
      await page.locator(`#results tr[data-id="${job.id}"]`).waitFor(PATIENCE);
      expect(await page.locator('#results tbody tr').count()).toBe(1);
      await page.getByRole('button', { name: `flaky job ${job.id}` }).click();
      const history = page.locator('#attempt-history li');
      await history.first().waitFor(PATIENCE);
      expect(await history.count()).toBe(1);
      expect(await history.first().innerText()).toContain('flaky 99 is not healed yet');
      expect(await history.first().innerText()).toContain(worker.id);
      expect(await history.first().locator('time').getAttribute('title')).toMatch(/ UTC$/);

      // Retried from its detail, it fails again: the view, still live, shows both attempts.
      await page.locator('#job-detail').getByRole('button', { name: 'Retry', exact: true }).click();
      await page.locator('#confirm[open]').waitFor(PATIENCE);
      await page.locator('#confirm-yes').click();
      await page.locator('#attempt-history li:nth-child(2)').waitFor(PATIENCE);
      expect(await history.allInnerTexts()).toEqual([expect.stringMatching(/^Attempt 1 · /), expect.stringMatching(/^Attempt 2 · /)]);
      await page.locator('#job-detail').screenshot({ path: `${ARTIFACTS}console-job-history.png` });
      expect(browser.problemsOf(page)).toEqual([]);
    } finally {
      healed = true;
    }
  });

  it('a pause stops claims of that kind until it is resumed, from the keyboard', async () => {
    const page = await openConsole(OPERATOR_KEY);
    const pause = kindRow(page, 'note').getByRole('button', { name: 'Pause note' });
    await pause.waitFor(PATIENCE);
    await pause.focus();
    await page.keyboard.press('Enter');
    await page.locator('#confirm[open]').waitFor(PATIENCE);
    await page.getByRole('button', { name: 'Pause', exact: true }).focus();
    await page.keyboard.press('Enter');
    await kindRow(page, 'note').getByRole('button', { name: 'Resume note' }).waitFor(PATIENCE);

    const { job: held } = await api.jobs.submitJob({ kind: 'note', input: { text: 'held' } }, operator);
    // A job of another kind submitted after it completes: the worker has claimed since, and passed the paused one by.
    const { job: other } = await api.jobs.submitJob({ kind: 'add', input: { num1: '1', num2: '2' } }, operator);
    await waitForJob(api.jobs, api.hub, other.id, (state) => state.status === 'completed', undefined, operator);
    expect((await api.jobs.getJob(held.id, operator))?.status).toBe('pending');

    await kindRow(page, 'note').getByRole('button', { name: 'Resume note' }).click();
    await page.getByRole('button', { name: 'Resume', exact: true }).click();
    await waitForJob(api.jobs, api.hub, held.id, (state) => state.status === 'completed', undefined, operator);
    expect(browser.problemsOf(page)).toEqual([]);
  });

  it('schedules: next fire time, run now, its last job and state, pause', async () => {
    const schedule = await api.jobs.schedules.create({ kind: 'note', input: { text: 'scheduled' }, cron: '0 9 * * MON' }, customer.owner);
    const page = await openConsole(OPERATOR_KEY);
    const row = page.locator(`#schedules-table tr[data-id="${schedule.id}"]`);
    await row.waitFor(PATIENCE);
    expect(await row.locator('time').count()).toBe(1);
    await row.getByRole('button', { name: 'Run now schedule note' }).click();
    await page.getByRole('button', { name: 'Run now', exact: true }).click();
    await row.getByRole('button', { name: /^Completed/ }).waitFor(PATIENCE);
    await row.getByRole('button', { name: 'Pause schedule note' }).click();
    await row.getByText('Paused', { exact: true }).waitFor(PATIENCE);
    await page.locator('#schedules').screenshot({ path: `${ARTIFACTS}console-schedules.png` });
    expect(browser.problemsOf(page)).toEqual([]);
  });

  it("a customer's key: its own jobs only, and no overview, pause or bulk actions", async () => {
    const { job: theirs } = await api.jobs.submitJob({ kind: 'note', input: { text: 'operator only' } }, operator);
    const { job: mine } = await api.jobs.submitJob({ kind: 'note', input: { text: 'customer own' } }, customer);
    const page = await openConsole(CUSTOMER_KEY);
    await page.getByText('need an operator key').waitFor(PATIENCE);
    expect(await page.getByRole('button', { name: 'Retry failed jobs…' }).isVisible()).toBe(false);
    expect(await page.locator('#kinds-table tbody tr').count()).toBe(0);
    await page.getByLabel('JSON path').fill('text');
    for (const [text, id, found] of [['operator only', theirs.id, 0], ['customer own', mine.id, 1]] as const) {
      await page.getByLabel('JSON value').fill(JSON.stringify(text));
      await page.getByRole('button', { name: 'Find', exact: true }).click();
      await page.getByText(`${found} job${found === 1 ? '' : 's'} shown.`).waitFor(PATIENCE);
      expect(await page.locator(`#results tr[data-id="${id}"]`).count()).toBe(found);
    }
    await page.screenshot({ path: `${ARTIFACTS}console-customer.png`, fullPage: true });
    expect(browser.problemsOf(page)).toEqual([]);
  });

  for (const [name, options] of [
    ['desktop', DESKTOP],
    ['phone', PHONE],
    ['desktop-dark', { ...DESKTOP, colorScheme: 'dark' }],
    ['phone-dark', { ...PHONE, colorScheme: 'dark' }],
  ] as const) {
    it(`passes the WCAG A/AA audit on a ${name}, with no sideways scroll, and is screenshotted`, async () => {
      await api.jobs.submitJob({ kind: 'note', input: { text: `audit ${name}` } }, operator);
      // The audit script is injected inline, which the page's own policy rightly forbids.
      const page = await openConsole(OPERATOR_KEY, { ...options, bypassCSP: true });
      await kindRow(page, 'note').waitFor(PATIENCE);
      const width = await page.evaluate(() => document.documentElement.scrollWidth);
      await page.screenshot({ path: `${ARTIFACTS}console-${name}.png`, fullPage: true });
      await page.locator('#overview').screenshot({ path: `${ARTIFACTS}console-${name}-overview.png` });
      expect(width).toBeLessThanOrEqual(options.viewport!.width);
      await page.getByRole('button', { name: 'Find', exact: true }).click();
      await page.locator('#results tbody tr').first().waitFor(PATIENCE);
      expect(await audit(page)).toEqual([]);
      await page.screenshot({ path: `${ARTIFACTS}console-${name}.png`, fullPage: true });
      if (name === 'desktop' && process.env.UPDATE_DOCS_SCREENSHOT === '1') await copyFile(`${ARTIFACTS}console-desktop-overview.png`, README_SCREENSHOT);
      expect(browser.problemsOf(page)).toEqual([]);
    });
  }
});
