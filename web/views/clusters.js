// views/clusters.js — the Clusters view: every cluster from /api/v1/clusters in a table sorted
// by any column (state, first and last seen, lifetime, nodes by role, errors), each leading to
// its page; `?view=clusters&cluster=<name>` shows that page instead (cluster-page.js).

import { getJson } from '../lib/api.js';
import { el } from '../lib/dom.js';
import {
  errorCount, errorSearch, fieldQuery, formatDuration, mountClusterPage, rolesText, stateBadge, timeText, viewLink,
} from './cluster-page.js';

const LIST_MARKUP = `
<div class="view-head"><h2>Clusters</h2><span class="status" aria-live="polite">Loading…</span></div>
<div class="error" role="alert" hidden></div>
<div class="empty-state" hidden>
  <p>No cluster has sent anything yet.</p>
  <p>Run <code>afterglow-agent</code> beside each Dask scheduler and worker, with <code>collector</code>
    set to this collector's gRPC address (port 7701 unless configured) and <code>cluster</code> set to
    the cluster's name. A cluster appears here with its first log line or metric sample.</p>
</div>
<div class="table-wrap" hidden>
  <table class="cluster-table">
    <thead><tr></tr></thead>
    <tbody></tbody>
  </table>
</div>`;

const nodeCount = (cluster) => Object.values(cluster.nodes).reduce((sum, nodes) => sum + nodes.length, 0);
const lifetimeMs = (cluster) => Date.parse(cluster.last_seen) - Date.parse(cluster.first_seen);

/**
 * The table's columns: what a cell shows, the value it sorts by, and which way a first click
 * sorts (names A→Z; times, counts and "alive" biggest first).
 */
const COLUMNS = [
  {
    key: 'name', label: 'Cluster', firstDir: 'asc', value: (c) => c.name,
    cell: (c, nav, tenants) => viewLink(nav, 'clusters', { cluster: c.name, tenant: tenants > 1 ? c.tenant : undefined }, c.name, 'cluster-link'),
  },
  { key: 'tenant', label: 'Tenant', firstDir: 'asc', value: (c) => c.tenant, cell: (c) => c.tenant, onlyWithTenants: true },
  { key: 'state', label: 'State', firstDir: 'desc', value: (c) => (c.alive ? 1 : 0), cell: (c) => stateBadge(c.alive) },
  { key: 'first', label: 'First seen (UTC)', firstDir: 'desc', value: (c) => Date.parse(c.first_seen), cell: (c) => timeText(c.first_seen) },
  { key: 'last', label: 'Last seen (UTC)', firstDir: 'desc', value: (c) => Date.parse(c.last_seen), cell: (c) => timeText(c.last_seen) },
  { key: 'lifetime', label: 'Lifetime', firstDir: 'desc', value: lifetimeMs, cell: (c) => formatDuration(lifetimeMs(c)) },
  {
    key: 'nodes', label: 'Nodes', firstDir: 'desc', value: nodeCount,
    cell: (c) => {
      const cell = el('span', 'nodes');
      cell.append(el('strong', '', String(nodeCount(c))), ` (${rolesText(c.nodes)})`);
      cell.title = Object.entries(c.nodes).map(([role, nodes]) => `${role}: ${nodes.join(', ')}`).join('\n');
      return cell;
    },
  },
  {
    key: 'errors', label: 'Errors', firstDir: 'desc', numeric: true, value: (c) => errorCount(c.records_by_level),
    cell: (c, nav) => {
      const errors = errorCount(c.records_by_level);
      if (errors === 0) return '0';
      const link = viewLink(nav, 'search', errorSearch(fieldQuery('cluster', c.name), c), String(errors), 'errors');
      link.title = 'Search this cluster\'s ERROR and CRITICAL records';
      return link;
    },
  },
];

/** Mounts the cluster list, or the page of the cluster the URL names. */
export function mount(root, nav) {
  const params = new URLSearchParams(location.search);
  if (params.get('cluster')) return mountClusterPage(root, nav, params);
  const column = COLUMNS.find((c) => c.key === params.get('sort'));
  const sort = column
    ? { key: column.key, dir: params.get('dir') === 'asc' || params.get('dir') === 'desc' ? params.get('dir') : column.firstDir }
    : { key: 'last', dir: 'desc' };
  return mountClusterList(root, nav, sort);
}

function mountClusterList(root, nav, initialSort) {
  const view = el('div', 'clusters-view');
  view.innerHTML = LIST_MARKUP;
  root.replaceChildren(view);
  const $ = (selector) => view.querySelector(selector);
  const controller = new AbortController();
  let sort = initialSort;
  let clusters = [];

  function render() {
    const tenants = new Set(clusters.map((c) => c.tenant)).size;
    const columns = COLUMNS.filter((c) => !c.onlyWithTenants || tenants > 1);
    $('.cluster-table thead tr').replaceChildren(...columns.map((column) => {
      const header = el('th', column.numeric ? 'num' : '');
      header.scope = 'col';
      const button = el('button', 'sort', column.label);
      button.type = 'button';
      button.dataset.key = column.key;
      if (column.key === sort.key) {
        header.setAttribute('aria-sort', sort.dir === 'asc' ? 'ascending' : 'descending');
        button.append(el('span', 'sort-mark', sort.dir === 'asc' ? ' ▲' : ' ▼'));
      }
      header.append(button);
      return header;
    }));
    const by = COLUMNS.find((c) => c.key === sort.key).value;
    const sign = sort.dir === 'asc' ? 1 : -1;
    const sorted = [...clusters].sort((a, b) => {
      const [va, vb] = [by(a), by(b)];
      const order = typeof va === 'string' ? va.localeCompare(vb) : va - vb;
      return sign * order || a.name.localeCompare(b.name);
    });
    $('.cluster-table tbody').replaceChildren(...sorted.map((cluster) => {
      const row = el('tr');
      row.dataset.cluster = cluster.name;
      for (const column of columns) {
        const cell = el('td', column.numeric ? 'num' : '');
        cell.dataset.column = column.key;
        cell.dataset.label = column.label;
        cell.append(column.cell(cluster, nav, tenants));
        row.append(cell);
      }
      return row;
    }));
  }

  $('.cluster-table thead').addEventListener('click', (e) => {
    const button = e.target instanceof Element ? e.target.closest('button.sort') : null;
    if (!button) return;
    const column = COLUMNS.find((c) => c.key === button.dataset.key);
    const dir = column.key === sort.key ? (sort.dir === 'asc' ? 'desc' : 'asc') : column.firstDir;
    sort = { key: column.key, dir };
    nav.replace({ sort: sort.key, dir: sort.dir });
    render();
    $(`button.sort[data-key="${sort.key}"]`).focus();
  });

  getJson('/api/v1/clusters', {}, controller.signal)
    .then((body) => {
      clusters = body.clusters;
      $('.status').textContent = clusters.length === 1 ? '1 cluster' : `${clusters.length} clusters`;
      if (clusters.length === 0) {
        $('.empty-state').hidden = false;
        return;
      }
      render();
      $('.table-wrap').hidden = false;
    })
    .catch((e) => {
      if (e.name === 'AbortError') return;
      $('.status').textContent = '';
      $('.error').textContent = e.message;
      $('.error').hidden = false;
    });

  return () => controller.abort();
}
