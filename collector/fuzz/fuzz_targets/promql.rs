//! Fuzzes the PromQL path of `/api/v1/query` and `/api/v1/query_range`: `promql-parser` and
//! the engine, evaluated over a tiny in-memory source (counters with a reset, a histogram, a
//! staleness marker, NaN and infinities) at ordinary and extreme times. Any query answers or
//! is a clear error, within its sample and time limits, never a panic.

#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use afterglow_collector::promql::{QueryOptions, instant_query, range_query};
use afterglow_collector::series::select::{
    Labels, METRIC_NAME, Matcher, STALE_NAN_BITS, SelectError, SeriesSamples, SeriesSource,
};
use libfuzzer_sys::fuzz_target;

/// The largest time the API's `parse_time` lets through, in milliseconds.
const EXTREME_MS: i64 = 9_200_000_000_000_000_000;

struct TinySource {
    series: Vec<SeriesSamples>,
}

impl TinySource {
    fn new() -> TinySource {
        let mut series = Vec::new();
        let mut add = |name: &str, labels: &[(&str, &str)], value: &dyn Fn(i64) -> f64| {
            let mut all: Labels = labels
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect();
            all.push((METRIC_NAME.to_owned(), name.to_owned()));
            all.sort();
            let samples: Vec<(i64, f64)> = (0..=40)
                .map(|step| step * 15_000)
                .map(|t| (t, value(t)))
                .collect();
            series.push(SeriesSamples {
                labels: all,
                samples: samples.into(),
            });
        };
        add("up", &[("job", "api"), ("instance", "a")], &|_| 1.0);
        add("up", &[("job", "api"), ("instance", "b")], &|t| {
            if t == 300_000 {
                f64::from_bits(STALE_NAN_BITS)
            } else {
                0.0
            }
        });
        add(
            "http_requests_total",
            &[("job", "api"), ("code", "200")],
            &|t| (t % 240_000) as f64 / 100.0,
        );
        add(
            "http_requests_total",
            &[("job", "api"), ("code", "500")],
            &|t| (t / 60_000) as f64,
        );
        for (le, share) in [("0.1", 0.5), ("1", 0.9), ("+Inf", 1.0)] {
            add(
                "request_duration_seconds_bucket",
                &[("job", "api"), ("le", le)],
                &|t| (t / 1000) as f64 * share,
            );
        }
        add("weird", &[("kind", "nan")], &|_| f64::NAN);
        add("weird", &[("kind", "inf")], &|t| {
            if t % 30_000 == 0 {
                f64::INFINITY
            } else {
                f64::NEG_INFINITY
            }
        });
        add("weird", &[("kind", "huge")], &|t| f64::MAX - t as f64);
        TinySource { series }
    }

    fn in_range(one: &SeriesSamples, start_ms: i64, end_ms: i64) -> Vec<(i64, f64)> {
        one.samples
            .iter()
            .copied()
            .filter(|&(t, _)| t >= start_ms && t <= end_ms)
            .collect()
    }
}

impl SeriesSource for TinySource {
    fn select(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<SeriesSamples>, SelectError> {
        Ok(self
            .series
            .iter()
            .filter(|one| matchers.iter().all(|m| m.matches_labels(&one.labels)))
            .map(|one| SeriesSamples {
                labels: one.labels.clone(),
                samples: TinySource::in_range(one, start_ms, end_ms).into(),
            })
            .filter(|one| !one.samples.is_empty())
            .collect())
    }

    fn series(
        &self,
        matcher_sets: &[Vec<Matcher>],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Labels>, SelectError> {
        Ok(self
            .series
            .iter()
            .filter(|one| {
                matcher_sets.is_empty()
                    || matcher_sets
                        .iter()
                        .any(|set| set.iter().all(|m| m.matches_labels(&one.labels)))
            })
            .filter(|one| !TinySource::in_range(one, start_ms, end_ms).is_empty())
            .map(|one| one.labels.clone())
            .collect())
    }
}

fuzz_target!(|data: &[u8]| {
    static SOURCE: OnceLock<TinySource> = OnceLock::new();
    let source = SOURCE.get_or_init(TinySource::new);
    let [mode, time_choice, rest @ ..] = data else {
        return;
    };
    let Ok(query) = std::str::from_utf8(rest) else {
        return;
    };
    let options = QueryOptions {
        timeout: Duration::from_secs(2),
        max_samples: 1_000_000,
        ..QueryOptions::default()
    };
    if mode & 1 == 0 {
        let time_ms = [
            0,
            300_000,
            600_000,
            -EXTREME_MS,
            EXTREME_MS,
            1_795_787_813_000,
        ][usize::from(time_choice % 6)];
        let _ = instant_query(source, query, time_ms, &options);
    } else {
        // Grids the API accepts: at most 11,000 points.
        let (start_ms, end_ms, step_ms) = [
            (0, 600_000, 15_000),
            (0, 600_000, 1_000),
            (-60_000, 60_000, 60_000),
            (-EXTREME_MS, -EXTREME_MS + 600_000, 60_000),
            (EXTREME_MS - 600_000, EXTREME_MS, 60_000),
            (300_000, 300_000, 1),
        ][usize::from(time_choice % 6)];
        let _ = range_query(source, query, start_ms, end_ms, step_ms, &options);
    }
});
