// views/metrics.js — the metrics view: a PromQL query and a time range (in the form and in the
// URL) run through /api/v1/query_range at about 250 points and drawn as a uPlot line chart whose
// legend shows the hovered values; the API's errors are shown in its own words.

import { ApiError, getJson } from '../lib/api.js';
import { lineChart, matrixToFrame } from '../lib/chart.js';
import { el, formatDate } from '../lib/dom.js';

const POINTS_PER_SERIES = 250;
const MAX_DRAWN_SERIES = 50;
const DEFAULT_RANGE = '1h';
/** The relative ranges, in seconds, by the name the URL carries. */
const RANGE_SECONDS = { '15m': 900, '1h': 3600, '6h': 21600, '24h': 86400, '7d': 604800 };

/** Queries worth trying on a Dask cluster: metric names from Dask's own /metrics pages. */
const EXAMPLES = [
  ['up', 'every scraped target: 1 up, 0 down'],
  ['dask_scheduler_workers', 'workers by state, as the scheduler sees them'],
  ['sum by (state) (dask_scheduler_tasks)', 'tasks by state'],
  ['sum by (node, type) (dask_worker_memory_bytes)', 'worker memory: managed, unmanaged, spilled'],
  ['dask_worker_latency_seconds', 'worker event-loop latency'],
  ['rate(process_cpu_seconds_total[1m])', 'CPU use of every Dask process'],
];

const MARKUP = `
<form id="metrics-form" class="query-form metrics-form" autocomplete="off">
  <div class="field metrics-field-query">
    <label for="metrics-query">PromQL query</label>
    <input id="metrics-query" name="query" type="text" list="metrics-names"
           placeholder="sum by (state) (dask_scheduler_tasks)"
           spellcheck="false" autocapitalize="off" autocorrect="off" aria-describedby="metrics-hint">
    <datalist id="metrics-names"></datalist>
  </div>
  <div class="field">
    <label for="metrics-range">Range</label>
    <select id="metrics-range" name="range">
      <option value="15m">Last 15 minutes</option>
      <option value="1h">Last 1 hour</option>
      <option value="6h">Last 6 hours</option>
      <option value="24h">Last 24 hours</option>
      <option value="7d">Last 7 days</option>
      <option value="absolute">From … until … (UTC)</option>
    </select>
  </div>
  <div class="field metrics-field-time" data-absolute hidden>
    <label for="metrics-start">From (UTC)</label>
    <input id="metrics-start" name="start" type="text" placeholder="2026-11-27 14:00:00"
           spellcheck="false" autocapitalize="off" autocorrect="off">
  </div>
  <div class="field metrics-field-time" data-absolute hidden>
    <label for="metrics-end">Until (UTC)</label>
    <input id="metrics-end" name="end" type="text" placeholder="2026-11-27 15:00:00"
           spellcheck="false" autocapitalize="off" autocorrect="off">
  </div>
  <div class="field field-button">
    <button id="metrics-run" class="primary" type="submit">Run</button>
  </div>
</form>
<p id="metrics-hint" class="hint">
  Enter runs the query. An absolute range takes UTC times (<code>2026-11-27 14:00</code>), RFC 3339
  or Unix seconds. Drag across the chart to zoom in, double-click to zoom out; click a legend entry
  to hide its series.
</p>
<div class="metrics-examples">
  <span class="metrics-examples-label">Examples</span>
  <ul class="metrics-example-list"></ul>
</div>
<div id="metrics-error" class="error" role="alert" hidden></div>
<p id="metrics-summary" class="metrics-summary" aria-live="polite"></p>
<div id="metrics-result"></div>`;

/** The view's state from a page URL query string: absolute when it names both start and end. */
export function stateFromLocation(search) {
  const params = new URLSearchParams(search);
  const start = (params.get('start') ?? '').trim();
  const end = (params.get('end') ?? '').trim();
  const named = params.get('range') ?? '';
  let range = Object.hasOwn(RANGE_SECONDS, named) ? named : DEFAULT_RANGE;
  if (start && end) range = 'absolute';
  return { query: (params.get('query') ?? '').trim(), range, start, end };
}

/** The page URL's parameters for a state (what a shared link restores). */
export function pageParams(state) {
  if (state.range === 'absolute') return { query: state.query, start: state.start, end: state.end };
  return { query: state.query, range: state.range };
}

/** A time typed in UTC (`2026-11-27 14:00[:05[.250]]`), RFC 3339 or Unix seconds; null if none. */
export function parseUtc(text) {
  const trimmed = text.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return new Date(Number(trimmed) * 1000);
  const match = /^(\d{4}-\d{2}-\d{2})(?:[Tt ](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?))?\s*([Zz]|[+-]\d{2}:?\d{2})?$/.exec(trimmed);
  if (!match) return null;
  const [, day, time = '00:00', zone = 'Z'] = match;
  const offset = zone.length === 5 ? `${zone.slice(0, 3)}:${zone.slice(3)}` : zone.toUpperCase();
  const date = new Date(`${day}T${time}${offset}`);
  return Number.isNaN(date.getTime()) ? null : date;
}

/** `2026-11-27 14:00:05` (UTC), as the time fields show times. */
function formatUtc(ms) {
  return formatDate(new Date(ms)).slice(0, 19);
}

/** A step in Prometheus's duration style: `4s`, `40m20s`, `1h`. */
export function formatStep(seconds) {
  const parts = [[Math.floor(seconds / 3600), 'h'], [Math.floor(seconds / 60) % 60, 'm'], [seconds % 60, 's']];
  return parts.filter(([count]) => count > 0).map(([count, unit]) => `${count}${unit}`).join('');
}

/**
 * The query's window at `nowMs`: `{ startMs, endMs, stepSeconds }`, or `{ problem }` when the
 * typed times do not make one. The step is a whole number of seconds giving about 250 points,
 * and the grid is anchored at the end so the last point is the end itself (for a relative
 * range: now, the latest value).
 */
export function queryWindow(state, nowMs) {
  let startMs = nowMs - RANGE_SECONDS[state.range] * 1000;
  let endMs = nowMs;
  if (state.range === 'absolute') {
    const start = parseUtc(state.start);
    const end = parseUtc(state.end);
    if (!start) return { problem: `"From" is not a time: ${JSON.stringify(state.start)}. Write it as 2026-11-27 14:00 (UTC), RFC 3339 or Unix seconds.` };
    if (!end) return { problem: `"Until" is not a time: ${JSON.stringify(state.end)}. Write it as 2026-11-27 15:00 (UTC), RFC 3339 or Unix seconds.` };
    if (end <= start) return { problem: '"From" must be before "Until".' };
    startMs = start.getTime();
    endMs = end.getTime();
  }
  const stepSeconds = Math.max(1, Math.ceil((endMs - startMs) / 1000 / POINTS_PER_SERIES));
  const steps = Math.floor((endMs - startMs) / 1000 / stepSeconds);
  return { startMs: endMs - steps * stepSeconds * 1000, endMs, stepSeconds };
}

/** Fills `root` with the metrics view; returns its unmount function. */
export function mount(root, nav) {
  root.innerHTML = MARKUP;
  const form = root.querySelector('#metrics-form');
  const queryInput = root.querySelector('#metrics-query');
  const rangeSelect = root.querySelector('#metrics-range');
  const startInput = root.querySelector('#metrics-start');
  const endInput = root.querySelector('#metrics-end');
  const runButton = root.querySelector('#metrics-run');
  const errorBox = root.querySelector('#metrics-error');
  const summary = root.querySelector('#metrics-summary');
  const result = root.querySelector('#metrics-result');
  const nameList = root.querySelector('#metrics-names');
  const mounted = new AbortController();
  let controller = null;
  let metricNames = null;
  let clusterNames = [];
  let lastSpan = null;

  function formState() {
    return {
      query: queryInput.value.trim(),
      range: rangeSelect.value,
      start: startInput.value.trim(),
      end: endInput.value.trim(),
    };
  }

  function showState(state) {
    queryInput.value = state.query;
    rangeSelect.value = state.range;
    startInput.value = state.start;
    endInput.value = state.end;
    showAbsoluteFields();
  }

  function showAbsoluteFields() {
    const absolute = rangeSelect.value === 'absolute';
    for (const field of root.querySelectorAll('[data-absolute]')) field.hidden = !absolute;
  }

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
    summary.textContent = '';
    result.replaceChildren();
  }

  /** A button that puts `query` in the box and runs it. */
  function queryButton(query, title) {
    const button = el('button', 'metrics-try', query);
    button.type = 'button';
    if (title) button.title = title;
    button.addEventListener('click', () => {
      queryInput.value = query;
      run();
    });
    return button;
  }

  function showIntro() {
    const intro = el('div', 'empty-state');
    intro.append(el('p', '', 'Type a PromQL query and press Enter, or pick one of the examples above.'));
    if (metricNames && metricNames.length === 0) {
      intro.append(el('p', '', 'The collector holds no metrics yet: give an agent a [[metrics]] section naming a Dask /metrics address.'));
    }
    result.replaceChildren(intro);
  }

  function showNoSeries(state, span) {
    const empty = el('div', 'empty-state');
    const what = el('p', '', 'No series match ');
    what.append(el('code', '', state.query), ` between ${formatUtc(span.startMs)} and ${formatUtc(span.endMs)} UTC.`);
    empty.append(what);
    const tips = el('p', '', 'Try a longer range, ');
    tips.append(queryButton('up', 'every scraped target'), ' to see every scraped target');
    if (clusterNames.length > 0) {
      tips.append(', or ', queryButton(`{cluster=${JSON.stringify(clusterNames[0])}}`, 'every series of one cluster'), ' for everything one cluster sent');
    }
    tips.append('.');
    empty.append(tips);
    result.replaceChildren(empty);
  }

  function showSeries(state, span, series) {
    const drawn = series.slice(0, MAX_DRAWN_SERIES);
    const frame = matrixToFrame(drawn);
    // A scalar expression comes back as one series without labels: name it by the query.
    frame.names = frame.names.map((name) => (name === '{}' ? state.query : name));
    summary.textContent = `${series.length} series · step ${formatStep(span.stepSeconds)} · ` +
      `${formatUtc(span.startMs)} – ${formatUtc(span.endMs)} UTC`;
    const box = el('div', 'chart metrics-chart');
    result.replaceChildren(box);
    if (series.length > drawn.length) {
      result.prepend(el('p', 'metrics-note',
        `Drawing the first ${drawn.length} of ${series.length} series; ${series.length - drawn.length} are left out. ` +
        'Narrow the query with a label matcher or topk(10, …) to see them.'));
    }
    lineChart(box, frame, { height: 320, xRange: [span.startMs / 1000, span.endMs / 1000] });
  }

  async function run() {
    const state = formState();
    controller?.abort();
    controller = null;
    errorBox.hidden = true;
    nav.replace(pageParams(state));
    if (!state.query) {
      summary.textContent = '';
      showIntro();
      return;
    }
    const span = queryWindow(state, Date.now());
    if (span.problem) {
      showError(span.problem);
      return;
    }
    lastSpan = span;
    const current = new AbortController();
    controller = current;
    runButton.disabled = true;
    summary.textContent = 'Running…';
    try {
      const body = await getJson('/api/v1/query_range', {
        query: state.query,
        start: span.startMs / 1000,
        end: span.endMs / 1000,
        step: span.stepSeconds,
      }, current.signal);
      const { resultType, result: answer } = body.data ?? {};
      if (resultType === 'matrix' && answer.length === 0) {
        await suggestions;
        if (controller !== current) return;
        summary.textContent = '';
        showNoSeries(state, span);
      } else if (resultType === 'matrix') {
        showSeries(state, span, answer);
      } else {
        // The Prometheus API may answer a scalar or a string as `[time, value]`.
        summary.textContent = `${resultType} at ${formatUtc(Number(answer[0]) * 1000)} UTC`;
        result.replaceChildren(el('p', 'metrics-value', String(answer[1])));
      }
    } catch (error) {
      if (error.name === 'AbortError') return;
      if (!(error instanceof ApiError)) throw error;
      showError(error.message);
    } finally {
      if (controller === current) {
        controller = null;
        runButton.disabled = false;
      }
    }
  }

  /** Metric names for the query box's suggestions, and cluster names for the empty state. */
  async function loadSuggestions() {
    try {
      const [names, clusters] = await Promise.all([
        getJson('/api/v1/label/__name__/values', {}, mounted.signal),
        getJson('/api/v1/label/cluster/values', {}, mounted.signal),
      ]);
      metricNames = names.data;
      clusterNames = clusters.data;
    } catch (error) {
      // Suggestions are a convenience: without them the view works, and a query shows the error.
      if (error.name === 'AbortError' || error instanceof ApiError) return;
      throw error;
    }
    nameList.replaceChildren(...metricNames.map((name) => {
      const option = document.createElement('option');
      option.value = name;
      return option;
    }));
    if (!queryInput.value.trim() && metricNames.length === 0) showIntro();
  }

  root.querySelector('.metrics-example-list').replaceChildren(...EXAMPLES.map(([query, title]) => {
    const item = el('li');
    item.append(queryButton(query, title));
    return item;
  }));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    run();
  });
  rangeSelect.addEventListener('change', () => {
    showAbsoluteFields();
    if (rangeSelect.value !== 'absolute') {
      run();
      return;
    }
    // Start from the window last drawn, so switching to absolute only needs an edit.
    if (!startInput.value && !endInput.value) {
      const span = lastSpan ?? queryWindow({ range: DEFAULT_RANGE }, Date.now());
      startInput.value = formatUtc(span.startMs);
      endInput.value = formatUtc(span.endMs);
    }
    startInput.focus();
  });

  showState(stateFromLocation(location.search));
  const suggestions = loadSuggestions();
  run();
  return () => {
    mounted.abort();
    controller?.abort();
  };
}
