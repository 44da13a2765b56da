// lib/api.js — the one way views call the collector's HTTP API: JSON GETs whose failures
// become ApiError with the server's own message (400 bodies carry the parser's words).

export class ApiError extends Error {}

/** GET `path?params` as JSON. Throws ApiError with a readable message; AbortError passes through. */
export async function getJson(path, params = {}, signal = undefined) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') query.set(key, String(value));
  }
  const url = query.toString() ? `${path}?${query}` : path;
  let res;
  try {
    res = await fetch(url, { signal, headers: { Accept: 'application/json' } });
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new ApiError(`Could not reach the collector: ${e && e.message ? e.message : e}`);
  }
  const text = await res.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = null; }
  if (!res.ok) {
    // Our API answers {"error": "..."}; the Prometheus API {"status":"error","error":"..."}.
    const apiMsg = body && typeof body.error === 'string' ? body.error : '';
    if (res.status === 400 && apiMsg) throw new ApiError(apiMsg);
    const status = `HTTP ${res.status}${res.statusText ? ' ' + res.statusText : ''}`;
    throw new ApiError(apiMsg ? `${status}: ${apiMsg}` : status);
  }
  if (body === null) throw new ApiError(`Unexpected answer from ${path}: not JSON.`);
  return body;
}
