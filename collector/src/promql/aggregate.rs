//! Aggregation operators (`sum`, `avg`, `min`, `max`, `count`, `group`, `stddev`, `stdvar`,
//! `quantile`, `topk`, `bottomk`, `count_values`) with `by`/`without`. Groups keep only the `by` labels, or
//! drop the `without` labels and the metric name; `topk`/`bottomk` keep whole input series.
//! Arithmetic follows Prometheus's `aggregation()` (compensated sums, NaN rules).

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;

use promql_parser::parser::{AggregateExpr, Expr, LabelModifier};

use crate::parallel;
use crate::promql::engine::{Evaluated, Evaluator, SeriesCollector, StepCursor, StepSeries};
use crate::promql::error::QueryError;
use crate::promql::labels;
use crate::promql::range_call::RangeCall;
use crate::promql::range_functions::{kahan_inc, quantile};
use crate::promql::top_k::top_k;
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
    let input = Input::read(ev, &aggregation.expr)?;

    let (without, grouping): (bool, Vec<String>) = match &aggregation.modifier {
        None => (false, Vec::new()),
        Some(LabelModifier::Include(names)) => (false, names.labels.clone()),
        Some(LabelModifier::Exclude(names)) => (true, names.labels.clone()),
    };
    let mut group_index: HashMap<Labels, usize> = HashMap::new();
    let mut group_labels: Vec<Labels> = Vec::new();
    let series_group: Vec<usize> = (0..input.len())
        .map(|series| {
            let series_labels = input.labels(series);
            let key = if without {
                let mut dropped: Vec<&str> = grouping.iter().map(String::as_str).collect();
                dropped.push(METRIC_NAME);
                labels::without(&series_labels, &dropped)
            } else {
                labels::keep(&series_labels, &grouping)
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
        let input = input.into_vector(ev)?;
        let top = operator == Operator::Topk;
        let kept = top_k(
            ev,
            top,
            parameter,
            &input,
            &series_group,
            group_labels.len(),
        )?;
        // No larger than its input, which is counted: counted once built.
        ev.hold_samples(kept.sample_count())?;
        return Ok(kept);
    }

    let groups = group_labels.len();
    let shared: &Evaluator<'_> = ev;
    let (input, series_group) = (&input, &series_group);
    // Each part covers runs of steps for every group; a group's points are its parts'
    // points in order.
    let parts = step_parts(shared.grid.len(), groups, parallel::parts_for(input.len()));
    let computed = parallel::map_parts(parts, |runs| {
        aggregate_runs(
            shared,
            (operator, parameter),
            input,
            series_group,
            groups,
            &runs,
        )
    });
    let mut outputs: Vec<StepSeries> = group_labels
        .into_iter()
        .map(|labels| StepSeries {
            labels,
            points: Vec::new(),
        })
        .collect();
    for part in computed {
        for (output, points) in outputs.iter_mut().zip(part?) {
            output.points.extend(points);
        }
    }
    outputs.retain(|series| !series.points.is_empty());
    Ok(Evaluated::Vector(outputs))
}

/// What an aggregation aggregates: an evaluated instant vector, or a range function call
/// whose values are computed run by run of steps as they are aggregated (so that
/// `sum(rate(x[5m]))` never holds every series' rates).
enum Input {
    Vector(Vec<StepSeries>),
    Range(RangeCall),
}

impl Input {
    fn read(ev: &mut Evaluator<'_>, expr: &Expr) -> Result<Input, QueryError> {
        let mut inner = expr;
        while let Expr::Paren(paren) = inner {
            inner = &paren.expr;
        }
        if let Expr::Call(call) = inner
            && let Some(range_call) = RangeCall::prepare(ev, call)?
        {
            // Equal output labels are an error only once both have values: the call's own
            // evaluation knows.
            if range_call.has_equal_output_labels() {
                return Ok(Input::Vector(range_call.eval(ev)?));
            }
            return Ok(Input::Range(range_call));
        }
        Ok(Input::Vector(ev.eval_vector(expr)?))
    }

    fn len(&self) -> usize {
        match self {
            Input::Vector(series) => series.len(),
            Input::Range(call) => call.len(),
        }
    }

    fn labels(&self, series: usize) -> Cow<'_, Labels> {
        match self {
            Input::Vector(input) => Cow::Borrowed(&input[series].labels),
            Input::Range(call) => Cow::Owned(call.labels(series)),
        }
    }

    /// The points of input series `series` at the steps `steps`, computed into `buffer`
    /// when they are not held.
    fn points<'a>(
        &'a self,
        ev: &Evaluator<'_>,
        series: usize,
        steps: Range<usize>,
        buffer: &'a mut Vec<(i64, f64)>,
    ) -> Result<&'a [(i64, f64)], QueryError> {
        match self {
            Input::Vector(input) => {
                ev.check_timeout()?;
                let points = &input[series].points;
                let (first_ts, last_ts) = (ev.grid.at(steps.start), ev.grid.at(steps.end - 1));
                let from = points.partition_point(|&(ts, _)| ts < first_ts);
                let to = points.partition_point(|&(ts, _)| ts <= last_ts);
                Ok(&points[from..to.max(from)])
            }
            Input::Range(call) => {
                buffer.clear();
                call.eval_steps(ev, series, steps, buffer)?;
                Ok(buffer)
            }
        }
    }

    fn into_vector(self, ev: &mut Evaluator<'_>) -> Result<Vec<StepSeries>, QueryError> {
        match self {
            Input::Vector(series) => Ok(series),
            Input::Range(call) => call.eval(ev),
        }
    }
}

/// How many group states one run of steps keeps (groups × steps): bounds the memory of an
/// aggregation with many groups over many steps.
const MAX_STATES: usize = 1 << 16;

/// Cuts the grid's step indexes into runs short enough that their groups' states stay
/// within `MAX_STATES`, and deals them out in order to `parts` parts.
fn step_parts(steps: usize, groups: usize, parts: usize) -> Vec<Vec<Range<usize>>> {
    let per_run = steps.div_ceil(parts).min(MAX_STATES / groups.max(1)).max(1);
    let runs: Vec<Range<usize>> = (0..steps)
        .step_by(per_run)
        .map(|first| first..(first + per_run).min(steps))
        .collect();
    runs.chunks(runs.len().div_ceil(parts))
        .map(<[Range<usize>]>::to_vec)
        .collect()
}

/// The aggregation of every group at the steps of `runs` (indexes into the grid): per
/// group, its points in time order. Within a run the input is taken series by series, so
/// each group still sees its inputs in input order, as Prometheus adds them.
fn aggregate_runs(
    ev: &Evaluator<'_>,
    (operator, parameter): (Operator, f64),
    input: &Input,
    series_group: &[usize],
    groups: usize,
    runs: &[Range<usize>],
) -> Result<Vec<Vec<(i64, f64)>>, QueryError> {
    let grid = ev.grid;
    let mut outputs = vec![Vec::new(); groups];
    let mut states = Vec::new();
    let mut buffer = Vec::new();
    for run in runs {
        let width = run.len();
        states.clear();
        states.resize(groups * width, GroupState::default());
        for (series, &group) in series_group.iter().enumerate() {
            for &(ts, value) in input.points(ev, series, run.clone(), &mut buffer)? {
                let step = grid.index_of(ts) - run.start;
                accumulate(operator, &mut states[group * width + step], value);
            }
        }
        // The run's points are counted before they are added: with a group per series, an
        // aggregation over a range function builds as many as its input would have.
        let seen = states.iter().filter(|state| state.seen).count();
        ev.hold_samples(seen)?;
        for (output, group_states) in outputs.iter_mut().zip(states.chunks_mut(width)) {
            for (step, state) in group_states.iter_mut().enumerate() {
                if state.seen {
                    output.push((
                        grid.at(run.start + step),
                        finish(operator, state, parameter),
                    ));
                }
            }
        }
    }
    Ok(outputs)
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
        Operator::Topk | Operator::Bottomk => unreachable!("handled by top_k"),
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
    let counted = Evaluated::Vector(collector.finish());
    // No larger than its input, which is counted: counted once built.
    ev.hold_samples(counted.sample_count())?;
    Ok(counted)
}
