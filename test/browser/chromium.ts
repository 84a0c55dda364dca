/**
 * What the browser tests share: Debian's Chromium (test/browser/ensure-chromium.sh installs it),
 * headless and quiet on the network; pages that keep their errors; and axe-core's audit.
 */
import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { type Browser, type BrowserContext, type BrowserContextOptions, chromium, type Page } from 'playwright-core';

export const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));
export const DESKTOP: BrowserContextOptions = { viewport: { width: 1280, height: 900 } };
export const PHONE: BrowserContextOptions = { viewport: { width: 360, height: 780 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true };
/** Waits on the page; they only turn a hang into a readable failure, and measure nothing. */
export const PATIENCE = { timeout: 20_000 };

const EXECUTABLE = '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
/** axe-core's WCAG 2.x A and AA rules (contrast, labels, names, roles…). */
const AUDIT = { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'] } };

/** One test file's browser: every context it opens is closed with it, and each page's errors are kept. */
export class TestBrowser {
  private readonly contexts: BrowserContext[] = [];
  private readonly problems = new WeakMap<Page, string[]>();
  private readonly browser: Browser;

  private constructor(browser: Browser) {
    this.browser = browser;
  }

  static async launch(): Promise<TestBrowser> {
    await mkdir(ARTIFACTS, { recursive: true });
    return new TestBrowser(await chromium.launch({ executablePath: EXECUTABLE, args: FLAGS, headless: true }));
  }

  async newContext(options: BrowserContextOptions = DESKTOP): Promise<BrowserContext> {
    const context = await this.browser.newContext(options);
    this.contexts.push(context);
    return context;
  }

  /**
   * `url` in a context of its own. Uncaught errors and console errors are kept (`problemsOf`),
   * except console errors that match `expected`.
   */
  async open(url: string, options: BrowserContextOptions = DESKTOP, expected?: RegExp): Promise<Page> {
    const page = await (await this.newContext(options)).newPage();
    const seen: string[] = [];
    this.problems.set(page, seen);
    page.on('pageerror', (error) => seen.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error' && !expected?.test(message.text())) seen.push(message.text());
    });
    await page.goto(url);
    return page;
  }

  problemsOf(page: Page): string[] {
    return this.problems.get(page) ?? [];
  }

  async close(): Promise<void> {
    for (const context of this.contexts) await context.close();
    await this.browser.close();
  }
}

/** The audit's violations on the page as it is: each rule with the elements that break it. */
export async function audit(page: Page): Promise<Array<{ rule: string; nodes: string[] }>> {
  await page.addScriptTag({ path: createRequire(import.meta.url).resolve('axe-core/axe.min.js') });
  return page.evaluate(async (options) => {
    const axe = (window as unknown as { axe: { run: (context: Document, options: unknown) => Promise<any> } }).axe;
    const result = await axe.run(document, options);
    return result.violations.map((violation: any) => ({ rule: violation.id, nodes: violation.nodes.map((node: any) => node.target.join(' ')) }));
  }, AUDIT);
}
