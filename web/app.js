// app.js — the page shell: which view the URL names (`?view=search|clusters|metrics`, search
// by default), mounting it under <main>, the nav links, and back/forward. Each view owns its
// own URL parameters and keeps them current through `nav`.
// Sign-in: at start the shell asks /api/v1/whoami who the stored token (if any) belongs to. A
// collector with tokens that refuses it (401, then or from any later call) gets the login page
// in <main> instead of the view, with the URL untouched; signing in shows the view it names.
// A collector without tokens never shows the login page nor the header's "signed in as".

import { forgetToken, storedToken, storeToken, whenUnauthorized, whoAmI } from './lib/api.js';

const VIEWS = {
  search: () => import('./views/search.js'),
  clusters: () => import('./views/clusters.js'),
  metrics: () => import('./views/metrics.js'),
};

/** The view named by a URL query string; unknown or missing names mean search. */
export function viewOf(search) {
  const name = new URLSearchParams(search).get('view');
  return Object.hasOwn(VIEWS, name ?? '') ? name : 'search';
}

/**
 * `?view=…&…` for a view and its parameters (search, the default, is left out); an array
 * value repeats its parameter.
 */
export function viewUrl(view, params = {}) {
  const sp = new URLSearchParams();
  if (view !== 'search') sp.set('view', view);
  for (const [key, value] of Object.entries(params)) {
    for (const one of Array.isArray(value) ? value : [value]) {
      if (one !== undefined && one !== null && one !== '') sp.append(key, String(one));
    }
  }
  const query = sp.toString();
  return query ? `?${query}` : location.pathname;
}

let unmount = null;
let mounted = 0;

/**
 * Who is using the UI: `open` (a collector without tokens, or one we could not ask),
 * `signed-in` (`who` is the whoami answer for the stored token) or `signed-out` (the login
 * page shows, with `message` saying why when a token was refused).
 */
let session = { state: 'open', who: null, message: '' };

/** What a view gets to change the URL: `replace` its own state, `go` to another view. */
function navFor(view) {
  return {
    replace(params) {
      history.replaceState(null, '', viewUrl(view, params));
    },
    go(target, params) {
      history.pushState(null, '', viewUrl(target, params));
      window.scrollTo(0, 0);
      show();
    },
  };
}

/** The header's "signed in as NAME · TENANTS" and its Sign out button. */
function renderSession() {
  const box = document.getElementById('session');
  const who = session.who;
  const signedIn = session.state === 'signed-in' && who;
  box.hidden = !signedIn;
  document.querySelector('header.top nav').hidden = session.state === 'signed-out';
  document.body.dataset.session = session.state;
  if (!signedIn) return;
  const tenants = who.reads_every_tenant ? 'all tenants'
    : (who.tenants?.length ? who.tenants.join(', ') : 'no tenant');
  const reads = who.reads_every_tenant || (who.can ?? []).includes('read');
  box.querySelector('.session-name').textContent = who.name ?? '';
  box.querySelector('.session-tenants').textContent = reads ? tenants : `${tenants} (may not read)`;
  box.querySelector('.session-who').title = `Signed in as ${who.name}: ${(who.can ?? []).join(', ')} on ${tenants}`;
}

function signedIn(token, who) {
  if (who.tokens_required) storeToken(token);
  session = who.tokens_required ? { state: 'signed-in', who, message: '' } : { state: 'open', who: null, message: '' };
  renderSession();
  show();
}

function signOut(message = '') {
  forgetToken();
  session = { state: 'signed-out', who: null, message };
  renderSession();
  show();
}

async function show() {
  const view = viewOf(location.search);
  const generation = ++mounted;
  const main = document.getElementById('view');
  if (session.state === 'signed-out') {
    if (unmount) unmount();
    document.title = 'Afterglow — sign in';
    const login = await import('./views/login.js');
    if (generation !== mounted) return;
    unmount = login.mount(main, { message: session.message, onSignedIn: signedIn }) ?? null;
    return;
  }
  for (const link of document.querySelectorAll('nav a[data-view]')) {
    if (link.dataset.view === view) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (unmount) unmount();
  unmount = null;
  const module = await VIEWS[view]();
  if (generation !== mounted) return;
  document.title = `Afterglow — ${view}`;
  unmount = module.mount(main, navFor(view)) ?? null;
}

/** Asks the collector who the stored token (or no token) is, then shows the URL's view. */
async function start() {
  const token = storedToken();
  try {
    const who = await whoAmI(token);
    session = who.tokens_required ? { state: 'signed-in', who, message: '' } : { state: 'open', who: null, message: '' };
    if (!who.tokens_required && token) forgetToken();
  } catch (error) {
    if (error.status === 401) {
      forgetToken();
      // No token is not an error: only a refused one needs saying.
      session = { state: 'signed-out', who: null, message: token ? error.message : '' };
    } else {
      // Unreachable, or an older collector: the view says what goes wrong when it asks.
      session = { state: 'open', who: null, message: '' };
    }
  }
  renderSession();
  show();
}

function init() {
  document.querySelector('nav').addEventListener('click', (e) => {
    const link = e.target instanceof Element ? e.target.closest('a[data-view]') : null;
    if (!link || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
    e.preventDefault();
    history.pushState(null, '', viewUrl(link.dataset.view));
    window.scrollTo(0, 0);
    show();
  });
  window.addEventListener('popstate', show);
  document.getElementById('sign-out').addEventListener('click', () => signOut());
  whenUnauthorized((error) => {
    // Every call in flight may answer 401 at once: the first one is enough.
    if (session.state !== 'signed-out') signOut(storedToken() ? error.message : '');
  });
  start();
}

if (typeof document !== 'undefined') {
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init, { once: true });
  else init();
}
