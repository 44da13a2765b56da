// app.js — owns the Afterglow search page behaviour: form/URL state, /api/v1/logs/search calls, and safe (textContent-only) rendering of hits.

const API_PATH = '/api/v1/logs/search';
const PAGE_SIZE = 200;

// ---------------------------------------------------------------------------
// Pure helpers (exported so they can be unit-tested outside a browser).
// ---------------------------------------------------------------------------

/** Coerce any JSON value to a display string ('' for null/undefined). */
export function str(v) {
  return v === null || v === undefined ? '' : String(v);
}

/** Stable 0..359 hue for a node name: FNV-1a followed by a murmur3 finaliser so similar names spread apart. */
export function nodeHue(name) {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) % 360;
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

/**
 * Format an RFC 3339 timestamp as UTC `YYYY-MM-DD HH:MM:SS.mmm`.
 * UTC ('Z') input is formatted from the string itself so sub-millisecond digits are truncated, never rounded.
 * Returns the input unchanged if it cannot be parsed.
 */
export function formatTs(ts) {
  const raw = str(ts);
  const m = /^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:[.,](\d+))?([Zz]|[+-]\d{2}:?\d{2})?$/.exec(raw);
  if (!m) return raw;
  const [, date, time, frac = '', zone = 'Z'] = m;
  const ms = frac.padEnd(3, '0').slice(0, 3);
  if (zone === 'Z' || zone === 'z') return `${date} ${time}.${ms}`;
  const d = new Date(`${date}T${time}.${ms}${zone.length === 5 ? zone.slice(0, 3) + ':' + zone.slice(3) : zone}`);
  if (Number.isNaN(d.getTime())) return raw;
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds(), 3)}`;
}

/** Map a level name to a severity class: error | warn | info | debug | other. */
export function severity(level) {
  switch (str(level).toUpperCase()) {
    case 'CRITICAL': case 'FATAL': case 'ERROR': return 'error';
    case 'WARNING': case 'WARN': return 'warn';
    case 'INFO': return 'info';
    case 'DEBUG': case 'TRACE': return 'debug';
    default: return 'other';
  }
}

/**
 * Split a message into its first line and the rest (rest keeps its leading newline,
 * so first + rest === message). extraLines counts non-trailing lines after the first.
 */
export function splitMessage(message) {
  const msg = str(message);
  const body = msg.replace(/\s+$/, '');
  const nl = body.search(/\r?\n/);
  if (nl < 0) return { first: msg, rest: '', extraLines: 0 };
  return { first: msg.slice(0, nl), rest: msg.slice(nl), extraLines: body.split(/\r?\n/).length - 1 };
}

/** Normalise search parameters (from the form or the URL). */
export function normalizeParams(p) {
  return {
    q: str(p.q).trim(),
    start: str(p.start).trim(),
    end: str(p.end).trim(),
    order: p.order === 'desc' ? 'desc' : 'asc',
  };
}

/** Query string for the API request. */
export function apiQuery(params, cursor) {
  const sp = new URLSearchParams();
  sp.set('q', params.q);
  if (params.start) sp.set('start', params.start);
  if (params.end) sp.set('end', params.end);
  sp.set('limit', String(PAGE_SIZE));
  sp.set('order', params.order);
  if (cursor) sp.set('cursor', cursor);
  return sp.toString();
}

/** Query string for the page URL (shareable state: q, start, end, order). */
export function pageQuery(params) {
  const sp = new URLSearchParams();
  sp.set('q', params.q);
  if (params.start) sp.set('start', params.start);
  if (params.end) sp.set('end', params.end);
  sp.set('order', params.order);
  return sp.toString();
}

/** Search parameters from a page URL query string; no q at all means `*` (everything). */
export function paramsFromLocation(search) {
  const sp = new URLSearchParams(search);
  return normalizeParams({
    q: sp.has('q') ? sp.get('q') : '*',
    start: sp.get('start'),
    end: sp.get('end'),
    order: sp.get('order'),
  });
}

class ApiError extends Error {}

/** Fetch one page of hits. Throws ApiError with a human readable message on failure. */
async function fetchPage(params, cursor, signal) {
  let res;
  try {
    res = await fetch(`${API_PATH}?${apiQuery(params, cursor)}`, {
      signal,
      headers: { Accept: 'application/json' },
    });
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new ApiError(`Could not reach the server: ${e && e.message ? e.message : e}`);
  }
  const text = await res.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = null; }
  if (!res.ok) {
    const apiMsg = body && typeof body.error === 'string' && body.error ? body.error : '';
    if (res.status === 400 && apiMsg) throw new ApiError(apiMsg);
    const status = `HTTP ${res.status}${res.statusText ? ' ' + res.statusText : ''}`;
    throw new ApiError(apiMsg ? `${status}: ${apiMsg}` : status);
  }
  if (!body || !Array.isArray(body.hits)) {
    throw new ApiError('Unexpected response from server (no "hits" array).');
  }
  const next = typeof body.next_cursor === 'string' && body.next_cursor !== '' ? body.next_cursor : null;
  return { hits: body.hits, next };
}

// ---------------------------------------------------------------------------
// DOM
// ---------------------------------------------------------------------------

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

function renderHit(h) {
  const level = str(h.level).toUpperCase();
  const node = str(h.node);
  const sev = severity(level);

  const li = el('li', `hit sev-${sev}`);
  li.dataset.node = node;
  li.dataset.level = level;
  if (h.cluster !== undefined) li.dataset.cluster = str(h.cluster);
  // (stream, seq) identifies a record: the key for context views and tests.
  li.dataset.stream = str(h.stream);
  li.dataset.seq = str(h.seq);

  const ts = el('time', 'ts', formatTs(h.ts));
  ts.dateTime = str(h.ts);
  ts.title = str(h.ts);

  const nodeChip = el('span', 'node', node || '—');
  nodeChip.style.setProperty('--hue', String(nodeHue(node)));
  nodeChip.title = [h.cluster, node, h.source, h.stream && `stream ${h.stream}`, h.seq !== undefined && `seq ${h.seq}`]
    .filter((x) => x !== undefined && x !== null && x !== '' && x !== false)
    .map(str)
    .join(' · ');

  const role = el('span', 'role', str(h.role));
  const lvl = el('span', `level level-${sev}`, level || '—');
  const logger = el('span', 'logger', str(h.logger));
  logger.title = str(h.logger);

  const cell = el('div', 'msg-cell');
  const message = el('div', 'message');
  const { first, rest, extraLines } = splitMessage(h.message);
  if (extraLines === 0) {
    message.textContent = str(h.message);
    cell.append(message);
  } else {
    // first + rest === full message, so .message's textContent is always the exact text.
    message.append(el('span', 'msg-first', first), el('span', 'msg-rest', rest));
    const toggle = el('button', 'toggle', `+${extraLines} line${extraLines === 1 ? '' : 's'}`);
    toggle.type = 'button';
    toggle.dataset.lines = String(extraLines);
    toggle.setAttribute('aria-expanded', 'false');
    cell.append(message, toggle);
  }

  li.append(ts, nodeChip, role, lvl, logger, cell);
  return li;
}

function init() {
  const $ = (id) => document.getElementById(id);
  const ui = {
    form: $('search-form'),
    q: $('q'),
    start: $('start'),
    end: $('end'),
    order: $('order'),
    search: $('search'),
    results: $('results'),
    loadMore: $('load-more'),
    error: $('error'),
    count: $('count'),
    status: $('status'),
    empty: $('empty'),
    header: document.querySelector('.hit-header'),
  };

  const state = {
    gen: 0,            // incremented per new search; stale responses are dropped
    controller: null,  // AbortController of the current search (and its load-mores)
    params: null,      // parameters of the search currently displayed
    cursor: null,      // next_cursor of the last page, or null
    shown: 0,
    loadingMore: false,
  };

  function readForm() {
    return normalizeParams({ q: ui.q.value, start: ui.start.value, end: ui.end.value, order: ui.order.value });
  }

  function setStart(value) {
    ui.start.querySelectorAll('option.custom').forEach((o) => o.remove());
    const known = Array.from(ui.start.options).some((o) => o.value === value);
    if (!known) {
      const opt = el('option', 'custom', `From ${value}`);
      opt.value = value;
      ui.start.insertBefore(opt, ui.start.options[ui.start.options.length - 1] || null);
    }
    ui.start.value = value;
  }

  function writeForm(p) {
    ui.q.value = p.q;
    setStart(p.start);
    ui.end.value = p.end;
    ui.order.value = p.order;
  }

  function syncUrl(p) {
    const url = `${location.pathname}?${pageQuery(p)}${location.hash}`;
    history.replaceState(null, '', url);
  }

  function showError(msg) {
    ui.error.textContent = msg;
    ui.error.hidden = false;
  }

  function clearError() {
    ui.error.textContent = '';
    ui.error.hidden = true;
  }

  function setStatus(text) {
    ui.status.textContent = text;
    ui.results.setAttribute('aria-busy', text ? 'true' : 'false');
  }

  function renderSummary() {
    const n = state.shown;
    ui.count.textContent = `${n} hit${n === 1 ? '' : 's'} shown${state.cursor ? ' (more available)' : ''}`;
    ui.empty.hidden = n > 0;
    ui.header.hidden = n === 0;
    ui.loadMore.hidden = !state.cursor;
    ui.loadMore.disabled = false;
  }

  function appendHits(hits) {
    const frag = document.createDocumentFragment();
    for (const h of hits) {
      if (h && typeof h === 'object') frag.append(renderHit(h));
    }
    state.shown += frag.childElementCount;
    ui.results.append(frag);
  }

  async function runSearch(params) {
    const gen = ++state.gen;
    if (state.controller) state.controller.abort();
    state.controller = new AbortController();
    state.params = params;
    state.cursor = null;
    state.shown = 0;
    state.loadingMore = false;

    clearError();
    ui.results.replaceChildren();
    ui.empty.hidden = true;
    ui.header.hidden = true;
    ui.loadMore.hidden = true;
    ui.count.textContent = '';
    setStatus('Searching…');

    await fetchAndAppend(gen, null);
    if (gen === state.gen) setStatus('');
  }

  /** Fetches the page after `cursor` of the current search and appends it; answers that
   *  arrive after a newer search started are dropped. */
  async function fetchAndAppend(gen, cursor) {
    try {
      const page = await fetchPage(state.params, cursor, state.controller.signal);
      if (gen !== state.gen) return;
      appendHits(page.hits);
      state.cursor = page.next;
      renderSummary();
    } catch (e) {
      if (gen !== state.gen || (e && e.name === 'AbortError')) return;
      showError(e && e.message ? e.message : String(e));
    }
  }

  async function loadMore() {
    if (!state.cursor || !state.params || state.loadingMore) return;
    const gen = state.gen;
    state.loadingMore = true;
    ui.loadMore.disabled = true;
    clearError();
    setStatus('Loading more…');
    await fetchAndAppend(gen, state.cursor);
    if (gen === state.gen) {
      state.loadingMore = false;
      ui.loadMore.disabled = false;
      setStatus('');
    }
  }

  function submit() {
    const params = readForm();
    syncUrl(params);
    runSearch(params);
  }

  ui.form.addEventListener('submit', (e) => {
    e.preventDefault();
    submit();
  });

  ui.loadMore.addEventListener('click', () => { loadMore(); });

  ui.results.addEventListener('click', (e) => {
    const btn = e.target instanceof Element ? e.target.closest('button.toggle') : null;
    if (!btn) return;
    const hit = btn.closest('.hit');
    const expanded = hit.classList.toggle('expanded');
    btn.setAttribute('aria-expanded', String(expanded));
    const n = Number(btn.dataset.lines);
    btn.textContent = expanded ? 'collapse' : `+${n} line${n === 1 ? '' : 's'}`;
  });

  ui.empty.querySelector('.try-all').addEventListener('click', () => {
    writeForm({ q: '*', start: '', end: '', order: ui.order.value });
    submit();
  });

  document.addEventListener('keydown', (e) => {
    if (e.key !== '/' || e.ctrlKey || e.metaKey || e.altKey || e.isComposing) return;
    const t = e.target;
    if (t instanceof HTMLElement && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
    e.preventDefault();
    ui.q.focus();
    ui.q.select();
  });

  const initial = paramsFromLocation(location.search);
  writeForm(initial);
  syncUrl(initial);
  runSearch(initial);
}

if (typeof document !== 'undefined') {
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init, { once: true });
  else init();
}
