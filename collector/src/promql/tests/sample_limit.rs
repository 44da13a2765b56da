//! `[query] max_samples` counts what a query builds while it builds it (selector
//! points, a subquery's grid, an aggregation's groups), so a query over the limit stops near
//! it instead of after building everything; and it counts what is alive, not every
//! intermediate result ever made. (A range function counts each series' points before it
//! allocates them; that order is not visible in the count, and `tests/tests/e2e/query_limits.rs`
//! measures it in memory.)

use super::MemorySource;
use crate::parallel;
use crate::promql::engine::{Evaluator, StepGrid};
use crate::promql::{QueryError, QueryOptions, parse};
use crate::series::select::Labels;

/// How many points `Growing` lets exist before it counts them.
const CHUNK: usize = 4096;

/// `count` series `load{i="…"}` with a sample every second from 0 s to 60 s.
fn many_series(count: usize) -> MemorySource {
    let mut source = MemorySource::default();
    let samples: Vec<(i64, f64)> = (0..=60).map(|s| (s * 1000, s as f64)).collect();
    for index in 0..count {
        let labels: Labels = vec![
            ("__name__".to_owned(), "load".to_owned()),
            ("i".to_owned(), index.to_string()),
        ];
        source.add(&labels, &samples);
    }
    source
}

/// Evaluates `query` over `grid` with `max_samples`: the result's sample count or error, and
/// the most samples the query held at once.
fn evaluate(
    source: &MemorySource,
    query: &str,
    grid: StepGrid,
    max_samples: usize,
) -> (Result<usize, QueryError>, usize) {
    let options = QueryOptions {
        max_samples,
        ..QueryOptions::default()
    };
    let expr = parse(query).expect("valid PromQL");
    let mut evaluator = Evaluator::new(source, grid, &options);
    let result = evaluator.eval(&expr).map(|value| value.sample_count());
    (result, evaluator.samples.peak())
}

fn at(ts_ms: i64) -> StepGrid {
    StepGrid {
        start_ms: ts_ms,
        end_ms: ts_ms,
        step_ms: 1,
    }
}

/// The query: a 1 ms subquery makes a point per millisecond for every series (here
/// 200 × 60,000 = 12 million); the selector under it used to count them only once all were
/// built.
#[test]
fn a_fine_subquery_stops_at_the_limit_instead_of_building_its_whole_grid() {
    let source = many_series(200);
    let max_samples = 100_000;
    let (result, peak) = evaluate(
        &source,
        "max_over_time(load[1m:1ms])",
        at(60_000),
        max_samples,
    );
    assert!(
        matches!(result, Err(QueryError::TooManySamples)),
        "{result:?}"
    );
    assert!(
        peak <= max_samples + CHUNK,
        "held {peak} samples at once, the limit is {max_samples}"
    );
}

/// An aggregation over a range function with a group per series builds as many points as
/// the function would have: counted run by run.
#[test]
fn an_aggregation_keeping_every_series_counts_its_groups_as_it_goes() {
    let source = many_series(200);
    let grid = StepGrid {
        start_ms: 0,
        end_ms: 60_000,
        step_ms: 10,
    };
    let max_samples = 100_000;
    let (result, peak) = evaluate(&source, "sum by (i) (rate(load[10s]))", grid, max_samples);
    assert!(
        matches!(result, Err(QueryError::TooManySamples)),
        "{result:?}"
    );
    // A run holds at most 65,536 group states; each thread may have been in one.
    let slack = parallel::cores() * (1 << 16);
    assert!(
        peak <= max_samples + slack,
        "held {peak} samples at once, the limit is {max_samples}"
    );
}

/// Intermediate vectors count while they exist: `load * 2` holds its input and its output
/// at once (before, only selectors and range functions were counted), and a chain of such
/// steps holds two at a time, not all of them.
#[test]
fn intermediate_vectors_are_counted_while_they_exist() {
    let source = many_series(10);
    let grid = StepGrid {
        start_ms: 0,
        end_ms: 60_000,
        step_ms: 100,
    };
    // 10 series × 601 steps of points, from 10 × 61 samples read; `2` is a scalar per step.
    let (points, read, scalar) = (10 * 601, 10 * 61, grid.len());
    let (result, peak) = evaluate(&source, "load", grid, usize::MAX);
    assert_eq!(result.expect("no limit"), points);
    assert_eq!(peak, read + points, "what was read and the points");

    let input_and_output = 2 * points + scalar;
    let (result, _) = evaluate(&source, "load * 2", grid, input_and_output - 1);
    assert!(
        matches!(result, Err(QueryError::TooManySamples)),
        "room for the selector's points but not for the product beside them: {result:?}"
    );
    let (result, _) = evaluate(&source, "load * 2", grid, input_and_output);
    assert_eq!(result.expect("room for both"), points);

    let chain = "((((load * 2) * 2) * 2) * 2) * 2";
    let (result, peak) = evaluate(&source, chain, grid, input_and_output);
    assert_eq!(result.expect("two vectors at a time, not all six"), points);
    assert_eq!(peak, input_and_output);
}
