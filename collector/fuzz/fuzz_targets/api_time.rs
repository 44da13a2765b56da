//! Fuzzes the HTTP API's time parameters: `start`/`end` of the log API, the search cursor,
//! and the `start`/`end`/`step` of `/api/v1/query_range` (the input's first three lines).
//! Any text is a value or a clear error, never a panic, and an accepted range query grid
//! stays within Prometheus's 11,000 points per series.

#![no_main]

use afterglow_collector::api::prom::range_grid;
use afterglow_collector::api::time::parse_time;
use afterglow_collector::index::search::SortKey;
use afterglow_collector::promql::MAX_POINTS_PER_SERIES;
use jiff::Timestamp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for now in [
        Timestamp::from_second(1_795_787_813).expect("a valid time"),
        Timestamp::MIN,
        Timestamp::MAX,
    ] {
        if let Err(message) = parse_time(&text, now) {
            assert!(!message.is_empty());
        }
    }
    if let Some(key) = SortKey::from_cursor(&text) {
        assert_eq!(SortKey::from_cursor(&key.to_cursor()), Some(key));
    }
    let mut lines = text.split('\n');
    let (start, end, step) = (
        lines.next().unwrap_or(""),
        lines.next().unwrap_or(""),
        lines.next().unwrap_or(""),
    );
    if let Ok((start_ms, end_ms, step_ms)) = range_grid(start, end, step) {
        assert!(start_ms <= end_ms && step_ms > 0);
        let points = (i128::from(end_ms) - i128::from(start_ms)) / i128::from(step_ms);
        // The check divides by the step in nanoseconds; evaluation steps by whole
        // milliseconds (rounded down, at least 1), at most twice as many points.
        assert!(
            points <= 2 * i128::from(MAX_POINTS_PER_SERIES),
            "{points} points from {start:?} to {end:?} every {step:?}"
        );
    }
});
