import { copyFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { BrowserContextOptions, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Database } from '../../src/db/database.ts';
import type { HttpServer } from '../../src/http/server.ts';
import { addDecimals } from '../../src/jobs/decimal.ts';
import { defineKind, PermanentJobError } from '../../src/kinds/define.ts';
import type { Worker } from '../../src/worker/worker.ts';
import { createTestApp, type TestApp, testServer } from '../helpers/api.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { ANONYMOUS, createWorker, deferred, statusOf, testKinds, waitForJob } from '../helpers/jobs.ts';
import { ARTIFACTS, audit, DESKTOP, PATIENCE, PHONE, TestBrowser } from './chromium.ts';

const README_SCREENSHOT = fileURLToPath(new URL('../../docs/jobs-page.png', import.meta.url));

let testDb: TestDatabase;
let db: Database;
let api: TestApp;
let server: HttpServer;
let worker: Worker;
let browser: TestBrowser;
let base: string;

/** Holds the job 2 + 3 in its worker until the test has seen it running. */
let releaseTwoPlusThree!: () => void;
const twoPlusThreeMayFinish = new Promise<void>((resolve) => {
  releaseTwoPlusThree = resolve;
});

/** Holds parcel jobs in their worker until the test has seen them pending. */
const parcelsMayFinish = deferred();

/**
 * A kind whose form the page builds from its schema: every kind of field it renders, and checks
 * (the refines) that only the server makes, so a value can pass the page and still be refused.
 */
const parcel = defineKind({
  name: 'parcel',
  description: 'Prints a parcel label.',
  input: z.object({
    title: z
      .string()
      .min(3)
      .max(40)
      .describe('What the label says.')
      .refine((title) => !/forbidden/i.test(title), 'must not say forbidden'),
    copies: z.number().int().min(1).max(10).default(1),
    colour: z.enum(['red', 'green', 'blue']),
    urgent: z.boolean().default(false),
    tags: z.array(z.string().min(1).refine((tag) => tag === tag.toLowerCase(), 'must be lower case')).max(5),
    address: z
      .object({
        street: z.string().min(1).refine((street) => street !== 'Nowhere 0', 'is not a street we deliver to'),
        postcode: z.string().regex(/^\d{5}$/),
      })
      .describe('Where it goes.'),
    // No form field fits a record: the page asks for JSON.
    extras: z.record(z.string(), z.string()).optional().describe('Anything else for the label.'),
  })
    // About the whole input, so about no one field.
    .refine(({ urgent, copies }) => !(urgent && copies > 5), 'urgent labels come five at most'),
  result: z.object({ label: z.string(), copies: z.number() }),
  handler: async ({ title, copies, colour, urgent, tags, address }) => {
    await parcelsMayFinish.promise;
    const label = `${urgent ? 'URGENT ' : ''}${title} (${colour}, ${tags.join('/')}) to ${address.street}, ${address.postcode}`;
    return { label, copies };
  },
});

/** Holds a steps job halfway, at 50 %, until the test has looked at its bar. */
const stepsMayGoOn = deferred();
const STEPS = 10;
const STEP_MS = 150;

/** A kind that reports its progress step by step, for the bar on the page. */
const steps = defineKind({
  name: 'steps',
  description: 'Counts to ten, slowly, saying how far it has got.',
  input: z.object({ label: z.string().min(1).max(20) }),
  result: z.object({ label: z.string(), steps: z.number() }),
  progress: z.object({ percent: z.number().min(0).max(100), message: z.string() }),
  handler: async ({ label }, { progress }) => {
    for (let step = 1; step <= STEPS; step += 1) {
      await new Promise((resolve) => setTimeout(resolve, STEP_MS));
      progress({ percent: (step * 100) / STEPS, message: `step ${step} of ${STEPS}` });
      if (step === STEPS / 2) await stepsMayGoOn.promise;
    }
    return { label, steps: STEPS };
  },
});

/** Holds a warmup job after its one report, until the test has looked at its bar. */
const warmupMayFinish = deferred();

/** A kind with no progress schema, whose report has no percent the bar can show. */
const warmup = defineKind({
  name: 'warmup',
  input: z.object({ label: z.string().min(1) }),
  result: z.object({ label: z.string() }),
  handler: async ({ label }, { progress }) => {
    progress({ percent: 'soon', message: 'warming up' });
    await warmupMayFinish.promise;
    return { label };
  },
});

beforeAll(async () => {
  testDb = await createTestDatabase(import.meta.filename);
  db = testDb.open();
  const kinds = testKinds(
    {
      add: async (input) => {
        if (input.num1 === '2' && input.num2 === '3') await twoPlusThreeMayFinish;
        if (input.num1 === '13') throw new PermanentJobError('13 is refused on principle');
        return addDecimals(input.num1, input.num2);
      },
    },
    { extra: [parcel, steps, warmup] },
  );
  api = await createTestApp(db, { service: { kinds } });
  server = testServer(api);
  await server.start();
  base = `http://127.0.0.1:${server.address.port}`;
  // Every step's report is written, so the bar moves by each one.
  worker = createWorker(db, api.hub, { metrics: api.metrics, kinds, progressMinIntervalMs: 20 });
  await worker.start();
  browser = await TestBrowser.launch();
});

afterAll(async () => {
  releaseTwoPlusThree();
  parcelsMayFinish.resolve();
  stepsMayGoOn.resolve();
  warmupMayFinish.resolve();
  await browser?.close();
  await worker?.stop();
  await server?.stop();
  await api?.close();
  await testDb?.drop();
});

/** Uncaught errors and console errors of the page; a test ends by expecting none. */
const problemsOf = (page: Page) => browser.problemsOf(page);

function open(path: string, options: BrowserContextOptions = DESKTOP): Promise<Page> {
  return browser.open(`${base}${path}`, options);
}

/** The page is ready once its list is loaded and its WebSocket is up. */
async function openJobsPage(options?: BrowserContextOptions): Promise<Page> {
  const page = await open('/', options);
  await page.locator('#live[data-state="connected"]').waitFor(PATIENCE);
  await page.locator('#counts li').first().waitFor(PATIENCE);
  return page;
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

describe('the jobs page with a kind of its own', () => {
  /** The field of the generated form at `path`, as the service names fields. */
  const fieldAt = (page: Page, path: string) => page.locator(`[data-path="${path}"]`);

  async function openParcelForm(options?: BrowserContextOptions): Promise<Page> {
    const page = await openJobsPage(options);
    await page.locator('#kind option[value="parcel"]').waitFor({ state: 'attached', ...PATIENCE });
    await page.getByLabel('Kind of job').selectOption('parcel');
    await page.locator('#kind-form').waitFor(PATIENCE);
    return page;
  }

  async function fillParcel(page: Page, { title, street }: { title: string; street: string }) {
    await page.getByLabel(/^title/).fill(title);
    await page.getByLabel(/^copies/).fill('2');
    await page.getByLabel(/^colour/).selectOption('green');
    await page.getByLabel(/^urgent/).check();
    const tags = fieldAt(page, 'tags');
    await tags.getByRole('button', { name: 'Add item to tags' }).click();
    await tags.locator('input').nth(0).fill('fragile');
    await tags.getByRole('button', { name: 'Add item to tags' }).click();
    await tags.locator('input').nth(1).fill('books');
    await page.getByLabel(/^street/).fill(street);
    await page.getByLabel(/^postcode/).fill('12345');
  }

  it('lists every kind, and builds the form of one from its schema', async () => {
    const page = await openParcelForm({ ...DESKTOP, bypassCSP: true });
    expect(await page.locator('#kind option').allInnerTexts()).toEqual(['add', 'parcel', 'steps', 'warmup']);
    expect(await page.locator('#add-heading').innerText()).toBe('New parcel job');
    expect(await page.locator('#kind-description').innerText()).toBe('Prints a parcel label.');
    expect(await page.locator('#add-form').isVisible()).toBe(false);

    const title = page.getByLabel(/^title/);
    expect(await title.getAttribute('maxlength')).toBe('40');
    expect(await title.getAttribute('aria-required')).toBe('true');
    expect(await fieldAt(page, 'title').locator('label').innerText()).toMatch(/^title \*/);
    expect(await fieldAt(page, 'title').locator('.hint').innerText()).toBe('What the label says. 3 to 40 characters');
    expect(await page.getByLabel(/^copies/).inputValue()).toBe('1');
    expect(await fieldAt(page, 'copies').locator('.hint').innerText()).toBe('A whole number from 1 to 10');
    expect(await page.getByLabel(/^colour/).locator('option').allInnerTexts()).toEqual(['Choose…', 'red', 'green', 'blue']);
    expect(await page.getByLabel(/^urgent/).getAttribute('type')).toBe('checkbox');
    expect(await page.getByLabel(/^urgent/).isChecked()).toBe(false);
    expect(await fieldAt(page, 'tags').locator('legend').innerText()).toMatch(/^tags/);
    expect(await fieldAt(page, 'tags').locator('.hint').innerText()).toBe('At most 5 items');
    expect(await fieldAt(page, 'address').locator('legend').innerText()).toMatch(/^address/);
    expect(await fieldAt(page, 'address').locator('.hint').first().innerText()).toBe('Where it goes.');
    expect(await fieldAt(page, 'address.postcode').locator('.hint').innerText()).toBe('Must match ^\\d{5}$');
    const extras = page.getByLabel(/^extras/);
    expect(await extras.evaluate((element) => element.tagName)).toBe('TEXTAREA');
    expect(await extras.getAttribute('aria-required')).toBeNull();

    // The page's own checks, before anything is sent.
    const before = await page.locator('#jobs > li').count();
    await page.getByLabel(/^title/).fill('ab');
    await page.getByLabel(/^copies/).fill('11');
    await page.getByLabel(/^extras/).fill('{ "gift": ');
    await page.getByRole('button', { name: 'Submit job' }).click();
    expect(await fieldAt(page, 'title').locator('.field-error').innerText()).toBe('Use at least 3 characters.');
    expect(await fieldAt(page, 'copies').locator('.field-error').innerText()).toBe('Enter 10 or less.');
    expect(await fieldAt(page, 'colour').locator('.field-error').innerText()).toBe('Choose one.');
    expect(await fieldAt(page, 'address.street').locator('.field-error').innerText()).toBe('Enter a value.');
    expect(await fieldAt(page, 'address.postcode').locator('.field-error').innerText()).toBe('Must match ^\\d{5}$.');
    expect(await fieldAt(page, 'extras').locator('.field-error').innerText()).toBe('This is not valid JSON.');
    expect(await page.evaluate(() => document.activeElement?.closest('[data-path]')?.getAttribute('data-path'))).toBe('title');
    expect(await page.locator('#jobs > li').count()).toBe(before);

    expect(await audit(page)).toEqual([]);
    await fillParcel(page, { title: 'Books', street: 'Main Street 1' });
    // Each error goes once its field changes.
    const stale = page.locator('[data-path="title"] .field-error, [data-path^="address"] .field-error');
    expect(await stale.evaluateAll((errors) => errors.map((error) => (error as HTMLElement).hidden))).toEqual([true, true, true]);
    await page.screenshot({ path: `${ARTIFACTS}jobs-page-kind-form.png`, fullPage: true });
  });

  it('submits the form as a job, and shows its input, then its result, as JSON text', async () => {
    const page = await openParcelForm();
    // Markup in a value is text, on the form and in the list.
    await fillParcel(page, { title: '<b>Hello</b>', street: 'Main Street 1' });
    await page.getByLabel(/^extras/).fill('{ "gift": "<i>yes</i>" }');
    await page.getByRole('button', { name: 'Submit job' }).click();
    // The only parcel job: the other tests submit none that the service takes.
    const job = page.locator('#jobs > li').filter({ has: page.getByRole('heading', { name: 'parcel', exact: true }) });
    await job.waitFor(PATIENCE);
    const id = (await job.getAttribute('data-id'))!;
    // Its worker holds it until the test lets it go.
    expect(['Pending', 'Running']).toContain(await job.locator('.chip').innerText());
    const input = {
      title: '<b>Hello</b>',
      copies: 2,
      colour: 'green',
      urgent: true,
      tags: ['fragile', 'books'],
      address: { street: 'Main Street 1', postcode: '12345' },
      extras: { gift: '<i>yes</i>' },
    };
    expect(JSON.parse(await job.locator('.input pre').innerText())).toEqual(input);
    // Pretty-printed; the keys come in the order the database keeps them.
    expect(await job.locator('.input pre').innerText()).toContain('\n  "title": "<b>Hello</b>",\n');
    expect(await job.locator('b, i').count()).toBe(0);
    expect(await job.locator('.result').count()).toBe(0);
    expect((await api.jobs.getJob(id, ANONYMOUS))!.input).toEqual(input);

    parcelsMayFinish.resolve();
    await job.locator('.chip[data-status="COMPLETED"]').waitFor(PATIENCE);
    const result = { label: 'URGENT <b>Hello</b> (green, fragile/books) to Main Street 1, 12345', copies: 2 };
    expect(JSON.parse(await job.locator('.result pre').innerText())).toEqual(result);
    await job.screenshot({ path: `${ARTIFACTS}jobs-page-kind-job.png` });
    await job.getByRole('button', { name: `Retrieve the result of parcel job ${id}` }).click();
    await job.locator('.chip[data-status="RETRIEVED"]').waitFor(PATIENCE);
    expect(problemsOf(page)).toEqual([]);
  });

  it('shows what the service refuses next to the field it names', async () => {
    const page = await openParcelForm();
    const before = await page.locator('#jobs > li').count();
    await fillParcel(page, { title: 'Forbidden books', street: 'Main Street 1' });
    await page.getByRole('button', { name: 'Submit job' }).click();
    const titleError = fieldAt(page, 'title').locator('.field-error');
    await titleError.waitFor(PATIENCE);
    expect(await titleError.innerText()).toBe('must not say forbidden');
    expect(await page.getByLabel(/^title/).getAttribute('aria-invalid')).toBe('true');
    expect(await page.evaluate(() => document.activeElement?.closest('[data-path]')?.getAttribute('data-path'))).toBe('title');

    // A nested field, named by its path.
    await page.getByLabel(/^title/).fill('Books');
    await page.getByLabel(/^street/).fill('Nowhere 0');
    await page.getByRole('button', { name: 'Submit job' }).click();
    const streetError = fieldAt(page, 'address.street').locator('.field-error');
    await streetError.waitFor(PATIENCE);
    expect(await streetError.innerText()).toBe('is not a street we deliver to');
    expect(await titleError.isVisible()).toBe(false);
    expect(await page.locator('#kind-form-error').innerText()).toBe('');

    // An item of a list, by its index now: the rows were renumbered when the first went.
    await page.getByLabel(/^street/).fill('Main Street 1');
    const tags = fieldAt(page, 'tags');
    await tags.getByRole('button', { name: 'Remove item 1 of tags' }).click();
    await tags.getByRole('button', { name: 'Add item to tags' }).click();
    await tags.locator('input').nth(1).fill('Loud');
    expect(await tags.locator('input').evaluateAll((inputs) => inputs.map((input) => (input as HTMLInputElement).value))).toEqual(['books', 'Loud']);
    expect(await tags.locator('label').allInnerTexts()).toEqual(['Item 1', 'Item 2']);
    await page.getByRole('button', { name: 'Submit job' }).click();
    const loud = tags.locator('li').nth(1);
    await loud.locator('.field-error').waitFor(PATIENCE);
    expect(await loud.locator('.field-error').innerText()).toBe('must be lower case');
    expect(await loud.locator('input').getAttribute('aria-invalid')).toBe('true');
    expect(await tags.locator('li').nth(0).locator('input').getAttribute('aria-invalid')).toBe('false');

    // A refusal of the input as a whole is shown under the form.
    await tags.locator('input').nth(1).fill('loud');
    await page.getByLabel(/^copies/).fill('6');
    await page.getByRole('button', { name: 'Submit job' }).click();
    await expect.poll(() => page.locator('#kind-form-error').innerText(), PATIENCE).toBe(
      'Could not submit the job: input urgent labels come five at most',
    );
    expect(await page.locator('#kind-form .field-error:not([hidden])').count()).toBe(0);
    expect(await page.locator('#jobs > li').count()).toBe(before);
    expect(problemsOf(page)).toEqual([]);
  });

  it('goes back to the add form, which works as before', async () => {
    const page = await openParcelForm();
    await page.getByLabel('Kind of job').selectOption('add');
    expect(await page.locator('#add-heading').innerText()).toBe('Add two numbers');
    expect(await page.locator('#kind-form').isVisible()).toBe(false);
    await page.getByLabel('First number').fill('40');
    await page.getByLabel('Second number').fill('2');
    await page.getByRole('button', { name: 'Add', exact: true }).click();
    const job = page.getByRole('listitem').filter({ has: page.getByRole('heading', { name: /^40 \+ 2/ }) });
    await job.locator('.chip[data-status="COMPLETED"]').waitFor(PATIENCE);
    expect(await job.getByRole('heading').innerText()).toBe('40 + 2 = 42');
    expect(await job.locator('dd code').first().innerText()).toBe('add');
    expect(await job.locator('pre').count()).toBe(0);
    expect(problemsOf(page)).toEqual([]);
  });
});

describe('the jobs page with a job that reports progress', () => {
  it('shows a bar and the message that move with each report, and the result once it completes', async () => {
    const page = await openJobsPage();
    // Every value any bar on the list takes, as the DOM has it, sampled on each change.
    await page.evaluate(() => {
      const seen: { id: string; value: number | null; message: string | null }[] = [];
      Object.assign(window, { seenProgress: seen });
      const list = document.getElementById('jobs')!;
      new MutationObserver(() => {
        for (const bar of list.querySelectorAll('progress')) {
          const id = bar.closest('li')!.dataset.id!;
          const value = bar.hasAttribute('value') ? (bar as HTMLProgressElement).value : null;
          const message = bar.closest('.progress')!.querySelector('.progress-message')?.textContent ?? null;
          const last = seen.findLast((sample) => sample.id === id);
          if (last?.value !== value || last?.message !== message) seen.push({ id, value, message });
        }
      }).observe(list, { childList: true, subtree: true, attributes: true, characterData: true });
    });
    await page.locator('#kind option[value="steps"]').waitFor({ state: 'attached', ...PATIENCE });
    await page.getByLabel('Kind of job').selectOption('steps');
    await page.getByLabel(/^label/).fill('ten');
    await page.getByRole('button', { name: 'Submit job' }).click();

    const job = page.locator('#jobs > li').filter({ has: page.getByRole('heading', { name: 'steps', exact: true }) });
    await job.waitFor(PATIENCE);
    const id = (await job.getAttribute('data-id'))!;
    const bar = job.getByRole('progressbar', { name: `Progress of steps job ${id}` });

    // Halfway, the handler waits for the test: the bar stands at 50 % with its message.
    await job.getByText('step 5 of 10', { exact: true }).waitFor(PATIENCE);
    expect(await bar.getAttribute('max')).toBe('100');
    expect(await bar.evaluate((element) => (element as HTMLProgressElement).value)).toBe(50);
    expect(await job.locator('.progress .percent').innerText()).toBe('50 %');
    expect(await job.locator('.chip').innerText()).toBe('Running');
    expect(await bar.getAttribute('aria-describedby')).toBe(`progress-message-${id}`);
    await job.screenshot({ path: `${ARTIFACTS}jobs-page-progress.png` });
    await page.screenshot({ path: `${ARTIFACTS}jobs-page-progress-page.png` });

    // A page opened now reads the bar from the jobs query, and passes the audit with it.
    const late = await openJobsPage({ ...DESKTOP, bypassCSP: true });
    const lateJob = late.locator(`#jobs > li[data-id="${id}"]`);
    await lateJob.getByText('step 5 of 10', { exact: true }).waitFor(PATIENCE);
    expect(await lateJob.getByRole('progressbar').evaluate((element) => (element as HTMLProgressElement).value)).toBe(50);
    expect(await audit(late)).toEqual([]);

    stepsMayGoOn.resolve();
    await job.locator('.chip[data-status="COMPLETED"]').waitFor(PATIENCE);
    expect(JSON.parse(await job.locator('.result pre').innerText())).toEqual({ label: 'ten', steps: 10 });
    expect(await job.locator('progress, .progress').count()).toBe(0);
    // The late page followed the rest of the run over its own subscription.
    await lateJob.locator('.chip[data-status="COMPLETED"]').waitFor(PATIENCE);
    expect(await lateJob.locator('progress').count()).toBe(0);

    const seen = (await page.evaluate(() => (window as unknown as { seenProgress: { id: string; value: number | null; message: string | null }[] }).seenProgress)).filter(
      (sample) => sample.id === id,
    );
    const values = seen.map((sample) => sample.value);
    // The bar moved more than once while the job ran, never back, and each value came with its step.
    // Its last value need not be 100: the last report and the completion may reach the page as one
    // state (a watcher is sent the job as it is now, not each change in between), and a completed
    // job shows no bar. The job itself keeps the last report.
    expect(values.every((value) => typeof value === 'number')).toBe(true);
    expect(values).toEqual([...values].sort((a, b) => a! - b!));
    expect(new Set(values).size).toBeGreaterThanOrEqual(3);
    expect(values.at(-1)).toBeGreaterThan(50);
    expect((await api.jobs.getJob(id, ANONYMOUS))!.progress).toEqual({ percent: 100, message: 'step 10 of 10' });
    for (const sample of seen) expect(sample.message).toBe(`step ${sample.value! / 10} of 10`);
    expect(problemsOf(page)).toEqual([]);
    expect(problemsOf(late)).toEqual([]);
  });

  it('shows a bar without a percent as indeterminate, sliding only where motion is welcome', async () => {
    const id = (await api.jobs.submitJob({ kind: 'warmup', input: { label: 'w' } }, ANONYMOUS)).job.id;
    const moving = await openJobsPage();
    const still = await openJobsPage({ ...DESKTOP, reducedMotion: 'reduce' });
    for (const page of [moving, still]) {
      const job = page.locator(`#jobs > li[data-id="${id}"]`);
      await job.getByText('warming up', { exact: true }).waitFor(PATIENCE);
      const bar = job.getByRole('progressbar', { name: `Progress of warmup job ${id}` });
      expect(await bar.evaluate((element) => element.matches(':indeterminate'))).toBe(true);
      expect(await job.locator('.progress .percent').innerText()).toBe('');
    }
    const animation = (page: Page) =>
      page.locator(`#jobs > li[data-id="${id}"] progress`).evaluate((element) => getComputedStyle(element).animationName);
    expect(await animation(moving)).toBe('progress-slide');
    expect(await animation(still)).toBe('none');

    warmupMayFinish.resolve();
    for (const page of [moving, still]) {
      const job = page.locator(`#jobs > li[data-id="${id}"]`);
      await job.locator('.chip[data-status="COMPLETED"]').waitFor(PATIENCE);
      expect(await job.locator('progress').count()).toBe(0);
      expect(problemsOf(page)).toEqual([]);
    }
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
    for (let i = 0; i < 11; i += 1) {
      await page.keyboard.press('Tab');
      const focused = await page.evaluate(() => {
        const element = document.activeElement as HTMLElement;
        const style = getComputedStyle(element);
        return { name: element.id || element.textContent?.trim() || element.tagName, outline: style.outlineStyle };
      });
      expect(focused.outline, focused.name).toBe('solid');
      stops.push(focused.name);
    }
    expect(stops).toEqual(['GraphiQL', 'Metrics', 'Overview', 'Find jobs', 'Workflows', 'Schedules', 'kind', 'num1', 'num2', 'Add', 'refresh']);
  });

  // Screenshots change with every run (times, ids), so the README's copy is refreshed on request.
  afterAll(async () => {
    if (process.env.UPDATE_DOCS_SCREENSHOT === '1') await copyFile(`${ARTIFACTS}jobs-page-desktop.png`, README_SCREENSHOT);
  });
});
