// metrics.spec.mjs — browser tests of the metrics view against a real collector whose agents
// scrape the fixture scheduler and worker /metrics pages every second (cluster `ui`, nodes
// `scheduler-0` and `node-a`). Run by the Rust test `ui::metrics_view_in_chromium`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { baseUrl, openBrowser, screenshot, watchPage } from './browser.mjs';

let browser;
let page;
let pageErrors;

before(async () => {
  ({ browser, page, pageErrors } = await openBrowser());
});

after(async () => {
  await browser?.close();
});

const metricsUrl = (params = {}) => `${baseUrl}/?${new URLSearchParams({ view: 'metrics', ...params })}`;

/** Waits until the run that `action` starts has answered and been drawn. */
async function whileRunning(target, action) {
  await Promise.all([
    target.waitForResponse((response) => response.url().includes('/api/v1/query_range')),
    action(),
  ]);
  await target.waitForSelector('#metrics-run:enabled');
}

async function runQuery(target, query) {
  await target.fill('#metrics-query', query);
  await whileRunning(target, () => target.press('#metrics-query', 'Enter'));
}

/** The legend's series (the time row left out): label and the value it shows. */
function legend(target) {
  return target.$$eval('.metrics-chart .u-legend .u-series', (rows) => rows.slice(1).map((row) => ({
    label: row.querySelector('.u-label').textContent,
    value: row.querySelector('.u-value').textContent,
  })));
}

/** Hovers the chart's last point (the range's end); the legend then shows every series' value there. */
async function hoverLatest(target) {
  const plot = await target.locator('.metrics-chart .u-over').boundingBox();
  await target.mouse.move(plot.x + plot.width - 1, plot.y + plot.height / 2);
  await target.waitForFunction(() => [...document.querySelectorAll('.metrics-chart .u-legend .u-series .u-value')]
    .every((cell) => cell.textContent !== '--' && cell.textContent !== ''));
}

const labels = async (target) => (await legend(target)).map((series) => series.label);

test('the metrics view plots a PromQL query', async () => {
  await page.goto(metricsUrl());
  await page.waitForSelector('text=Type a PromQL query');
  await page.waitForFunction(() => [...document.querySelectorAll('#metrics-names option')]
    .some((option) => option.value === 'dask_scheduler_workers'));
  await page.selectOption('#metrics-range', '15m');
  await runQuery(page, 'up');
  await hoverLatest(page);
  const series = await legend(page);
  assert.equal(series.length, 2, JSON.stringify(series));
  assert.deepEqual(series.map((one) => /node="([^"]+)"/.exec(one.label)?.[1]).sort(), ['node-a', 'scheduler-0']);
  assert.ok(series.every((one) => one.label.startsWith('up{cluster="ui"')), JSON.stringify(series));
  assert.deepEqual(series.map((one) => Number(one.value)), [1, 1], 'both targets are up at the end of the range');
  assert.match(await page.textContent('#metrics-summary'), /^2 series · step 4s · /);
  assert.match(page.url(), /[?&]query=up&range=15m$/);
  await screenshot(page, 'metrics-up-15m');
  assert.deepEqual(pageErrors, []);
});

test('a bad query shows the parser\'s message', async () => {
  await runQuery(page, 'sum(up');
  await page.waitForSelector('#metrics-error:not([hidden])');
  assert.equal(await page.textContent('#metrics-error'), 'invalid parameter "query": unclosed left parenthesis');
  assert.equal(await page.locator('.metrics-chart').count(), 0, 'the previous chart is gone');
  await screenshot(page, 'metrics-bad-query');
  assert.deepEqual(pageErrors, []);
});

test('a shared URL restores the query, the range and the chart', async () => {
  const other = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await watchPage(other, pageErrors);
  await whileRunning(other, () => other.goto(metricsUrl({ query: 'sum by (role) (up)', range: '6h' })));
  assert.equal(await other.inputValue('#metrics-query'), 'sum by (role) (up)');
  assert.equal(await other.inputValue('#metrics-range'), '6h');
  assert.deepEqual(await labels(other), ['{role="scheduler"}', '{role="worker"}']);
  await hoverLatest(other);
  await screenshot(other, 'metrics-shared-url');
  await other.close();
  assert.deepEqual(pageErrors, []);
});

test('an absolute range runs, lands in the URL and is restored from it', async () => {
  await page.fill('#metrics-query', 'up');
  await page.selectOption('#metrics-range', 'absolute');
  const start = await page.inputValue('#metrics-start');
  assert.match(start, /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/, 'From starts at the window last drawn');
  await page.fill('#metrics-end', new Date(Date.now() + 60_000).toISOString());
  await whileRunning(page, () => page.click('#metrics-run'));
  assert.equal((await labels(page)).length, 2);
  const url = new URL(page.url());
  assert.equal(url.searchParams.get('start'), start);
  assert.equal(url.searchParams.has('range'), false);
  await whileRunning(page, () => page.goto(url.href));
  assert.equal(await page.inputValue('#metrics-range'), 'absolute');
  assert.equal(await page.inputValue('#metrics-start'), start);
  assert.equal((await labels(page)).length, 2);
  await screenshot(page, 'metrics-absolute-range');
  await page.fill('#metrics-end', 'yesterday');
  await page.press('#metrics-end', 'Enter');
  await page.waitForSelector('#metrics-error:not([hidden])');
  assert.match(await page.textContent('#metrics-error'), /"Until" is not a time: "yesterday"/);
  assert.deepEqual(pageErrors, []);
});

test('an example click runs it', async () => {
  await page.goto(metricsUrl({ range: '15m' }));
  await whileRunning(page, () => page.click('.metrics-example-list button:text-is("dask_scheduler_workers")'));
  assert.equal(await page.inputValue('#metrics-query'), 'dask_scheduler_workers');
  const states = (await labels(page)).map((label) => /state="([^"]+)"/.exec(label)?.[1]).sort();
  assert.deepEqual(states, ['idle', 'partially_saturated', 'paused', 'retiring', 'saturated']);
  assert.match(page.url(), /query=dask_scheduler_workers/);
  await hoverLatest(page);
  await screenshot(page, 'metrics-example');
  assert.deepEqual(pageErrors, []);
});

test('a query matching nothing says so and suggests queries that work', async () => {
  await runQuery(page, 'no_such_metric');
  const empty = page.locator('#metrics-result .empty-state');
  assert.match(await empty.innerText(), /No series match no_such_metric/);
  assert.equal(await empty.locator('button:text-is(\'{cluster="ui"}\')').count(), 1);
  await screenshot(page, 'metrics-no-series');
  await whileRunning(page, () => empty.locator('button:text-is("up")').click());
  assert.equal((await labels(page)).length, 2);
  assert.deepEqual(pageErrors, []);
});

test('many series: the first 50 are drawn and the rest counted', async () => {
  await runQuery(page, '{cluster="ui"}');
  const note = await page.textContent('.metrics-note');
  const [, drawn, total] = /Drawing the first (\d+) of (\d+) series/.exec(note) ?? [];
  assert.equal(Number(drawn), 50, note);
  assert.ok(Number(total) > 50, note);
  assert.equal((await labels(page)).length, 50);
  assert.match(await page.textContent('#metrics-summary'), new RegExp(`^${total} series`));
  await screenshot(page, 'metrics-many-series');
  assert.deepEqual(pageErrors, []);
});

test('the view is usable 400 px wide', async () => {
  const narrow = await openBrowser({ width: 400, height: 800 });
  try {
    await whileRunning(narrow.page, () => narrow.page.goto(metricsUrl({ query: 'up', range: '15m' })));
    await hoverLatest(narrow.page);
    const overflow = await narrow.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page is ${overflow}px wider than the window`);
    for (const selector of ['#metrics-query', '#metrics-range', '#metrics-run', '.metrics-chart']) {
      const box = await narrow.page.locator(selector).boundingBox();
      assert.ok(box.x >= 0 && box.x + box.width <= 400, `${selector} is outside the window: ${JSON.stringify(box)}`);
    }
    await screenshot(narrow.page, 'metrics-narrow');
    assert.deepEqual(narrow.pageErrors, []);
  } finally {
    await narrow.browser.close();
  }
});
