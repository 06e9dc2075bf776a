import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type FakeUpstream, fakeKey, startFakeUpstream } from '@lb/testing';
import OpenAI from 'openai';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type LbServer } from '../src/index.js';

// The dashboard in a real browser: Debian's chromium (`.ci/run` installs it), driven by puppeteer-core, against a
// running lb-server with fake upstreams. Screenshots go to packages/server/.cache/screenshots (git-ignored).

const SHOTS = fileURLToPath(new URL('../.cache/screenshots/', import.meta.url));
const adminKey = 'lb-admin-key-browser-0123456789';
const clientKey = 'lb-client-key-browser-0123456789';

function chromiumPath(): string {
  const path = process.env.LB_CHROMIUM ?? 'chromium';
  try {
    return execFileSync('sh', ['-c', `command -v ${path}`], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error(
      'chromium is not installed: apt-get install chromium (.ci/run does it), or set LB_CHROMIUM',
    );
  }
}

let ups: FakeUpstream[];
let server: LbServer;
let base: string;
let browser: Browser;
let page: Page;
let client: OpenAI;
const problems: string[] = [];
let withD = false;

const routerConfig = () => ({
  endpoints: ups.slice(0, withD ? 4 : 3).map((u, i) => ({
    id: u.name,
    url: u.url,
    apiKey: fakeKey(u.name),
    priority: i + 1,
    tags: i ? [] : ['eu'],
  })),
  backoff: { initialMs: 1, maxMs: 2 },
});

beforeAll(async () => {
  ups = await Promise.all(['a', 'b', 'c', 'd'].map((name) => startFakeUpstream({ name })));
  server = createServer({
    router: routerConfig(),
    reloadConfig: routerConfig,
    server: { port: 0, adminKey, apiKeys: [clientKey] },
    breaker: { enabled: true, threshold: 2, halfOpenAfterMs: 60_000 },
    logDestination: { write: () => true } as any,
  });
  base = await server.listen();
  client = new OpenAI({ baseURL: `${base}/v1`, apiKey: clientKey, maxRetries: 0 });
  mkdirSync(SHOTS, { recursive: true });
  browser = await puppeteer.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  page = await tab();
}, 60_000);

/** A new tab (its own sessionStorage) whose console errors, page errors and failed requests are collected. */
async function tab(): Promise<Page> {
  const p = await browser.newPage();
  p.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warn') problems.push(`${m.type()}: ${m.text()}`);
  });
  p.on('pageerror', (e) => problems.push(`pageerror: ${(e as Error).message}`));
  p.on('requestfailed', (r) => {
    // The event stream is aborted when its page goes away; anything else failing is a problem.
    if (!r.url().endsWith('/dashboard/events')) problems.push(`requestfailed: ${r.url()}`);
  });
  return p;
}

afterAll(async () => {
  await browser?.close();
  await server?.close(100);
  await Promise.all((ups ?? []).map((u) => u.close()));
});

const ask = () =>
  client.chat.completions
    .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] })
    .withResponse();
const row = (id: string, state?: string) =>
  `tr[data-endpoint="${id}"]${state ? `[data-state="${state}"]` : ''}`;

describe('the dashboard in chromium', () => {
  let pace = 0;

  it('asks for the key, then shows the endpoints live', async () => {
    await page.setViewport({ width: 1280, height: 900 });
    await page.goto(`${base}/dashboard`);
    await page.waitForSelector('#login:not([hidden])');
    await page.type('#key', adminKey);
    const t0 = Date.now();
    await page.keyboard.press('Enter');
    await page.waitForSelector(row('c'));
    pace = Date.now() - t0;
    expect(
      await page.$$eval('#ep-body tr', (trs) => trs.map((t) => (t as HTMLElement).dataset.endpoint)),
    ).toEqual(['a', 'b', 'c']);
    expect(await page.$eval(row('a'), (t) => t.textContent)).toMatch(/healthy.*eu/);
    // The key stays in the tab, never in the address.
    expect(page.url()).not.toContain(adminKey);
    // The one error the browser logs is the event stream's 401 before the key was given.
    expect(problems).toEqual([expect.stringMatching(/401 \(Unauthorized\)/)]);
    problems.length = 0;
    await page.close();
  });

  it('takes the key from the URL fragment and drops it from the address', async () => {
    page = await tab();
    await page.setViewport({ width: 1280, height: 900 });
    await page.goto(`${base}/dashboard#key=${encodeURIComponent(adminKey)}`);
    await page.waitForSelector(row('a', 'healthy'));
    expect(page.url()).toBe(`${base}/dashboard`);
    for (let i = 0; i < 6; i++) await ask();
    await page.waitForFunction(() => document.querySelectorAll('#rq-body tr').length >= 6);
  });

  it('turns a failing upstream’s row to open within a second', async () => {
    ups[0].setDefault({ type: 'status', status: 500 });
    expect((await ask()).response.headers.get('x-lb-endpoint')).toBe('b');
    expect((await ask()).response.headers.get('x-lb-endpoint')).toBe('b');
    // The breaker is open now (threshold 2); the page has one frame (250 ms) to show it. The bound follows the
    // machine's own pace (how long the first rows took), never below the issue's one second.
    await page.waitForSelector(row('a', 'open'), { timeout: Math.max(1000, 4 * pace) });
    expect(await page.$eval(row('a'), (t) => t.textContent)).toMatch(/✕ open/);
    await page.waitForFunction(() =>
      [...document.querySelectorAll('#strip li')].some((li) =>
        /breaker closed → open/.test(li.textContent ?? ''),
      ),
    );
    expect(await page.$$eval('#strip li[data-kind="failover"]', (l) => l.length)).toBeGreaterThan(0);
    await page.screenshot({ path: `${SHOTS}dashboard-open.png`, fullPage: true });
  });

  it('disables an endpoint from the page with the keyboard: the next request goes elsewhere', async () => {
    await page.focus(`${row('b')} button`);
    await page.keyboard.press('Enter');
    await page.waitForSelector('dialog[open]');
    expect(await page.$eval('#confirm-text', (p) => p.textContent)).toBe('Disable endpoint b?');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() =>
      /Disabled b: now disabled/.test(document.getElementById('result')!.textContent!),
    );
    await page.waitForSelector(row('b', 'disabled'));
    expect(server.router.getHealth('b')?.status).toBe('disabled');
    expect((await ask()).response.headers.get('x-lb-endpoint')).toBe('c');
    expect(await page.$eval(`${row('b')} button`, (b) => b.textContent)).toBe('Enable');
  });

  it('reloads the config after confirmation and shows the result', async () => {
    withD = true;
    await page.click('#reload');
    await page.waitForSelector('dialog[open]');
    await page.click('#confirm-ok');
    await page.waitForFunction(() =>
      /Reloaded: 1 added, 0 removed/.test(document.getElementById('result')!.textContent!),
    );
    expect(await page.$eval('#result', (r) => r.textContent)).toContain('(+d)');
    await page.waitForSelector(row('d'));
    await page.waitForFunction(() =>
      [...document.querySelectorAll('#strip li[data-kind="reload"]')].some((li) =>
        /1 added/.test(li.textContent!),
      ),
    );
  });

  it('cancelling the confirmation does nothing', async () => {
    await page.click(`${row('c')} button`);
    await page.waitForSelector('dialog[open]');
    await page.keyboard.press('Escape');
    await page.waitForSelector('dialog:not([open])');
    expect(server.router.getHealth('c')?.status).toBe('healthy');
  });

  it('fits a phone and follows the dark scheme; no console errors', async () => {
    await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'light' }]);
    expect(await page.evaluate(() => getComputedStyle(document.body).backgroundColor)).toBe(
      'rgb(251, 251, 252)',
    );
    await page.screenshot({ path: `${SHOTS}dashboard-light.png`, fullPage: true });
    await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'dark' }]);
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    expect(bg).toBe('rgb(17, 19, 23)');
    await page.screenshot({ path: `${SHOTS}dashboard-dark.png`, fullPage: true });
    await page.setViewport({ width: 390, height: 844, isMobile: true });
    await page.waitForSelector(row('a'));
    // Wide tables scroll inside their card; the page itself never scrolls sideways.
    expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
    await page.screenshot({ path: `${SHOTS}dashboard-phone-dark.png`, fullPage: true });
    await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'light' }]);
    await page.screenshot({ path: `${SHOTS}dashboard-phone-light.png`, fullPage: true });
    expect(problems).toEqual([]);
  });
});
