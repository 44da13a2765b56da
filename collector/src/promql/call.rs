//! Function calls: which PromQL functions exist here and how each maps its arguments to
//! output series. Range-vector functions (`rate`, `*_over_time`, …) are `RangeCall`s;
//! instant-vector functions run per step; `label_replace`/`label_join` rewrite labels only.
//! Anything else is `QueryError::Unsupported`.

use std::collections::HashMap;

use promql_parser::label::MatchOp as ParserMatchOp;
use promql_parser::parser::{Call, Expr};

use crate::promql::engine::{
    Evaluated, Evaluator, SeriesCollector, StepCursor, StepSeries, merge_same_labels,
};
use crate::promql::error::QueryError;
use crate::promql::histogram::{Bucket, bucket_quantile};
use crate::promql::labels;
use crate::promql::range_call::RangeCall;
use crate::promql::selector::window;
use crate::series::select::{Labels, METRIC_NAME};

/// A float function applied to every element.
type ElementFunction = fn(f64) -> f64;

/// Element-wise functions of one instant vector.
const SIMPLE_FUNCTIONS: &[(&str, ElementFunction)] = &[
    ("abs", f64::abs),
    ("ceil", f64::ceil),
    ("floor", f64::floor),
    ("exp", f64::exp),
    ("sqrt", f64::sqrt),
    ("ln", f64::ln),
    ("log2", f64::log2),
    ("log10", f64::log10),
    ("sgn", sign),
    ("sin", f64::sin),
    ("cos", f64::cos),
    ("tan", f64::tan),
    ("asin", f64::asin),
    ("acos", f64::acos),
    ("atan", f64::atan),
    ("sinh", f64::sinh),
    ("cosh", f64::cosh),
    ("tanh", f64::tanh),
    ("asinh", f64::asinh),
    ("acosh", f64::acosh),
    ("atanh", f64::atanh),
    ("deg", f64::to_degrees),
    ("rad", f64::to_radians),
];

/// Calendar functions: of each element's value as unix seconds, or of the step's time
/// without an argument; always in UTC.
const DATE_FUNCTIONS: &[&str] = &[
    "year",
    "month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "days_in_month",
    "hour",
    "minute",
];

/// The calendar field `name` of unix second `seconds` (truncated, as Go's `time.Unix`).
fn date_field(name: &str, seconds: f64) -> f64 {
    let Ok(ts) = jiff::Timestamp::from_second(seconds as i64) else {
        return f64::NAN;
    };
    let date = jiff::tz::TimeZone::UTC.to_datetime(ts);
    f64::from(match name {
        "year" => date.year(),
        "month" => i16::from(date.month()),
        "day_of_month" => i16::from(date.day()),
        "day_of_week" => i16::from(date.weekday().to_sunday_zero_offset()),
        "day_of_year" => date.day_of_year(),
        "days_in_month" => i16::from(date.days_in_month()),
        "hour" => i16::from(date.hour()),
        _ => i16::from(date.minute()),
    })
}

fn sign(value: f64) -> f64 {
    if value < 0.0 {
        -1.0
    } else if value > 0.0 {
        1.0
    } else {
        value
    }
}

/// Evaluates a function call over the grid.
pub(crate) fn eval_call(ev: &mut Evaluator<'_>, call: &Call) -> Result<Evaluated, QueryError> {
    let name = call.func.name;
    let args: Vec<&Expr> = call
        .args
        .args
        .iter()
        .map(|arg| unwrap_parens(arg))
        .collect();
    if let Some(range_call) = RangeCall::prepare(ev, call)? {
        return Ok(Evaluated::Vector(range_call.eval(ev)?));
    }
    if let Some(&(_, function)) = SIMPLE_FUNCTIONS.iter().find(|(known, _)| *known == name) {
        let input = ev.eval_vector(args[0])?;
        return map_vector(input, |_, value| Some(function(value)));
    }
    match name {
        "round" => {
            let input = ev.eval_vector(args[0])?;
            let to_nearest = match args.get(1) {
                Some(arg) => ev.eval_scalar(arg)?,
                None => vec![1.0; ev.grid.len()],
            };
            let grid = ev.grid;
            map_vector(input, |ts, value| {
                // Inverted as Prometheus does: fewer float accuracy issues.
                let inverse = 1.0 / to_nearest[grid.index_of(ts)];
                Some((value * inverse + 0.5).floor() / inverse)
            })
        }
        "clamp" | "clamp_min" | "clamp_max" => {
            let input = ev.eval_vector(args[0])?;
            let steps = ev.grid.len();
            let (minimum, maximum) = match name {
                "clamp" => (ev.eval_scalar(args[1])?, ev.eval_scalar(args[2])?),
                "clamp_min" => (ev.eval_scalar(args[1])?, vec![f64::INFINITY; steps]),
                _ => (vec![f64::NEG_INFINITY; steps], ev.eval_scalar(args[1])?),
            };
            let grid = ev.grid;
            map_vector(input, |ts, value| {
                let index = grid.index_of(ts);
                let (low, high) = (minimum[index], maximum[index]);
                // A maximum below the minimum gives nothing; Go's math.Max/Min let NaN win.
                if high < low {
                    None
                } else {
                    Some(go_max(low, go_min(high, value)))
                }
            })
        }
        "time" => Ok(Evaluated::Scalar(
            ev.grid.timestamps().map(|ts| ts as f64 / 1000.0).collect(),
        )),
        "pi" => Ok(Evaluated::Scalar(vec![std::f64::consts::PI; ev.grid.len()])),
        _ if DATE_FUNCTIONS.contains(&name) => match args.first() {
            Some(arg) => {
                let input = ev.eval_vector(arg)?;
                map_vector(input, |_, seconds| Some(date_field(name, seconds)))
            }
            None => {
                // Of the step's time, in whole seconds, as one series without labels.
                let points = ev
                    .grid
                    .timestamps()
                    .map(|ts| (ts, date_field(name, ts.div_euclid(1000) as f64)))
                    .collect();
                Ok(Evaluated::Vector(vec![StepSeries {
                    labels: Labels::new(),
                    points,
                }]))
            }
        },
        "absent_over_time" => absent_over_time(ev, &args),
        "vector" => {
            let values = ev.eval_scalar(args[0])?;
            let points = ev.grid.timestamps().zip(values).collect();
            Ok(Evaluated::Vector(vec![StepSeries {
                labels: Labels::new(),
                points,
            }]))
        }
        "scalar" => {
            let input = ev.eval_vector(args[0])?;
            let mut cursor = StepCursor::new(input.len());
            let mut present = Vec::new();
            let mut values = Vec::with_capacity(ev.grid.len());
            for ts in ev.grid.timestamps() {
                cursor.gather(&input, ts, &mut present);
                values.push(match present.as_slice() {
                    [(_, value)] => *value,
                    _ => f64::NAN,
                });
            }
            Ok(Evaluated::Scalar(values))
        }
        "absent" => {
            let input = ev.eval_vector(args[0])?;
            let absent_labels = labels_for_absent(args[0]);
            let mut cursor = StepCursor::new(input.len());
            let mut present = Vec::new();
            let mut points = Vec::new();
            for ts in ev.grid.timestamps() {
                cursor.gather(&input, ts, &mut present);
                if present.is_empty() {
                    points.push((ts, 1.0));
                }
            }
            Ok(Evaluated::Vector(if points.is_empty() {
                Vec::new()
            } else {
                vec![StepSeries {
                    labels: absent_labels,
                    points,
                }]
            }))
        }
        "timestamp" => match args[0] {
            // Of a selector: when its sample was taken; of anything else: the step's time.
            Expr::VectorSelector(selector) => {
                let times = ev.eval_sample_timestamps(selector)?;
                map_vector(times, |_, seconds| Some(seconds))
            }
            other => {
                let input = ev.eval_vector(other)?;
                map_vector(input, |ts, _| Some(ts as f64 / 1000.0))
            }
        },
        "label_replace" => label_replace(ev, &args),
        "label_join" => label_join(ev, &args),
        "sort" | "sort_desc" => {
            let mut input = ev.eval_vector(args[0])?;
            // Order only shows in an instant query; a range query's matrix is sorted by labels.
            if ev.grid.len() == 1 {
                let descending = name == "sort_desc";
                input.sort_by(|a, b| {
                    let (x, y) = (a.points[0].1, b.points[0].1);
                    match (x.is_nan(), y.is_nan()) {
                        (true, true) => std::cmp::Ordering::Equal,
                        (true, false) => std::cmp::Ordering::Greater,
                        (false, true) => std::cmp::Ordering::Less,
                        (false, false) if descending => y.total_cmp(&x),
                        (false, false) => x.total_cmp(&y),
                    }
                });
            }
            Ok(Evaluated::Vector(input))
        }
        "histogram_quantile" => {
            let quantiles = ev.eval_scalar(args[0])?;
            let input = ev.eval_vector(args[1])?;
            histogram_quantile(ev, &quantiles, &input)
        }
        _ => Err(QueryError::Unsupported(format!(
            "function {name} is not supported"
        ))),
    }
}

fn unwrap_parens(mut expr: &Expr) -> &Expr {
    while let Expr::Paren(paren) = expr {
        expr = &paren.expr;
    }
    expr
}

/// Go's `math.Max`: NaN if either is NaN.
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// Go's `math.Min`: NaN if either is NaN.
fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

/// Applies `f(step timestamp, value)` to every point, dropping the metric name; `None`
/// drops the point.
fn map_vector(
    input: Vec<StepSeries>,
    mut f: impl FnMut(i64, f64) -> Option<f64>,
) -> Result<Evaluated, QueryError> {
    let mapped = input
        .into_iter()
        .map(|series| StepSeries {
            labels: labels::drop_name(&series.labels),
            points: series
                .points
                .into_iter()
                .filter_map(|(ts, value)| f(ts, value).map(|v| (ts, v)))
                .collect(),
        })
        .collect();
    Ok(Evaluated::Vector(merge_same_labels(mapped, false)?))
}

/// The labels `absent` gives its output: the selector's equality matchers (a label matched
/// twice, or by another operator, is left out, as in Prometheus).
fn labels_for_absent(arg: &Expr) -> Labels {
    let Expr::VectorSelector(selector) = arg else {
        return Labels::new();
    };
    let mut result = Labels::new();
    let mut seen: Vec<&str> = Vec::new();
    for matcher in &selector.matchers.matchers {
        if matcher.name == METRIC_NAME {
            continue;
        }
        if matcher.op == ParserMatchOp::Equal && !seen.contains(&matcher.name.as_str()) {
            labels::set(&mut result, &matcher.name, &matcher.value);
            seen.push(&matcher.name);
        } else {
            result.retain(|(name, _)| *name != matcher.name);
        }
    }
    result
}

/// `histogram_quantile(q, buckets)` per step: series equal but for `le` (and the metric
/// name) form one histogram; a series whose `le` is not a number is ignored.
fn histogram_quantile(
    ev: &mut Evaluator<'_>,
    quantiles: &[f64],
    input: &[StepSeries],
) -> Result<Evaluated, QueryError> {
    let mut group_index: HashMap<Labels, usize> = HashMap::new();
    let mut groups: Vec<Labels> = Vec::new();
    // Per input series: (group, upper bound), or None for an unusable `le`.
    let membership: Vec<Option<(usize, f64)>> = input
        .iter()
        .map(|series| {
            let upper_bound = parse_go_float(labels::get(&series.labels, "le")?)?;
            let group_labels = labels::without(&series.labels, &[METRIC_NAME, "le"]);
            let next = groups.len();
            let group = *group_index.entry(group_labels.clone()).or_insert(next);
            if group == next {
                groups.push(group_labels);
            }
            Some((group, upper_bound))
        })
        .collect();
    let mut buckets: Vec<Vec<Bucket>> = vec![Vec::new(); groups.len()];
    let mut cursor = StepCursor::new(input.len());
    let mut present = Vec::new();
    let mut collector = SeriesCollector::default();
    let mut slots: Vec<Option<usize>> = vec![None; groups.len()];
    for (step, ts) in ev.grid.timestamps().enumerate() {
        cursor.gather(input, ts, &mut present);
        for group in &mut buckets {
            group.clear();
        }
        for &(series, count) in &present {
            if let Some((group, upper_bound)) = membership[series] {
                buckets[group].push(Bucket { upper_bound, count });
            }
        }
        for (group, group_buckets) in buckets.iter_mut().enumerate() {
            if !group_buckets.is_empty() {
                let value = bucket_quantile(quantiles[step], group_buckets);
                let slot = collector.cached_slot(&mut slots, group, &groups[group]);
                collector.push_to(slot, ts, value)?;
            }
        }
    }
    Ok(Evaluated::Vector(collector.finish()))
}

/// Parses a float as Go's `strconv.ParseFloat` does for `le` values (`+Inf`, `1e3`, …).
pub(crate) fn parse_go_float(text: &str) -> Option<f64> {
    // Rust's grammar matches Go's for decimal floats, including `Inf`/`NaN` in any case.
    text.parse::<f64>().ok()
}

/// The value of a string-literal argument.
fn string_arg(function: &str, arg: Option<&&Expr>) -> Result<String, QueryError> {
    match arg {
        Some(Expr::StringLiteral(literal)) => Ok(literal.val.clone()),
        _ => Err(QueryError::BadQuery(format!(
            "function {function} expects string literal arguments"
        ))),
    }
}

/// `label_replace(v, dst, replacement, src, regex)`: where the anchored `regex` matches the
/// value of `src`, sets `dst` to the expanded `replacement` (`$1`, `${name}`); an empty
/// result deletes `dst`. The metric name is kept.
fn label_replace(ev: &mut Evaluator<'_>, args: &[&Expr]) -> Result<Evaluated, QueryError> {
    let destination = string_arg("label_replace", args.get(1))?;
    let replacement = string_arg("label_replace", args.get(2))?;
    let source_label = string_arg("label_replace", args.get(3))?;
    let pattern = string_arg("label_replace", args.get(4))?;
    let regex = regex::Regex::new(&format!("^(?s:{pattern})$")).map_err(|_| {
        QueryError::Execution(format!(
            "invalid regular expression in label_replace(): {pattern}"
        ))
    })?;
    if destination.is_empty() {
        return Err(QueryError::Execution(format!(
            "invalid destination label name in label_replace(): {destination}"
        )));
    }
    let input = ev.eval_vector(args[0])?;
    let replaced = input
        .into_iter()
        .map(|mut series| {
            let value = labels::get(&series.labels, &source_label)
                .unwrap_or("")
                .to_owned();
            if let Some(captures) = regex.captures(&value) {
                let mut expanded = String::new();
                captures.expand(&replacement, &mut expanded);
                labels::set(&mut series.labels, &destination, &expanded);
            }
            series
        })
        .collect();
    Ok(Evaluated::Vector(merge_same_labels(replaced, false)?))
}

/// `label_join(v, dst, separator, src...)`: sets `dst` to the `src` values joined by
/// `separator` (a missing label counts as empty). The metric name is kept.
fn label_join(ev: &mut Evaluator<'_>, args: &[&Expr]) -> Result<Evaluated, QueryError> {
    let destination = string_arg("label_join", args.get(1))?;
    let separator = string_arg("label_join", args.get(2))?;
    let sources = (3..args.len())
        .map(|index| string_arg("label_join", args.get(index)))
        .collect::<Result<Vec<String>, QueryError>>()?;
    if destination.is_empty() {
        return Err(QueryError::Execution(format!(
            "invalid destination label name in label_join(): {destination}"
        )));
    }
    let input = ev.eval_vector(args[0])?;
    let joined = input
        .into_iter()
        .map(|mut series| {
            let values: Vec<&str> = sources
                .iter()
                .map(|name| labels::get(&series.labels, name).unwrap_or(""))
                .collect();
            let value = values.join(&separator);
            labels::set(&mut series.labels, &destination, &value);
            series
        })
        .collect();
    Ok(Evaluated::Vector(merge_same_labels(joined, false)?))
}

/// `absent_over_time(v[range])`: 1, labelled as `absent` labels, at the steps where no
/// series of the range selector has a sample in its window.
fn absent_over_time(ev: &mut Evaluator<'_>, args: &[&Expr]) -> Result<Evaluated, QueryError> {
    let (selected, time, range_ms, absent_labels) = match args.first() {
        Some(Expr::MatrixSelector(selector)) => {
            let (selected, time, range_ms) = ev.load_range(selector)?;
            let absent_labels = labels_for_absent(&Expr::VectorSelector(selector.vs.clone()));
            (selected, time, range_ms, absent_labels)
        }
        Some(Expr::Subquery(subquery)) => {
            let (selected, time, range_ms) = ev.load_subquery(subquery)?;
            (selected, time, range_ms, Labels::new())
        }
        _ => {
            return Err(QueryError::BadQuery(
                "function absent_over_time expects a range vector".to_owned(),
            ));
        }
    };
    let mut present = vec![false; ev.grid.len()];
    for series in &selected {
        let mut cursors = (0, 0);
        for (step, ts) in ev.grid.timestamps().enumerate() {
            let end_ms = time.reference(ts);
            if !window(&series.samples, &mut cursors, end_ms - range_ms, end_ms).is_empty() {
                present[step] = true;
            }
        }
    }
    let points: Vec<(i64, f64)> = ev
        .grid
        .timestamps()
        .zip(present)
        .filter(|&(_, is_present)| !is_present)
        .map(|(ts, _)| (ts, 1.0))
        .collect();
    Ok(Evaluated::Vector(if points.is_empty() {
        Vec::new()
    } else {
        vec![StepSeries {
            labels: absent_labels,
            points,
        }]
    }))
}
