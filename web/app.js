// app.js — the page shell: which view the URL names (`?view=search|clusters|metrics`, search
// by default), mounting it under <main>, the nav links, and back/forward. Each view owns its
// own URL parameters and keeps them current through `nav`.

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

/** `?view=…&…` for a view and its parameters (search, the default, is left out). */
export function viewUrl(view, params = {}) {
  const sp = new URLSearchParams();
  if (view !== 'search') sp.set('view', view);
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') sp.set(key, String(value));
  }
  const query = sp.toString();
  return query ? `?${query}` : location.pathname;
}

let unmount = null;
let mounted = 0;

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

async function show() {
  const view = viewOf(location.search);
  const generation = ++mounted;
  const main = document.getElementById('view');
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
  show();
}

if (typeof document !== 'undefined') {
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init, { once: true });
  else init();
}
