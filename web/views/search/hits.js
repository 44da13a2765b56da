// views/search/hits.js — one search hit as a row (time, node chip, role, level, logger, message;
// multi-line records collapsed to their first line) and the context block opened under it: the
// records before and after it from the same node and source. Log data is set as text only.

import { el, formatTs, nodeHue, severity, splitMessage, str } from '../../lib/dom.js';

function nodeChip(hit) {
  const node = str(hit.node);
  const chip = el('span', 'node', node || '—');
  chip.style.setProperty('--hue', String(nodeHue(node)));
  chip.title = [hit.cluster, node, hit.source].map(str).filter(Boolean).join(' · ');
  return chip;
}

function timeCell(hit) {
  // A line without a timestamp of its own got its time from the agent (`ts_inferred`): `~`.
  const inferred = hit.ts_inferred === true;
  const ts = el('time', inferred ? 'ts ts-inferred' : 'ts', `${inferred ? '~' : ''}${formatTs(hit.ts)}`);
  ts.dateTime = str(hit.ts);
  ts.title = inferred
    ? `${str(hit.ts)} (approximate: the line had no timestamp; the agent placed it between the records around it)`
    : str(hit.ts);
  return ts;
}

/** The mark of a record the agent cut at its size limit (`truncated`), or nothing. */
function truncatedMark(hit) {
  if (hit.truncated !== true) return [];
  const mark = el('span', 'truncated', 'truncated');
  mark.title = 'The agent cut this record at its size limit (max_line_bytes); the rest of the line is not stored';
  return [mark];
}

function levelChip(hit) {
  const level = str(hit.level).toUpperCase();
  return el('span', `level level-${severity(level)}`, level || '—');
}

/** The message cell: the whole text, or its first line and a toggle for the rest. */
function messageCell(hit, expanded) {
  const cell = el('div', 'msg-cell');
  const message = el('div', 'message');
  const { first, rest, extraLines } = splitMessage(hit.message);
  if (extraLines === 0) {
    message.textContent = str(hit.message);
    cell.append(message);
    return cell;
  }
  // first + rest === the message, so .message's textContent is always the exact text.
  message.append(el('span', 'msg-first', first), el('span', 'msg-rest', rest));
  const lines = `+${extraLines} line${extraLines === 1 ? '' : 's'}`;
  const toggle = el('button', 'toggle', expanded ? 'collapse' : lines);
  toggle.type = 'button';
  toggle.setAttribute('aria-expanded', String(expanded));
  toggle.title = expanded ? 'Show the first line only' : `Show all ${extraLines + 1} lines`;
  cell.append(message, toggle);
  return cell;
}

/**
 * The row of a hit. `expanded` shows a multi-line message whole; `context` (see renderContext)
 * opens the context block under it; `fresh` marks a record that live tail just brought.
 */
export function renderHit(hit, { expanded = false, context = null, fresh = false } = {}) {
  const sev = severity(hit.level);
  const row = el('li', `hit sev-${sev}`);
  row.classList.toggle('expanded', expanded);
  row.classList.toggle('focused', Boolean(context));
  row.classList.toggle('fresh', fresh);
  row.tabIndex = 0;
  row.dataset.node = str(hit.node);
  row.dataset.level = str(hit.level).toUpperCase();
  row.dataset.cluster = str(hit.cluster);
  // (stream, seq) names a record: the key of its context, of the URL's focus and of tests.
  row.dataset.stream = str(hit.stream);
  row.dataset.seq = str(hit.seq);
  const logger = el('span', 'logger', str(hit.logger));
  logger.title = str(hit.logger);
  const message = messageCell(hit, expanded);
  message.prepend(...truncatedMark(hit));
  row.append(timeCell(hit), nodeChip(hit), el('span', 'role', str(hit.role)), levelChip(hit), logger,
    message);
  if (context) row.append(renderContext(context));
  return row;
}

/** One record inside a context block. */
function contextLine(hit, isHit) {
  const line = el('li', `context-line sev-${severity(hit.level)}${isHit ? ' is-hit' : ''}`);
  line.append(timeCell(hit), levelChip(hit), ...truncatedMark(hit), el('span', 'context-message', str(hit.message)));
  if (isHit) line.setAttribute('aria-current', 'true');
  return line;
}

/**
 * The context block of a hit. `context` is `{ hit, status: 'loading' | 'ready' | 'error',
 * data: { before, hit, after }, error }` (`hit` is null until loaded when the hit is not among
 * the rows shown); `note` is said first.
 */
export function renderContext(context, note = '') {
  const block = el('div', 'context');
  block.setAttribute('role', 'region');
  block.setAttribute('aria-label', 'Records around this one');
  const head = el('div', 'context-head');
  const where = el('span', 'context-where');
  if (note) where.append(el('strong', '', note), ' ');
  const hit = context.hit ?? context.data?.hit;
  where.append('Records around this one');
  if (hit) where.append(' from ', nodeChip(hit), ` ${str(hit.source)}`);
  const around = el('button', 'context-around', 'Around this time (±5 min)');
  around.type = 'button';
  around.title = 'Search the ten minutes around this record';
  const close = el('button', 'context-close', 'Close');
  close.type = 'button';
  close.title = 'Close the context (Esc)';
  close.setAttribute('aria-keyshortcuts', 'Escape');
  head.append(where, around, close);
  block.append(head);

  if (context.status === 'loading') {
    block.append(el('p', 'context-note', 'Loading the records around it…'));
  } else if (context.status === 'error') {
    block.append(el('div', 'error', context.error));
  } else {
    const { before, hit, after } = context.data;
    const lines = el('ol', 'context-lines');
    lines.append(...before.map((h) => contextLine(h, false)), contextLine(hit, true),
      ...after.map((h) => contextLine(h, false)));
    block.append(lines);
    if (before.length + after.length === 0) {
      block.append(el('p', 'context-note', 'No other records from this node and source.'));
    }
  }
  return block;
}
