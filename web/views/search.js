// views/search.js — the search view: a query, a time range and facet filters (all in the page
// URL, with the focused hit), the matches over time, and the hits of every node interleaved by
// time, loaded page by page by cursor (at most MAX_ROWS) into a list that draws only what is on
// screen. A hit opens its context inline; live tail adds new matches as they arrive. The parts
// are in views/search/; this module holds the state and wires them.

import { getJson } from '../lib/api.js';
import { el } from '../lib/dom.js';
import { facetPanel } from './search/facets.js';
import { fillSyntaxHelp } from './search/help.js';
import { histogramPanel } from './search/histogram.js';
import { renderContext, renderHit } from './search/hits.js';
import { aroundRange, rangeFromMs, rangePicker, rangeText } from './search/range.js';
import {
  FACET_FIELDS, effectiveQuery, filterParams, hitKey, locationParams, normalizeState, parseHitKey,
  stateFromLocation, toggleFilter,
} from './search/state.js';
import { followTail } from './search/tail.js';
import { VirtualList } from './search/virtual-list.js';

const SEARCH_PATH = '/api/v1/logs/search';
const PAGE_SIZE = 200;
/** Hits kept loaded at most; past this, narrowing the search is the way on. */
const MAX_ROWS = 10_000;
const CONTEXT_LINES = 10;

const MARKUP = `
<div class="search-view">
<form id="search-form" class="query-form" role="search" autocomplete="off">
  <div class="field field-q">
    <label for="q">Query</label>
    <input id="q" name="q" type="search"
           placeholder="level:ERROR AND KilledWorker -node:w-3"
           spellcheck="false" autocapitalize="off" autocorrect="off"
           aria-keyshortcuts="/" aria-describedby="hint">
  </div>
  <div class="field">
    <label for="range">Time range</label>
    <select id="range"></select>
  </div>
  <div class="field field-time" hidden>
    <label for="start">From (UTC)</label>
    <input id="start" type="text" placeholder="2026-11-27T13:00:00Z"
           spellcheck="false" autocapitalize="off" autocorrect="off"
           title="RFC 3339 (UTC), Unix seconds or relative (now-1h); empty: no start">
  </div>
  <div class="field field-time" hidden>
    <label for="end">Until (UTC)</label>
    <input id="end" type="text" placeholder="now"
           spellcheck="false" autocapitalize="off" autocorrect="off"
           title="RFC 3339 (UTC), Unix seconds or relative (now-1h); empty: now">
  </div>
  <div class="field">
    <label for="order">Order</label>
    <select id="order">
      <option value="asc">Oldest first</option>
      <option value="desc">Newest first</option>
    </select>
  </div>
  <div class="field field-button">
    <button id="search" class="primary" type="submit">Search</button>
  </div>
  <div class="field field-button">
    <button id="live" type="button" aria-pressed="false">Live tail</button>
  </div>
</form>
<div class="help-row">
  <p id="hint" class="hint">
    <kbd>/</kbd> focuses the query, <kbd>Enter</kbd> searches, <kbd>Esc</kbd> closes a hit's context.
    Click a hit to see the records around it.
  </p>
  <details id="syntax-help" class="syntax-help"></details>
</div>

<div id="error" class="error" role="alert" hidden></div>

<div class="search-body">
  <details id="facets" class="facets panel" open>
    <summary>Filter by field</summary>
    <p class="facets-hint">Click a value to keep only it, Shift-click or ⊖ to exclude it.</p>
    <div id="facet-fields"></div>
  </details>
  <section class="results-col" aria-label="Search results">
    <div id="histogram" class="histogram panel" hidden>
      <div class="histogram-head">
        <span class="histogram-title">Matches over time (UTC)</span>
        <span class="histogram-hint">drag across the bars to zoom in</span>
      </div>
      <p class="histogram-note" hidden></p>
      <div class="chart"></div>
    </div>
    <div class="summary">
      <span id="count" aria-live="polite"></span>
      <span id="status" aria-live="polite"></span>
      <span id="active-filters" hidden></span>
      <button id="live-status" type="button" hidden></button>
    </div>
    <div id="focus-panel" hidden></div>
    <div class="hit-header" aria-hidden="true" hidden>
      <span>Time (UTC)</span><span>Node</span><span>Role</span><span>Level</span><span>Logger</span><span>Message</span>
    </div>
    <ol id="results" aria-label="Log records"></ol>
    <div id="empty" class="empty-state" hidden></div>
    <div class="more">
      <button id="load-more" type="button" hidden>Load more</button>
      <p id="cap-note" hidden></p>
    </div>
  </section>
</div>
</div>`;

/** Compares two strings the way the collector's sort key does (bytewise for ASCII). */
function compareText(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The collector's order of hits: time, node, source, seq, stream; reversed for `desc`. */
function hitOrder(order) {
  const sign = order === 'desc' ? -1 : 1;
  return (a, b) => sign * (compareText(a.ts, b.ts) || compareText(a.node, b.node)
    || compareText(a.source, b.source) || a.seq - b.seq || compareText(a.stream, b.stream));
}

/** `rows` with the hits not in `keys` merged in, in `compare` order; `keys` gains theirs. */
function mergeHits(rows, hits, keys, compare) {
  const added = hits.filter((hit) => hit && typeof hit === 'object' && !keys.has(hitKey(hit)));
  for (const hit of added) keys.add(hitKey(hit));
  added.sort(compare);
  const merged = [];
  let i = 0;
  for (const hit of added) {
    while (i < rows.length && compare(rows[i], hit) <= 0) merged.push(rows[i++]);
    merged.push(hit);
  }
  while (i < rows.length) merged.push(rows[i++]);
  return merged;
}

/** Shows the search view in `root`; `nav` keeps the page URL in step (see app.js). */
export function mount(root, nav) {
  root.innerHTML = MARKUP;
  const $ = (id) => root.querySelector(`#${id}`);
  const ui = {
    form: $('search-form'),
    q: $('q'),
    order: $('order'),
    live: $('live'),
    error: $('error'),
    facets: $('facets'),
    histogram: $('histogram'),
    count: $('count'),
    status: $('status'),
    liveStatus: $('live-status'),
    focusPanel: $('focus-panel'),
    header: root.querySelector('.hit-header'),
    results: $('results'),
    resultsCol: root.querySelector('.results-col'),
    empty: $('empty'),
    loadMore: $('load-more'),
    capNote: $('cap-note'),
  };

  let view = stateFromLocation(location.search);
  /** The search shown: its rows (in order), their keys, the next cursor and the match count. */
  let run = { gen: 0, controller: null, rows: [], keys: new Set(), cursor: null, total: null, loading: false, failed: false };
  const expanded = new Set();
  /** Keys of the records live tail brought since the search. */
  const fresh = new Set();
  /** The focused hit's context: `{ key, hit, status, data, error }`, or null. */
  let context = null;
  let contextController = null;
  /** Live tail while on: `{ stop, open, added, newest, problem }`. */
  let live = null;

  const picker = rangePicker({
    select: $('range'),
    start: $('start'),
    end: $('end'),
    custom: root.querySelectorAll('.field-time'),
  }, (range) => search({ ...view, ...range, focus: null }));
  const facets = facetPanel({ fields: $('facet-fields'), chips: $('active-filters') },
    (filter) => search({ ...view, filters: toggleFilter(view.filters, filter), focus: null }));
  const histogram = histogramPanel(ui.histogram,
    (startMs, endMs) => search({ ...view, ...rangeFromMs(startMs, endMs), focus: null }));
  fillSyntaxHelp($('syntax-help'), (query) => search({ ...view, q: query, focus: null }));
  const list = new VirtualList(ui.results, {
    keyOf: hitKey,
    render: (hit) => {
      const key = hitKey(hit);
      return renderHit(hit, { expanded: expanded.has(key), context: context?.key === key ? context : null, fresh: fresh.has(key) });
    },
  });
  // Below 1200 px the facets sit above the hits, folded.
  ui.facets.open = window.matchMedia('(min-width: 1200px)').matches;

  function writeForm() {
    ui.q.value = view.q;
    picker.write(view);
    ui.order.value = view.order;
    ui.live.disabled = Boolean(view.end);
    ui.live.title = view.end ? 'Live tail follows new records: clear "Until" (or pick a preset) to use it'
      : 'Show new matches as they arrive';
  }

  function syncUrl() {
    nav.replace(locationParams(view));
  }

  function showError(message) {
    ui.error.textContent = message;
    ui.error.hidden = !message;
  }

  /** What the API matches: the typed query (`*` when empty) and the facet filters. */
  function matchingParams() {
    return { q: view.q || '*', ...filterParams(view.filters) };
  }

  /** Shows `next` (form and URL) and searches it. */
  function search(next) {
    view = normalizeState(next);
    writeForm();
    syncUrl();
    runSearch();
  }

  async function runSearch() {
    run.controller?.abort();
    run = { gen: run.gen + 1, controller: new AbortController(), rows: [], keys: new Set(), cursor: null, total: null, loading: true, failed: false };
    const { gen, controller } = run;
    expanded.clear();
    fresh.clear();
    closeContext({ keepFocus: true });
    showError('');
    list.setItems(run.rows, { reset: true });
    renderSummary();
    const matching = matchingParams();
    // The chart's height moves the list: draw the rows that then come into view.
    histogram.load(matching, view, controller.signal).then(() => list.update());
    if (live && view.end) stopLive();
    else if (live) startLive();
    try {
      // Each facet comes counted without its own field's filters: the other values stay in view.
      const body = await getJson(SEARCH_PATH, {
        ...matching, start: view.start, end: view.end, order: view.order, limit: PAGE_SIZE,
        count: 'true', facets: FACET_FIELDS.join(','),
      }, controller.signal);
      if (gen !== run.gen) return;
      addHits(body.hits ?? []);
      run.cursor = body.next_cursor || null;
      run.total = typeof body.count === 'number' ? body.count : null;
      if (run.total === 0 && view.filters.length === 0) facets.message('No matches to count.');
      else facets.render(body.facets ?? {}, view.filters);
      if (view.focus) openContext(view.focus, { scroll: true });
    } catch (e) {
      if (gen !== run.gen || e?.name === 'AbortError') return;
      run.failed = true;
      showError(e?.message ?? String(e));
      facets.message('No counts: the search failed.');
      // The chart would fail the same way: one error message is enough.
      controller.abort();
      histogram.clear();
    }
    run.loading = false;
    renderSummary();
  }

  async function loadMore() {
    if (!run.cursor || run.loading) return;
    const { gen, controller } = run;
    run.loading = true;
    renderSummary();
    try {
      const body = await getJson(SEARCH_PATH, {
        ...matchingParams(), start: view.start, end: view.end, order: view.order,
        limit: Math.min(PAGE_SIZE, MAX_ROWS - run.rows.length), cursor: run.cursor,
      }, controller.signal);
      if (gen !== run.gen) return;
      addHits(body.hits ?? []);
      run.cursor = body.next_cursor || null;
    } catch (e) {
      if (gen !== run.gen || e?.name === 'AbortError') return;
      showError(e?.message ?? String(e));
    }
    run.loading = false;
    renderSummary();
  }

  /** Merges hits into the rows shown (in order, each record once). */
  function addHits(hits) {
    run.rows = mergeHits(run.rows, hits, run.keys, hitOrder(view.order));
    list.setItems(run.rows);
    if (context) {
      context.hit ??= run.rows.find((hit) => hitKey(hit) === context.key) ?? null;
      renderFocusPanel();
    }
  }

  function renderSummary() {
    const shown = run.rows.length;
    const total = run.total === null ? null : run.total + (live?.added ?? 0);
    const plural = (n) => `${n.toLocaleString('en-US')} hit${n === 1 ? '' : 's'}`;
    if (total === null) ui.count.textContent = shown > 0 ? `${plural(shown)} shown` : '';
    else ui.count.textContent = shown < total ? `${shown.toLocaleString('en-US')} of ${plural(total)} shown` : plural(total);
    ui.status.textContent = run.loading ? (shown > 0 ? 'Loading more…' : 'Searching…') : '';
    ui.results.setAttribute('aria-busy', String(run.loading));
    ui.results.dataset.loaded = String(shown);
    ui.header.hidden = shown === 0;
    const full = shown >= MAX_ROWS;
    ui.loadMore.hidden = !run.cursor || full;
    ui.loadMore.disabled = run.loading;
    ui.capNote.hidden = !(run.cursor && full && (total === null || total > shown));
    ui.capNote.textContent = `The first ${MAX_ROWS.toLocaleString('en-US')} hits are shown: narrow the query or the range to see the others.`;
    renderEmpty(shown === 0 && !run.loading && !run.failed);
  }

  /** The empty state: what was searched and what to try instead. */
  function renderEmpty(shown) {
    ui.empty.hidden = !shown;
    if (!shown) return;
    const everything = (view.q === '' || view.q === '*') && view.filters.length === 0 && !view.start && !view.end;
    if (everything) {
      ui.empty.replaceChildren(el('p', '', 'The collector holds no log records yet.'),
        el('p', '', 'Run afterglow-agent beside the Dask scheduler and workers (see the README); their records appear here as they arrive — turn on Live tail to watch.'));
      return;
    }
    const what = view.q && view.q !== '*' ? `match ${view.q}` : 'match';
    const filters = view.filters.length > 0 ? ` with ${view.filters.length} filter${view.filters.length === 1 ? '' : 's'}` : '';
    const tries = [];
    const offer = (label, next) => {
      const button = el('button', 'empty-try', label);
      button.type = 'button';
      button.addEventListener('click', () => search({ ...view, ...next, focus: null }));
      tries.push(button);
    };
    if (view.start || view.end) offer('Search all time', { start: '', end: '' });
    if (view.filters.length > 0) offer('Remove the filters', { filters: [] });
    if (view.q && view.q !== '*') offer('Search everything (*)', { q: '*' });
    const line = el('p', 'empty-tries');
    line.append('Try: ', ...tries);
    ui.empty.replaceChildren(el('p', '', `No records ${what}${filters} ${rangeText(view)}.`), line);
  }

  /** Opens the context of the hit `key` (inline when it is among the rows, else above them). */
  function openContext(key, { scroll = false } = {}) {
    const named = parseHitKey(key);
    if (!named) {
      view.focus = null;
      syncUrl();
      return;
    }
    const previous = context?.key;
    contextController?.abort();
    contextController = new AbortController();
    const hit = run.rows.find((row) => hitKey(row) === key) ?? null;
    context = { key, hit, status: 'loading', data: null, error: '' };
    view.focus = key;
    syncUrl();
    if (previous && previous !== key) list.refresh(previous);
    showContext();
    if (scroll) list.scrollTo(key);
    const mine = context;
    getJson('/api/v1/logs/context', { ...named, before: CONTEXT_LINES, after: CONTEXT_LINES }, contextController.signal)
      .then((data) => Object.assign(mine, { status: 'ready', data, hit: mine.hit ?? data.hit }))
      .catch((e) => Object.assign(mine, { status: 'error', error: `Context: ${e?.message ?? e}` }))
      .finally(() => {
        if (context === mine) showContext();
      });
  }

  /** Closes the context; `keepFocus` leaves the URL's focus for the next search to open. */
  function closeContext({ keepFocus = false } = {}) {
    contextController?.abort();
    const key = context?.key;
    context = null;
    if (key) list.refresh(key);
    renderFocusPanel();
    if (!keepFocus && view.focus) {
      view.focus = null;
      syncUrl();
    }
  }

  function showContext() {
    list.refresh(context.key);
    renderFocusPanel();
  }

  /** The context of a focused hit that is not among the rows shown. */
  function renderFocusPanel() {
    const outside = context && !run.keys.has(context.key);
    ui.focusPanel.hidden = !outside;
    ui.focusPanel.replaceChildren(...(outside ? [renderContext(context, 'This record is not among the hits shown.')] : []));
  }

  function aroundFocus() {
    const hit = context?.hit ?? context?.data?.hit;
    if (hit) search({ ...view, ...aroundRange(hit.ts), focus: context.key });
  }

  function startLive() {
    live?.stop();
    const gen = run.gen;
    const state = { stop: null, open: false, added: 0, newest: null, problem: '' };
    state.stop = followTail(effectiveQuery(view.q, view.filters), {
      onOpen: () => {
        state.open = true;
        state.problem = '';
        renderLive();
      },
      onHit: (hit) => {
        const key = hitKey(hit);
        if (gen !== run.gen || run.keys.has(key)) return;
        fresh.add(key);
        addHits([hit]);
        state.added += 1;
        state.newest = key;
        renderSummary();
        renderLive();
      },
      onProblem: (text, stopped) => {
        state.problem = text;
        if (stopped) {
          stopLive();
          showError(text);
        } else {
          state.open = false;
          renderLive();
        }
      },
    });
    live = state;
    renderLive();
  }

  function stopLive() {
    live?.stop();
    live = null;
    renderLive();
  }

  function renderLive() {
    ui.live.setAttribute('aria-pressed', String(Boolean(live)));
    ui.liveStatus.hidden = !live;
    if (!live) return;
    ui.liveStatus.dataset.state = live.open ? 'open' : 'connecting';
    const news = live.added > 0 ? ` · ${live.added} new — show the newest` : ' · waiting for new matches';
    ui.liveStatus.textContent = live.open ? `Live${news}` : (live.problem || 'Live tail: connecting…');
    ui.liveStatus.disabled = !live.newest;
  }

  ui.form.addEventListener('submit', (e) => {
    e.preventDefault();
    search({ ...view, q: ui.q.value, ...picker.read(), order: ui.order.value, focus: null });
  });
  ui.order.addEventListener('change', () => search({ ...view, order: ui.order.value, focus: null }));
  ui.loadMore.addEventListener('click', loadMore);
  ui.live.addEventListener('click', () => (live ? stopLive() : startLive()));
  ui.liveStatus.addEventListener('click', () => {
    if (live?.newest) list.scrollTo(live.newest);
  });

  /** A click on a hit opens its context (or closes it); its buttons do what they say. */
  function onResultsClick(e) {
    const target = e.target instanceof Element ? e.target : null;
    if (!target) return;
    if (target.closest('.context-close')) return closeContext();
    if (target.closest('.context-around')) return aroundFocus();
    const row = target.closest('.hit');
    if (!row || target.closest('.context')) return;
    const key = `${row.dataset.stream}-${row.dataset.seq}`;
    if (target.closest('.toggle')) {
      if (!expanded.delete(key)) expanded.add(key);
      list.refresh(key);
      return;
    }
    // The end of a text selection is not a click on the hit.
    if (String(window.getSelection()) !== '') return;
    if (context?.key === key) closeContext();
    else openContext(key);
  }
  ui.resultsCol.addEventListener('click', onResultsClick);
  ui.results.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && e.target instanceof Element && e.target.classList.contains('hit')) {
      e.preventDefault();
      onResultsClick(e);
    }
  });

  const onKey = (e) => {
    if (e.key === 'Escape' && context) {
      e.preventDefault();
      closeContext();
      return;
    }
    if (e.key !== '/' || e.ctrlKey || e.metaKey || e.altKey || e.isComposing) return;
    const t = e.target;
    if (t instanceof HTMLElement && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
    e.preventDefault();
    ui.q.focus();
    ui.q.select();
  };
  document.addEventListener('keydown', onKey);

  writeForm();
  syncUrl();
  runSearch();
  return () => {
    document.removeEventListener('keydown', onKey);
    run.controller?.abort();
    contextController?.abort();
    live?.stop();
    list.destroy();
    histogram.clear();
  };
}
