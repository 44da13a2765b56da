// views/search/tail.js — live tail: the new records matching a query, as the collector indexes
// them, from /api/v1/logs/tail (Server-Sent Events, one hit per `message` event; an `error`
// event with data means the collector gave up on this client, e.g. it fell behind).

/**
 * Follows `query`: `onOpen()` once the stream is up (records arriving from then on are sent),
 * `onHit(hit)` per record, `onProblem(text, stopped)` when the stream breaks (`stopped`: it
 * will not come back by itself). Returns the function that stops following.
 */
export function followTail(query, { onOpen, onHit, onProblem }) {
  const source = new EventSource(`/api/v1/logs/tail?${new URLSearchParams({ q: query })}`);
  source.addEventListener('open', () => onOpen());
  source.addEventListener('message', (e) => {
    let hit;
    try {
      hit = JSON.parse(e.data);
    } catch {
      return;
    }
    if (hit && typeof hit === 'object') onHit(hit);
  });
  source.addEventListener('error', (e) => {
    if (typeof e.data === 'string' && e.data) {
      source.close();
      onProblem(`Live tail stopped: ${e.data}`, true);
    } else if (source.readyState === EventSource.CLOSED) {
      onProblem('Live tail stopped: the collector refused the stream.', true);
    } else {
      onProblem('Live tail lost the collector; reconnecting (records sent meanwhile are missed)…', false);
    }
  });
  return () => source.close();
}
