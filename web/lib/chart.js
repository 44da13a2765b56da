// lib/chart.js — time-series charts on the vendored uPlot: Prometheus matrices turned into
// uPlot's aligned columns, and a line chart with a legend (hover values), sized to its box
// and drawn in the page's light or dark colours.

import uPlot from '../vendor/uplot/uPlot.esm.js';

export { uPlot };

/** `name{a="x", b="y"}` for a Prometheus label set. */
export function seriesName(metric) {
  const { __name__: name = '', ...labels } = metric || {};
  const inner = Object.keys(labels).sort().map((key) => `${key}="${labels[key]}"`).join(', ');
  return inner ? `${name}{${inner}}` : name || '{}';
}

/**
 * A Prometheus `matrix` result as uPlot data: `{ names, data }` where data[0] holds the union of
 * the series' times (Unix seconds, ascending) and data[i + 1] series i's values, null where the
 * series has no sample at that time.
 */
export function matrixToFrame(result) {
  const times = [...new Set(result.flatMap((series) => series.values.map(([t]) => Number(t))))]
    .sort((a, b) => a - b);
  const index = new Map(times.map((t, i) => [t, i]));
  const columns = result.map((series) => {
    const column = new Array(times.length).fill(null);
    for (const [t, v] of series.values) column[index.get(Number(t))] = Number(v);
    return column;
  });
  return { names: result.map((series) => seriesName(series.metric)), data: [times, ...columns] };
}

/** The page's text and grid colours, for axes in the current (light or dark) theme. */
function themeColours(target) {
  const style = getComputedStyle(target);
  return {
    text: style.color || '#222',
    grid: style.getPropertyValue('--grid').trim() || 'rgba(128,128,128,0.25)',
  };
}

/** A number in a few characters: 1.2G, 350k, 0.004. */
export function shortNumber(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return '';
  const abs = Math.abs(value);
  for (const [limit, suffix] of [[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k']]) {
    if (abs >= limit) return `${Number((value / limit).toPrecision(3))}${suffix}`;
  }
  return String(Number(value.toPrecision(3)));
}

/**
 * Tick labels for times (Unix seconds) in UTC, 24-hour: with the date when the ticks span days,
 * with seconds when they are less than a minute apart.
 */
export function utcTicks(_, ticks) {
  const span = ticks.length > 1 ? ticks[ticks.length - 1] - ticks[0] : 0;
  const gap = ticks.length > 1 ? span / (ticks.length - 1) : 60;
  return ticks.map((t) => {
    const iso = new Date(t * 1000).toISOString();
    if (span >= 86400) return `${iso.slice(5, 10)} ${iso.slice(11, 16)}`;
    return gap < 60 ? iso.slice(11, 19) : iso.slice(11, 16);
  });
}

/** Colour of a chart's series number `index`: hues a golden angle apart, so neighbours differ. */
export function seriesColour(index) {
  return `hsl(${(20 + index * 137.508) % 360} 65% 50%)`;
}

/**
 * Draws `frame` (from matrixToFrame) as lines in `target`, replacing what was there. Returns the
 * uPlot instance; it follows the width of `target` until `target` leaves the page (then it is
 * destroyed), so give each chart a box of its own rather than redrawing into one box.
 * Options: `xRange` [start, end] in Unix seconds pins the time axis (else it fits the data);
 * `onSelect(start, end)`, when given, receives a drag-selected time span instead of the chart
 * zooming itself.
 */
export function lineChart(target, frame, { height = 240, yLabel = '', xRange = null, onSelect = null } = {}) {
  const { text, grid } = themeColours(target);
  const axis = { stroke: text, grid: { stroke: grid }, ticks: { stroke: grid } };
  const options = {
    width: Math.max(target.clientWidth, 300),
    height,
    series: [
      { label: 'time (UTC)', value: (_, ts) => (ts === null ? '—' : new Date(ts * 1000).toISOString().replace('T', ' ').slice(0, 19)) },
      ...frame.names.map((name, i) => ({
        label: name,
        stroke: seriesColour(i),
        width: 1.5,
        spanGaps: false,
        value: (_, v) => (v === null ? '—' : shortNumber(v)),
      })),
    ],
    axes: [
      { ...axis, values: utcTicks },
      {
        ...axis,
        label: yLabel,
        values: (_, ticks) => ticks.map(shortNumber),
        // Wide enough for the longest label.
        size: (self, values) => 16 + 7 * Math.max(3, ...(values ?? []).map((v) => String(v).length)),
      },
    ],
    scales: { x: xRange ? { time: true, range: () => xRange } : { time: true } },
    legend: { live: true },
    cursor: onSelect ? { drag: { setScale: false, x: true } } : {},
    hooks: onSelect ? {
      setSelect: [(self) => {
        if (self.select.width < 2) return;
        const start = self.posToVal(self.select.left, 'x');
        const end = self.posToVal(self.select.left + self.select.width, 'x');
        self.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
        onSelect(start, end);
      }],
    } : {},
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
  };
  target.replaceChildren();
  const chart = new uPlot(options, frame.data, target);
  const resize = new ResizeObserver(() => {
    if (!target.isConnected) { resize.disconnect(); chart.destroy(); return; }
    chart.setSize({ width: Math.max(target.clientWidth, 300), height });
  });
  resize.observe(target);
  return chart;
}
