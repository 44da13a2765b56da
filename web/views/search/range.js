// views/search/range.js — the time range picker: relative presets, an absolute range typed as
// RFC 3339 (UTC), and "around this time" for a hit. A range is `{ start, end }` in the API's own
// forms (`now-1h`, RFC 3339, empty for unbounded), so what the URL carries is what the API gets.

/** Relative presets, newest first; "All time" is no bound at all. */
const PRESETS = [
  { start: 'now-15m', label: 'Last 15 minutes', text: 'in the last 15 minutes' },
  { start: 'now-1h', label: 'Last hour', text: 'in the last hour' },
  { start: 'now-24h', label: 'Last 24 hours', text: 'in the last 24 hours' },
  { start: 'now-7d', label: 'Last 7 days', text: 'in the last 7 days' },
  { start: '', label: 'All time', text: 'over all time' },
];

const CUSTOM = 'custom';

/** How far "around this time" reaches on each side of a hit. */
const AROUND_MS = 5 * 60_000;

/** The preset a range is, or undefined for an absolute (custom) range. */
function presetOf({ start, end }) {
  return end ? undefined : PRESETS.find((preset) => preset.start === start);
}

/** Milliseconds since the epoch as RFC 3339 UTC, with milliseconds unless they are zero. */
export function isoFromMs(ms) {
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}

/** A range from `startMs` to `endMs` widened to whole seconds (short in the URL and the inputs). */
export function rangeFromMs(startMs, endMs) {
  return { start: isoFromMs(Math.floor(startMs / 1000) * 1000), end: isoFromMs(Math.ceil(endMs / 1000) * 1000) };
}

/** Milliseconds since the epoch of an RFC 3339 time; the API's microseconds are cut to millis. */
export function msFromIso(ts) {
  return Date.parse(String(ts).replace(/(\.\d{3})\d+/, '$1'));
}

/** The range five minutes either side of a hit's time. */
export function aroundRange(ts) {
  const ms = msFromIso(ts);
  return rangeFromMs(ms - AROUND_MS, ms + AROUND_MS);
}

/** The range in words, for summaries and empty states: "in the last hour", "from … until …". */
export function rangeText(range) {
  const preset = presetOf(range);
  if (preset) return preset.text;
  if (!range.start) return `until ${range.end}`;
  return range.end ? `from ${range.start} until ${range.end}` : `since ${range.start}`;
}

/**
 * Wires the picker's controls (`select`, `start`, `end` inputs, and the `custom` fields that
 * hold the inputs): choosing a preset calls `onPreset(range)`; choosing "Custom range" shows
 * the inputs, which the form submits. Returns `{ read, write }` for the range shown.
 */
export function rangePicker({ select, start, end, custom }, onPreset) {
  select.replaceChildren(
    ...PRESETS.map((preset) => new Option(preset.label, preset.start)),
    new Option('Custom range…', CUSTOM),
  );

  function showInputs(shown) {
    for (const field of custom) field.hidden = !shown;
  }

  select.addEventListener('change', () => {
    if (select.value === CUSTOM) {
      showInputs(true);
      start.focus();
      return;
    }
    const range = { start: select.value, end: '' };
    write(range);
    onPreset(range);
  });

  function read() {
    if (select.value !== CUSTOM) return { start: select.value, end: '' };
    return { start: start.value.trim(), end: end.value.trim() };
  }

  function write(range) {
    const preset = presetOf(range);
    select.value = preset ? preset.start : CUSTOM;
    start.value = range.start;
    end.value = range.end;
    showInputs(!preset);
  }

  return { read, write };
}
