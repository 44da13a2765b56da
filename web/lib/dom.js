// lib/dom.js — small helpers every view shares: element creation (text only, never HTML),
// value formatting (UTC times, levels, node colours) and multi-line message splitting.

/** Coerce any JSON value to a display string ('' for null/undefined). */
export function str(v) {
  return v === null || v === undefined ? '' : String(v);
}

/** A new element with a class and text content (never parsed as HTML). */
export function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
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
  return formatDate(d);
}

/** A Date as UTC `YYYY-MM-DD HH:MM:SS.mmm`. */
export function formatDate(d) {
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
