//! Binary operators: arithmetic (`+ - * / % ^ atan2`), comparisons (filtering, or 0/1 with
//! `bool`) and set operators (`and or unless`) between scalars and instant vectors. Vector
//! pairs match on all labels but the name, or `on(…)`/`ignoring(…)`, one-to-one unless
//! `group_left`/`group_right`, with Prometheus's `VectorBinop` rules and error messages.

use std::collections::HashMap;

use promql_parser::parser::{BinModifier, BinaryExpr, LabelModifier, VectorMatchCardinality};

use crate::promql::engine::{
    Evaluated, Evaluator, SeriesCollector, StepCursor, StepSeries, merge_same_labels,
};
use crate::promql::error::QueryError;
use crate::promql::labels;
use crate::series::select::{Labels, METRIC_NAME};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Operator {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Atan2,
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    And,
    Or,
    Unless,
}

impl Operator {
    fn parse(token: &str) -> Option<Operator> {
        Some(match token {
            "+" => Operator::Add,
            "-" => Operator::Sub,
            "*" => Operator::Mul,
            "/" => Operator::Div,
            "%" => Operator::Mod,
            "^" => Operator::Pow,
            "atan2" => Operator::Atan2,
            "==" => Operator::Eq,
            "!=" => Operator::Ne,
            ">" => Operator::Gt,
            "<" => Operator::Lt,
            ">=" => Operator::Ge,
            "<=" => Operator::Le,
            "and" => Operator::And,
            "or" => Operator::Or,
            "unless" => Operator::Unless,
            _ => return None,
        })
    }

    fn is_comparison(self) -> bool {
        matches!(
            self,
            Operator::Eq | Operator::Ne | Operator::Gt | Operator::Lt | Operator::Ge | Operator::Le
        )
    }

    /// Arithmetic drops the metric name; comparisons keep it (unless `bool`).
    fn drops_name(self) -> bool {
        !self.is_comparison() && !matches!(self, Operator::And | Operator::Or | Operator::Unless)
    }

    /// `(value, keep)` of `lhs op rhs` for two samples: arithmetic always keeps its
    /// result; a comparison keeps the left value when it holds.
    fn apply(self, lhs: f64, rhs: f64) -> (f64, bool) {
        match self {
            Operator::Add => (lhs + rhs, true),
            Operator::Sub => (lhs - rhs, true),
            Operator::Mul => (lhs * rhs, true),
            Operator::Div => (lhs / rhs, true),
            Operator::Mod => (lhs % rhs, true),
            Operator::Pow => (go_pow(lhs, rhs), true),
            Operator::Atan2 => (lhs.atan2(rhs), true),
            Operator::Eq => (lhs, lhs == rhs),
            Operator::Ne => (lhs, lhs != rhs),
            Operator::Gt => (lhs, lhs > rhs),
            Operator::Lt => (lhs, lhs < rhs),
            Operator::Ge => (lhs, lhs >= rhs),
            Operator::Le => (lhs, lhs <= rhs),
            Operator::And | Operator::Or | Operator::Unless => {
                unreachable!("set operators do not combine values")
            }
        }
    }
}

/// Go's `math.Pow`, whose special cases differ from C's in one place: `pow(-1, ±Inf)` is 1.
fn go_pow(base: f64, exponent: f64) -> f64 {
    if base == -1.0 && exponent.is_infinite() {
        return 1.0;
    }
    base.powf(exponent)
}

/// Evaluates a binary expression over the grid.
pub(crate) fn eval_binary(
    ev: &mut Evaluator<'_>,
    expression: &BinaryExpr,
) -> Result<Evaluated, QueryError> {
    let token = expression.op.to_string();
    let operator = Operator::parse(&token).ok_or_else(|| {
        QueryError::Unsupported(format!("binary operator {token} is not supported"))
    })?;
    let modifier = expression.modifier.clone().unwrap_or_default();
    if modifier.fill_values.lhs.is_some() || modifier.fill_values.rhs.is_some() {
        return Err(QueryError::Unsupported(
            "fill modifiers are not supported".to_owned(),
        ));
    }
    let return_bool = modifier.return_bool;
    let lhs = ev.eval(&expression.lhs)?;
    let rhs = ev.eval(&expression.rhs)?;
    match (lhs, rhs) {
        (Evaluated::Scalar(left), Evaluated::Scalar(right)) => Ok(Evaluated::Scalar(
            left.into_iter()
                .zip(right)
                .map(|(l, r)| {
                    let (value, keep) = operator.apply(l, r);
                    if operator.is_comparison() {
                        if keep { 1.0 } else { 0.0 }
                    } else {
                        value
                    }
                })
                .collect(),
        )),
        (Evaluated::Vector(vector), Evaluated::Scalar(scalar)) => {
            vector_scalar(ev, operator, vector, &scalar, false, return_bool)
        }
        (Evaluated::Scalar(scalar), Evaluated::Vector(vector)) => {
            vector_scalar(ev, operator, vector, &scalar, true, return_bool)
        }
        (Evaluated::Vector(left), Evaluated::Vector(right)) => {
            vector_vector(ev, operator, &modifier, left, right)
        }
        _ => Err(QueryError::BadQuery(
            "binary expression must contain only scalar and instant vector types".to_owned(),
        )),
    }
}

/// A vector with a scalar (`swapped`: the scalar is on the left). Comparisons keep the
/// vector's value whichever side it is on.
fn vector_scalar(
    ev: &Evaluator<'_>,
    operator: Operator,
    vector: Vec<StepSeries>,
    scalar: &[f64],
    swapped: bool,
    return_bool: bool,
) -> Result<Evaluated, QueryError> {
    let grid = ev.grid;
    let drop_name = operator.drops_name() || return_bool;
    let mapped = vector
        .into_iter()
        .map(|series| {
            let points = series
                .points
                .into_iter()
                .filter_map(|(ts, element)| {
                    let other = scalar[grid.index_of(ts)];
                    let (left, right) = if swapped {
                        (other, element)
                    } else {
                        (element, other)
                    };
                    let (mut value, keep) = operator.apply(left, right);
                    if operator.is_comparison() && swapped {
                        value = element;
                    }
                    if return_bool {
                        return Some((ts, if keep { 1.0 } else { 0.0 }));
                    }
                    keep.then_some((ts, value))
                })
                .collect();
            StepSeries {
                labels: if drop_name {
                    labels::drop_name(&series.labels)
                } else {
                    series.labels
                },
                points,
            }
        })
        .collect();
    Ok(Evaluated::Vector(merge_same_labels(mapped, false)?))
}

/// The labels two series are matched on.
fn signature(labels: &Labels, on: bool, names: &[String]) -> Labels {
    if on {
        labels::keep(labels, names)
    } else {
        let mut dropped: Vec<&str> = names.iter().map(String::as_str).collect();
        dropped.push(METRIC_NAME);
        labels::without(labels, &dropped)
    }
}

/// Two vectors, matched per step.
fn vector_vector(
    ev: &mut Evaluator<'_>,
    operator: Operator,
    modifier: &BinModifier,
    left: Vec<StepSeries>,
    right: Vec<StepSeries>,
) -> Result<Evaluated, QueryError> {
    let (on, matching_names): (bool, Vec<String>) = match &modifier.matching {
        Some(LabelModifier::Include(names)) => (true, names.labels.clone()),
        Some(LabelModifier::Exclude(names)) => (false, names.labels.clone()),
        None => (false, Vec::new()),
    };
    let left_signatures: Vec<Labels> = left
        .iter()
        .map(|series| signature(&series.labels, on, &matching_names))
        .collect();
    let right_signatures: Vec<Labels> = right
        .iter()
        .map(|series| signature(&series.labels, on, &matching_names))
        .collect();
    let mut left_cursor = StepCursor::new(left.len());
    let mut right_cursor = StepCursor::new(right.len());
    let (mut left_present, mut right_present) = (Vec::new(), Vec::new());
    let mut collector = SeriesCollector::default();
    let mut result_labels: HashMap<(usize, usize), Labels> = HashMap::new();

    for ts in ev.grid.timestamps() {
        ev.check_timeout()?;
        left_cursor.gather(&left, ts, &mut left_present);
        right_cursor.gather(&right, ts, &mut right_present);
        match operator {
            Operator::And | Operator::Or | Operator::Unless => {
                set_operation(
                    operator,
                    ts,
                    (&left, &left_signatures, &left_present),
                    (&right, &right_signatures, &right_present),
                    &mut collector,
                )?;
            }
            _ => {
                if left_present.is_empty() || right_present.is_empty() {
                    continue;
                }
                let step = MatchStep {
                    operator,
                    modifier,
                    on,
                    matching_names: &matching_names,
                };
                step.run(
                    ts,
                    (&left, &left_signatures, &left_present),
                    (&right, &right_signatures, &right_present),
                    &mut result_labels,
                    &mut collector,
                )?;
            }
        }
    }
    Ok(Evaluated::Vector(collector.finish()))
}

/// One side of a vector operation at one step: its series, their signatures, and the
/// `(series index, value)` present at the step.
type Side<'a> = (&'a [StepSeries], &'a [Labels], &'a [(usize, f64)]);

fn set_operation(
    operator: Operator,
    ts: i64,
    (left, left_signatures, left_present): Side<'_>,
    (right, right_signatures, right_present): Side<'_>,
    collector: &mut SeriesCollector,
) -> Result<(), QueryError> {
    let right_set: std::collections::HashSet<&Labels> = right_present
        .iter()
        .map(|&(index, _)| &right_signatures[index])
        .collect();
    match operator {
        Operator::And => {
            if right_present.is_empty() {
                return Ok(());
            }
            for &(index, value) in left_present {
                if right_set.contains(&left_signatures[index]) {
                    collector.push(&left[index].labels, ts, value)?;
                }
            }
        }
        Operator::Unless => {
            for &(index, value) in left_present {
                if !right_set.contains(&left_signatures[index]) {
                    collector.push(&left[index].labels, ts, value)?;
                }
            }
        }
        _ => {
            let left_set: std::collections::HashSet<&Labels> = left_present
                .iter()
                .map(|&(index, _)| &left_signatures[index])
                .collect();
            for &(index, value) in left_present {
                collector.push(&left[index].labels, ts, value)?;
            }
            for &(index, value) in right_present {
                if !left_set.contains(&right_signatures[index]) {
                    collector.push(&right[index].labels, ts, value)?;
                }
            }
        }
    }
    Ok(())
}

/// The matching of an arithmetic or comparison operator between two vectors.
struct MatchStep<'a> {
    operator: Operator,
    modifier: &'a BinModifier,
    on: bool,
    matching_names: &'a [String],
}

impl MatchStep<'_> {
    fn run(
        &self,
        ts: i64,
        left_side: Side<'_>,
        right_side: Side<'_>,
        result_labels: &mut HashMap<(usize, usize), Labels>,
        collector: &mut SeriesCollector,
    ) -> Result<(), QueryError> {
        // One-to-many is many-to-one with the sides swapped; values are swapped back below.
        let (one_to_many, include): (bool, &[String]) = match &self.modifier.card {
            VectorMatchCardinality::OneToMany(names) => (true, &names.labels),
            VectorMatchCardinality::ManyToOne(names) => (false, &names.labels),
            _ => (false, &[]),
        };
        let one_to_one = matches!(self.modifier.card, VectorMatchCardinality::OneToOne);
        let ((many, many_signatures, many_present), (one, one_signatures, one_present)) =
            if one_to_many {
                (right_side, left_side)
            } else {
                (left_side, right_side)
            };

        let mut one_by_signature: HashMap<&Labels, (usize, f64)> = HashMap::new();
        for &(index, value) in one_present {
            let signature = &one_signatures[index];
            if let Some(&(duplicate, _)) = one_by_signature.get(signature) {
                let side = if one_to_many { "left" } else { "right" };
                let matched =
                    signature_for_message(&one[index].labels, self.on, self.matching_names);
                return Err(QueryError::Execution(format!(
                    "found duplicate series for the match group {} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                    labels::format(&matched),
                    labels::format(&one[index].labels),
                    labels::format(&one[duplicate].labels),
                )));
            }
            one_by_signature.insert(signature, (index, value));
        }

        let mut matched: HashMap<&Labels, Vec<Labels>> = HashMap::new();
        for &(many_index, many_value) in many_present {
            let signature = &many_signatures[many_index];
            let Some(&(one_index, one_value)) = one_by_signature.get(signature) else {
                continue;
            };
            let (left_value, right_value) = if one_to_many {
                (one_value, many_value)
            } else {
                (many_value, one_value)
            };
            let (mut value, keep) = self.operator.apply(left_value, right_value);
            if self.modifier.return_bool {
                value = if keep { 1.0 } else { 0.0 };
            } else if !keep {
                continue;
            }
            let labels = result_labels
                .entry((many_index, one_index))
                .or_insert_with(|| {
                    self.result_labels(&many[many_index].labels, &one[one_index].labels, include)
                })
                .clone();
            let seen = matched.entry(signature).or_default();
            if one_to_one {
                if !seen.is_empty() {
                    return Err(QueryError::Execution(
                        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
                            .to_owned(),
                    ));
                }
            } else if seen.contains(&labels) {
                return Err(QueryError::Execution(
                    "multiple matches for labels: grouping labels must ensure unique matches"
                        .to_owned(),
                ));
            }
            seen.push(labels.clone());
            collector.push(&labels, ts, value)?;
        }
        Ok(())
    }

    /// Prometheus's `resultMetric`: the "many" side's labels, without the name for
    /// arithmetic or `bool`, reduced to the matching labels for one-to-one matching, plus
    /// the `group_x(…)` labels copied from the "one" side.
    fn result_labels(&self, many: &Labels, one: &Labels, include: &[String]) -> Labels {
        let mut result = many.clone();
        if self.operator.drops_name() || self.modifier.return_bool {
            result = labels::drop_name(&result);
        }
        if matches!(self.modifier.card, VectorMatchCardinality::OneToOne) {
            result = if self.on {
                labels::keep(&result, self.matching_names)
            } else {
                let names: Vec<&str> = self.matching_names.iter().map(String::as_str).collect();
                labels::without(&result, &names)
            };
        }
        for name in include {
            let value = labels::get(one, name).unwrap_or("");
            labels::set(&mut result, name, value);
        }
        result
    }
}

/// The matching labels as Prometheus prints them in errors (`MatchLabels`).
fn signature_for_message(labels: &Labels, on: bool, names: &[String]) -> Labels {
    signature(labels, on, names)
}
