// lib/api.js — the one way views call the collector's HTTP API: JSON GETs whose failures
// become ApiError with the server's own message (400 bodies carry the parser's words), sent
// with the signed-in user's bearer token. The token lives in sessionStorage only: never in
// localStorage (it would outlive the browser session) and never in a URL (it would end up in
// history and logs). A 401 from any call hands over to the shell (`whenUnauthorized`), which
// shows the login page.

const TOKEN_KEY = 'afterglow.token';

export class ApiError extends Error {
  /** `status`: the HTTP status that caused it (0 when the collector could not be reached). */
  constructor(message, status = 0) {
    super(message);
    this.status = status;
  }
}

/** The stored bearer token, or null. */
export function storedToken() {
  try {
    return globalThis.sessionStorage?.getItem(TOKEN_KEY) || null;
  } catch {
    return null;
  }
}

/** Keeps `token` for this browser tab's session. */
export function storeToken(token) {
  globalThis.sessionStorage?.setItem(TOKEN_KEY, token);
}

/** Forgets the stored token. */
export function forgetToken() {
  try {
    globalThis.sessionStorage?.removeItem(TOKEN_KEY);
  } catch {
    // Storage is off: there was nothing to forget.
  }
}

/** `headers` plus `Authorization: Bearer <token>` when a token is stored (or given). */
export function authHeaders(headers = {}, token = storedToken()) {
  return token ? { ...headers, Authorization: `Bearer ${token}` } : headers;
}

let unauthorizedHandler = () => {};

/** Sets what happens on a 401 from any call (the shell shows the login page). */
export function whenUnauthorized(handler) {
  unauthorizedHandler = handler;
}

/**
 * The ApiError for a refused response whose JSON body (if any) is `body`. Our API answers
 * {"error": "..."}; the Prometheus API {"status":"error","error":"..."}.
 */
function describeRefusal(res, body) {
  const apiMsg = body && typeof body.error === 'string' ? body.error : '';
  if (res.status === 401) return new ApiError(`Token not accepted: ${apiMsg || 'the collector asks for a token'}`, 401);
  if (res.status === 429) {
    const seconds = Number.parseInt(res.headers.get('Retry-After') ?? '', 10);
    return new ApiError(`Too many requests, retry in ${Number.isFinite(seconds) ? seconds : 1} s.`, 429);
  }
  if ((res.status === 400 || res.status === 403) && apiMsg) return new ApiError(apiMsg, res.status);
  const status = `HTTP ${res.status}${res.statusText ? ' ' + res.statusText : ''}`;
  return new ApiError(apiMsg ? `${status}: ${apiMsg}` : status, res.status);
}

/**
 * What a view's call throws for a refused response: an ApiError in the server's words (403,
 * 400…; 429 says when to retry). A 401 tells the shell, whose login page replaces the view,
 * and becomes an AbortError: the view that asked is going away and shows nothing.
 */
export function refusal(res, body) {
  const error = describeRefusal(res, body);
  if (res.status !== 401) return error;
  unauthorizedHandler(error);
  return new DOMException(error.message, 'AbortError');
}

/** A response's body as JSON, or null when it is empty or not JSON. */
async function jsonBody(res) {
  const text = await res.text();
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    return null;
  }
}

/**
 * GET `path?params` as JSON (an array value repeats its parameter). Throws ApiError with a
 * readable message; AbortError passes through (and is thrown after a 401, see `refusal`).
 */
export async function getJson(path, params = {}, signal = undefined) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    for (const one of Array.isArray(value) ? value : [value]) {
      if (one !== undefined && one !== null && one !== '') query.append(key, String(one));
    }
  }
  const url = query.toString() ? `${path}?${query}` : path;
  let res;
  try {
    res = await fetch(url, { signal, headers: authHeaders({ Accept: 'application/json' }) });
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new ApiError(`Could not reach the collector: ${e && e.message ? e.message : e}`);
  }
  const body = await jsonBody(res);
  if (!res.ok) throw refusal(res, body);
  if (body === null) throw new ApiError(`Unexpected answer from ${path}: not JSON.`, res.status);
  return body;
}

/**
 * `GET /api/v1/whoami` with `token` (or none): who the collector takes the caller for. Throws
 * ApiError like getJson, but a 401 here is the caller's to handle (the login page asks this
 * before it keeps a token), so the shell is not told.
 */
export async function whoAmI(token) {
  let res;
  try {
    res = await fetch('/api/v1/whoami', { headers: authHeaders({ Accept: 'application/json' }, token) });
  } catch (e) {
    throw new ApiError(`Could not reach the collector: ${e && e.message ? e.message : e}`);
  }
  const body = await jsonBody(res);
  if (!res.ok) throw describeRefusal(res, body);
  if (body === null || typeof body !== 'object') throw new ApiError('Unexpected answer from /api/v1/whoami: not JSON.', res.status);
  return body;
}
