// views/search/state.js — the search view's shareable state: what the page URL carries (query,
// range, order, facet filters, focused hit), and the one query the API gets from it. Facet
// filters stay out of the query box and are ANDed to it here, so the box keeps what was typed.

import { str } from '../../lib/dom.js';

/** The fields the facet panel counts and filters by. */
export const FACET_FIELDS = ['cluster', 'node', 'role', 'level', 'logger'];

/**
 * A view state from loose input (a form, a URL): `{ q, start, end, order, filters, focus }`,
 * where `filters` is `[{ field, value, exclude }]` and `focus` a hit key or null.
 */
export function normalizeState(input) {
  return {
    q: str(input.q).trim(),
    start: str(input.start).trim(),
    end: str(input.end).trim(),
    order: input.order === 'desc' ? 'desc' : 'asc',
    filters: Array.isArray(input.filters) ? input.filters : [],
    focus: input.focus ? str(input.focus) : null,
  };
}

/** The state a page URL query string names; no `q` at all means `*` (everything). */
export function stateFromLocation(search) {
  const sp = new URLSearchParams(search);
  return normalizeState({
    q: sp.has('q') ? sp.get('q') : '*',
    start: sp.get('start'),
    end: sp.get('end'),
    order: sp.get('order'),
    filters: parseFilters(sp.get('filter') ?? ''),
    focus: sp.get('focus'),
  });
}

/** The page URL's parameters for a state (the inverse of stateFromLocation). */
export function locationParams(state) {
  return {
    q: state.q,
    start: state.start,
    end: state.end,
    order: state.order === 'desc' ? 'desc' : undefined,
    filter: formatFilters(state.filters),
    focus: state.focus ?? undefined,
  };
}

/** `"value"` in the query syntax: quotes and backslashes escaped. */
function quote(value) {
  return `"${value.replace(/["\\]/g, '\\$&')}"`;
}

/** Filters as query clauses: `node:"a" -level:"INFO"` (how the URL carries them). */
function formatFilters(filters) {
  return filters.map((f) => `${f.exclude ? '-' : ''}${f.field}:${quote(f.value)}`).join(' ');
}

/** The filters in a `formatFilters` string; anything else in it is ignored. */
function parseFilters(text) {
  const clause = new RegExp(`(-?)(${FACET_FIELDS.join('|')}):"((?:[^"\\\\]|\\\\.)*)"`, 'g');
  return [...text.matchAll(clause)].map(([, minus, field, value]) => ({
    field,
    value: value.replace(/\\(.)/g, '$1'),
    exclude: minus === '-',
  }));
}

/**
 * The filters after a click on a facet value: the same filter again removes it; otherwise it
 * replaces any other filter on that value (include ⇄ exclude).
 */
export function toggleFilter(filters, { field, value, exclude }) {
  const same = (f) => f.field === field && f.value === value;
  const existing = filters.find(same);
  const rest = filters.filter((f) => !same(f));
  return existing && existing.exclude === exclude ? rest : [...rest, { field, value, exclude }];
}

/**
 * The query the API gets: the typed query ANDed with the filters; values included on one field
 * are alternatives (`node:("a" OR "b")`), excluded values are each ruled out.
 */
export function effectiveQuery(q, filters) {
  if (filters.length === 0) return q || '*';
  const clauses = [q && q !== '*' ? `(${q})` : '*'];
  for (const field of FACET_FIELDS) {
    const included = filters.filter((f) => f.field === field && !f.exclude).map((f) => quote(f.value));
    if (included.length > 0) clauses.push(`${field}:(${included.join(' OR ')})`);
  }
  for (const f of filters.filter((f) => f.exclude)) clauses.push(`-${f.field}:${quote(f.value)}`);
  return clauses.join(' AND ');
}

/** The key naming one record: `<stream>-<seq>`, as the URL's `focus` carries it. */
export function hitKey(hit) {
  return `${str(hit.stream)}-${str(hit.seq)}`;
}

/** `{ stream, seq }` of a hit key, or null when it is not one. */
export function parseHitKey(key) {
  const m = /^([0-9a-f]{16})-(\d+)$/.exec(str(key));
  return m ? { stream: m[1], seq: m[2] } : null;
}
