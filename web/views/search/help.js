// views/search/help.js — the query syntax help under the query box: what to write (as in
// docs/search.md) and example searches for Dask that run when clicked.

import { el } from '../../lib/dom.js';

const SYNTAX = [
  ['killed signal', 'records with both words (in the message)'],
  ['"killed by signal"', 'the words in this order'],
  ['killed OR restarted', 'records with either'],
  ['"Compute Failed" -node:scheduler-0', 'the first without the second (- or NOT)'],
  ['level:(ERROR OR WARNING)', 'a field with any of the values'],
  ['(timeout OR unresponsive) AND role:worker', 'parentheses group'],
  ['logger:distributed.worker*', 'a field starting so: the logger and its children'],
  ['unrespons*', 'words starting so (in the message)'],
  ['tcp://10.0.0.5:40123', 'an address, searched as a phrase'],
  ['*', 'everything'],
];

const EXAMPLES = [
  ['Everything that went wrong', 'level:(ERROR OR CRITICAL OR WARNING)'],
  ['A failing task and its traceback', '"Compute Failed"'],
  ['A worker\'s death', '"killed by signal" OR "Remove worker" OR KilledWorker OR "workers died"'],
  ['Workers restarted by their nanny', 'logger:distributed.nanny AND "Restarting worker"'],
  ['Event-loop stalls', '"Event loop was unresponsive"'],
  ['Memory trouble', '"Memory use is high" OR "Unmanaged memory" OR spilling OR "exceeded 95% memory budget"'],
  ['Connection trouble', 'CommClosedError OR "Stream is closed" OR "failed during get data" OR TimeoutError'],
  ['Task print() output (no level)', 'level:""'],
];

/** Fills the `<details>` element `details`; `onExample(query)` runs a clicked example. */
export function fillSyntaxHelp(details, onExample) {
  const syntax = el('dl', 'syntax');
  for (const [query, meaning] of SYNTAX) syntax.append(el('dt', '', query), el('dd', '', meaning));
  const fields = el('p', 'syntax-fields');
  fields.append('Fields: ', el('code', '', 'cluster'), ' ', el('code', '', 'node'), ' ', el('code', '', 'role'), ' ',
    el('code', '', 'level'), ' ', el('code', '', 'logger'), ' ', el('code', '', 'source'),
    ' match whole values, case included (level:ERROR, not level:error); words match the message in any case.',
    ' Time is not part of the query: pick the range beside it.');
  const examples = el('ul', 'syntax-examples');
  for (const [title, query] of EXAMPLES) {
    const run = el('button', 'syntax-example', query);
    run.type = 'button';
    run.dataset.query = query;
    run.title = 'Search for this';
    const item = el('li');
    item.append(el('span', 'syntax-example-title', title), run);
    examples.append(item);
  }
  details.append(el('summary', '', 'Query syntax and examples'), syntax, fields,
    el('h3', '', 'Examples for Dask (click to search)'), examples);
  examples.addEventListener('click', (e) => {
    const button = e.target instanceof Element ? e.target.closest('button.syntax-example') : null;
    if (button) onExample(button.dataset.query);
  });
}
