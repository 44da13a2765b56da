// views/search/facets.js — the facet panel and the active filters: per field, the values of the
// current matches with their counts. A click filters to a value, shift-click (or its ⊖ button)
// excludes it, and a click on an active value (or on its chip above the hits) drops the filter.

import { el, nodeHue, severity } from '../../lib/dom.js';
import { FACET_FIELDS } from './state.js';

/** Values listed per field before "show all". */
const SHOWN_VALUES = 8;

/** How a value reads: the empty value (records without a level or logger) gets a name. */
function valueText(value) {
  return value === '' ? '(none)' : value;
}

/** A value's label, coloured as the hits show it for nodes and levels. */
function valueLabel(field, value) {
  if (field === 'node') {
    const chip = el('span', 'node', valueText(value));
    chip.style.setProperty('--hue', String(nodeHue(value)));
    return chip;
  }
  if (field === 'level') return el('span', `level level-${severity(value)}`, valueText(value));
  return el('span', 'facet-name', valueText(value));
}

function filterText(filter) {
  return `${filter.exclude ? 'not ' : ''}${filter.field}: ${valueText(filter.value)}`;
}

/** One facet value: the filter button with its count, and the exclude button. */
function facetRow(field, value, count, active) {
  const row = el('li', `facet-row${active ? (active.exclude ? ' is-excluded' : ' is-included') : ''}`);
  row.dataset.field = field;
  row.dataset.value = value;
  const pick = el('button', 'facet-value');
  pick.type = 'button';
  pick.setAttribute('aria-pressed', String(Boolean(active && !active.exclude)));
  pick.title = active ? `Remove the filter ${filterText(active)}`
    : `Show only ${field} ${valueText(value)} (Shift-click: exclude it)`;
  pick.append(valueLabel(field, value), el('span', 'facet-count', count.toLocaleString('en-US')));
  const exclude = el('button', 'facet-exclude', '⊖');
  exclude.type = 'button';
  exclude.setAttribute('aria-pressed', String(Boolean(active && active.exclude)));
  exclude.setAttribute('aria-label', `Exclude ${field} ${valueText(value)}`);
  exclude.title = active?.exclude ? `Remove the filter ${filterText(active)}` : `Exclude ${field} ${valueText(value)}`;
  row.append(pick, exclude);
  return row;
}

/**
 * Wires the facet list (`fields`) and the active filter chips (`chips`); `onFilter(filter)` gets
 * the filter a click asks for (see toggleFilter). Returns `{ render, message }`.
 */
export function facetPanel({ fields, chips }, onFilter) {
  const showingAll = new Set();
  let shown = { facets: {}, filters: [] };

  fields.addEventListener('click', (e) => {
    const button = e.target instanceof Element ? e.target.closest('button') : null;
    if (!button) return;
    if (button.classList.contains('facet-more')) {
      const field = button.dataset.field;
      if (!showingAll.delete(field)) showingAll.add(field);
      render(shown.facets, shown.filters);
      return;
    }
    const row = button.closest('.facet-row');
    if (!row) return;
    const wantsExclude = button.classList.contains('facet-exclude') || e.shiftKey;
    const active = shown.filters.find((f) => f.field === row.dataset.field && f.value === row.dataset.value);
    // A plain click on an active value drops its filter; an exclusion asked twice drops it too.
    const exclude = active && !wantsExclude ? active.exclude : wantsExclude;
    onFilter({ field: row.dataset.field, value: row.dataset.value, exclude });
  });

  chips.addEventListener('click', (e) => {
    const chip = e.target instanceof Element ? e.target.closest('.filter-chip') : null;
    if (chip) onFilter(shown.filters[Number(chip.dataset.index)]);
  });

  /** Shows the counts of `facets` (`{ field: { value: count } }`) and the active `filters`. */
  function render(facets, filters) {
    shown = { facets, filters };
    const sections = FACET_FIELDS.map((field) => {
      const counts = new Map(Object.entries(facets[field] ?? {}));
      const activeOf = (value) => filters.find((f) => f.field === field && f.value === value);
      for (const f of filters) if (f.field === field && !counts.has(f.value)) counts.set(f.value, 0);
      const values = [...counts].sort(([a, ca], [b, cb]) =>
        Number(Boolean(activeOf(b))) - Number(Boolean(activeOf(a))) || cb - ca || a.localeCompare(b));
      const section = el('section', 'facet');
      section.append(el('h3', '', field));
      if (values.length === 0) {
        section.append(el('p', 'facet-none', 'no values'));
        return section;
      }
      const all = showingAll.has(field);
      const list = el('ul', 'facet-values');
      list.append(...values.slice(0, all ? values.length : SHOWN_VALUES)
        .map(([value, count]) => facetRow(field, value, count, activeOf(value))));
      section.append(list);
      if (values.length > SHOWN_VALUES) {
        const more = el('button', 'facet-more', all ? 'Show fewer' : `Show all ${values.length}`);
        more.type = 'button';
        more.dataset.field = field;
        section.append(more);
      }
      return section;
    });
    fields.replaceChildren(...sections);

    chips.replaceChildren(...filters.map((filter, index) => {
      const chip = el('button', `filter-chip${filter.exclude ? ' is-excluded' : ''}`, `${filterText(filter)} ✕`);
      chip.type = 'button';
      chip.dataset.index = String(index);
      chip.title = 'Remove this filter';
      return chip;
    }));
    chips.hidden = filters.length === 0;
  }

  /** Replaces the counts with a line of text (`className` 'error' for a failure). */
  function message(text, className = 'facet-none') {
    fields.replaceChildren(el('p', className, text));
  }

  return { render, message };
}
