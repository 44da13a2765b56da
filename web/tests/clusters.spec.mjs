// clusters.spec.mjs — browser test of the Clusters view and a cluster's page against a real
// collector holding the fixture cluster `ui` (scheduler-0, node-a, node-b, whose worker
// `worker-1` an agent also discovers through the scheduler's dashboard: its series have `node`
// 127.0.0.1) and the cluster `scrape-only`, whose one agent tails no file and only scrapes a
// page. Started by the Rust end-to-end test `ui::clusters_view_in_chromium`, which passes
// AFTERGLOW_URL.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { baseUrl, openBrowser, screenshot } from './browser.mjs';

let browser;
let page;
let pageErrors;

before(async () => {
  ({ browser, page, pageErrors } = await openBrowser());
});

after(async () => {
  await browser?.close();
});

function assertNoPageErrors() {
  assert.deepEqual(pageErrors.map(String), [], 'uncaught errors in the page');
}

/** The collector's own answer for cluster `ui`, to compare the page with. */
async function apiCluster() {
  const response = await fetch(`${baseUrl}/api/v1/clusters/ui`);
  assert.equal(response.status, 200);
  return response.json();
}

const rowNames = () => page.$$eval('.cluster-table tbody tr', (rows) => rows.map((row) => row.dataset.cluster));
const cellText = (name, column) => page.textContent(`tr[data-cluster="${name}"] td[data-column="${column}"]`);

/** `2026-11-27 13:58:39.501` (UTC, as the pages show times) in ms. */
// A time as the UI shows it, `2026-11-27 13:58:19.304` (UTC), with `~` before it when inferred.
const shownTimeMs = (text) => Date.parse(`${text.trim().replace(/^~/, '').replace(' ', 'T')}Z`);

async function openClusterPage() {
  await page.goto(`${baseUrl}/?view=clusters`);
  await page.click('tr[data-cluster="ui"] a.cluster-link');
  await page.waitForSelector('.events li');
}

test('the list shows cluster ui with its nodes by role, errors and state', async () => {
  const cluster = await apiCluster();
  await page.goto(`${baseUrl}/?view=clusters`);
  await page.waitForSelector('tr[data-cluster="ui"]');
  // Three nodes sent logs; the discovered worker-1's series add its host, 127.0.0.1.
  assert.equal((await cellText('ui', 'nodes')).trim(), '4 (1 scheduler, 3 workers)');
  const errors = (cluster.records_by_level.ERROR ?? 0) + (cluster.records_by_level.CRITICAL ?? 0);
  assert.ok(errors > 0, 'the fixture logs have ERROR records');
  assert.equal((await cellText('ui', 'errors')).trim(), String(errors));
  assert.equal((await cellText('ui', 'state')).trim(), cluster.alive ? 'alive' : 'gone');
  assert.equal((await cellText('ui', 'first')).trim(), '2026-11-27 13:56:41');
  assert.equal(await page.locator('th button.sort', { hasText: 'Tenant' }).count(), 0, 'one tenant: no tenant column');
  await screenshot(page, 'clusters-list');

  // The error count leads to the cluster's ERROR and CRITICAL records.
  await page.click('tr[data-cluster="ui"] td[data-column="errors"] a');
  await page.waitForSelector('#results .hit');
  const levels = await page.$$eval('#results .hit', (hits) => hits.map((hit) => hit.dataset.level));
  assert.equal(levels.length, errors);
  assert.ok(levels.every((level) => level === 'ERROR' || level === 'CRITICAL'), levels.join());
  assertNoPageErrors();
});

test('clicking a column header sorts by it, from the keyboard too, and the URL keeps the order', async () => {
  // The fixture has one cluster: add two more to the collector's real answer, with times
  // relative to it, since its lifetime grows with the wall clock while its agents run
  // (fixed dates made `ui` outlive `archive-2025` ten days after they were written).
  await page.route('**/api/v1/clusters', async (route) => {
    const response = await route.fetch();
    const body = await response.json();
    body.clusters = body.clusters.filter((cluster) => cluster.name === 'ui');
    const ui = body.clusters[0];
    const [uiFirst, uiLast] = [Date.parse(ui.first_seen), Date.parse(ui.last_seen)];
    const day = 24 * 3600 * 1000;
    const stamp = (ms) => new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
    // Last seen a month before `ui` began, and alive a day longer than `ui` has been.
    const archiveLast = uiFirst - 30 * day;
    body.clusters.push(
      {
        name: 'archive-2025', tenant: 'default', first_seen: stamp(archiveLast - (uiLast - uiFirst) - day), last_seen: stamp(archiveLast),
        alive: false, nodes: { scheduler: ['s-0'], worker: ['w-1', 'w-2', 'w-3', 'w-4'] }, records_by_level: { INFO: 900, ERROR: 10, CRITICAL: 2 },
      },
      {
        name: 'nightly-etl', tenant: 'data-team', first_seen: stamp(uiLast - day - 20 * 60 * 1000), last_seen: stamp(uiLast - day),
        alive: false, nodes: { scheduler: ['etl-s'], worker: ['etl-w'] }, records_by_level: { INFO: 40 },
      },
    );
    await route.fulfill({ response, json: body });
  });
  try {
    await page.goto(`${baseUrl}/?view=clusters`);
    await page.waitForSelector('tr[data-cluster="archive-2025"]');
    assert.deepEqual(await rowNames(), ['ui', 'nightly-etl', 'archive-2025'], 'newest last seen first');
    assert.equal((await cellText('nightly-etl', 'tenant')).trim(), 'data-team', 'two tenants: a tenant column');

    await page.click('th button.sort[data-key="errors"]');
    assert.deepEqual(await rowNames(), ['archive-2025', 'ui', 'nightly-etl'], 'most errors first');
    assert.equal(await page.getAttribute('th:has(button[data-key="errors"])', 'aria-sort'), 'descending');
    await page.click('th button.sort[data-key="errors"]');
    assert.deepEqual(await rowNames(), ['nightly-etl', 'ui', 'archive-2025'], 'fewest errors first');

    await page.focus('th button.sort[data-key="lifetime"]');
    await page.keyboard.press('Enter');
    assert.deepEqual(await rowNames(), ['archive-2025', 'ui', 'nightly-etl'], 'longest lifetime first');
    await page.keyboard.press('Space');
    assert.deepEqual(await rowNames(), ['nightly-etl', 'ui', 'archive-2025'], 'shortest lifetime first');

    await page.click('th button.sort[data-key="name"]');
    assert.deepEqual(await rowNames(), ['archive-2025', 'nightly-etl', 'ui'], 'by name');
    assert.match(page.url(), /sort=name&dir=asc/);
    await screenshot(page, 'clusters-sorted');

    await page.click('th button.sort[data-key="nodes"]');
    await page.reload();
    await page.waitForSelector('tr[data-cluster="archive-2025"]');
    assert.deepEqual(await rowNames(), ['archive-2025', 'ui', 'nightly-etl'], 'the URL restores the order (most nodes first)');
  } finally {
    await page.unroute('**/api/v1/clusters');
  }
  assertNoPageErrors();
});

test('no cluster yet, or an unknown one, is said plainly', async () => {
  await page.route('**/api/v1/clusters', (route) => route.fulfill({ json: { clusters: [] } }));
  try {
    await page.goto(`${baseUrl}/?view=clusters`);
    await page.waitForSelector('.empty-state:not([hidden])');
    assert.match(await page.textContent('.empty-state'), /afterglow-agent/);
    await screenshot(page, 'clusters-empty');
  } finally {
    await page.unroute('**/api/v1/clusters');
  }
  await page.goto(`${baseUrl}/?view=clusters&cluster=no-such-cluster`);
  await page.waitForSelector('.page-error:not([hidden])');
  assert.match(await page.textContent('.page-error'), /no cluster named "no-such-cluster"/);
  assertNoPageErrors();
});

test('the cluster page charts the Dask metrics with non-empty series', async () => {
  const cluster = await apiCluster();
  // Lines need a few samples: wait for five scrapes of the scheduler's page.
  await page.goto(baseUrl);
  await page.waitForFunction(async () => {
    const query = 'count_over_time(dask_scheduler_workers{cluster="ui", state="idle"}[5m])';
    const body = await (await fetch(`/api/v1/query?query=${encodeURIComponent(query)}`)).json();
    return Number(body.data.result[0]?.value[1] ?? 0) >= 5;
  }, null, { polling: 250 });
  await openClusterPage();
  assert.match(page.url(), /view=clusters&cluster=ui/);
  assert.equal(await page.textContent('.cluster-name'), 'ui');
  assert.deepEqual(
    await page.$$eval('.node-table tbody tr', (rows) => rows.map((row) => row.dataset.node)),
    cluster.node_detail.map((node) => node.node),
  );

  const chartStates = async () => {
    await page.waitForFunction(() => [...document.querySelectorAll('.chart-panel')].every((figure) => figure.dataset.state));
    return page.$$eval('.chart-panel', (figures) => figures.map((figure) => [figure.dataset.metric, figure.dataset.state, Number(figure.dataset.samples ?? 0)]));
  };
  // Over the whole lifetime the samples scraped in the last seconds are still drawn.
  for (const [metric, state, samples] of await chartStates()) {
    assert.equal(state, 'drawn', `${metric} over the lifetime`);
    assert.ok(samples > 0, `${metric} has samples`);
  }
  await screenshot(page, 'clusters-page');

  await page.click('.range-buttons button:has-text("Last 15 min")');
  await page.waitForFunction(() => !document.querySelector('.chart-panel:not([data-state])'));
  const states = await chartStates();
  for (const metric of ['dask_scheduler_workers', 'dask_scheduler_tasks']) {
    const [, state, samples] = states.find(([name]) => name === metric);
    assert.equal(state, 'drawn', metric);
    assert.ok(samples > 1, `${metric} has ${samples} samples over 15 minutes`);
  }
  assert.ok(await page.locator('.chart-panel canvas').count() >= 5, 'a canvas per chart');
  assert.match(page.url(), /range=15m/);

  // The samples are seconds old: dragging across the worker count on the timeline zooms to them.
  const area = await page.locator('.timeline .worker-area').boundingBox();
  await page.mouse.move(area.x - 10, area.y + 5);
  await page.mouse.down();
  await page.mouse.move(area.x + area.width + 10, area.y + 5, { steps: 5 });
  await page.mouse.up();
  await page.waitForFunction(() => /start=.*end=/.test(location.search));
  for (const [metric, state, samples] of await chartStates()) {
    assert.equal(state, 'drawn', `${metric} zoomed in on the samples`);
    assert.ok(samples > 1, `${metric} has ${samples} samples`);
  }
  await page.locator('.charts').scrollIntoViewIfNeeded();
  await screenshot(page, 'clusters-page-charts');
  assertNoPageErrors();
});

test('the timeline shows worker events from the logs and opens the search view around them', async () => {
  await openClusterPage();
  const kinds = await page.$$eval('.events li', (items) => items.map((item) => item.dataset.kind));
  for (const kind of ['joined', 'left', 'restarted']) assert.ok(kinds.includes(kind), `a worker ${kind}: ${kinds}`);
  assert.equal(await page.locator('.timeline svg a.event').count(), kinds.length, 'a marker per event');

  // Dragging across the strip zooms in on the events (all within minutes of a long lifetime):
  // from just after the last one back to the start (the drag may leave the strip).
  const area = await page.locator('.timeline .hit-area').boundingBox();
  const lastMarker = await page.locator('.timeline svg a.event').last().boundingBox();
  const y = area.y + 30;
  await page.mouse.move(lastMarker.x + lastMarker.width + 4, y);
  await page.mouse.down();
  await page.mouse.move(area.x - 20, y, { steps: 5 });
  await page.mouse.up();
  await page.waitForFunction((count) => /start=.*end=/.test(location.search)
    && !document.querySelector('.range-buttons [aria-pressed="true"]')
    && document.querySelectorAll('.timeline svg a.event').length === count, kinds.length);
  await screenshot(page, 'clusters-timeline-zoomed');

  // An event of the list leads to the cluster's records a minute either side of it.
  const event = page.locator('.events li[data-kind="left"]').first();
  const eventMs = shownTimeMs(await event.locator('.ts').textContent());
  await event.locator('a').click();
  await page.waitForSelector('#results .hit');
  assert.doesNotMatch(page.url(), /view=/, 'the search view');
  assert.equal(await page.inputValue('#q'), 'cluster:ui');
  const times = await page.$$eval('#results .hit .ts', (cells) => cells.map((cell) => cell.textContent));
  assert.ok(times.length > 1, `hits around the event: ${times.length}`);
  for (const text of times) {
    const ms = shownTimeMs(text);
    assert.ok(Math.abs(ms - eventMs) <= 60_000, `${text} is within a minute of the event`);
  }
  assert.ok(times.some((text) => shownTimeMs(text) === eventMs), 'the event itself is among the hits');
  await page.locator('#results').scrollIntoViewIfNeeded();
  await screenshot(page, 'clusters-event-search');

  // Back on the (still zoomed) page, a click on the strip searches around that moment.
  await page.goBack();
  await page.waitForSelector('.timeline svg a.event');
  const marker = await page.locator('.timeline svg a.event.kind-left').first().boundingBox();
  const strip = await page.locator('.timeline .hit-area').boundingBox();
  await page.mouse.click(marker.x + marker.width / 2, strip.y + 20);
  await page.waitForSelector('#results .hit');
  const params = new URL(page.url()).searchParams;
  const [start, end] = [Date.parse(params.get('start')), Date.parse(params.get('end'))];
  assert.ok(start < eventMs && eventMs < end, `${params.get('start')} – ${params.get('end')} holds the event`);
  assertNoPageErrors();
});

test('a cluster that sends metrics only is listed and has its page', async () => {
  await page.goto(`${baseUrl}/?view=clusters`);
  await page.waitForSelector('tr[data-cluster="scrape-only"]');
  assert.equal((await cellText('scrape-only', 'nodes')).trim(), '1 (1 scheduler)');
  assert.equal((await cellText('scrape-only', 'state')).trim(), 'alive', 'scraped every second');
  assert.equal((await cellText('scrape-only', 'errors')).trim(), '0');
  const lastSeenMs = shownTimeMs(await cellText('scrape-only', 'last'));
  assert.ok(Math.abs(Date.now() - lastSeenMs) < 5 * 60_000, 'last seen: its newest sample, seconds ago');
  await page.click('tr[data-cluster="scrape-only"] a.cluster-link');
  await page.waitForSelector('.node-table tbody tr[data-node="metrics-host"]');
  const cells = await page.$$eval('.node-table tbody tr[data-node="metrics-host"] td', (tds) => tds.map((td) => td.textContent));
  assert.deepEqual([cells[0], cells[1], cells[5], cells[6]], ['metrics-host', 'scheduler', 'metrics', '0']);
  assert.equal(await page.locator('.node-table tbody tr[data-node="metrics-host"] a').count(), 0, 'no records to link to');
  await page.waitForFunction(() => document.querySelector('.chart-panel[data-metric="dask_scheduler_workers"]')?.dataset.state);
  assert.equal(await page.getAttribute('.chart-panel[data-metric="dask_scheduler_workers"]', 'data-state'), 'drawn');
  await screenshot(page, 'clusters-metrics-only');
  assertNoPageErrors();
});

test('restarted rows name the worker, and its logs and metrics are a click away', async () => {
  await openClusterPage();
  const restarts = await page.$$eval('.events li[data-kind="restarted"]', (items) => items.map((item) => ({
    who: item.querySelector('.who').textContent,
    where: item.querySelector('.where').textContent,
  })));
  // Each worker's log has three "Restarting worker" lines of its nanny, which name no worker.
  assert.equal(restarts.length, 6, JSON.stringify(restarts));
  for (const { who, where } of restarts) {
    const node = /on (node-[ab])$/.exec(where)?.[1];
    assert.equal(who, { 'node-a': 'worker-1', 'node-b': 'worker-2' }[node], `${who} ${where}`);
  }

  await page.waitForSelector('.worker-table tr[data-worker="worker-1"]');
  const row = 'tr[data-worker="worker-1"]';
  const addresses = (await page.textContent(`${row} td:nth-child(2)`)).split(', ');
  for (const address of ['tcp://127.0.0.1:42737', 'tcp://127.0.0.1:38421', 'tcp://127.0.0.1:41469', 'tcp://127.0.0.1:36401']) {
    assert.ok(addresses.includes(address), `${address} in ${addresses}`);
  }
  assert.equal(await page.textContent(`${row} a.worker-logs`), 'node-a: worker-1.log');
  assert.match(await page.textContent(`${row} a.worker-metrics`), /on 127\.0\.0\.1/, 'its series carry its host as node');
  assert.equal(await page.locator('tr[data-worker="worker-2"] a.worker-metrics').count(), 0, 'worker-2 is not discovered: no series');
  await page.locator('.workers-panel').scrollIntoViewIfNeeded();
  await screenshot(page, 'clusters-workers');

  // Its logs: its own file on node-a, and the lines elsewhere that name it or its addresses.
  await page.click(`${row} a.worker-logs`);
  await page.waitForSelector('#results .hit');
  assert.match(await page.inputValue('#q'), /worker-1/);
  const hits = await page.$$eval('#results .hit', (rows) => rows.map((hit) => ({ node: hit.dataset.node, text: hit.querySelector('.msg-cell').textContent })));
  assert.ok(hits.some((hit) => hit.node === 'node-a' && /Worker name:\s+worker-1/.test(hit.text)), 'its start-up line');
  const namesIt = (text) => text.includes('worker-1') || addresses.some((address) => text.includes(address));
  assert.ok(hits.some((hit) => hit.node === 'node-a' && !namesIt(hit.text)), 'lines of its own file that name neither it nor its address');
  const elsewhere = hits.filter((hit) => hit.node !== 'node-a');
  assert.ok(elsewhere.some((hit) => hit.node === 'scheduler-0'), 'the scheduler registering it');
  for (const hit of elsewhere) assert.ok(namesIt(hit.text), hit.text);

  // Its metrics: the series of its `worker` label.
  await page.goBack();
  await page.waitForSelector(`${row} a.worker-metrics`);
  await page.click(`${row} a.worker-metrics`);
  await page.waitForSelector('.metrics-chart .u-legend .u-series');
  assert.match(page.url(), /view=metrics/);
  assert.equal(await page.inputValue('#metrics-query'), 'dask_worker_memory_bytes{cluster="ui", worker="worker-1"}');
  const labels = await page.$$eval('.metrics-chart .u-legend .u-series', (rows) => rows.slice(1).map((one) => one.querySelector('.u-label').textContent));
  assert.ok(labels.length > 0, 'series drawn');
  for (const label of labels) assert.match(label, /worker="worker-1"/);
  assertNoPageErrors();
});

test('the view fits a narrow window', async () => {
  await page.setViewportSize({ width: 400, height: 800 });
  try {
    await page.goto(`${baseUrl}/?view=clusters`);
    await page.waitForSelector('tr[data-cluster="ui"]');
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the list is ${overflow}px wider than the window`);
    await screenshot(page, 'clusters-narrow-list');
    await page.click('tr[data-cluster="ui"] a.cluster-link');
    await page.waitForSelector('.timeline svg');
    await screenshot(page, 'clusters-narrow-page');
  } finally {
    await page.setViewportSize({ width: 1280, height: 800 });
  }
  assertNoPageErrors();
});
