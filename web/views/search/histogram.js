// views/search/histogram.js — matches over time above the hits: /api/v1/logs/histogram drawn
// as uPlot bars stacked by level (coloured as the level chips), and a drag across the chart to
// zoom the range. A range without a start (all time) is charted from the first match to the last.

import { getJson } from '../../lib/api.js';
import { uPlot, utcTicks } from '../../lib/chart.js';
import { formatDate, severity } from '../../lib/dom.js';
import { isoFromMs, msFromIso } from './range.js';

const HEIGHT_PX = 150;
/** The shortest span charted for "all time". */
const MIN_SPAN_MS = 60_000;
/** Axis counts as `950`, `12K`, `1.5M`. */
const COMPACT = new Intl.NumberFormat('en-US', { notation: 'compact' });

/** Stacked bottom to top; `colour` names a CSS variable of search.css. */
const BANDS = [
  { severity: 'error', label: 'errors', colour: '--bar-error' },
  { severity: 'warn', label: 'warnings', colour: '--bar-warn' },
  { severity: 'info', label: 'info', colour: '--bar-info' },
  { severity: 'debug', label: 'debug', colour: '--bar-debug' },
  { severity: 'other', label: 'no level', colour: '--bar-other' },
];

/** The first (`asc`) or last (`desc`) match of `matching` (`q` and filters) before `end`, or null. */
async function edgeHit(matching, end, order, signal) {
  const body = await getJson('/api/v1/logs/search', { ...matching, end, order, limit: 1 }, signal);
  return Array.isArray(body.hits) && body.hits.length > 0 ? body.hits[0] : null;
}

/** The range to chart: the searched one, or for "all time" the span of the matches (null if none). */
async function chartRange(matching, { start, end }, signal) {
  if (start) return { start, end };
  const [first, last] = await Promise.all([
    edgeHit(matching, end, 'asc', signal),
    end ? null : edgeHit(matching, end, 'desc', signal),
  ]);
  if (!first) return null;
  if (end) return { start: first.ts, end };
  // The end is exclusive: a millisecond past the last match keeps it in. A minute at least,
  // so that a few close matches still read as bars on a time axis.
  const endMs = Math.max(msFromIso(last.ts) + 1, msFromIso(first.ts) + MIN_SPAN_MS);
  return { start: first.ts, end: isoFromMs(endMs) };
}

/** Per band, the count of each bucket: levels folded by severity. */
function bandCounts(buckets) {
  return BANDS.map((band) => buckets.map((bucket) => Object.entries(bucket.counts ?? {})
    .filter(([level]) => severity(level) === band.severity)
    .reduce((sum, [, count]) => sum + count, 0)));
}

/**
 * The chart in `panel` (which holds a `.chart` box and a `.histogram-note`); `onZoom(startMs,
 * endMs)` gets the range a drag selects. Returns `{ load, clear }`.
 */
export function histogramPanel(panel, onZoom) {
  const box = panel.querySelector('.chart');
  const note = panel.querySelector('.histogram-note');
  let chart = null;
  let resize = null;

  function clear() {
    resize?.disconnect();
    chart?.destroy();
    chart = null;
    resize = null;
    box.replaceChildren();
    delete panel.dataset.total;
  }

  function say(text, className = '') {
    note.className = `histogram-note ${className}`;
    note.textContent = text;
    note.hidden = !text;
  }

  function draw({ step_ms: stepMs, buckets }) {
    const times = buckets.map((bucket) => msFromIso(bucket.start) / 1000);
    const counts = bandCounts(buckets);
    // Stacking: band k is drawn as the sum of bands 0..k, tallest first, so each stays visible above the one below.
    const stacked = counts.map((_, k) => times.map((__, i) => counts.slice(0, k + 1).reduce((sum, band) => sum + band[i], 0)));
    const style = getComputedStyle(panel);
    const colour = (name) => style.getPropertyValue(name).trim();
    const axis = { stroke: style.color, grid: { stroke: colour('--grid') }, ticks: { stroke: colour('--grid') } };
    const bars = uPlot.paths.bars({ size: [0.9, Infinity], align: 1 });
    const order = BANDS.map((_, k) => k).reverse();
    const lastEnd = times.at(-1) + stepMs / 1000;
    const options = {
      width: Math.max(box.clientWidth, 280),
      height: HEIGHT_PX,
      series: [
        { label: 'time (UTC)', value: (_, ts) => (ts === null ? '—' : formatDate(new Date(ts * 1000)).slice(0, 19)) },
        ...order.map((k) => ({
          label: BANDS[k].label,
          fill: colour(BANDS[k].colour),
          stroke: colour(BANDS[k].colour),
          width: 0,
          paths: bars,
          points: { show: false },
          value: (_, __, ___, index) => (index === null ? '—' : String(counts[k][index])),
        })),
      ],
      scales: {
        x: { time: true, range: () => [times[0], lastEnd] },
        y: { range: (_, __, max) => [0, Math.max(1, max * 1.05)] },
      },
      axes: [{ ...axis, space: 70, values: utcTicks }, { ...axis, size: 44, space: 25, values: (_, ticks) => ticks.map((t) => (Number.isInteger(t) ? COMPACT.format(t) : '')) }],
      cursor: { drag: { x: true, y: false, setScale: false }, points: { show: false } },
      legend: { live: true },
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
      hooks: {
        setSelect: [(u) => {
          if (u.select.width < 2) return;
          const from = u.posToVal(u.select.left, 'x');
          const to = u.posToVal(u.select.left + u.select.width, 'x');
          u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
          onZoom(from * 1000, to * 1000);
        }],
      },
    };
    clear();
    chart = new uPlot(options, [times, ...order.map((k) => stacked[k])], box);
    panel.dataset.total = String(stacked.at(-1).reduce((sum, n) => sum + n, 0));
    resize = new ResizeObserver(() => chart?.setSize({ width: Math.max(box.clientWidth, 280), height: HEIGHT_PX }));
    resize.observe(box);
  }

  /**
   * Charts the matches of `matching` (the API's `q`, `filter` and `exclude`) in `range`;
   * failures are shown in the panel, not thrown.
   */
  async function load(matching, range, signal) {
    panel.hidden = false;
    say('Counting…');
    try {
      const charted = await chartRange(matching, range, signal);
      if (!charted) {
        clear();
        panel.hidden = true;
        return;
      }
      const body = await getJson('/api/v1/logs/histogram', { ...matching, ...charted }, signal);
      clear();
      say('');
      // No matches: the hits' empty state says so, a flat chart would add nothing.
      panel.hidden = !Array.isArray(body.buckets) || !body.buckets.some((bucket) => bucket.total > 0);
      if (!panel.hidden) draw(body);
    } catch (e) {
      if (e && e.name === 'AbortError') return;
      clear();
      say(`Histogram: ${e && e.message ? e.message : e}`, 'error');
    }
  }

  return { load, clear: () => { clear(); panel.hidden = true; } };
}
