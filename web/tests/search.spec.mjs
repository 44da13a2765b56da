// search.spec.mjs — browser test of the search page against a real collector holding real Dask
// logs. Started by the Rust end-to-end test `ui::search_page_finds_records_in_chromium`, which
// passes the collector's address in AFTERGLOW_URL.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const baseUrl = process.env.AFTERGLOW_URL;
const screenshotPath = process.env.AFTERGLOW_SCREENSHOT;
let browser;
let page;

before(async () => {
  assert.ok(baseUrl, 'AFTERGLOW_URL must name a running collector');
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.on('pageerror', (error) => { throw error; });
});

after(async () => {
  await browser?.close();
});

async function search(query) {
  await page.fill('#q', query);
  await Promise.all([
    page.waitForResponse((response) => response.url().includes('/api/v1/logs/search')),
    page.press('#q', 'Enter'),
  ]);
  await page.waitForFunction(() => document.querySelector('#status')?.textContent === '');
}

const hitLevels = () => page.$$eval('#results .hit', (hits) => hits.map((hit) => hit.dataset.level));
const hitNodes = () => page.$$eval('#results .hit', (hits) => hits.map((hit) => hit.dataset.node));

test('first load shows every node interleaved by time', async () => {
  await page.goto(baseUrl);
  await page.waitForSelector('#results .hit');
  const nodes = await hitNodes();
  assert.ok(nodes.length >= 100, `only ${nodes.length} hits`);
  assert.deepEqual([...new Set(nodes)].sort(), ['node-a', 'node-b', 'scheduler-0']);
  const times = await page.$$eval('#results .hit .ts', (cells) => cells.map((cell) => cell.textContent));
  assert.deepEqual(times, [...times].sort(), 'hits are in time order');
  assert.match(await page.textContent('#count'), /\d+ hits? shown/);
  if (screenshotPath) await page.screenshot({ path: screenshotPath, fullPage: false });
});

test('a query filters hits and lands in the URL', async () => {
  await search('level:ERROR');
  const levels = await hitLevels();
  assert.ok(levels.length >= 1, 'no ERROR hits');
  assert.ok(levels.every((level) => level === 'ERROR'), levels.join());
  assert.match(page.url(), /q=level%3AERROR/);
  // Loading the URL restores the same view.
  await page.goto(page.url());
  await page.waitForSelector('#results .hit');
  assert.equal(await page.inputValue('#q'), 'level:ERROR');
  assert.deepEqual(await hitLevels(), levels);
});

test('a multi-line record expands to its whole traceback', async () => {
  await search('"Compute Failed"');
  const hit = page.locator('#results .hit').first();
  await hit.locator('button.toggle').click();
  const message = await hit.locator('.message').innerText();
  assert.match(message, /Key:\s+fails-42/);
  assert.match(message, /Exception: "ValueError/);
});

test('log text is shown as text, never as markup', async () => {
  await search('injected');
  assert.equal(await page.locator('#results .hit').count(), 1);
  assert.equal(await page.locator('#injected').count(), 0, 'markup from a log line was rendered');
  assert.match(await page.locator('#results .hit .message').innerText(), /<b id="injected">/);
});

test('a bad query shows the parser message', async () => {
  await search('level:(ERROR');
  await page.waitForSelector('#error:not([hidden])');
  assert.match(await page.textContent('#error'), /bad query/);
});

test('load more fetches the next page by cursor', async () => {
  await search('*');
  const firstPage = await page.locator('#results .hit').count();
  assert.equal(firstPage, 200);
  await page.click('#load-more');
  await page.waitForFunction((count) => document.querySelectorAll('#results .hit').length > count, firstPage);
  const keys = await page.$$eval('#results .hit', (hits) => hits.map((hit) => `${hit.dataset.stream}/${hit.dataset.seq}`));
  assert.equal(new Set(keys).size, keys.length, 'a record appears twice after load more');
});
