//! Cases computed by hand from Prometheus's documented semantics: lookback and staleness
//! edges, offset and `@`, range-query steps, errors and limits, and the speed the brief asks
//! for.

use std::time::Duration;

use super::{MemorySource, run_script};
use crate::promql::{QueryError, QueryOptions, Value, instant_query, range_query};
use crate::series::select::{Labels, STALE_NAN_BITS};

fn labels(pairs: &[(&str, &str)]) -> Labels {
    let mut labels: Labels = pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect();
    labels.sort();
    labels
}

/// One series `metric{job="a"}` with a sample every 15 s from 0 to 10 min, value = minutes.
fn fifteen_second_gauge() -> MemorySource {
    let mut source = MemorySource::default();
    let samples: Vec<(i64, f64)> = (0..=40).map(|i| (i * 15_000, i as f64 * 0.25)).collect();
    source.add(&labels(&[("__name__", "metric"), ("job", "a")]), &samples);
    source
}

#[test]
fn lookback_window_is_open_at_the_old_end() {
    // Last sample at 600 s; the default lookback is 5 min: visible until 899.999 s.
    run_script(
        r#"
load 1m
  metric 1 _x9 7

eval instant at 10m metric
  metric 7

eval instant at 14m59s metric
  metric 7

eval instant at 15m metric

eval instant at 4m59s metric
  metric 1

eval instant at 5m metric
"#,
    );
}

#[test]
fn lookback_delta_option_shortens_the_window() -> Result<(), QueryError> {
    let source = fifteen_second_gauge();
    let options = QueryOptions {
        lookback_delta_ms: 10_000,
        ..QueryOptions::default()
    };
    let hit = instant_query(&source, "metric", 609_999, &options)?;
    assert!(matches!(&hit, Value::Vector(v) if v.len() == 1 && v[0].value == 10.0));
    let miss = instant_query(&source, "metric", 610_000, &options)?;
    assert_eq!(miss, Value::Vector(Vec::new()));
    Ok(())
}

#[test]
fn stale_marker_ends_the_series_until_the_next_sample() -> Result<(), QueryError> {
    let mut source = MemorySource::default();
    let stale = f64::from_bits(STALE_NAN_BITS);
    source.add(
        &labels(&[("__name__", "up")]),
        &[(0, 1.0), (15_000, 1.0), (30_000, stale), (60_000, 1.0)],
    );
    let options = QueryOptions::default();
    let at = |t| instant_query(&source, "up", t, &options);
    assert!(matches!(at(29_000)?, Value::Vector(v) if v.len() == 1));
    assert_eq!(at(30_000)?, Value::Vector(Vec::new()));
    assert_eq!(at(59_999)?, Value::Vector(Vec::new()));
    assert!(matches!(at(60_000)?, Value::Vector(v) if v.len() == 1));
    // A range function sees the samples around the marker but not the marker itself.
    let count = instant_query(&source, "count_over_time(up[2m])", 60_000, &options)?;
    assert!(matches!(count, Value::Vector(v) if v[0].value == 3.0));
    Ok(())
}

#[test]
fn offset_and_at_move_the_evaluation_time() -> Result<(), QueryError> {
    let source = fifteen_second_gauge();
    let options = QueryOptions::default();
    let value = |query: &str, t: i64| -> Result<f64, QueryError> {
        match instant_query(&source, query, t, &options)? {
            Value::Vector(v) if v.len() == 1 => Ok(v[0].value),
            other => panic!("{query}: {other:?}"),
        }
    };
    assert_eq!(value("metric offset 5m", 600_000)?, 5.0);
    assert_eq!(value("metric offset -2m", 300_000)?, 7.0);
    assert_eq!(value("metric @ 120", 600_000)?, 2.0);
    assert_eq!(value("metric @ 180 offset 1m", 0)?, 2.0);
    // A range query with `@ end()` repeats the value at the end at every step.
    let Value::Matrix(series) =
        range_query(&source, "metric @ end()", 0, 240_000, 60_000, &options)?
    else {
        panic!("a matrix");
    };
    assert_eq!(
        series[0].points,
        vec![
            (0, 4.0),
            (60_000, 4.0),
            (120_000, 4.0),
            (180_000, 4.0),
            (240_000, 4.0)
        ]
    );
    Ok(())
}

#[test]
fn range_query_evaluates_every_step_from_start_to_end_inclusive() -> Result<(), QueryError> {
    let source = fifteen_second_gauge();
    let options = QueryOptions::default();
    let Value::Matrix(series) = range_query(&source, "metric", 30_000, 100_000, 20_000, &options)?
    else {
        panic!("a matrix");
    };
    assert_eq!(series.len(), 1);
    assert_eq!(
        series[0].labels,
        labels(&[("__name__", "metric"), ("job", "a")])
    );
    // Steps 30, 50, 70, 90 s (110 s is past the end); each takes the newest sample.
    assert_eq!(
        series[0].points,
        vec![(30_000, 0.5), (50_000, 0.75), (70_000, 1.0), (90_000, 1.5)]
    );
    // A scalar becomes one series without labels.
    let Value::Matrix(scalar) = range_query(&source, "time()", 0, 120_000, 60_000, &options)?
    else {
        panic!("a matrix");
    };
    assert_eq!(scalar[0].labels, Labels::new());
    assert_eq!(
        scalar[0].points,
        vec![(0, 0.0), (60_000, 60.0), (120_000, 120.0)]
    );
    Ok(())
}

#[test]
fn range_query_of_rate_matches_instant_queries_at_each_step() -> Result<(), QueryError> {
    let source = fifteen_second_gauge();
    let options = QueryOptions::default();
    let query = "rate(metric[1m])";
    let Value::Matrix(series) = range_query(&source, query, 0, 600_000, 45_000, &options)? else {
        panic!("a matrix");
    };
    for &(t, value) in &series[0].points {
        let Value::Vector(instant) = instant_query(&source, query, t, &options)? else {
            panic!("a vector");
        };
        assert_eq!(instant[0].value, value, "at {t}");
    }
    // 0.25 per 15 s is 1/60 per second; a 1m window holds 4 samples 45 s apart, extrapolated.
    let Value::Vector(at_five_minutes) = instant_query(&source, query, 300_000, &options)? else {
        panic!("a vector");
    };
    assert!((at_five_minutes[0].value - 1.0 / 60.0).abs() < 1e-12);
    Ok(())
}

#[test]
fn rate_extrapolates_only_half_an_interval_where_the_series_starts_late() -> Result<(), QueryError>
{
    // Samples every 10 s from 100 s: 0, 10, 20, 30 (counter). Window (60 s, 130 s]:
    // samples at 100..130; start gap 40 s > 1.1 * 10 s, so extrapolate 5 s; but the zero
    // point is 0 s away (first value 0), so no extrapolation at the start; end gap 0.
    // increase = 30 * (30 + 0 + 0) / 30 = 30.
    let mut source = MemorySource::default();
    source.add(
        &labels(&[("__name__", "c_total")]),
        &[
            (100_000, 0.0),
            (110_000, 10.0),
            (120_000, 20.0),
            (130_000, 30.0),
        ],
    );
    let options = QueryOptions::default();
    let Value::Vector(v) = instant_query(&source, "increase(c_total[70s])", 130_000, &options)?
    else {
        panic!("a vector");
    };
    assert_eq!(v[0].value, 30.0);
    // Ending 25 s before the window's end extrapolates by half an interval (5 s):
    // 30 * (30 + 0 + 5) / 30 = 35.
    let Value::Vector(v) = instant_query(&source, "increase(c_total[70s])", 155_000, &options)?
    else {
        panic!("a vector");
    };
    assert_eq!(v[0].value, 35.0);
    Ok(())
}

#[test]
fn instant_query_of_a_range_selector_returns_raw_samples() -> Result<(), QueryError> {
    let source = fifteen_second_gauge();
    let value = instant_query(&source, "metric[30s]", 60_000, &QueryOptions::default())?;
    let Value::Matrix(series) = value else {
        panic!("a matrix");
    };
    // (30 s, 60 s]: the sample at 30 s is excluded.
    assert_eq!(series[0].points, vec![(45_000, 0.75), (60_000, 1.0)]);
    Ok(())
}

#[test]
fn timestamp_of_a_selector_is_the_sample_time() -> Result<(), QueryError> {
    let source = fifteen_second_gauge();
    let options = QueryOptions::default();
    let Value::Vector(v) = instant_query(&source, "timestamp(metric)", 52_000, &options)? else {
        panic!("a vector");
    };
    assert_eq!(
        (v[0].labels.clone(), v[0].value),
        (labels(&[("job", "a")]), 45.0)
    );
    let Value::Vector(v) = instant_query(&source, "timestamp(metric * 2)", 52_000, &options)?
    else {
        panic!("a vector");
    };
    assert_eq!(v[0].value, 52.0);
    Ok(())
}

#[test]
fn string_and_scalar_results() -> Result<(), QueryError> {
    let source = MemorySource::default();
    let options = QueryOptions::default();
    assert_eq!(
        instant_query(&source, "\"hello\"", 5_000, &options)?,
        Value::String(5_000, "hello".to_owned())
    );
    assert_eq!(
        instant_query(&source, "1 + 2 * 3", 5_000, &options)?,
        Value::Scalar(5_000, 7.0)
    );
    assert_eq!(
        instant_query(&source, "scalar(vector(4))", 5_000, &options)?,
        Value::Scalar(5_000, 4.0)
    );
    assert!(matches!(
        instant_query(&source, "scalar(nothing)", 5_000, &options)?,
        Value::Scalar(5_000, v) if v.is_nan()
    ));
    Ok(())
}

#[test]
fn unsupported_features_name_themselves() {
    let source = fifteen_second_gauge();
    let options = QueryOptions::default();
    let message = |query: &str| match instant_query(&source, query, 0, &options) {
        Err(QueryError::Unsupported(message)) => message,
        other => panic!("{query}: {other:?}"),
    };
    assert_eq!(
        message("double_exponential_smoothing(metric[5m], 0.5, 0.1)"),
        "function double_exponential_smoothing is not supported"
    );
    assert_eq!(
        message("ts_of_max_over_time(metric[5m])"),
        "function ts_of_max_over_time is not supported"
    );
    assert_eq!(
        message("mad_over_time(metric[5m])"),
        "function mad_over_time is not supported"
    );
    assert_eq!(
        message("limitk(1, metric)"),
        "aggregation limitk is not supported"
    );
}

#[test]
fn invalid_queries_are_parse_or_bad_query_errors() {
    let source = fifteen_second_gauge();
    let options = QueryOptions::default();
    assert!(matches!(
        instant_query(&source, "rate(metric", 0, &options),
        Err(QueryError::Parse(_))
    ));
    assert!(matches!(
        instant_query(&source, "", 0, &options),
        Err(QueryError::Parse(_))
    ));
    match range_query(&source, "metric[5m]", 0, 60_000, 15_000, &options) {
        Err(QueryError::BadQuery(message)) => assert_eq!(
            message,
            "invalid expression type \"range vector\" for range query, must be Scalar or instant Vector"
        ),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        range_query(&source, "metric", 0, 60_000, 0, &options),
        Err(QueryError::BadQuery(_))
    ));
}

#[test]
fn colliding_label_sets_are_an_error() {
    let mut source = MemorySource::default();
    source.add(&labels(&[("__name__", "a"), ("x", "1")]), &[(0, 1.0)]);
    source.add(&labels(&[("__name__", "b"), ("x", "1")]), &[(0, 2.0)]);
    let options = QueryOptions::default();
    for query in [
        "count_over_time({x=\"1\"}[5m])",
        "abs({x=\"1\"})",
        "{x=\"1\"} * 2",
        "-{x=\"1\"}",
    ] {
        match instant_query(&source, query, 0, &options) {
            Err(QueryError::Execution(message)) => {
                assert_eq!(
                    message, "vector cannot contain metrics with the same labelset",
                    "{query}"
                );
            }
            other => panic!("{query}: {other:?}"),
        }
    }
}

#[test]
fn ambiguous_vector_matching_is_an_error() {
    let mut source = MemorySource::default();
    source.add(
        &labels(&[("__name__", "a"), ("job", "j"), ("i", "1")]),
        &[(0, 1.0)],
    );
    source.add(
        &labels(&[("__name__", "a"), ("job", "j"), ("i", "2")]),
        &[(0, 1.0)],
    );
    source.add(&labels(&[("__name__", "b"), ("job", "j")]), &[(0, 2.0)]);
    let options = QueryOptions::default();
    match instant_query(&source, "a / on(job) b", 0, &options) {
        Err(QueryError::Execution(message)) => assert_eq!(
            message,
            "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
        ),
        other => panic!("{other:?}"),
    }
    match instant_query(&source, "b / on(job) a", 0, &options) {
        Err(QueryError::Execution(message)) => assert!(
            message.starts_with("found duplicate series for the match group {job=\"j\"} on the right hand-side of the operation"),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(instant_query(&source, "a / on(job) group_left b", 0, &options), Ok(Value::Vector(v)) if v.len() == 2)
    );
}

#[test]
fn limits_are_enforced() {
    let source = fifteen_second_gauge();
    let tight = QueryOptions {
        max_samples: 10,
        ..QueryOptions::default()
    };
    assert!(matches!(
        range_query(&source, "metric", 0, 600_000, 15_000, &tight),
        Err(QueryError::TooManySamples)
    ));
    let no_time = QueryOptions {
        timeout: Duration::ZERO,
        ..QueryOptions::default()
    };
    let error =
        range_query(&source, "metric", 0, 600_000, 15_000, &no_time).expect_err("times out");
    assert!(matches!(error, QueryError::Timeout));
    assert!(error.to_string().contains("query timed out"));
}

/// 100 counters over a day at 15 s (enough series for range functions to be split over the
/// cores): each grows by `n + 1` per sample, with one reset, so `rate` is known at every step.
#[test]
fn a_day_of_many_counters_gives_the_same_rates_split_over_cores_as_one_by_one()
-> Result<(), QueryError> {
    let mut source = MemorySource::default();
    for series in 0..100i64 {
        // A reset at the middle of the day: the counter starts again from 0.
        let samples: Vec<(i64, f64)> = (0..5760)
            .map(|i| (i * 15_000, ((i % 2880) * (series + 1)) as f64))
            .collect();
        let instance = format!("i{series:03}");
        source.add(
            &labels(&[("__name__", "requests_total"), ("instance", &instance)]),
            &samples,
        );
    }
    let options = QueryOptions::default();
    let all = range_query(
        &source,
        "rate(requests_total[5m])",
        0,
        86_400_000,
        60_000,
        &options,
    )?;
    let Value::Matrix(all) = all else {
        panic!("a matrix");
    };
    assert_eq!(all.len(), 100);
    for (n, series) in all.iter().enumerate() {
        // Alone, below the split threshold.
        let query = format!("rate(requests_total{{instance=\"i{n:03}\"}}[5m])");
        let Value::Matrix(alone) = range_query(&source, &query, 0, 86_400_000, 60_000, &options)?
        else {
            panic!("a matrix");
        };
        assert_eq!(alone[0].points, series.points, "{query}");
        // (n + 1) per 15 s wherever the window holds neither the series' start nor the
        // reset (whose interval counts as an increase of 0).
        let per_second = (n + 1) as f64 / 15.0;
        assert_eq!(series.points.len(), 1440, "no rate at the first step");
        let reset_ms = 2880 * 15_000;
        let clean = |ts: i64| ts > 315_000 && !(reset_ms..reset_ms + 300_000).contains(&ts);
        for &(ts, rate) in series.points.iter().filter(|(ts, _)| clean(*ts)) {
            assert!(
                (rate - per_second).abs() < 1e-9 * per_second.max(1.0),
                "{n} at {ts}: {rate}"
            );
        }
    }
    Ok(())
}

/// An aggregation over a range function takes the function's values run by run of steps
/// instead of from the evaluated call: the answers must not differ, for any operator or
/// grouping, with series split over the cores and groups that need several runs.
#[test]
fn aggregating_a_range_function_gives_what_aggregating_its_result_gives() -> Result<(), QueryError>
{
    let mut source = MemorySource::default();
    for series in 0..100i64 {
        // Counters with a reset, a stale marker and a gap, differing per series.
        let samples: Vec<(i64, f64)> = (0..5760)
            .filter(|i| !(1000 + series..1040 + series).contains(i))
            .map(|i| {
                let value = if i == 3000 + series {
                    f64::from_bits(STALE_NAN_BITS)
                } else {
                    ((i % (1500 + series)) * (series % 7 + 1)) as f64 + 0.1 * series as f64
                };
                (i * 15_000, value)
            })
            .collect();
        let instance = format!("i{series:03}");
        let group = format!("g{}", series % 10);
        source.add(
            &labels(&[
                ("__name__", "work_total"),
                ("instance", &instance),
                ("group", &group),
            ]),
            &samples,
        );
    }
    let options = QueryOptions::default();
    let run = |query: &str| range_query(&source, query, 0, 86_400_000, 60_000, &options);
    // `label_replace` that changes nothing: the same values, evaluated first.
    let evaluated = |function: &str| format!(r#"label_replace({function}, "unused", "", "", "")"#);
    let mut cases: Vec<(String, String)> = Vec::new();
    for function in [
        "rate(work_total[5m])",
        "increase(work_total[10m])",
        "avg_over_time(work_total[5m])",
        "quantile_over_time(0.5, work_total[5m])",
        "last_over_time(work_total[2m])",
        "changes(work_total[5m])",
    ] {
        cases.push((
            format!("sum by (group) ({function})"),
            format!("sum by (group) ({})", evaluated(function)),
        ));
    }
    // One group per series: several runs of steps per core.
    for operator in [
        "sum",
        "avg",
        "min",
        "max",
        "count",
        "group",
        "stddev",
        "stdvar",
        "quantile(0.9,",
        "topk(3,",
        "bottomk(2,",
    ] {
        let (name, parameter) = operator.split_once('(').unwrap_or((operator, ""));
        let open = format!("{name} by (instance) ({parameter}");
        cases.push((
            format!("{open} rate(work_total[5m]))"),
            format!("{open} {})", evaluated("rate(work_total[5m])")),
        ));
    }
    for grouping in ["", "without (instance)", "by (group, instance)"] {
        cases.push((
            format!("avg {grouping} (irate(work_total[1m]))"),
            format!("avg {grouping} ({})", evaluated("irate(work_total[1m])")),
        ));
    }
    for (fused, reference) in &cases {
        assert_eq!(run(fused)?, run(reference)?, "{fused}");
    }
    Ok(())
}

#[test]
fn aggregating_a_range_function_of_colliding_series_is_an_error() {
    let mut source = MemorySource::default();
    let samples: Vec<(i64, f64)> = (0..40).map(|i| (i * 15_000, i as f64)).collect();
    source.add(&labels(&[("__name__", "a_total"), ("job", "x")]), &samples);
    source.add(&labels(&[("__name__", "b_total"), ("job", "x")]), &samples);
    let result = range_query(
        &source,
        r#"sum(rate({__name__=~"a_total|b_total"}[5m]))"#,
        0,
        600_000,
        60_000,
        &QueryOptions::default(),
    );
    assert!(
        matches!(&result, Err(QueryError::Execution(message)) if message.contains("same labelset")),
        "{result:?}"
    );
}

/// Among equal values, `topk`/`bottomk` keep the series current Prometheus's heap keeps
/// when the series come in label order (as from its blocks), not simply the first ones: `d`
/// overwrites `a` at the top of the heap, then sinks below `b`.
#[test]
fn topk_and_bottomk_break_ties_as_prometheus_heap_does() {
    run_script(
        r#"
load 1m
  up{s="a"} 1
  up{s="b"} 1
  up{s="c"} 1
  up{s="d"} 2
  down{s="a"} 2
  down{s="b"} 2
  down{s="c"} 2
  down{s="d"} 1

eval_ordered instant at 0m topk(2, up)
  up{s="d"} 2
  up{s="b"} 1

eval_ordered instant at 0m bottomk(2, down)
  down{s="d"} 1
  down{s="b"} 2

eval instant at 0m topk(3, up)
  up{s="d"} 2
  up{s="b"} 1
  up{s="c"} 1
"#,
    );
}

/// A source that returns the same series twice, as a store scoped to two tenants could.
struct TwoTenants(MemorySource);

impl crate::series::select::SeriesSource for TwoTenants {
    fn select(
        &self,
        matchers: &[crate::series::select::Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<crate::series::select::SeriesSamples>, crate::series::select::SelectError> {
        let mut twice = self.0.select(matchers, start_ms, end_ms)?;
        twice.extend(self.0.select(matchers, start_ms, end_ms)?);
        Ok(twice)
    }

    fn series(
        &self,
        sets: &[Vec<crate::series::select::Matcher>],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Labels>, crate::series::select::SelectError> {
        self.0.series(sets, start_ms, end_ms)
    }

    fn label_names(
        &self,
        sets: &[Vec<crate::series::select::Matcher>],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<String>, crate::series::select::SelectError> {
        self.0.label_names(sets, start_ms, end_ms)
    }

    fn label_values(
        &self,
        name: &str,
        sets: &[Vec<crate::series::select::Matcher>],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<String>, crate::series::select::SelectError> {
        self.0.label_values(name, sets, start_ms, end_ms)
    }
}

#[test]
fn series_returned_twice_by_the_store_are_merged() -> Result<(), QueryError> {
    let source = TwoTenants(fifteen_second_gauge());
    let options = QueryOptions::default();
    let Value::Vector(v) = instant_query(&source, "metric", 60_000, &options)? else {
        panic!("a vector");
    };
    assert_eq!(v.len(), 1);
    let Value::Vector(v) = instant_query(&source, "count_over_time(metric[1m])", 60_000, &options)?
    else {
        panic!("a vector");
    };
    assert_eq!(v[0].value, 4.0);
    Ok(())
}

/// Found by `scripts/fuzz promql`: a subquery with a 1 ms step over centuries looped for
/// ever (no sample was held, so no limit was reached), and the longest durations at the
/// API's extreme times overflowed `i64` milliseconds.
#[test]
fn fuzz_huge_subqueries_and_extreme_times_end_in_an_answer_or_an_error() {
    let source = fifteen_second_gauge();
    let opts = QueryOptions {
        timeout: Duration::from_secs(5),
        ..QueryOptions::default()
    };
    for query in ["max_over_time(metric[292y:1ms])", "vector(1)[100y:1ms]"] {
        let result = instant_query(&source, query, 600_000, &opts);
        assert!(
            matches!(result, Err(QueryError::TooManySamples)),
            "{query}: {result:?}"
        );
    }
    // The API lets times through up to 9.2e15 seconds either way.
    let extreme_ms = 9_200_000_000_000_000_000;
    for time_ms in [-extreme_ms, extreme_ms] {
        for query in [
            "metric offset -292y",
            "metric offset 292y",
            "rate(metric[292y])",
            "max_over_time(metric[292y:1y] offset -292y)",
            "timestamp(metric @ 1e15 offset 292y)",
        ] {
            if let Err(error) = instant_query(&source, query, time_ms, &opts) {
                assert!(!error.to_string().is_empty(), "{query} at {time_ms}");
            }
        }
    }
}
