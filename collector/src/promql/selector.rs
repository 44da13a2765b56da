//! Vector and range selectors: turn PromQL matchers into store matchers, read the store once
//! for the whole grid, and pick samples per step as Prometheus does. An instant selector takes
//! the newest sample in `(t - lookback, t]` unless that sample is a staleness marker; a range
//! selector takes every sample in `(t - range, t]` except staleness markers.

use std::collections::HashMap;
use std::ops::Range;
use std::time::{Duration, SystemTime};

use promql_parser::label::{MatchOp as ParserMatchOp, Matcher as ParserMatcher};
use promql_parser::parser::{AtModifier, MatrixSelector, Offset, SubqueryExpr, VectorSelector};

use crate::parallel;
use crate::promql::engine::{Evaluated, Evaluator, StepGrid, StepSeries};
use crate::promql::error::QueryError;
use crate::promql::sample_limit::Growing;
use crate::promql::value::Series;
use crate::series::select::{
    Labels, METRIC_NAME, MatchOp, Matcher, SeriesSamples, is_stale_marker,
};

/// Converts a selector's matchers into store matcher sets (several for `{a="1" or b="2"}`).
pub fn matcher_sets(selector: &VectorSelector) -> Result<Vec<Vec<Matcher>>, QueryError> {
    let groups: Vec<&Vec<ParserMatcher>> = if selector.matchers.or_matchers.is_empty() {
        vec![&selector.matchers.matchers]
    } else {
        selector.matchers.or_matchers.iter().collect()
    };
    groups
        .into_iter()
        .map(|group| {
            let mut set = Vec::with_capacity(group.len() + 1);
            if let Some(name) = &selector.name {
                set.push(Matcher::equal(METRIC_NAME, name));
            }
            for matcher in group {
                set.push(store_matcher(matcher)?);
            }
            Ok(set)
        })
        .collect()
}

fn store_matcher(matcher: &ParserMatcher) -> Result<Matcher, QueryError> {
    let plain = |op| Matcher {
        name: matcher.name.clone(),
        op,
        value: matcher.value.clone(),
    };
    Ok(match &matcher.op {
        ParserMatchOp::Equal => plain(MatchOp::Equal),
        ParserMatchOp::NotEqual => plain(MatchOp::NotEqual),
        // Prometheus anchors as `^(?s:…)$`; the parser's own regex (anchored without `s`) is
        // the fallback for Go-isms it already rewrote, like a literal `{`.
        ParserMatchOp::Re(parsed) => Matcher::regex(&matcher.name, &matcher.value, false)
            .unwrap_or_else(|_| plain(MatchOp::Regex(parsed.clone()))),
        ParserMatchOp::NotRe(parsed) => Matcher::regex(&matcher.name, &matcher.value, true)
            .unwrap_or_else(|_| plain(MatchOp::NotRegex(parsed.clone()))),
    })
}

/// The signed offset in milliseconds (`offset -5m` is negative).
pub(crate) fn offset_ms(offset: Option<&Offset>) -> i64 {
    match offset {
        None => 0,
        Some(Offset::Pos(duration)) => duration_ms(*duration),
        Some(Offset::Neg(duration)) => -duration_ms(*duration),
    }
}

/// A duration in whole milliseconds.
pub(crate) fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// The fixed evaluation time of an `@` modifier, if any.
pub(crate) fn at_ms(at: Option<&AtModifier>, grid: &StepGrid) -> Option<i64> {
    match at? {
        AtModifier::Start => Some(grid.start_ms),
        AtModifier::End => Some(grid.end_ms),
        AtModifier::At(time) => Some(match time.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(after) => duration_ms(after),
            Err(before) => -duration_ms(before.duration()),
        }),
    }
}

/// The step of a subquery without one (`x[1h:]`): Prometheus uses the global evaluation
/// interval, 1 minute by default.
pub(crate) const DEFAULT_SUBQUERY_STEP_MS: i64 = 60_000;

/// When a selector looks at the data for the step at `ts_ms`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SelectorTime {
    at_ms: Option<i64>,
    offset_ms: i64,
}

impl SelectorTime {
    pub(crate) fn of(selector: &VectorSelector, grid: &StepGrid) -> SelectorTime {
        SelectorTime {
            at_ms: at_ms(selector.at.as_ref(), grid),
            offset_ms: offset_ms(selector.offset.as_ref()),
        }
    }

    /// Tells whether every step sees the same time (`@`).
    pub(crate) fn is_fixed(&self) -> bool {
        self.at_ms.is_some()
    }

    /// The time whose data the step at `ts_ms` sees.
    pub(crate) fn reference(&self, ts_ms: i64) -> i64 {
        self.at_ms.unwrap_or(ts_ms).saturating_sub(self.offset_ms)
    }
}

impl Evaluator<'_> {
    /// Reads the series of `selector` with samples in `[from_ms, to_ms]`, sorted by labels.
    fn select(
        &mut self,
        selector: &VectorSelector,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<SeriesSamples>, QueryError> {
        let sets = matcher_sets(selector)?;
        // The store stops reading at what the query may still hold, not after it.
        let mut series = if sets.len() == 1 {
            self.source
                .select_within(&sets[0], from_ms, to_ms, self.samples.remaining())?
        } else {
            let mut union: HashMap<Labels, SeriesSamples> = HashMap::new();
            for set in &sets {
                let within = self.samples.remaining();
                for one in self.source.select_within(set, from_ms, to_ms, within)? {
                    union.entry(one.labels.clone()).or_insert(one);
                }
            }
            union.into_values().collect()
        };
        series.sort_by(|a, b| a.labels.cmp(&b.labels));
        let series = merge_equal_labels(series);
        let loaded = series.iter().map(|one| one.samples.len()).sum();
        self.hold_samples(loaded)?;
        Ok(series)
    }

    /// The time span a selector needs for the whole grid, widened by `width_ms` before.
    fn span(&self, time: SelectorTime, width_ms: i64) -> (i64, i64) {
        let first = time.reference(self.grid.start_ms);
        let last = time.reference(self.grid.end_ms);
        (first.saturating_sub(width_ms).saturating_add(1), last)
    }

    /// An instant vector selector over the grid.
    pub(crate) fn eval_vector_selector(
        &mut self,
        selector: &VectorSelector,
    ) -> Result<Vec<StepSeries>, QueryError> {
        self.instant_samples(selector, false)
    }

    /// `timestamp(selector)`: per step, the time (in seconds) of the sample an instant
    /// selector would pick, rather than its value.
    pub(crate) fn eval_sample_timestamps(
        &mut self,
        selector: &VectorSelector,
    ) -> Result<Vec<StepSeries>, QueryError> {
        self.instant_samples(selector, true)
    }

    fn instant_samples(
        &mut self,
        selector: &VectorSelector,
        sample_time_as_value: bool,
    ) -> Result<Vec<StepSeries>, QueryError> {
        let time = SelectorTime::of(selector, &self.grid);
        let (from_ms, to_ms) = self.span(time, self.lookback_ms);
        let selected = self.select(selector, from_ms, to_ms)?;
        let mut result = Vec::with_capacity(selected.len());
        // Counted as the points are made: a subquery's grid of millions of steps over
        // thousands of series stops at the limit instead of after building them all.
        let mut growing = Growing::new(&self.samples);
        for one in selected {
            self.check_timeout()?;
            let samples = &one.samples;
            let mut points = Vec::new();
            // `next` is the first sample after the reference time of the current step.
            let mut next = 0;
            for step in self.steps_seeing(time, samples) {
                let ts_ms = self.grid.at(step);
                let reference = time.reference(ts_ms);
                while next < samples.len() && samples[next].0 <= reference {
                    next += 1;
                }
                let Some(&(t, value)) = next.checked_sub(1).and_then(|at| samples.get(at)) else {
                    continue;
                };
                if t <= reference - self.lookback_ms || is_stale_marker(value) {
                    continue;
                }
                if sample_time_as_value {
                    points.push((ts_ms, t as f64 / 1000.0));
                } else {
                    points.push((ts_ms, value));
                }
                growing.add_one()?;
            }
            if !points.is_empty() {
                result.push(StepSeries {
                    labels: one.labels,
                    points,
                });
            }
        }
        growing.finish()?;
        Ok(result)
    }

    /// The indexes of the steps that may see one of `samples` (sorted by time): those whose
    /// reference time is at or after the first sample and within the lookback of the last. A
    /// grid of millions of steps (a fine subquery) over a short series walks only these.
    fn steps_seeing(&self, time: SelectorTime, samples: &[(i64, f64)]) -> Range<usize> {
        let steps = self.grid.len();
        let (Some(&(first, _)), Some(&(last, _))) = (samples.first(), samples.last()) else {
            return 0..0;
        };
        if time.is_fixed() {
            return 0..steps;
        }
        let (start, step) = (
            i128::from(self.grid.start_ms),
            i128::from(self.grid.step_ms),
        );
        // The first step at or after `ts_ms`.
        let first_step_from = |ts_ms: i128| -> usize {
            if ts_ms <= start {
                return 0;
            }
            usize::try_from((ts_ms - start + step - 1) / step).map_or(steps, |at| at.min(steps))
        };
        let offset = i128::from(time.offset_ms);
        let seen_until = i128::from(last) + i128::from(self.lookback_ms);
        let end = if seen_until > i128::from(i64::MAX) {
            // Reference times saturate there: keep every later step.
            steps
        } else {
            first_step_from(seen_until + offset)
        };
        let begin = first_step_from(i128::from(first) + offset);
        begin.min(end)..end
    }

    /// Reads what a range selector needs for the whole grid: its series with staleness
    /// markers removed, and when it looks.
    pub(crate) fn load_range(
        &mut self,
        selector: &MatrixSelector,
    ) -> Result<(Vec<SeriesSamples>, SelectorTime, i64), QueryError> {
        let time = SelectorTime::of(&selector.vs, &self.grid);
        let range_ms = duration_ms(selector.range);
        let (from_ms, to_ms) = self.span(time, range_ms);
        let mut selected = self.select(&selector.vs, from_ms, to_ms)?;
        parallel::for_each_mut(&mut selected, |one| {
            one.samples.retain(|&(_, value)| !is_stale_marker(value));
        });
        Ok((selected, time, range_ms))
    }

    /// Evaluates a subquery's inner expression on its own grid (steps aligned to multiples
    /// of its step, covering every window the outer grid needs) and returns the result as
    /// a range selector would: series with points, and when it looks.
    pub(crate) fn load_subquery(
        &mut self,
        subquery: &SubqueryExpr,
    ) -> Result<(Vec<SeriesSamples>, SelectorTime, i64), QueryError> {
        let time = SelectorTime {
            at_ms: at_ms(subquery.at.as_ref(), &self.grid),
            offset_ms: offset_ms(subquery.offset.as_ref()),
        };
        let range_ms = duration_ms(subquery.range);
        let step_ms = subquery
            .step
            .map(duration_ms)
            .filter(|&step| step > 0)
            .unwrap_or(DEFAULT_SUBQUERY_STEP_MS);
        let earliest = time.reference(self.grid.start_ms).saturating_sub(range_ms);
        // The first multiple of the step after `earliest` (Go's truncating division).
        let mut start_ms = step_ms * (earliest / step_ms);
        if start_ms <= earliest {
            start_ms = start_ms.saturating_add(step_ms);
        }
        let end_ms = time.reference(self.grid.end_ms);
        if start_ms > end_ms {
            return Ok((Vec::new(), time, range_ms));
        }
        let grid = StepGrid {
            start_ms,
            end_ms,
            step_ms,
        };
        // `x[292y:1ms]` would otherwise loop for ever (found by `scripts/fuzz promql`).
        self.check_grid_fits(&grid)?;
        let series = match self.eval_on_grid(grid, &subquery.expr)? {
            Evaluated::Vector(series) => series,
            Evaluated::Scalar(values) => vec![StepSeries {
                labels: Labels::new(),
                points: grid.timestamps().zip(values).collect(),
            }],
            _ => {
                return Err(QueryError::BadQuery(
                    "subquery is only allowed on instant vector or scalar expressions".to_owned(),
                ));
            }
        };
        let samples = series
            .into_iter()
            .map(|one| SeriesSamples {
                labels: one.labels,
                samples: one.points.into(),
            })
            .collect();
        Ok((samples, time, range_ms))
    }

    /// A subquery as the result of an instant query: its points in `(t - range, t]`.
    pub(crate) fn eval_subquery_matrix(
        &mut self,
        subquery: &SubqueryExpr,
    ) -> Result<Vec<Series>, QueryError> {
        let (series, time, range_ms) = self.load_subquery(subquery)?;
        Ok(points_in_range(
            series,
            time.reference(self.grid.start_ms),
            range_ms,
        ))
    }

    /// A range selector as the result of an instant query: the raw samples in
    /// `(t - range, t]` of the first step.
    pub(crate) fn eval_matrix_selector(
        &mut self,
        selector: &MatrixSelector,
    ) -> Result<Vec<Series>, QueryError> {
        let (selected, time, range_ms) = self.load_range(selector)?;
        Ok(points_in_range(
            selected,
            time.reference(self.grid.start_ms),
            range_ms,
        ))
    }
}

/// The points of each series in `(reference - range_ms, reference]`, series left empty
/// dropped, sorted by labels.
fn points_in_range(series: Vec<SeriesSamples>, reference: i64, range_ms: i64) -> Vec<Series> {
    let mut matrix: Vec<Series> = series
        .into_iter()
        .map(|one| Series {
            labels: one.labels,
            points: one
                .samples
                .iter()
                .copied()
                .filter(|&(t, _)| t > reference - range_ms && t <= reference)
                .collect(),
        })
        .filter(|series| !series.points.is_empty())
        .collect();
    matrix.sort_by(|a, b| a.labels.cmp(&b.labels));
    matrix
}

/// Finds the samples in `(start_ms, end_ms]` of time-sorted `samples`, moving the two
/// cursors forward (both bounds only grow from step to step).
pub(crate) fn window<'s>(
    samples: &'s [(i64, f64)],
    cursors: &mut (usize, usize),
    start_ms: i64,
    end_ms: i64,
) -> &'s [(i64, f64)] {
    let (low, high) = cursors;
    while *high < samples.len() && samples[*high].0 <= end_ms {
        *high += 1;
    }
    while *low < *high && samples[*low].0 <= start_ms {
        *low += 1;
    }
    &samples[*low..*high]
}

/// Merges series with equal labels (the same series stored for two of the caller's tenants),
/// as Prometheus's querier merges blocks: one sample per timestamp, the first one winning.
/// The input is sorted by labels.
fn merge_equal_labels(series: Vec<SeriesSamples>) -> Vec<SeriesSamples> {
    let mut merged: Vec<SeriesSamples> = Vec::with_capacity(series.len());
    for one in series {
        match merged.last_mut() {
            Some(last) if last.labels == one.labels => {
                let mut samples = last.samples.to_vec();
                samples.extend_from_slice(&one.samples);
                samples.sort_by_key(|&(t, _)| t);
                samples.dedup_by_key(|&mut (t, _)| t);
                last.samples = samples.into();
            }
            _ => merged.push(one),
        }
    }
    merged
}
