// search.spec.mjs — browser tests of the search view against a real collector holding real Dask
// logs (three nodes), run by the Rust test `ui::search_view_in_chromium`. Live tail and the
// 10 000-row list append real lines to AFTERGLOW_TAIL_FILE, a log file node-b's agent tails, so
// they run last. Every test saves a screenshot and fails on uncaught page errors.
import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync } from 'node:fs';
import { baseUrl, openBrowser, screenshot, watchPage } from './browser.mjs';

const tailFile = process.env.AFTERGLOW_TAIL_FILE;
let browser;
let page;
let pageErrors;

before(async () => {
  ({ browser, page, pageErrors } = await openBrowser());
});

afterEach(() => {
  assert.deepEqual(pageErrors.map(String), [], 'the page raised errors');
});

after(async () => {
  await browser?.close();
});

/** Waits until the view shows the answer to its last search (or load more). */
async function settled(on = page) {
  await on.waitForFunction(() => document.querySelector('#status')?.textContent === ''
    && document.querySelector('#results')?.getAttribute('aria-busy') === 'false');
}

async function search(query) {
  await page.fill('#q', query);
  await page.press('#q', 'Enter');
  await settled();
}

/** Hits loaded (the list draws only those on screen). */
const loaded = (on = page) => on.$eval('#results', (list) => Number(list.dataset.loaded));
const drawn = (attribute, on = page) =>
  on.$$eval('#results .hit', (hits, name) => hits.map((hit) => hit.dataset[name]), attribute);
const urlParam = (name, on = page) => new URL(on.url()).searchParams.get(name);

/** A line in the agent's format (Dask's, UTC) stamped now. */
function logLine(message, at = new Date()) {
  const stamp = at.toISOString().replace('T', ' ').replace('.', ',').slice(0, 23);
  return `${stamp} - distributed.worker - INFO - ${message}\n`;
}

test('first load shows every node interleaved by time', async () => {
  await page.goto(baseUrl);
  await page.waitForSelector('#results .hit');
  await settled();
  assert.ok(await loaded() >= 100, `only ${await loaded()} hits`);
  assert.deepEqual([...new Set(await drawn('node'))].sort(), ['node-a', 'node-b', 'scheduler-0']);
  const times = await page.$$eval('#results .hit > .ts', (cells) => cells.map((cell) => cell.textContent));
  assert.deepEqual(times, [...times].sort(), 'hits are in time order');
  assert.match(await page.textContent('#count'), /^200 of [\d,]+ hits shown$/);
  await page.waitForSelector('#histogram[data-total]');
  // A collector without tokens: nobody signs in, and the header says nothing about it.
  assert.equal(await page.isVisible('#session'), false);
  assert.equal(await page.locator('#login-token').count(), 0);
  await screenshot(page, 'search-first-load');
});

test('the page runs under its Content-Security-Policy, and a violation would fail the tests', async () => {
  const response = await page.goto(baseUrl);
  const headers = response.headers();
  assert.match(headers['content-security-policy'] ?? '', /script-src 'self';.*frame-ancestors 'none'/);
  assert.equal(headers['x-content-type-options'], 'nosniff');
  await page.waitForSelector('#results .hit');
  await settled();
  assert.deepEqual(pageErrors.map(String), [], 'the view itself violates nothing');
  // The watch of browser.mjs: an inline script is refused by the policy and reported.
  const ran = await page.evaluate(() => {
    const inline = document.createElement('script');
    inline.textContent = 'window.inlineScriptRan = true;';
    document.head.append(inline);
    return window.inlineScriptRan === true;
  });
  assert.equal(ran, false, 'the policy let an inline script run');
  // Both reports, the page's event and chromium's console line, each arrive on their own.
  const reported = () => [/CSP violation: script-src/, /CSP violation \(console\)/]
    .every((pattern) => pageErrors.some((error) => pattern.test(String(error))));
  for (let waited = 0; waited < 100 && !reported(); waited++) {
    await new Promise((resolve) => { setTimeout(resolve, 50); });
  }
  assert.ok(reported(), `the violation was not reported twice: ${pageErrors.join('\n')}`);
  pageErrors.length = 0;
});

test('a query filters hits and lands in the URL', async () => {
  await search('level:ERROR');
  const levels = await drawn('level');
  assert.ok(levels.length >= 1, 'no ERROR hits');
  assert.ok(levels.every((level) => level === 'ERROR'), levels.join());
  assert.match(page.url(), /q=level%3AERROR/);
  // Loading the URL restores the same view.
  await page.goto(page.url());
  await page.waitForSelector('#results .hit');
  assert.equal(await page.inputValue('#q'), 'level:ERROR');
  assert.deepEqual(await drawn('level'), levels);
});

test('a multi-line record expands to its whole traceback', async () => {
  // The syntax help's Dask examples run when clicked.
  await page.click('#syntax-help summary');
  await page.click(`#syntax-help button.syntax-example[data-query='"Compute Failed"']`);
  await settled();
  assert.equal(await page.inputValue('#q'), '"Compute Failed"');
  await page.click('#syntax-help summary');
  const hit = page.locator('#results .hit').first();
  assert.equal(await hit.locator('.msg-rest').isVisible(), false, 'collapsed to its first line');
  await hit.locator('button.toggle').click();
  await page.waitForSelector('#results .hit.expanded .msg-rest');
  const message = await hit.locator('.message').innerText();
  assert.match(message, /Key:\s+fails-42/);
  assert.match(message, /Exception: "ValueError/);
  assert.equal(await hit.locator('.context').count(), 0, 'expanding is not opening the context');
  await screenshot(page, 'search-traceback');
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
  assert.equal(await page.locator('#empty').isVisible(), false, 'an error is not "no matches"');
  await screenshot(page, 'search-bad-query');
});

test('a link with a query nested 350 deep shows the bound and the collector keeps serving', async () => {
  // Such a link once overflowed a collector thread's stack and aborted the whole process.
  const deep = `${'('.repeat(350)}task${')'.repeat(350)}`;
  await page.goto(`${baseUrl}/?q=${encodeURIComponent(deep)}`);
  await page.waitForSelector('#error:not([hidden])');
  assert.match(await page.textContent('#error'), /bad query: the query nests 350 levels .* at most 64/);
  const health = await page.request.get(`${baseUrl}/healthz`);
  assert.equal(health.status(), 200);
  await search('level:ERROR');
  assert.ok((await drawn('level')).length >= 1, 'the collector still answers searches');
  await screenshot(page, 'search-deep-link');
});

test('load more fetches the next page by cursor', async () => {
  await search('*');
  assert.equal(await loaded(), 200);
  // Waits for the page to arrive: `settled()` alone can see the view before the click's
  // request has begun (CI once read 200 hits here). The answer is checked, so that a failed
  // or missing request says so instead of timing out below.
  const more = page.waitForResponse((r) => r.url().includes('/api/v1/logs/search') && new URL(r.url()).searchParams.has('cursor'));
  await page.click('#load-more');
  const answer = await more;
  assert.equal(answer.status(), 200, await answer.text());
  await page.waitForFunction(() => Number(document.querySelector('#results')?.dataset.loaded) > 200);
  await settled();
  assert.ok(await loaded() > 200, `${await loaded()} hits after load more`);
  await page.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight));
  await page.waitForFunction(() => document.querySelector('#results .hit:last-child')?.getAttribute('aria-posinset')
    === document.querySelector('#results').dataset.loaded);
  const keys = await page.$$eval('#results .hit', (hits) => hits.map((hit) => `${hit.dataset.stream}/${hit.dataset.seq}`));
  assert.equal(new Set(keys).size, keys.length, 'a record appears twice after load more');
  await page.evaluate(() => window.scrollTo(0, 0));
});

test('a facet value narrows the search on click and is excluded on shift-click', async () => {
  await search('*');
  const nodeA = '#facet-fields .facet-row[data-field="node"][data-value="node-a"]';
  const count = Number((await page.textContent(`${nodeA} .facet-count`)).replace(/,/g, ''));
  await page.click(`${nodeA} .facet-value`);
  await settled();
  assert.equal(await loaded(), count);
  assert.deepEqual([...new Set(await drawn('node'))], ['node-a']);
  assert.equal(urlParam('filter'), 'node:node-a');
  assert.equal(urlParam('q'), '*', 'the query box keeps what was typed');
  await page.waitForSelector(`${nodeA}.is-included`);

  await page.click('#facet-fields .facet-row[data-field="level"][data-value="INFO"] .facet-value', { modifiers: ['Shift'] });
  await settled();
  const levels = await drawn('level');
  assert.ok(levels.length > 0 && !levels.includes('INFO'), levels.join());
  assert.deepEqual([...new Set(await drawn('node'))], ['node-a']);
  assert.equal(urlParam('filter'), 'node:node-a');
  assert.equal(urlParam('exclude'), 'level:INFO');
  await page.waitForSelector('#facet-fields .facet-row[data-field="level"][data-value="INFO"].is-excluded');
  assert.deepEqual(await page.$$eval('#active-filters .filter-chip', (chips) => chips.map((chip) => chip.textContent)),
    ['node: node-a ✕', 'not level: INFO ✕']);
  await screenshot(page, 'search-facets');

  // A chip removes its filter.
  await page.click('#active-filters .filter-chip.is-excluded');
  await settled();
  assert.equal(urlParam('filter'), 'node:node-a');
  assert.equal(urlParam('exclude'), null);
  await page.click('#active-filters .filter-chip');
  await settled();
  assert.equal(urlParam('filter'), null);
});

/** Per value of `field`, its count in the facet panel. */
async function facetCounts(field) {
  return page.$$eval(`#facet-fields .facet-row[data-field="${field}"]`, (rows) => Object.fromEntries(rows.map((row) =>
    [row.dataset.value, Number(row.querySelector('.facet-count').textContent.replace(/,/g, ''))])));
}

test('a kept facet value leaves the other values and their counts in view', async () => {
  await page.goto(`${baseUrl}/?q=*`);
  await page.waitForSelector('#facet-fields .facet-row[data-field="node"]');
  await settled();
  const nodes = await facetCounts('node');
  assert.deepEqual(Object.keys(nodes).sort(), ['node-a', 'node-b', 'scheduler-0']);
  await page.click('#facet-fields .facet-row[data-field="node"][data-value="node-b"] .facet-value');
  await settled();
  await page.waitForSelector('#facet-fields .facet-row[data-field="node"][data-value="node-b"].is-included');
  assert.deepEqual([...new Set(await drawn('node'))], ['node-b']);
  // The node facet is counted without its own filter: switching nodes shows what it would give.
  assert.deepEqual(await facetCounts('node'), nodes);
  // The other facets follow the filter: node-b's levels add up to node-b's count.
  const levels = await facetCounts('level');
  assert.equal(Object.values(levels).reduce((sum, count) => sum + count, 0), nodes['node-b'], JSON.stringify(levels));
  assert.equal(urlParam('filter'), 'node:node-b');
  assert.equal(urlParam('q'), '*');
  await screenshot(page, 'search-facet-kept');

  // The page URL is the state: opened afresh, it shows the same filter and counts.
  await page.goto(page.url());
  await page.waitForSelector('#facet-fields .facet-row[data-field="node"][data-value="node-b"].is-included');
  await settled();
  assert.deepEqual(await facetCounts('node'), nodes);
  assert.deepEqual(await facetCounts('level'), levels);
  assert.deepEqual(await page.$$eval('#active-filters .filter-chip', (chips) => chips.map((chip) => chip.textContent)),
    ['node: node-b ✕']);

  // Another node is one click away; keeping both adds them up.
  await page.click('#facet-fields .facet-row[data-field="node"][data-value="scheduler-0"] .facet-value');
  await settled();
  assert.deepEqual(new URL(page.url()).searchParams.getAll('filter'), ['node:node-b', 'node:scheduler-0']);
  assert.match(await page.textContent('#count'), new RegExp(`(^| of )${(nodes['node-b'] + nodes['scheduler-0']).toLocaleString('en-US')} hits`));
  assert.deepEqual(await facetCounts('node'), nodes);
  await page.click('#active-filters .filter-chip');
  await settled();
  await page.click('#active-filters .filter-chip');
  await settled();
  assert.equal(urlParam('filter'), null);
});

test('the histogram draws bars by level, and a drag zooms the range', async () => {
  const start = '2026-11-27T13:50:00Z';
  const end = '2026-11-27T14:15:00Z';
  await page.goto(`${baseUrl}/?q=*&start=${start}&end=${end}`);
  await page.waitForSelector('#histogram[data-total] .u-over');
  const total = Number(await page.getAttribute('#histogram', 'data-total'));
  assert.ok(total > 0, 'the histogram counted nothing');
  await settled();
  const box = await page.locator('#histogram .u-over').boundingBox();
  await page.mouse.move(box.x + box.width * 0.3, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.45, box.y + box.height / 2, { steps: 5 });
  await page.mouse.move(box.x + box.width * 0.6, box.y + box.height / 2, { steps: 5 });
  await page.mouse.up();
  await page.waitForFunction((before) => new URL(location.href).searchParams.get('start') !== before, start);
  const zoomed = [Date.parse(urlParam('start')), Date.parse(urlParam('end'))];
  assert.ok(Date.parse(start) < zoomed[0] && zoomed[0] < zoomed[1] && zoomed[1] < Date.parse(end),
    `zoomed to ${urlParam('start')} … ${urlParam('end')}`);
  await settled();
  await page.waitForSelector('#histogram[data-total] .u-over');
  assert.equal(await page.inputValue('#range'), 'custom');
  assert.equal(await page.inputValue('#start'), urlParam('start'));
  await screenshot(page, 'search-histogram-zoom');
});

test('a hit opens its context inline and Esc closes it', async () => {
  await page.goto(`${baseUrl}/?q=${encodeURIComponent('"Compute Failed"')}`);
  await page.waitForSelector('#results .hit');
  const hit = page.locator('#results .hit').first();
  const [stream, seq] = [await hit.getAttribute('data-stream'), await hit.getAttribute('data-seq')];
  await hit.locator('.message').click();
  await page.waitForSelector('#results .hit.focused .context-line.is-hit');
  assert.equal(urlParam('focus'), `${stream}-${seq}`);
  const lines = page.locator('#results .hit.focused .context-line');
  assert.equal(await lines.count(), 21, 'ten records before and ten after');
  assert.match(await page.locator('.context-line.is-hit .context-message').innerText(), /^Compute Failed/);
  await screenshot(page, 'search-context');

  await page.keyboard.press('Escape');
  await page.waitForFunction(() => !document.querySelector('#results .context'));
  assert.equal(urlParam('focus'), null);

  // "Around this time": five minutes either side of the hit, the hit still focused.
  await hit.locator('.message').click();
  await page.waitForSelector('#results .hit.focused .context-line.is-hit');
  const ts = Date.parse(await page.getAttribute('#results .hit.focused > .ts', 'datetime'));
  await page.click('#results .hit.focused .context-around');
  await settled();
  const [aroundStart, aroundEnd] = [Date.parse(urlParam('start')), Date.parse(urlParam('end'))];
  const fiveMinutes = 5 * 60_000;
  assert.ok(ts - fiveMinutes - 1000 < aroundStart && aroundStart <= ts - fiveMinutes, urlParam('start'));
  assert.ok(ts + fiveMinutes <= aroundEnd && aroundEnd < ts + fiveMinutes + 1000, urlParam('end'));
  await page.waitForSelector(`#results .hit.focused[data-stream="${stream}"][data-seq="${seq}"] .context-line.is-hit`);
  await page.keyboard.press('Escape');
});

test('a shared URL restores query, range, facets and the focused hit', async () => {
  await page.goto(`${baseUrl}/?q=worker&start=2026-11-27T13:50:00Z&end=2026-11-27T14:15:00Z`);
  await settled();
  await page.click('#facet-fields .facet-row[data-field="node"][data-value="node-b"] .facet-value');
  await settled();
  const third = page.locator('#results .hit').nth(2);
  const key = `${await third.getAttribute('data-stream')}-${await third.getAttribute('data-seq')}`;
  await third.locator('.message').click();
  await page.waitForSelector('#results .hit.focused .context-line.is-hit');
  const shared = page.url();
  assert.equal(new URL(shared).searchParams.get('focus'), key);

  const other = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await watchPage(other, pageErrors);
  try {
    await other.goto(shared);
    await other.waitForSelector('#results .hit.focused .context-line.is-hit');
    assert.equal(await other.inputValue('#q'), 'worker');
    assert.equal(await other.inputValue('#range'), 'custom');
    assert.equal(await other.inputValue('#start'), '2026-11-27T13:50:00Z');
    assert.equal(await other.inputValue('#end'), '2026-11-27T14:15:00Z');
    await other.waitForSelector('#facet-fields .facet-row[data-field="node"][data-value="node-b"].is-included');
    assert.deepEqual([...new Set(await drawn('node', other))], ['node-b']);
    const focused = other.locator('#results .hit.focused');
    assert.equal(`${await focused.getAttribute('data-stream')}-${await focused.getAttribute('data-seq')}`, key);
    assert.ok(await focused.isVisible(), 'the focused hit is scrolled into view');
    await screenshot(other, 'search-shared-url');
  } finally {
    await other.close();
  }
});

test('narrow windows and the dark theme keep the view usable', async () => {
  const narrow = await browser.newPage({ viewport: { width: 400, height: 800 }, colorScheme: 'dark' });
  await watchPage(narrow, pageErrors);
  try {
    await narrow.goto(`${baseUrl}/?q=${encodeURIComponent('level:(ERROR OR WARNING)')}`);
    await narrow.waitForSelector('#results .hit');
    await settled(narrow);
    const overflow = await narrow.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page is ${overflow}px wider than the window`);
    assert.equal(await narrow.locator('#facets').getAttribute('open'), null, 'facets start folded');
    await narrow.waitForSelector('#histogram[data-total] .u-over');
    await screenshot(narrow, 'search-narrow-dark');
  } finally {
    await narrow.close();
  }
});

test('a record the agent cut at its size limit is marked truncated', async () => {
  assert.ok(tailFile, 'AFTERGLOW_TAIL_FILE must name a log file an agent tails');
  // A real 1.2 MB line through node-b's agent, which cuts it at its 1 MiB limit.
  const token = `hugeline${Date.now()}`;
  appendFileSync(tailFile, logLine(`${token} ${'x'.repeat(1_200_000)}`));
  await page.goto(`${baseUrl}/?q=${token}`);
  await settled();
  for (let attempt = 0; attempt < 40 && await loaded() === 0; attempt += 1) {
    await page.waitForTimeout(250);
    await search(token);
  }
  assert.equal(await loaded(), 1, 'the cut record arrived');
  const mark = await page.$eval('#results .hit .truncated', (node) => [node.textContent, node.title]);
  assert.equal(mark[0], 'truncated');
  assert.match(mark[1], /size limit/);
  await screenshot(page, 'search-truncated');
  await search('*');
  assert.equal(await page.locator('#results .hit .truncated').count(), 0, 'whole records carry no mark');
});

test('a time the agent inferred shows with ~ and says why', async () => {
  // The hit format: `ts_inferred: true` on a record whose line had no timestamp.
  await page.route('**/api/v1/logs/search?*', async (route) => {
    const response = await route.fetch();
    const body = await response.json();
    if (body.hits?.length > 1) body.hits[0].ts_inferred = true;
    await route.fulfill({ response, json: body });
  });
  try {
    await page.goto(`${baseUrl}/?q=*`);
    await page.waitForSelector('#results .hit');
    await settled();
    const times = await page.$$eval('#results .hit > .ts', (cells) => cells.slice(0, 2)
      .map((cell) => [cell.textContent, cell.title, cell.classList.contains('ts-inferred')]));
    assert.match(times[0][0], /^~\d/);
    assert.match(times[0][1], /no timestamp/);
    assert.equal(times[0][2], true);
    assert.match(times[1][0], /^\d/, 'an exact time has no ~');
    await screenshot(page, 'search-ts-inferred');
  } finally {
    await page.unroute('**/api/v1/logs/search?*');
  }
});

test('a live tail that loses its stream reconnects with Last-Event-ID', async () => {
  const token = `resumed${Date.now()}`;
  const asked = [];
  let reconnected;
  const second = new Promise((resolve) => { reconnected = resolve; });
  await page.route('**/api/v1/logs/tail?*', async (route) => {
    asked.push(route.request().headers()['last-event-id'] ?? null);
    if (asked.length > 1) {
      reconnected();
      await route.continue();
      return;
    }
    // The first stream sends one record with its position, then ends (a lost connection).
    const hit = { ts: new Date().toISOString(), cluster: 'demo', node: 'node-b', role: 'worker',
      source: '/logs/node-b.log', level: 'INFO', logger: 'distributed.worker',
      message: `Live record ${token}`, stream: '00000000000000ff', seq: 1 };
    await route.fulfill({ status: 200, headers: { 'Content-Type': 'text/event-stream' },
      body: `retry: 50\nid: position-7\ndata: ${JSON.stringify(hit)}\n\n` });
  });
  try {
    await page.goto(`${baseUrl}/?q=*&order=desc`);
    await settled();
    await page.click('#live');
    await page.waitForFunction((text) => [...document.querySelectorAll('#results .hit .message')]
      .some((message) => message.textContent.includes(text)), token);
    await second;
    assert.deepEqual(asked.slice(0, 2), [null, 'position-7'], 'the reconnect names the last event');
    await page.click('#live');
    await page.waitForSelector('#live-status', { state: 'hidden' });
  } finally {
    await page.unroute('**/api/v1/logs/tail?*');
  }
});

test('live tail shows a line appended to a tailed file within 2 s', async () => {
  assert.ok(tailFile, 'AFTERGLOW_TAIL_FILE must name a log file an agent tails');
  await page.goto(`${baseUrl}/?q=*&order=desc`);
  await settled();
  await page.click('#live');
  await page.waitForSelector('#live-status[data-state="open"]');
  const token = `livetail${Date.now()}`;
  const appended = Date.now();
  appendFileSync(tailFile, logLine(`Live tail test line ${token}`));
  const row = await page.waitForFunction((text) => [...document.querySelectorAll('#results .hit')]
    .find((hit) => hit.querySelector('.message')?.textContent.includes(text)), token, { timeout: 2000 });
  const elapsed = Date.now() - appended;
  assert.ok(elapsed < 2000, `the line took ${elapsed} ms`);
  assert.equal(await row.evaluate((hit) => [hit.dataset.node, hit.classList.contains('fresh')].join()), 'node-b,true');
  assert.match(await page.textContent('#live-status'), /1 new/);
  await screenshot(page, 'search-live-tail');
  await page.click('#live');
  await page.waitForSelector('#live-status', { state: 'hidden' });
  assert.equal(await page.getAttribute('#live', 'aria-pressed'), 'false');
});

test('10 000 loaded hits keep the DOM small while scrolling, context included', async (t) => {
  assert.ok(tailFile, 'AFTERGLOW_TAIL_FILE must name a log file an agent tails');
  // Real records: 10 000 lines through node-b's agent, some with a traceback.
  const token = `bulk${Date.now()}`;
  const first = Date.parse('2026-11-27T15:00:00Z');
  let text = '';
  for (let i = 0; i < 10_000; i++) {
    text += logLine(`${token} row ${i}`, new Date(first + i * 10));
    if (i % 25 === 0) text += 'Traceback (most recent call last):\n  File "x.py", line 1\nValueError: row\n';
  }
  appendFileSync(tailFile, text);
  const deadline = Date.now() + 60_000;
  for (;;) {
    const body = await (await fetch(`${baseUrl}/api/v1/logs/search?q=${token}&limit=1&count=true`)).json();
    if (body.count === 10_000) break;
    assert.ok(Date.now() < deadline, `only ${body.count} of the 10 000 records arrived in a minute`);
    await new Promise((resolve) => { setTimeout(resolve, 200); });
  }

  await page.goto(`${baseUrl}/?q=${token}`);
  await settled();
  while (await page.isVisible('#load-more')) {
    await page.click('#load-more');
    await settled();
  }
  assert.equal(await loaded(), 10_000);
  assert.equal(await page.textContent('#count'), '10,000 hits');

  const drawnRows = () => page.$$eval('#results .hit', (hits) => hits.map((hit) => Number(hit.getAttribute('aria-posinset'))));
  const frame = () => page.evaluate(() => new Promise((resolve) => { requestAnimationFrame(() => requestAnimationFrame(resolve)); }));
  let most = 0;
  const started = Date.now();
  for (const fraction of [0.1, 0.25, 0.5, 0.75, 0.999]) {
    await page.evaluate((f) => window.scrollTo(0, f * document.documentElement.scrollHeight), fraction);
    await frame();
    const rows = await drawnRows();
    most = Math.max(most, rows.length);
    assert.ok(rows.length < 300, `${rows.length} rows in the DOM`);
    // The rows drawn are the ones on screen: one of them sits in the middle of the window.
    const middle = await page.evaluate(() => document.elementFromPoint(window.innerWidth * 0.7, window.innerHeight / 2)?.closest('.hit')?.getAttribute('aria-posinset'));
    assert.ok(middle, `no row in the middle of the window at ${fraction}`);
  }
  t.diagnostic(`at most ${most} rows in the DOM; 5 jumps in ${Date.now() - started} ms`);
  assert.ok((await drawnRows()).includes(10_000), 'the last row is drawn at the bottom');

  // A context opened in the middle grows its row; the row stays where it was on screen.
  await page.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight / 2));
  await frame();
  const middle = await page.evaluate(() => document.elementFromPoint(window.innerWidth * 0.7, window.innerHeight / 2)
    ?.closest('.hit')?.getAttribute('aria-posinset'));
  const hit = page.locator(`#results .hit[aria-posinset="${middle}"]`);
  const top = (await hit.boundingBox()).y;
  await hit.locator('.message').click();
  await page.waitForSelector('#results .hit.focused .context-line.is-hit');
  await frame();
  assert.equal(await page.getAttribute('#results .hit.focused', 'aria-posinset'), middle);
  assert.ok(Math.abs((await hit.boundingBox()).y - top) <= 1, 'the row moved');
  await screenshot(page, 'search-10k-rows');
  await page.keyboard.press('Escape');

  // So does a traceback expanded on screen (every 25th record has one).
  const withTraceback = await page.evaluate(() => {
    const row = document.querySelector('#results .hit .toggle').closest('.hit');
    row.scrollIntoView({ block: 'center' });
    return row.getAttribute('aria-posinset');
  });
  await frame();
  const row = page.locator(`#results .hit[aria-posinset="${withTraceback}"]`);
  const rowTop = (await row.boundingBox()).y;
  await row.locator('button.toggle').click();
  await page.waitForSelector('#results .hit.expanded .msg-rest');
  await frame();
  assert.ok(Math.abs((await page.locator('#results .hit.expanded').boundingBox()).y - rowTop) <= 1, 'the expanded row moved');
  for (let i = 0; i < 20; i++) {
    await page.mouse.wheel(0, -400);
    await frame();
  }
  assert.ok((await drawnRows()).length < 300);
});
