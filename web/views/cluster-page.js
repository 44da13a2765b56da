// views/cluster-page.js — one cluster's page (`?view=clusters&cluster=<name>`): its summary and
// nodes from /api/v1/clusters/<name>, a timeline of workers joining, leaving and restarting
// (scheduler and nanny log lines, plus the scheduler's worker count), charts of key Dask
// metrics, all over one time range, and its workers by name with links to their logs and
// metrics; every moment of the timeline links into the search view.
// Also the small cluster helpers the list (clusters.js) shares.
//
// The one rule: a worker is joined across logs and metrics by its name and its address, never
// by node. Its log says "Worker name:" and "Start worker at:", its discovered series carry
// `worker` and `worker_addr`; but log records carry the agent's node name while a discovered
// worker's series carry the worker's host as `node`.

import { viewUrl } from '../app.js';
import { getJson } from '../lib/api.js';
import { lineChart, matrixToFrame } from '../lib/chart.js';
import { el, formatDate, str } from '../lib/dom.js';

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;

/** The time ranges a user can pick; each ends where the cluster ends (now while it is alive). */
const RANGES = [
  { key: '', label: 'Lifetime', spanMs: null },
  { key: '1h', label: 'Last hour', spanMs: HOUR_MS },
  { key: '15m', label: 'Last 15 min', spanMs: 15 * MINUTE_MS },
];

/** Points per chart series: enough for a wide screen, few enough to stay fast. */
const POINTS_PER_RANGE = 500;

/** Log lines that mark a worker's life, in Dask's own words (scheduler and nanny loggers). */
const EVENT_KINDS = [
  { kind: 'joined', phrase: 'Register worker' },
  { kind: 'left', phrase: 'Remove worker' },
  { kind: 'restarted', phrase: 'Restarting worker' },
];
const MAX_EVENTS = 2000;

/** How a Dask worker names itself in its log at each start (logger `distributed.worker`). */
const WORKER_NAME_LINE = /Worker name:\s+(\S+)/;
const WORKER_ADDRESS_LINE = /Start worker at:\s+(\S+)/;
/** Start-up lines read to learn the workers: a few per worker start. */
const MAX_WORKER_LINES = 2000;
/** The metric a worker's metrics link charts first (the user edits the query from there). */
const WORKER_METRIC = 'dask_worker_memory_bytes';

/** The Dask metrics charted, each summed over the cluster's nodes into a few series. */
const CHARTS = [
  {
    title: 'Workers by state', metric: 'dask_scheduler_workers', seriesLabel: 'state', unit: 'workers',
    query: (match) => `sum by (state) (dask_scheduler_workers{${match}})`,
  },
  {
    title: 'Tasks by state', metric: 'dask_scheduler_tasks', seriesLabel: 'state', unit: 'tasks',
    query: (match) => `sum by (state) (dask_scheduler_tasks{${match}})`,
  },
  {
    title: 'Worker memory by type', metric: 'dask_worker_memory_bytes', seriesLabel: 'type', unit: 'MiB', scale: 2 ** -20,
    query: (match) => `sum by (type) (dask_worker_memory_bytes{${match}})`,
  },
  {
    title: 'Spilled to disk, by worker', metric: 'dask_worker_memory_bytes{type="spilled"}', seriesLabel: 'node', unit: 'MiB', scale: 2 ** -20,
    query: (match) => `sum by (node) (dask_worker_memory_bytes{${match}, type="spilled"})`,
  },
  {
    title: 'Event-loop latency (longest tick)', metric: 'dask_scheduler_tick_duration_maximum_seconds or dask_worker_tick_duration_maximum_seconds',
    seriesLabel: 'node', unit: 'ms', scale: 1000,
    query: (match) => `max by (node) ({__name__=~"dask_(scheduler|worker)_tick_duration_maximum_seconds", ${match}})`,
  },
];

/** ERROR plus CRITICAL records, from a `records_by_level` map. */
export function errorCount(recordsByLevel) {
  return (recordsByLevel?.ERROR ?? 0) + (recordsByLevel?.CRITICAL ?? 0);
}

/** `1 scheduler, 2 workers` from a role → node names map. */
export function rolesText(nodesByRole) {
  const plural = { nanny: 'nannies', other: 'other' };
  return Object.entries(nodesByRole)
    .map(([role, nodes]) => `${nodes.length} ${nodes.length === 1 ? role : plural[role] ?? `${role}s`}`)
    .join(', ');
}

/** A duration as a person says it: `45 s`, `12 min`, `10 h 04 min`, `3 d 7 h`. */
export function formatDuration(ms) {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${String(minutes % 60).padStart(2, '0')} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

/** A time in ms as UTC `YYYY-MM-DD HH:MM:SS`. */
function formatSeconds(ms) {
  return formatDate(new Date(ms)).slice(0, 19);
}

/** The `alive` / `gone` badge. */
export function stateBadge(alive) {
  return el('span', `badge ${alive ? 'badge-alive' : 'badge-gone'}`, alive ? 'alive' : 'gone');
}

/** `field:value` in the search syntax, quoted unless the value is a plain word. */
export function fieldQuery(field, value) {
  const plain = /^[\w.][\w.-]*$/.test(value);
  return `${field}:${plain ? value : `"${value.replace(/["\\]/g, '\\$&')}"`}`;
}

/** A `<time>` cell text for an RFC 3339 timestamp, to the second. */
export function timeText(rfc3339) {
  const node = el('time', 'ts', formatSeconds(Date.parse(rfc3339)));
  node.dateTime = rfc3339;
  return node;
}

/** A link to another view that navigates in place (a modified click opens a new tab as usual). */
export function viewLink(nav, view, params, text, className) {
  const link = el('a', className, text);
  link.href = viewUrl(view, params);
  link.addEventListener('click', (e) => {
    if (e.ctrlKey || e.metaKey || e.shiftKey || e.altKey || e.button !== 0) return;
    e.preventDefault();
    nav.go(view, params);
  });
  return link;
}

/** Search-view parameters for `query` from `startMs` to `endMs` (up to now if null). */
function searchParams(query, startMs, endMs) {
  return {
    q: query,
    start: new Date(startMs).toISOString(),
    end: endMs === null ? undefined : new Date(endMs).toISOString(),
  };
}

/** Search-view parameters for `query` over the lifetime of `seen`, a cluster or node as the API gives it. */
function lifetimeSearch(query, seen) {
  return searchParams(query, Date.parse(seen.first_seen), seen.alive ? null : Date.parse(seen.last_seen) + 1000);
}

/** Search-view parameters for the ERROR and CRITICAL records of `query` over the lifetime of `seen`. */
export function errorSearch(query, seen) {
  return lifetimeSearch(`${query} AND level:(ERROR OR CRITICAL)`, seen);
}

const PAGE_MARKUP = `
<p class="crumbs"></p>
<div class="view-head"><h2 class="cluster-name"></h2><span class="state"></span><span class="status" aria-live="polite">Loading…</span></div>
<div class="error page-error" role="alert" hidden></div>
<dl class="facts" hidden></dl>
<div class="range-bar" role="group" aria-label="Time range of the timeline and charts" hidden>
  <span class="range-label">Time range</span>
  <span class="range-buttons"></span>
  <span class="range-text"></span>
</div>
<section class="panel timeline-panel" aria-labelledby="timeline-title" hidden>
  <h3 id="timeline-title">Timeline</h3>
  <p class="hint">Workers joining, leaving and restarting (from the scheduler's and nannies' logs) over the
    worker count (from the scheduler's metrics). Click any moment or event to search the cluster's logs around it; drag across the strip to zoom.</p>
  <div class="error timeline-error" role="alert" hidden></div>
  <div class="timeline"></div>
  <p class="timeline-readout" aria-live="polite"></p>
  <p class="events-summary"></p>
  <ol class="events" aria-label="Worker events"></ol>
</section>
<div class="charts" hidden></div>
<section class="panel workers-panel" aria-labelledby="workers-title" hidden>
  <h3 id="workers-title">Workers</h3>
  <p class="hint">Each worker by its name, joined across logs and metrics by name and address: its log says
    <code>Worker name:</code> and <code>Start worker at:</code>, its series carry <code>worker</code> and
    <code>worker_addr</code>. A node is no join key: log records carry the agent's node name, a discovered
    worker's series its host.</p>
  <div class="error workers-error" role="alert" hidden></div>
  <p class="workers-summary"></p>
  <div class="table-wrap">
    <table class="worker-table">
      <thead><tr><th scope="col">Worker</th><th scope="col">Addresses</th><th scope="col">Its log</th>
        <th scope="col">Metrics</th></tr></thead>
      <tbody></tbody>
    </table>
  </div>
</section>
<section class="panel nodes-panel" aria-labelledby="nodes-title" hidden>
  <h3 id="nodes-title">Nodes</h3>
  <div class="table-wrap">
    <table class="node-table">
      <thead><tr><th scope="col">Node</th><th scope="col">Role</th><th scope="col">State</th><th scope="col">First seen (UTC)</th>
        <th scope="col">Last seen (UTC)</th><th scope="col">Sent</th><th scope="col" class="num">Records</th><th scope="col" class="num">Errors</th></tr></thead>
      <tbody></tbody>
    </table>
  </div>
</section>`;

/**
 * Mounts the page of the cluster named by the URL parameters `params`: `cluster`, `tenant` (when
 * several tenants share the name), and the time range, `range` (a preset) or `start` and `end`.
 */
export function mountClusterPage(root, nav, params) {
  const name = params.get('cluster');
  const tenant = params.get('tenant') ?? undefined;
  const view = el('div', 'clusters-view cluster-page');
  view.innerHTML = PAGE_MARKUP;
  root.replaceChildren(view);
  const $ = (selector) => view.querySelector(selector);
  $('.crumbs').append(viewLink(nav, 'clusters', {}, '← All clusters'));
  $('.cluster-name').textContent = name;

  const pageController = new AbortController();
  let rangeController = null;
  let timelineResize = null;
  const clusterMatch = `cluster="${name.replace(/["\\]/g, '\\$&')}"`;
  const clusterQuery = fieldQuery('cluster', name);
  let detail = null;
  // Whether the cluster still logs or its metrics are still scraped: then its story ends now.
  let live = false;

  function showPageError(message) {
    $('.status').textContent = '';
    $('.page-error').textContent = message;
    $('.page-error').hidden = false;
  }

  function renderSummary() {
    $('.state').replaceChildren(stateBadge(detail.alive));
    const first = Date.parse(detail.first_seen);
    const last = Date.parse(detail.last_seen);
    const records = Object.values(detail.records_by_level).reduce((sum, n) => sum + n, 0);
    const errors = errorCount(detail.records_by_level);
    const facts = [
      ['Tenant', detail.tenant],
      ['First seen (UTC)', formatSeconds(first)],
      ['Last seen (UTC)', formatSeconds(last)],
      ['Lifetime', formatDuration(last - first)],
      ['Nodes', rolesText(detail.nodes)],
      ['Records', viewLink(nav, 'search', lifetimeSearch(clusterQuery, detail), String(records))],
      ['Errors', errors > 0 ? viewLink(nav, 'search', errorSearch(clusterQuery, detail), String(errors), 'errors') : '0'],
    ];
    $('.facts').replaceChildren(...facts.map(([term, value]) => {
      const pair = el('div');
      const dd = el('dd');
      dd.append(value);
      pair.append(el('dt', '', term), dd);
      return pair;
    }));
    $('.facts').hidden = false;
  }

  function renderNodes() {
    $('.node-table tbody').replaceChildren(...detail.node_detail.map((node) => {
      const row = el('tr');
      row.dataset.node = node.node;
      const nodeQuery = `${clusterQuery} AND ${fieldQuery('node', node.node)}`;
      const records = Object.values(node.records_by_level).reduce((sum, n) => sum + n, 0);
      const errors = errorCount(node.records_by_level);
      const sends = node.sends ?? ['logs'];
      const cells = [
        // A node that sent metrics only has no record to search.
        sends.includes('logs') ? viewLink(nav, 'search', lifetimeSearch(nodeQuery, node), node.node) : node.node,
        node.role,
        stateBadge(node.alive),
        timeText(node.first_seen),
        timeText(node.last_seen),
        sends.join(', '),
        String(records),
        errors > 0 ? viewLink(nav, 'search', errorSearch(nodeQuery, node), String(errors), 'errors') : '0',
      ];
      for (const [index, content] of cells.entries()) {
        const cell = el('td', index >= 6 ? 'num' : '');
        cell.append(content);
        row.append(cell);
      }
      return row;
    }));
    $('.nodes-panel').hidden = false;
  }

  function renderRangeButtons(selectedKey) {
    $('.range-buttons').replaceChildren(...RANGES.map(({ key, label }) => {
      const button = el('button', '', label);
      button.type = 'button';
      button.setAttribute('aria-pressed', String(key === selectedKey));
      button.addEventListener('click', () => showRange({ key }));
      return button;
    }));
    $('.range-bar').hidden = false;
  }

  /**
   * Loads and draws the timeline and the charts over `choice`, a preset `{ key }` or a span
   * `{ startMs, endMs }` dragged on the timeline, and drops loads of earlier choices.
   */
  function showRange(choice) {
    const preset = choice.startMs === undefined ? RANGES.find((r) => r.key === choice.key) ?? RANGES[0] : null;
    let startMs = choice.startMs;
    let endMs = choice.endMs;
    if (preset) {
      endMs = live ? Date.now() : Date.parse(detail.last_seen);
      startMs = preset.spanMs === null ? Date.parse(detail.first_seen) : endMs - preset.spanMs;
      nav.replace({ cluster: name, tenant, range: preset.key });
    } else {
      nav.replace({ cluster: name, tenant, start: new Date(startMs).toISOString(), end: new Date(endMs).toISOString() });
    }
    renderRangeButtons(preset?.key);
    // A cluster seen for an instant still gets a few seconds of axis.
    const range = { startMs, endMs: Math.max(endMs, startMs + 10_000) };
    range.stepSeconds = Math.max(1, Math.ceil((range.endMs - range.startMs) / 1000 / POINTS_PER_RANGE));
    $('.range-text').textContent = `${formatSeconds(range.startMs)} – ${formatSeconds(range.endMs)} UTC`;

    rangeController?.abort();
    rangeController = new AbortController();
    const signal = rangeController.signal;
    loadTimeline(range, signal);
    loadCharts(range, signal);
  }

  async function loadTimeline(range, signal) {
    $('.timeline-panel').hidden = false;
    const box = $('.timeline');
    const error = $('.timeline-error');
    timelineResize?.disconnect();
    box.replaceChildren();
    $('.events').replaceChildren();
    $('.events-summary').textContent = '';
    error.hidden = true;
    $('.timeline-readout').textContent = 'Loading…';
    const phrases = EVENT_KINDS.map(({ phrase }) => `"${phrase}"`).join(' OR ');
    let events;
    let workers;
    let known;
    try {
      [events, workers, known] = await Promise.all([
        getJson('/api/v1/logs/search', {
          q: `${clusterQuery} AND (${phrases})`,
          start: new Date(range.startMs).toISOString(),
          end: new Date(range.endMs + 1).toISOString(),
          limit: MAX_EVENTS,
          count: true,
        }, signal),
        queryRange(`sum(dask_scheduler_workers{${clusterMatch}})`, range, signal),
        // A restart's line names no worker: the worker's own start-up lines do.
        workersLoaded.catch(() => null),
      ]);
    } catch (e) {
      if (e.name === 'AbortError') return;
      error.textContent = e.message;
      error.hidden = false;
      $('.timeline-readout').textContent = '';
      return;
    }
    const timeline = {
      range,
      events: events.hits.map((hit) => workerEvent(hit, known)).filter((event) => event !== null),
      workerCounts: (workers[0]?.values ?? []).map(([t, v]) => [Number(t) * 1000, Number(v)]),
    };
    renderEvents(timeline.events, events.count);
    const actions = {
      readout: $('.timeline-readout'),
      searchParams: (startMs, endMs) => searchParams(clusterQuery, startMs, endMs),
      search: (params) => nav.go('search', params),
      zoom: (startMs, endMs) => showRange({ startMs, endMs }),
    };
    timelineResize = new ResizeObserver(() => drawTimeline(box, timeline, actions));
    timelineResize.observe(box);
    $('.timeline-readout').textContent = '';
  }

  function renderEvents(events, total) {
    const counts = EVENT_KINDS.map(({ kind }) => `${events.filter((e) => e.kind === kind).length} ${kind}`);
    $('.events-summary').textContent = events.length === 0
      ? 'No worker joined, left or restarted in this range: pick another range, or check that the scheduler\'s and nannies\' logs are collected.'
      : `${events.length} worker events: ${counts.join(', ')}${total > events.length ? ` (the first ${events.length} of ${total}; pick a shorter range)` : ''}.`;
    $('.events').replaceChildren(...events.map((event) => {
      const item = el('li', `event-row kind-${event.kind}`);
      item.dataset.kind = event.kind;
      const link = viewLink(nav, 'search', searchParams(clusterQuery, event.ms - MINUTE_MS, event.ms + MINUTE_MS));
      link.title = 'Search the cluster\'s logs a minute either side of this event';
      link.append(
        el('time', 'ts', formatDate(new Date(event.ms))),
        el('span', 'kind', event.kind),
        el('span', 'who', event.worker),
        el('span', 'where', event.detail),
      );
      item.append(link);
      return item;
    }));
  }

  /**
   * The cluster's workers over its lifetime: their start-up lines in the logs and their
   * discovered series (`worker`, `worker_addr`).
   */
  async function loadWorkers(signal) {
    const lifetime = lifetimeSearch(`${clusterQuery} AND ("Worker name" OR "Start worker at")`, detail);
    const firstSeconds = Math.floor(Date.parse(detail.first_seen) / 1000);
    const lastSeconds = live ? Date.now() / 1000 : Date.parse(detail.last_seen) / 1000 + 1;
    const [lines, series] = await Promise.all([
      getJson('/api/v1/logs/search', { ...lifetime, limit: MAX_WORKER_LINES }, signal),
      getJson('/api/v1/series', { 'match[]': `{${clusterMatch}, worker!=""}`, start: firstSeconds, end: lastSeconds }, signal),
    ]);
    return workersFrom(lines.hits, series.data);
  }

  function renderWorkers(known) {
    const workers = [...known.values()].sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }));
    $('.workers-summary').textContent = workers.length === 0
      ? 'No worker named itself in the logs, and no series carries a worker label: collect the workers\' logs, or discover them with the agent\'s [dask] section.'
      : `${workers.length} ${workers.length === 1 ? 'worker' : 'workers'}.`;
    $('.worker-table tbody').replaceChildren(...workers.map((worker) => {
      const row = el('tr');
      row.dataset.worker = worker.name;
      const logs = el('span', 'worker-logs-cell');
      const logsLink = viewLink(nav, 'search', lifetimeSearch(workerLogQuery(clusterQuery, worker), detail),
        worker.logs.size ? [...worker.logs.values()].map(({ node, source }) => `${node}: ${source.split('/').pop()}`).join(', ') : 'mentions',
        'worker-logs');
      logsLink.title = 'Search its own log and every line naming it or its address';
      logs.append(logsLink);
      const metrics = worker.hosts.size
        ? viewLink(nav, 'metrics', workerMetricsParams(clusterMatch, worker, detail, live), `${WORKER_METRIC} (on ${[...worker.hosts].join(', ')})`, 'worker-metrics')
        : '—';
      if (metrics !== '—') metrics.title = 'Chart its memory; the query selects it by its worker label, to edit for its other series';
      const cells = [el('strong', 'worker-name', worker.name), [...worker.addresses].join(', ') || '—', logs, metrics];
      for (const content of cells) {
        const cell = el('td');
        cell.append(content);
        row.append(cell);
      }
      return row;
    }));
    $('.workers-panel').hidden = false;
  }

  function loadCharts(range, signal) {
    const charts = $('.charts');
    charts.hidden = false;
    charts.replaceChildren(...CHARTS.map((spec) => {
      const figure = el('figure', 'panel chart-panel');
      figure.dataset.metric = spec.metric;
      const caption = el('figcaption', '', spec.title);
      caption.append(el('span', 'unit', ` (${spec.unit})`));
      figure.append(caption, el('p', 'chart-note', 'Loading…'));
      drawChart(figure, spec, range, signal);
      return figure;
    }));
  }

  async function drawChart(figure, spec, range, signal) {
    const note = figure.querySelector('.chart-note');
    let result;
    try {
      result = await queryRange(spec.query(clusterMatch), range, signal);
    } catch (e) {
      if (e.name === 'AbortError') return;
      note.className = 'error';
      note.textContent = e.message;
      figure.dataset.state = 'error';
      return;
    }
    const frame = matrixToFrame(result);
    const samples = frame.data.slice(1).flat().filter((v) => v !== null).length;
    if (samples === 0) {
      note.textContent = `No data for ${spec.metric} in this range.`;
      figure.dataset.state = 'empty';
      return;
    }
    frame.names = result.map((series) => series.metric[spec.seriesLabel] ?? 'all');
    frame.data = [frame.data[0], ...frame.data.slice(1).map((column) => column.map((v) => (v === null ? null : v * (spec.scale ?? 1))))];
    note.remove();
    const target = el('div', 'chart');
    figure.append(target);
    lineChart(target, frame, { height: 200, yLabel: spec.unit, xRange: [range.startMs / 1000, range.endMs / 1000] });
    figure.dataset.state = 'drawn';
    figure.dataset.samples = String(samples);
  }

  // Resolves to the workers by name (see `workersFrom`) once the summary has loaded.
  let resolveWorkers;
  const workersLoaded = new Promise((resolve, reject) => {
    resolveWorkers = (promise) => promise.then(resolve, reject);
  });

  Promise.all([
    getJson(`/api/v1/clusters/${encodeURIComponent(name)}`, { tenant }, pageController.signal),
    // Any sample of `up` within the query lookback (5 min) means the agents still scrape it.
    getJson('/api/v1/query', { query: `count(up{${clusterMatch}})` }, pageController.signal),
  ])
    .then(([body, up]) => {
      detail = body;
      live = detail.alive || up.data.result.length > 0;
      $('.status').textContent = '';
      renderSummary();
      resolveWorkers(loadWorkers(pageController.signal));
      workersLoaded.then(renderWorkers, (e) => {
        if (e.name === 'AbortError') return;
        $('.workers-error').textContent = e.message;
        $('.workers-error').hidden = false;
        $('.workers-panel').hidden = false;
      });
      const startMs = Date.parse(params.get('start'));
      const endMs = Date.parse(params.get('end'));
      showRange(startMs < endMs ? { startMs, endMs } : { key: params.get('range') ?? '' });
      renderNodes();
    })
    .catch((e) => {
      if (e.name !== 'AbortError') showPageError(e.message);
    });

  return () => {
    pageController.abort();
    rangeController?.abort();
    timelineResize?.disconnect();
  };
}

/**
 * A Prometheus range query over `range`, as a matrix result. Its steps count back from the end,
 * so the newest samples (those of a cluster scraped for only a few seconds) are always shown.
 */
async function queryRange(query, range, signal) {
  const endSeconds = range.endMs / 1000;
  const steps = Math.ceil((endSeconds - range.startMs / 1000) / range.stepSeconds);
  const body = await getJson('/api/v1/query_range', {
    query,
    start: endSeconds - steps * range.stepSeconds,
    end: endSeconds,
    step: range.stepSeconds,
  }, signal);
  return body.data.result;
}

/** Where a record was written: its node and file (one log stream). */
const logKey = (hit) => `${str(hit.node)}\u0000${str(hit.source)}`;

/**
 * The workers by name from their start-up lines (`hits`: "Start worker at:" then "Worker
 * name:", in each log file) and their series' labels (`series`): `{ name, addresses, logs:
 * Map(logKey → { node, source }), hosts: Set of series `node`s, starts: [{ ms, key }] }`.
 */
export function workersFrom(hits, series) {
  const byName = new Map();
  const worker = (name) => {
    if (!byName.has(name)) byName.set(name, { name, addresses: new Set(), logs: new Map(), hosts: new Set(), starts: [] });
    return byName.get(name);
  };
  const inOrder = [...hits].sort((a, b) => Date.parse(a.ts) - Date.parse(b.ts) || Number(a.seq) - Number(b.seq));
  // Per log file, the address of the start-up under way: its name line comes next.
  const addressOf = new Map();
  for (const hit of inOrder) {
    const message = str(hit.message);
    const key = logKey(hit);
    const address = WORKER_ADDRESS_LINE.exec(message)?.[1];
    if (address) addressOf.set(key, address);
    const name = WORKER_NAME_LINE.exec(message)?.[1];
    if (!name) continue;
    const found = worker(name);
    if (addressOf.has(key)) found.addresses.add(addressOf.get(key));
    addressOf.delete(key);
    found.logs.set(key, { node: str(hit.node), source: str(hit.source) });
    found.starts.push({ ms: Date.parse(hit.ts), key });
  }
  for (const labels of series) {
    if (!labels.worker) continue;
    const found = worker(labels.worker);
    if (labels.worker_addr) found.addresses.add(labels.worker_addr);
    if (labels.node) found.hosts.add(labels.node);
  }
  return byName;
}

/**
 * The name of the worker a nanny restarted with the line `hit`: the worker that next starts in
 * the same log file (a nanny restarts the worker it runs), else the last one that started there.
 */
function restartedWorker(hit, known) {
  const key = logKey(hit);
  const ms = Date.parse(hit.ts);
  let before = null;
  let after = null;
  for (const worker of known?.values() ?? []) {
    for (const start of worker.starts) {
      if (start.key !== key) continue;
      if (start.ms >= ms && (after === null || start.ms < after.ms)) after = { ms: start.ms, name: worker.name };
      if (start.ms < ms && (before === null || start.ms > before.ms)) before = { ms: start.ms, name: worker.name };
    }
  }
  return (after ?? before)?.name ?? null;
}

/** The search query of a worker's logs: its own log files, and every line naming it or its addresses. */
export function workerLogQuery(clusterQuery, worker) {
  const phrase = (text) => `"${text.replace(/["\\]/g, '\\$&')}"`;
  const own = [...worker.logs.values()].map(({ node, source }) => `(${fieldQuery('node', node)} AND ${fieldQuery('source', source)})`);
  const mentions = [worker.name, ...worker.addresses].map(phrase);
  return `${clusterQuery} AND (${[...own, ...mentions].join(' OR ')})`;
}

/** Metrics-view parameters charting `WORKER_METRIC` of `worker`: the last hour (of the cluster's life, once it is gone). */
function workerMetricsParams(clusterMatch, worker, detail, live) {
  const query = `${WORKER_METRIC}{${clusterMatch}, worker="${worker.name.replace(/["\\]/g, '\\$&')}"}`;
  if (live) return { query, range: '1h' };
  const endMs = Date.parse(detail.last_seen) + 1000;
  return { query, start: new Date(endMs - HOUR_MS).toISOString(), end: new Date(endMs).toISOString() };
}

/** A search hit as a worker event `{ ms, kind, worker, detail }`, or null if it is none. */
function workerEvent(hit, known) {
  const message = str(hit.message);
  const found = EVENT_KINDS.find(({ phrase }) => message.toLowerCase().includes(phrase.toLowerCase()));
  if (!found) return null;
  const address = /\b(?:tcp|tls|ucx|inproc|wss?):\/\/[^\s,'">)]+/.exec(message)?.[0];
  const workerName = /\bname: ([^\s,'">)]+)/.exec(message)?.[1];
  const event = { ms: Date.parse(hit.ts), kind: found.kind, worker: workerName ?? address ?? str(hit.node), detail: address ?? '' };
  if (found.kind === 'restarted') {
    // The nanny's line names no worker: the worker's name comes from its own start-up lines.
    const restarted = restartedWorker(hit, known);
    Object.assign(event, {
      worker: restarted ?? str(hit.node),
      detail: restarted ? `restarted by its nanny on ${str(hit.node)}` : 'restarted by its nanny',
    });
  }
  return event;
}

// ---- the timeline strip (SVG, drawn in pixels; redrawn when its box changes width) ----

const SVG_NS = 'http://www.w3.org/2000/svg';
const TIMELINE = { right: 24, top: 8, area: 56, gap: 8, lane: 20, axis: 22 };
const TICK_STEPS_MS = [1, 5, 15, 30].map((s) => s * 1000)
  .concat([1, 5, 15, 30].map((m) => m * MINUTE_MS), [1, 3, 6, 12, 24, 48, 168].map((h) => h * HOUR_MS));

function svg(tag, attributes = {}) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  return node;
}

function svgText(x, y, text, className) {
  const node = svg('text', { x, y, class: className });
  node.textContent = text;
  return node;
}

/** Where ticks go over [startMs, endMs], at most `maxTicks`, and how to label them (UTC). */
function timeTicks(startMs, endMs, maxTicks) {
  const step = TICK_STEPS_MS.find((s) => (endMs - startMs) / s <= maxTicks) ?? TICK_STEPS_MS.at(-1);
  const severalDays = new Date(startMs).toISOString().slice(0, 10) !== new Date(endMs).toISOString().slice(0, 10);
  const label = (ms) => {
    const iso = new Date(ms).toISOString();
    if (severalDays) return `${iso.slice(5, 10)} ${iso.slice(11, 16)}`;
    return step < MINUTE_MS ? iso.slice(11, 19) : iso.slice(11, 16);
  };
  const ticks = [];
  for (let ms = Math.ceil(startMs / step) * step; ms <= endMs; ms += step) ticks.push({ ms, label: label(ms) });
  return ticks;
}

/** The worker count as a filled step area; gaps in the samples stay gaps. */
function stepAreaPath(points, stepMs, x, y, base) {
  let path = '';
  let runEndMs = null;
  for (const [ms, value] of points) {
    if (runEndMs === null || ms > runEndMs + 1) path += `${path ? `V${base}Z` : ''}M${x(ms)},${base}`;
    path += `V${y(value)}H${x(ms + stepMs)}`;
    runEndMs = ms + stepMs;
  }
  return path ? `${path}V${base}Z` : '';
}

function eventMarker(kind, x, y) {
  if (kind === 'joined') return svg('path', { d: `M${x},${y - 5}L${x + 5},${y + 4}L${x - 5},${y + 4}Z` });
  if (kind === 'left') return svg('path', { d: `M${x},${y + 5}L${x + 5},${y - 4}L${x - 5},${y - 4}Z` });
  return svg('circle', { cx: x, cy: y, r: 4.5 });
}

/**
 * Draws the timeline into `box` at its current width. A click searches the logs around that
 * moment (`actions.search`), a drag across it zooms to that span (`actions.zoom`), hovering
 * says what a click would do (`actions.readout`).
 */
function drawTimeline(box, { range, events, workerCounts }, actions) {
  const width = Math.max(box.clientWidth, 280);
  const left = width < 500 ? 70 : 90;
  const lanesTop = TIMELINE.top + TIMELINE.area + TIMELINE.gap;
  const axisY = lanesTop + EVENT_KINDS.length * TIMELINE.lane;
  const height = axisY + TIMELINE.axis;
  const spanMs = range.endMs - range.startMs;
  const plotWidth = width - left - TIMELINE.right;
  const x = (ms) => left + Math.min(Math.max((ms - range.startMs) / spanMs, 0), 1) * plotWidth;
  const root = svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'Worker timeline' });
  const pointerX = (e) => Math.min(Math.max(e.clientX - root.getBoundingClientRect().left, left), left + plotWidth);
  const timeAt = (px) => range.startMs + ((px - left) / plotWidth) * spanMs;

  const maxWorkers = Math.max(1, ...workerCounts.map(([, v]) => v));
  const areaBase = TIMELINE.top + TIMELINE.area;
  const y = (v) => areaBase - (v / maxWorkers) * TIMELINE.area;
  root.append(svgText(left - 8, TIMELINE.top + 12, 'workers', 'lane-label'));
  root.append(svgText(left - 8, TIMELINE.top + 26, workerCounts.length ? `max ${maxWorkers}` : 'no data', 'lane-note'));
  for (const { ms, label } of timeTicks(range.startMs, range.endMs, Math.floor(plotWidth / 90))) {
    root.append(svg('line', { x1: x(ms), x2: x(ms), y1: TIMELINE.top, y2: axisY + 4, class: 'grid' }));
    root.append(svgText(x(ms), axisY + 16, label, 'tick'));
  }
  root.append(svg('line', { x1: left, x2: left + plotWidth, y1: areaBase, y2: areaBase, class: 'axis' }));
  const area = stepAreaPath(workerCounts, range.stepSeconds * 1000, x, y, areaBase);
  if (area) root.append(svg('path', { d: area, class: 'worker-area' }));
  for (const [lane, { kind }] of EVENT_KINDS.entries()) {
    const laneY = lanesTop + lane * TIMELINE.lane + TIMELINE.lane / 2;
    root.append(svgText(left - 8, laneY + 4, kind, 'lane-label'));
    root.append(svg('line', { x1: left, x2: left + plotWidth, y1: laneY, y2: laneY, class: 'lane' }));
  }

  const hitArea = svg('rect', { x: left, y: 0, width: plotWidth, height: axisY, class: 'hit-area' });
  const guide = svg('line', { x1: 0, x2: 0, y1: TIMELINE.top, y2: axisY, class: 'guide', visibility: 'hidden' });
  const selection = svg('rect', { x: 0, y: TIMELINE.top, width: 0, height: axisY - TIMELINE.top, class: 'selection', visibility: 'hidden' });
  root.append(hitArea, guide, selection);
  const aroundMs = Math.max(MINUTE_MS, spanMs / 100);
  let dragFromX = null;
  hitArea.addEventListener('pointerdown', (e) => {
    dragFromX = pointerX(e);
    hitArea.setPointerCapture(e.pointerId);
  });
  hitArea.addEventListener('pointermove', (e) => {
    const px = pointerX(e);
    guide.setAttribute('x1', px);
    guide.setAttribute('x2', px);
    guide.setAttribute('visibility', 'visible');
    if (dragFromX === null) {
      actions.readout.textContent = `${formatSeconds(timeAt(px))} UTC: click to search the cluster's logs ${formatDuration(aroundMs)} either side, drag to zoom`;
      return;
    }
    selection.setAttribute('x', Math.min(px, dragFromX));
    selection.setAttribute('width', Math.abs(px - dragFromX));
    selection.setAttribute('visibility', 'visible');
    actions.readout.textContent = `${formatSeconds(timeAt(Math.min(px, dragFromX)))} – ${formatSeconds(timeAt(Math.max(px, dragFromX)))} UTC: release to zoom`;
  });
  hitArea.addEventListener('pointerleave', () => {
    if (dragFromX !== null) return;
    guide.setAttribute('visibility', 'hidden');
    actions.readout.textContent = '';
  });
  hitArea.addEventListener('pointerup', (e) => {
    if (dragFromX === null) return;
    const [fromX, toX] = [dragFromX, pointerX(e)].sort((a, b) => a - b);
    dragFromX = null;
    selection.setAttribute('visibility', 'hidden');
    if (toX - fromX > 4) actions.zoom(timeAt(fromX), timeAt(toX));
    else actions.search(actions.searchParams(timeAt(toX) - aroundMs, timeAt(toX) + aroundMs));
  });

  for (const event of events) {
    const lane = EVENT_KINDS.findIndex(({ kind }) => kind === event.kind);
    const laneY = lanesTop + lane * TIMELINE.lane + TIMELINE.lane / 2;
    const params = actions.searchParams(event.ms - MINUTE_MS, event.ms + MINUTE_MS);
    // Markers are for the mouse; the list under the strip is the keyboard's way to the same links.
    const link = svg('a', { href: viewUrl('search', params), class: `event kind-${event.kind}`, tabindex: -1, 'data-kind': event.kind });
    const title = svg('title');
    title.textContent = `${formatDate(new Date(event.ms))} UTC: ${event.worker} ${event.kind}`;
    link.append(title, eventMarker(event.kind, x(event.ms), laneY));
    link.addEventListener('click', (e) => {
      if (e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return;
      e.preventDefault();
      actions.search(params);
    });
    root.append(link);
  }
  box.replaceChildren(root);
}
