// views/search/tail.js — live tail: the new records matching a query, as the collector indexes
// them, from /api/v1/logs/tail (Server-Sent Events, one hit per `message` event; an `error`
// event with data means the collector gave up on this client, e.g. it fell behind; a `gap`
// event says a reconnect could not resume exactly).
// Read with fetch() rather than EventSource, which cannot send the bearer token; it behaves
// as EventSource would: it reconnects after a lost stream, sending the last event's `id` as
// `Last-Event-ID` so that the collector resumes right after it, and stops on a refused one.

import { authHeaders, refusal } from '../../lib/api.js';

/** How long to wait before reconnecting, unless the stream says otherwise (`retry:`). */
const RECONNECT_MS = 3000;

/**
 * Follows `query`: `onOpen()` once the stream is up (records arriving from then on are sent),
 * `onHit(hit)` per record, `onProblem(text, stopped)` when the stream breaks (`stopped`: it
 * will not come back by itself). Returns the function that stops following.
 */
export function followTail(query, { onOpen, onHit, onProblem }) {
  const controller = new AbortController();
  const url = `/api/v1/logs/tail?${new URLSearchParams({ q: query })}`;
  follow(url, controller.signal, { onOpen, onHit, onProblem }).catch((e) => {
    if (!controller.signal.aborted) onProblem(`Live tail stopped: ${e?.message ?? e}`, true);
  });
  return () => controller.abort();
}

async function follow(url, signal, { onOpen, onHit, onProblem }) {
  const lost = 'Live tail lost the collector; reconnecting…';
  const parser = new EventStreamParser();
  while (!signal.aborted) {
    let res = null;
    const headers = { Accept: 'text/event-stream' };
    if (parser.lastEventId) headers['Last-Event-ID'] = parser.lastEventId;
    try {
      res = await fetch(url, { signal, cache: 'no-store', headers: authHeaders(headers) });
    } catch {
      // Unreachable: retried below, as EventSource does.
    }
    if (signal.aborted) return;
    if (res && !(res.ok && /^text\/event-stream\b/i.test(res.headers.get('Content-Type') ?? ''))) {
      // Refused (a bad query, no room, a token that may not read…): EventSource gives up too.
      let body = null;
      try { body = await res.json(); } catch { body = null; }
      if (signal.aborted) return;
      // A 401 sends the user to the login page, which unmounts the view and stops this.
      const error = refusal(res, body);
      if (signal.aborted || error.name === 'AbortError') return;
      onProblem(res.ok ? 'Live tail stopped: the collector refused the stream.' : `Live tail stopped: ${error.message}`, true);
      return;
    }
    if (res) {
      onOpen();
      try {
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        parser.reset();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          for (const event of parser.push(value)) {
            if (event.type === 'error' && event.data) {
              reader.cancel().catch(() => {});
              onProblem(`Live tail stopped: ${event.data}`, true);
              return;
            }
            // Anything else (`gap`: a reconnect that could not resume, the collector having
            // restarted) leaves the tail live.
            if (event.type !== 'message') continue;
            let hit;
            try {
              hit = JSON.parse(event.data);
            } catch {
              continue;
            }
            if (hit && typeof hit === 'object') onHit(hit);
          }
        }
      } catch {
        // The connection broke: reconnect below.
      }
      if (signal.aborted) return;
    }
    onProblem(lost, false);
    await sleep(parser.retryMs ?? RECONNECT_MS, signal);
  }
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

/**
 * The `text/event-stream` format (HTML "Server-sent events", §9.2.6): lines end in CR LF, LF
 * or CR; `event:` names the next event, `data:` lines add to its data, `id:` its id, a blank
 * line sends it (and keeps its id as `lastEventId`, even with no data), `retry:` sets the
 * reconnection delay and a line starting with `:` is a comment (keep-alive).
 */
export class EventStreamParser {
  constructor() {
    this.retryMs = null;
    this.lastEventId = '';
    this.reset();
  }

  /** Forgets a partial line or event (a new connection starts afresh; `lastEventId` stays). */
  reset() {
    this.pending = '';
    this.afterCr = false;
    this.type = '';
    this.data = [];
    this.id = null;
  }

  /** Adds decoded text; returns the events it completed, as `{ type, data }`. */
  push(text) {
    if (text === '') return [];
    // A CR that ended the last chunk ended its line: an LF starting this one is its other half.
    const fresh = this.afterCr && text.startsWith('\n') ? text.slice(1) : text;
    this.afterCr = fresh.endsWith('\r');
    const lines = (this.pending + fresh).split(/\r\n|\r|\n/);
    this.pending = lines.pop();
    const events = [];
    for (const line of lines) this.line(line, events);
    return events;
  }

  /** Takes one line (without its end) into the event being read; a blank one sends it. */
  line(line, events) {
    if (line === '') {
      if (this.id !== null) this.lastEventId = this.id;
      if (this.data.length > 0) events.push({ type: this.type || 'message', data: this.data.join('\n') });
      this.type = '';
      this.data = [];
      this.id = null;
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.type = value;
    else if (field === 'data') this.data.push(value);
    else if (field === 'id' && !value.includes('\0')) this.id = value;
    else if (field === 'retry' && /^\d+$/.test(value)) this.retryMs = Number(value);
  }
}
