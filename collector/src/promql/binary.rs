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

/// One side of a vector operation: its series and each one's signature id.
struct Side {
    series: Vec<StepSeries>,
    signatures: Vec<usize>,
    /// Output slot of each series when it is passed through unchanged (set operators).
    slots: Vec<Option<usize>>,
}

/// Two vectors, matched per step. Signatures are interned once, so a step costs array
/// lookups, not label hashing.
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
    let mut interned: HashMap<Labels, usize> = HashMap::new();
    let mut signature_labels: Vec<Labels> = Vec::new();
    let mut intern = |series: &[StepSeries]| -> Vec<usize> {
        series
            .iter()
            .map(|one| {
                let key = signature(&one.labels, on, &matching_names);
                let next = signature_labels.len();
                let id = *interned.entry(key.clone()).or_insert(next);
                if id == next {
                    signature_labels.push(key);
                }
                id
            })
            .collect()
    };
    let left_signatures = intern(&left);
    let right_signatures = intern(&right);
    let left = Side {
        slots: vec![None; left.len()],
        series: left,
        signatures: left_signatures,
    };
    let right = Side {
        slots: vec![None; right.len()],
        series: right,
        signatures: right_signatures,
    };
    let mut step = MatchStep {
        operator,
        modifier,
        on,
        matching_names: &matching_names,
        left,
        right,
        by_signature: vec![None; signature_labels.len()],
        matched: vec![false; signature_labels.len()],
        pair_slots: HashMap::new(),
        collector: SeriesCollector::default(),
    };
    let mut left_cursor = StepCursor::new(step.left.series.len());
    let mut right_cursor = StepCursor::new(step.right.series.len());
    let (mut left_present, mut right_present) = (Vec::new(), Vec::new());
    for ts in ev.grid.timestamps() {
        ev.check_timeout()?;
        left_cursor.gather(&step.left.series, ts, &mut left_present);
        right_cursor.gather(&step.right.series, ts, &mut right_present);
        match operator {
            Operator::And | Operator::Or | Operator::Unless => {
                step.set_operation(ts, &left_present, &right_present)?;
            }
            _ => {
                if !left_present.is_empty() && !right_present.is_empty() {
                    step.arithmetic_or_comparison(ts, &left_present, &right_present)?;
                }
            }
        }
    }
    Ok(Evaluated::Vector(step.collector.finish()))
}

/// The state of a vector-vector operation across steps.
struct MatchStep<'a> {
    operator: Operator,
    modifier: &'a BinModifier,
    on: bool,
    matching_names: &'a [String],
    left: Side,
    right: Side,
    /// Per signature, the "one"-side sample at the current step (cleared after each step).
    by_signature: Vec<Option<(usize, f64)>>,
    /// Per signature, whether it matched at the current step (one-to-one; cleared likewise).
    matched: Vec<bool>,
    /// Output slot per `(many series, one series)` pair.
    pair_slots: HashMap<(usize, usize), usize>,
    collector: SeriesCollector,
}

impl MatchStep<'_> {
    /// `and`, `or`, `unless` at one step.
    fn set_operation(
        &mut self,
        ts: i64,
        left_present: &[(usize, f64)],
        right_present: &[(usize, f64)],
    ) -> Result<(), QueryError> {
        let mark = |side: &Side, present: &[(usize, f64)], flags: &mut Vec<bool>, value: bool| {
            for &(index, _) in present {
                flags[side.signatures[index]] = value;
            }
        };
        match self.operator {
            Operator::And | Operator::Unless => {
                if self.operator == Operator::And && right_present.is_empty() {
                    return Ok(());
                }
                mark(&self.right, right_present, &mut self.matched, true);
                let keep_matching = self.operator == Operator::And;
                for &(index, value) in left_present {
                    if self.matched[self.left.signatures[index]] == keep_matching {
                        let slot = self.collector.cached_slot(
                            &mut self.left.slots,
                            index,
                            &self.left.series[index].labels,
                        );
                        self.collector.push_to(slot, ts, value)?;
                    }
                }
                mark(&self.right, right_present, &mut self.matched, false);
            }
            _ => {
                for &(index, value) in left_present {
                    let slot = self.collector.cached_slot(
                        &mut self.left.slots,
                        index,
                        &self.left.series[index].labels,
                    );
                    self.collector.push_to(slot, ts, value)?;
                }
                mark(&self.left, left_present, &mut self.matched, true);
                for &(index, value) in right_present {
                    if !self.matched[self.right.signatures[index]] {
                        let slot = self.collector.cached_slot(
                            &mut self.right.slots,
                            index,
                            &self.right.series[index].labels,
                        );
                        self.collector.push_to(slot, ts, value)?;
                    }
                }
                mark(&self.left, left_present, &mut self.matched, false);
            }
        }
        Ok(())
    }

    /// An arithmetic or comparison operator at one step, as Prometheus's `VectorBinop`.
    fn arithmetic_or_comparison(
        &mut self,
        ts: i64,
        left_present: &[(usize, f64)],
        right_present: &[(usize, f64)],
    ) -> Result<(), QueryError> {
        // One-to-many is many-to-one with the sides swapped; values are swapped back below.
        let one_to_many = matches!(self.modifier.card, VectorMatchCardinality::OneToMany(_));
        let one_to_one = matches!(self.modifier.card, VectorMatchCardinality::OneToOne);
        let (many_present, one_present) = if one_to_many {
            (right_present, left_present)
        } else {
            (left_present, right_present)
        };
        let result = self.match_present(ts, many_present, one_present, one_to_many, one_to_one);
        // Clear the per-step tables whatever happened.
        let one = if one_to_many { &self.left } else { &self.right };
        let many = if one_to_many { &self.right } else { &self.left };
        for &(index, _) in one_present {
            self.by_signature[one.signatures[index]] = None;
        }
        for &(index, _) in many_present {
            self.matched[many.signatures[index]] = false;
        }
        result
    }

    fn match_present(
        &mut self,
        ts: i64,
        many_present: &[(usize, f64)],
        one_present: &[(usize, f64)],
        one_to_many: bool,
        one_to_one: bool,
    ) -> Result<(), QueryError> {
        let (many, one) = if one_to_many {
            (&self.right, &self.left)
        } else {
            (&self.left, &self.right)
        };
        for &(index, value) in one_present {
            let signature = one.signatures[index];
            if let Some((duplicate, _)) = self.by_signature[signature] {
                let side = if one_to_many { "left" } else { "right" };
                let matched =
                    signature_for_message(&one.series[index].labels, self.on, self.matching_names);
                return Err(QueryError::Execution(format!(
                    "found duplicate series for the match group {} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                    labels::format(&matched),
                    labels::format(&one.series[index].labels),
                    labels::format(&one.series[duplicate].labels),
                )));
            }
            self.by_signature[signature] = Some((index, value));
        }
        let include: &[String] = match &self.modifier.card {
            VectorMatchCardinality::OneToMany(names) | VectorMatchCardinality::ManyToOne(names) => {
                &names.labels
            }
            _ => &[],
        };
        // Output slots already used at this step per signature (many-to-one uniqueness).
        let mut used: Vec<(usize, usize)> = Vec::new();
        for &(many_index, many_value) in many_present {
            let signature = many.signatures[many_index];
            let Some((one_index, one_value)) = self.by_signature[signature] else {
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
            let slot = match self.pair_slots.get(&(many_index, one_index)) {
                Some(&slot) => slot,
                None => {
                    let labels = result_labels(
                        self.operator,
                        self.modifier,
                        self.on,
                        self.matching_names,
                        &many.series[many_index].labels,
                        &one.series[one_index].labels,
                        include,
                    );
                    let slot = self.collector.slot(&labels);
                    self.pair_slots.insert((many_index, one_index), slot);
                    slot
                }
            };
            if one_to_one {
                if self.matched[signature] {
                    return Err(QueryError::Execution(
                        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
                            .to_owned(),
                    ));
                }
                self.matched[signature] = true;
            } else {
                if used.contains(&(signature, slot)) {
                    return Err(QueryError::Execution(
                        "multiple matches for labels: grouping labels must ensure unique matches"
                            .to_owned(),
                    ));
                }
                used.push((signature, slot));
            }
            self.collector.push_to(slot, ts, value)?;
        }
        Ok(())
    }
}

/// Prometheus's `resultMetric`: the "many" side's labels, without the name for arithmetic
/// or `bool`, reduced to the matching labels for one-to-one matching, plus the `group_x(…)`
/// labels copied from the "one" side.
fn result_labels(
    operator: Operator,
    modifier: &BinModifier,
    on: bool,
    matching_names: &[String],
    many: &Labels,
    one: &Labels,
    include: &[String],
) -> Labels {
    let mut result = many.clone();
    if operator.drops_name() || modifier.return_bool {
        result = labels::drop_name(&result);
    }
    if matches!(modifier.card, VectorMatchCardinality::OneToOne) {
        result = if on {
            labels::keep(&result, matching_names)
        } else {
            let names: Vec<&str> = matching_names.iter().map(String::as_str).collect();
            labels::without(&result, &names)
        };
    }
    for name in include {
        let value = labels::get(one, name).unwrap_or("");
        labels::set(&mut result, name, value);
    }
    result
}

/// The matching labels as Prometheus prints them in errors (`MatchLabels`).
fn signature_for_message(labels: &Labels, on: bool, names: &[String]) -> Labels {
    signature(labels, on, names)
}
