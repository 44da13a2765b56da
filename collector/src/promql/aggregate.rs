//! Aggregation operators (`sum`, `avg`, `min`, `max`, `count`, `group`, `stddev`, `stdvar`,
//! `quantile`, `topk`, `bottomk`, `count_values`) with `by`/`without`. Groups keep only the `by` labels, or
//! drop the `without` labels and the metric name; `topk`/`bottomk` keep whole input series.
//! Arithmetic follows Prometheus's `aggregation()` (compensated sums, NaN rules).

use std::collections::HashMap;

use promql_parser::parser::{AggregateExpr, Expr, LabelModifier};

use crate::promql::engine::{Evaluated, Evaluator, SeriesCollector, StepCursor, StepSeries};
use crate::promql::error::QueryError;
use crate::promql::labels;
use crate::promql::range_functions::{kahan_inc, quantile};
use crate::series::select::{Labels, METRIC_NAME};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Operator {
    Sum,
    Avg,
    Min,
    Max,
    Count,
    Group,
    Stddev,
    Stdvar,
    Quantile,
    Topk,
    Bottomk,
}

/// The running state of one group at one step.
#[derive(Debug, Clone, Default)]
struct GroupState {
    seen: bool,
    value: f64,
    mean: f64,
    compensation: f64,
    count: f64,
    incremental_mean: bool,
    values: Vec<f64>,
}

/// Evaluates an aggregation over the grid.
pub(crate) fn eval_aggregate(
    ev: &mut Evaluator<'_>,
    aggregation: &AggregateExpr,
) -> Result<Evaluated, QueryError> {
    if aggregation.op.to_string() == "count_values" {
        return count_values(ev, aggregation);
    }
    let operator = match aggregation.op.to_string().as_str() {
        "sum" => Operator::Sum,
        "avg" => Operator::Avg,
        "min" => Operator::Min,
        "max" => Operator::Max,
        "count" => Operator::Count,
        "group" => Operator::Group,
        "stddev" => Operator::Stddev,
        "stdvar" => Operator::Stdvar,
        "quantile" => Operator::Quantile,
        "topk" => Operator::Topk,
        "bottomk" => Operator::Bottomk,
        other => {
            return Err(QueryError::Unsupported(format!(
                "aggregation {other} is not supported"
            )));
        }
    };
    // As in Prometheus, the parameter is taken at the first step.
    let parameter = match &aggregation.param {
        Some(param) => ev.eval_scalar(param)?.first().copied().unwrap_or(f64::NAN),
        None => f64::NAN,
    };
    let input = ev.eval_vector(&aggregation.expr)?;

    let (without, grouping): (bool, Vec<String>) = match &aggregation.modifier {
        None => (false, Vec::new()),
        Some(LabelModifier::Include(names)) => (false, names.labels.clone()),
        Some(LabelModifier::Exclude(names)) => (true, names.labels.clone()),
    };
    let mut group_index: HashMap<Labels, usize> = HashMap::new();
    let mut group_labels: Vec<Labels> = Vec::new();
    let series_group: Vec<usize> = input
        .iter()
        .map(|series| {
            let key = if without {
                let mut dropped: Vec<&str> = grouping.iter().map(String::as_str).collect();
                dropped.push(METRIC_NAME);
                labels::without(&series.labels, &dropped)
            } else {
                labels::keep(&series.labels, &grouping)
            };
            let next = group_labels.len();
            let group = *group_index.entry(key.clone()).or_insert(next);
            if group == next {
                group_labels.push(key);
            }
            group
        })
        .collect();

    if matches!(operator, Operator::Topk | Operator::Bottomk) {
        return select_k(
            ev,
            operator,
            parameter,
            &input,
            &series_group,
            group_labels.len(),
        );
    }

    let mut states = vec![GroupState::default(); group_labels.len()];
    let mut outputs: Vec<StepSeries> = group_labels
        .into_iter()
        .map(|labels| StepSeries {
            labels,
            points: Vec::new(),
        })
        .collect();
    let mut cursor = StepCursor::new(input.len());
    let mut present = Vec::new();
    for ts in ev.grid.timestamps() {
        ev.check_timeout()?;
        cursor.gather(&input, ts, &mut present);
        for state in &mut states {
            state.seen = false;
        }
        for &(series, value) in &present {
            accumulate(operator, &mut states[series_group[series]], value);
        }
        for (group, state) in states.iter_mut().enumerate() {
            if state.seen {
                outputs[group]
                    .points
                    .push((ts, finish(operator, state, parameter)));
            }
        }
    }
    outputs.retain(|series| !series.points.is_empty());
    Ok(Evaluated::Vector(outputs))
}

/// Adds one sample to a group, as Prometheus's `aggregation()`.
fn accumulate(operator: Operator, state: &mut GroupState, value: f64) {
    if !state.seen {
        *state = GroupState {
            seen: true,
            value,
            mean: value,
            count: 1.0,
            values: std::mem::take(&mut state.values),
            ..GroupState::default()
        };
        match operator {
            Operator::Stddev | Operator::Stdvar => {
                state.value = if value.is_nan() || value.is_infinite() {
                    f64::NAN
                } else {
                    0.0
                };
            }
            Operator::Quantile => {
                state.values.clear();
                state.values.push(value);
            }
            Operator::Group => state.value = 1.0,
            _ => {}
        }
        return;
    }
    match operator {
        Operator::Sum => {
            (state.value, state.compensation) = kahan_inc(value, state.value, state.compensation);
        }
        Operator::Avg => {
            state.count += 1.0;
            if !state.incremental_mean {
                let (sum, compensation) = kahan_inc(value, state.value, state.compensation);
                if !sum.is_infinite() {
                    (state.value, state.compensation) = (sum, compensation);
                    return;
                }
                // The sum would overflow: continue with an incremental mean.
                state.incremental_mean = true;
                state.mean = state.value / (state.count - 1.0);
                state.compensation /= state.count - 1.0;
            }
            if state.mean.is_infinite() {
                if value.is_infinite() && (state.mean > 0.0) == (value > 0.0) {
                    return;
                }
                if !value.is_infinite() && !value.is_nan() {
                    return;
                }
            }
            let current_mean = state.mean + state.compensation;
            (state.mean, state.compensation) = kahan_inc(
                value / state.count - current_mean / state.count,
                state.mean,
                state.compensation,
            );
        }
        Operator::Max => {
            if state.value < value || state.value.is_nan() {
                state.value = value;
            }
        }
        Operator::Min => {
            if state.value > value || state.value.is_nan() {
                state.value = value;
            }
        }
        Operator::Count => state.count += 1.0,
        Operator::Group => {}
        Operator::Stddev | Operator::Stdvar => {
            state.count += 1.0;
            let delta = value - state.mean;
            state.mean += delta / state.count;
            state.value += delta * (value - state.mean);
        }
        Operator::Quantile => state.values.push(value),
        Operator::Topk | Operator::Bottomk => unreachable!("handled by select_k"),
    }
}

/// The group's value at the end of a step.
fn finish(operator: Operator, state: &mut GroupState, parameter: f64) -> f64 {
    match operator {
        Operator::Sum => state.value + state.compensation,
        Operator::Avg if state.incremental_mean => state.mean + state.compensation,
        Operator::Avg => (state.value + state.compensation) / state.count,
        Operator::Count => state.count,
        Operator::Stdvar => state.value / state.count,
        Operator::Stddev => (state.value / state.count).sqrt(),
        Operator::Quantile => quantile(parameter, &mut state.values),
        _ => state.value,
    }
}

/// `topk`/`bottomk`: per step and group, the `k` largest (smallest) samples, NaN last,
/// earlier series winning ties; output in that order, with the input series' labels.
fn select_k(
    ev: &mut Evaluator<'_>,
    operator: Operator,
    parameter: f64,
    input: &[StepSeries],
    series_group: &[usize],
    group_count: usize,
) -> Result<Evaluated, QueryError> {
    if !(parameter.is_finite() && parameter.abs() < 9.2e18) {
        return Err(QueryError::Execution(format!(
            "Scalar value {} overflows int64",
            crate::promql::value::format_value(parameter)
        )));
    }
    let k = (parameter.trunc() as i64).min(i64::try_from(input.len()).unwrap_or(i64::MAX));
    if k < 1 {
        return Ok(Evaluated::Vector(Vec::new()));
    }
    let k = usize::try_from(k).expect("k is positive");
    let top = operator == Operator::Topk;
    let mut cursor = StepCursor::new(input.len());
    let mut present = Vec::new();
    let mut per_group: Vec<Vec<(usize, f64)>> = vec![Vec::new(); group_count];
    let mut collector = SeriesCollector::default();
    let mut slots: Vec<Option<usize>> = vec![None; input.len()];
    for ts in ev.grid.timestamps() {
        ev.check_timeout()?;
        cursor.gather(input, ts, &mut present);
        for group in &mut per_group {
            group.clear();
        }
        for &(series, value) in &present {
            per_group[series_group[series]].push((series, value));
        }
        for group in &mut per_group {
            // A stable sort keeps the earlier series first among equal values.
            group.sort_by(|a, b| {
                let (x, y) = (a.1, b.1);
                match (x.is_nan(), y.is_nan()) {
                    (true, true) => std::cmp::Ordering::Equal,
                    (true, false) => std::cmp::Ordering::Greater,
                    (false, true) => std::cmp::Ordering::Less,
                    (false, false) if top => y.partial_cmp(&x).expect("not NaN"),
                    (false, false) => x.partial_cmp(&y).expect("not NaN"),
                }
            });
            for &(series, value) in group.iter().take(k) {
                let slot = collector.cached_slot(&mut slots, series, &input[series].labels);
                collector.push_to(slot, ts, value)?;
            }
        }
    }
    Ok(Evaluated::Vector(collector.finish()))
}

/// `count_values("label", v)`: per step, how many samples have each value, the value (as
/// Prometheus formats it) in `label`; groups as for other aggregations, with `label` added
/// to `by`.
fn count_values(
    ev: &mut Evaluator<'_>,
    aggregation: &AggregateExpr,
) -> Result<Evaluated, QueryError> {
    let mut param = aggregation.param.as_deref();
    while let Some(Expr::Paren(paren)) = param {
        param = Some(&paren.expr);
    }
    let Some(Expr::StringLiteral(value_label)) = param else {
        return Err(QueryError::BadQuery(
            "count_values expects a string literal as its first argument".to_owned(),
        ));
    };
    let value_label = value_label.val.clone();
    if value_label.is_empty() {
        return Err(QueryError::Execution(format!(
            "invalid label name {value_label:?}"
        )));
    }
    let (without, mut grouping): (bool, Vec<String>) = match &aggregation.modifier {
        None => (false, Vec::new()),
        Some(LabelModifier::Include(names)) => (false, names.labels.clone()),
        Some(LabelModifier::Exclude(names)) => (true, names.labels.clone()),
    };
    if !without {
        grouping.push(value_label.clone());
    }
    let input = ev.eval_vector(&aggregation.expr)?;
    let mut cursor = StepCursor::new(input.len());
    let mut present = Vec::new();
    let mut collector = SeriesCollector::default();
    for ts in ev.grid.timestamps() {
        ev.check_timeout()?;
        cursor.gather(&input, ts, &mut present);
        let mut counts: Vec<(Labels, f64)> = Vec::new();
        for &(series, value) in &present {
            let mut with_value = input[series].labels.clone();
            labels::set(
                &mut with_value,
                &value_label,
                &crate::promql::value::format_value(value),
            );
            let group = if without {
                let mut dropped: Vec<&str> = grouping.iter().map(String::as_str).collect();
                dropped.push(METRIC_NAME);
                labels::without(&with_value, &dropped)
            } else {
                labels::keep(&with_value, &grouping)
            };
            match counts.iter_mut().find(|(labels, _)| *labels == group) {
                Some((_, count)) => *count += 1.0,
                None => counts.push((group, 1.0)),
            }
        }
        for (group, count) in counts {
            let slot = collector.slot(&group);
            collector.push_to(slot, ts, count)?;
        }
    }
    Ok(Evaluated::Vector(collector.finish()))
}
