//! A call of a range-vector function (`rate(x[5m])`, `avg_over_time(x[1h])`, …): its series
//! read once, then evaluated one series over any run of the grid's steps. On its own the
//! call gives one output series per input series, computed on every core; an aggregation
//! over it (`sum by (le) (rate(…))`) takes the values run by run instead, without holding
//! them all (see `aggregate.rs`).

use std::collections::HashSet;
use std::ops::Range;

use promql_parser::parser::{Call, Expr};

use crate::parallel;
use crate::promql::engine::{Evaluator, StepSeries, merge_same_labels};
use crate::promql::error::QueryError;
use crate::promql::labels;
use crate::promql::range_functions::{self as rf, Window};
use crate::promql::selector::{SelectorTime, window};
use crate::series::select::{Labels, SeriesSamples};

/// The functions over a range vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RangeFunction {
    Rate,
    Irate,
    Increase,
    Delta,
    Idelta,
    Deriv,
    PredictLinear,
    AvgOverTime,
    MinOverTime,
    MaxOverTime,
    SumOverTime,
    CountOverTime,
    LastOverTime,
    PresentOverTime,
    StddevOverTime,
    StdvarOverTime,
    QuantileOverTime,
    Changes,
    Resets,
}

const RANGE_FUNCTIONS: &[(&str, RangeFunction)] = &[
    ("rate", RangeFunction::Rate),
    ("irate", RangeFunction::Irate),
    ("increase", RangeFunction::Increase),
    ("delta", RangeFunction::Delta),
    ("idelta", RangeFunction::Idelta),
    ("deriv", RangeFunction::Deriv),
    ("predict_linear", RangeFunction::PredictLinear),
    ("avg_over_time", RangeFunction::AvgOverTime),
    ("min_over_time", RangeFunction::MinOverTime),
    ("max_over_time", RangeFunction::MaxOverTime),
    ("sum_over_time", RangeFunction::SumOverTime),
    ("count_over_time", RangeFunction::CountOverTime),
    ("last_over_time", RangeFunction::LastOverTime),
    ("present_over_time", RangeFunction::PresentOverTime),
    ("stddev_over_time", RangeFunction::StddevOverTime),
    ("stdvar_over_time", RangeFunction::StdvarOverTime),
    ("quantile_over_time", RangeFunction::QuantileOverTime),
    ("changes", RangeFunction::Changes),
    ("resets", RangeFunction::Resets),
];

/// Tells whether `name` is a function over a range vector.
pub(crate) fn is_range_function(name: &str) -> bool {
    RANGE_FUNCTIONS.iter().any(|(known, _)| *known == name)
}

/// A range function call with its series read and its scalar arguments evaluated.
pub(crate) struct RangeCall {
    function: RangeFunction,
    series: Vec<SeriesSamples>,
    time: SelectorTime,
    range_ms: i64,
    /// Per scalar argument, its value at every step.
    scalar_args: Vec<Vec<f64>>,
}

impl RangeCall {
    /// Reads what `call` needs; `None` when it is not a range function.
    pub(crate) fn prepare(
        ev: &mut Evaluator<'_>,
        call: &Call,
    ) -> Result<Option<RangeCall>, QueryError> {
        let name = call.func.name;
        let Some(&(_, function)) = RANGE_FUNCTIONS.iter().find(|(known, _)| *known == name) else {
            return Ok(None);
        };
        let matrix_index = usize::from(function == RangeFunction::QuantileOverTime);
        let mut scalar_args = Vec::new();
        let mut matrix = None;
        for (index, arg) in call.args.args.iter().enumerate() {
            let mut arg: &Expr = arg;
            while let Expr::Paren(paren) = arg {
                arg = &paren.expr;
            }
            if index == matrix_index {
                matrix = Some(arg);
            } else {
                scalar_args.push(ev.eval_scalar(arg)?);
            }
        }
        let (series, time, range_ms) = match matrix {
            Some(Expr::MatrixSelector(selector)) => ev.load_range(selector)?,
            Some(Expr::Subquery(subquery)) => ev.load_subquery(subquery)?,
            _ => {
                return Err(QueryError::BadQuery(format!(
                    "function {name} expects a range vector"
                )));
            }
        };
        Ok(Some(RangeCall {
            function,
            series,
            time,
            range_ms,
            scalar_args,
        }))
    }

    /// How many input series there are.
    pub(crate) fn len(&self) -> usize {
        self.series.len()
    }

    /// The labels of the output of input series `index`: without the metric name, except
    /// for `last_over_time`.
    pub(crate) fn labels(&self, index: usize) -> Labels {
        let labels = &self.series[index].labels;
        if self.function == RangeFunction::LastOverTime {
            labels.clone()
        } else {
            labels::drop_name(labels)
        }
    }

    /// Tells whether two input series have the same output labels (then the call fails if
    /// both give output, as in Prometheus).
    pub(crate) fn has_equal_output_labels(&self) -> bool {
        let mut seen = HashSet::with_capacity(self.len());
        (0..self.len()).any(|index| !seen.insert(self.labels(index)))
    }

    /// Every series over the whole grid: the call's own result, as Prometheus gives it.
    pub(crate) fn eval(self, ev: &mut Evaluator<'_>) -> Result<Vec<StepSeries>, QueryError> {
        // Series are independent: many are split over the cores.
        let per_part = self.len().div_ceil(parallel::parts_for(self.len())).max(1);
        let parts: Vec<Range<usize>> = (0..self.len())
            .step_by(per_part)
            .map(|first| first..(first + per_part).min(self.len()))
            .collect();
        let shared: &Evaluator<'_> = ev;
        let call = &self;
        let steps = shared.grid.len();
        let computed = parallel::map_parts(parts, |part| {
            let mut out = Vec::with_capacity(part.len());
            for index in part {
                // Counted before it is allocated, on every thread at once.
                let capacity = call.steps_with_samples(shared, index);
                shared.hold_samples(capacity)?;
                let mut points = Vec::with_capacity(capacity);
                call.eval_steps(shared, index, 0..steps, &mut points)?;
                if !points.is_empty() {
                    out.push(StepSeries {
                        labels: call.labels(index),
                        points,
                    });
                }
            }
            Ok::<_, QueryError>(out)
        });
        let mut output = Vec::new();
        for part in computed {
            output.extend(part?);
        }
        // Prometheus rejects equal label sets anywhere in a range function's output.
        merge_same_labels(output, true)
    }

    /// Appends to `out` the output of input series `index` at the grid's steps `steps`
    /// (indexes), as `(step timestamp, value)`; steps without a value are left out.
    pub(crate) fn eval_steps(
        &self,
        ev: &Evaluator<'_>,
        index: usize,
        steps: Range<usize>,
        out: &mut Vec<(i64, f64)>,
    ) -> Result<(), QueryError> {
        ev.check_timeout()?;
        if steps.is_empty() {
            return Ok(());
        }
        let samples = &*self.series[index].samples;
        let (time, range_ms, grid) = (self.time, self.range_ms, ev.grid);
        // The windows of the run, as `window` would have left its cursors.
        let first_end = time.reference(grid.at(steps.start));
        let last_end = time.reference(grid.at(steps.end - 1));
        let high = samples.partition_point(|&(ts, _)| ts <= first_end);
        let low = samples[..high].partition_point(|&(ts, _)| ts <= first_end - range_ms);
        let mut cursors = (low, high);
        // Where counters reset (sample k below sample k - 1) among the run's samples; usually
        // nowhere, so most windows skip the scan for them.
        let reset_at: Vec<usize> =
            if matches!(self.function, RangeFunction::Rate | RangeFunction::Increase) {
                let last = samples.partition_point(|&(ts, _)| ts <= last_end);
                (low + 1..last)
                    .filter(|&k| samples[k].1 < samples[k - 1].1)
                    .collect()
            } else {
                Vec::new()
            };
        let mut next_reset = 0;
        for step in steps {
            let ts = grid.at(step);
            let end_ms = time.reference(ts);
            let bounds = Window {
                start_ms: end_ms - range_ms,
                end_ms,
                range_ms,
            };
            let in_window = window(samples, &mut cursors, bounds.start_ms, end_ms);
            if in_window.is_empty() {
                continue;
            }
            let scalar = |at: usize| self.scalar_args[at][step];
            let value = match self.function {
                RangeFunction::Rate | RangeFunction::Increase => {
                    // A reset inside the window is one between two of its samples.
                    while reset_at.get(next_reset).is_some_and(|&k| k <= cursors.0) {
                        next_reset += 1;
                    }
                    let may_reset = reset_at.get(next_reset).is_some_and(|&k| k < cursors.1);
                    let is_rate = self.function == RangeFunction::Rate;
                    rf::extrapolated_rate(in_window, bounds, true, is_rate, may_reset)
                }
                RangeFunction::Delta => {
                    rf::extrapolated_rate(in_window, bounds, false, false, false)
                }
                RangeFunction::Irate => rf::instant_value(in_window, true),
                RangeFunction::Idelta => rf::instant_value(in_window, false),
                RangeFunction::Deriv => rf::deriv(in_window),
                // `predict_linear` is "@-unsafe" in Prometheus: even with `@`, the line is
                // evaluated at each step's time.
                RangeFunction::PredictLinear => rf::predict_linear(in_window, ts, scalar(0)),
                RangeFunction::AvgOverTime => Some(rf::avg_over_time(in_window)),
                RangeFunction::MinOverTime => Some(rf::extreme_over_time(in_window, false)),
                RangeFunction::MaxOverTime => Some(rf::extreme_over_time(in_window, true)),
                RangeFunction::SumOverTime => Some(rf::sum_over_time(in_window)),
                RangeFunction::CountOverTime => Some(in_window.len() as f64),
                RangeFunction::LastOverTime => in_window.last().map(|&(_, value)| value),
                RangeFunction::PresentOverTime => Some(1.0),
                RangeFunction::StddevOverTime => Some(rf::variance_over_time(in_window).sqrt()),
                RangeFunction::StdvarOverTime => Some(rf::variance_over_time(in_window)),
                RangeFunction::QuantileOverTime => {
                    let mut values: Vec<f64> = in_window.iter().map(|&(_, v)| v).collect();
                    Some(rf::quantile(scalar(0), &mut values))
                }
                RangeFunction::Changes => Some(rf::changes(in_window)),
                RangeFunction::Resets => Some(rf::resets(in_window)),
            };
            if let Some(value) = value {
                out.push((ts, value));
            }
        }
        Ok(())
    }

    /// At most how many of the grid's steps see a sample of series `index`: what its
    /// output is allocated for.
    fn steps_with_samples(&self, ev: &Evaluator<'_>, index: usize) -> usize {
        let samples = &self.series[index].samples;
        let (Some(&(first, _)), Some(&(last, _))) = (samples.first(), samples.last()) else {
            return 0;
        };
        let steps = ev.grid.len();
        if self.time.is_fixed() {
            return steps;
        }
        let span = (last - first).saturating_add(self.range_ms) / ev.grid.step_ms;
        usize::try_from(span).map_or(steps, |span| span.saturating_add(2).min(steps))
    }
}
