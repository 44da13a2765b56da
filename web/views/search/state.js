// views/search/state.js — the search view's shareable state: what the page URL carries (query,
// range, order, facet filters, focused hit), and the parameters the API gets from it. Facet
// filters stay out of the query box and go to the API as parameters of their own (`filter=` and
// `exclude=`, repeated), so that each facet is counted without its own filter; only the live
// tail, which takes a query alone, gets them ANDed to the query.

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
    filters: [
      ...sp.getAll('filter').flatMap((text) => parseFilter(text, false)),
      ...sp.getAll('exclude').flatMap((text) => parseFilter(text, true)),
    ],
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
    ...filterParams(state.filters),
    focus: state.focus ?? undefined,
  };
}

/** The API's (and the page URL's) `filter` and `exclude` parameters: `field:value` each. */
export function filterParams(filters) {
  const of = (exclude) => filters.filter((f) => Boolean(f.exclude) === exclude).map((f) => `${f.field}:${f.value}`);
  return { filter: of(false), exclude: of(true) };
}

/**
 * The filters of one `filter` (or `exclude`) parameter: `field:value`. A link made before
 * filters had parameters of their own carries them as clauses in one `filter`
 * (`node:"a" -level:"INFO"`): those are read too.
 */
function parseFilter(text, exclude) {
  const clause = new RegExp(`(-?)(${FACET_FIELDS.join('|')}):"((?:[^"\\\\]|\\\\.)*)"`, 'g');
  const clauses = exclude ? [] : [...text.matchAll(clause)];
  if (clauses.length > 0) {
    return clauses.map(([, minus, field, value]) => ({
      field,
      value: value.replace(/\\(.)/g, '$1'),
      exclude: minus === '-',
    }));
  }
  const colon = text.indexOf(':');
  if (colon < 0 || !FACET_FIELDS.includes(text.slice(0, colon))) return [];
  return [{ field: text.slice(0, colon), value: text.slice(colon + 1), exclude }];
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

/** `"value"` in the query syntax: quotes and backslashes escaped. */
function quote(value) {
  return `"${value.replace(/["\\]/g, '\\$&')}"`;
}

/**
 * The query the live tail gets (it takes no filter parameters): the typed query ANDed with the
 * filters; values included on one field are alternatives (`node:("a" OR "b")`), excluded values
 * are each ruled out, as the API's filters do.
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
