//! The evaluator: walks a parsed expression over a grid of evaluation steps (one step for an
//! instant query) and yields, per node, a scalar per step or series with a point per step.
//! Every node is evaluated once for the whole grid, so each selector reads the store once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use promql_parser::parser::Expr;
use tokio::time::Instant;

use crate::promql::error::{QueryError, duplicate_labelset};
use crate::promql::range_call::is_range_function;
use crate::promql::sample_limit::SampleLimit;
use crate::promql::value::Series;
use crate::promql::{QueryOptions, aggregate, binary, call, labels};
use crate::series::select::{Labels, SeriesSource};

/// The evaluation timestamps: `start_ms`, `start_ms + step_ms`, … up to `end_ms` inclusive.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StepGrid {
    pub(crate) start_ms: i64,
    pub(crate) end_ms: i64,
    pub(crate) step_ms: i64,
}

impl StepGrid {
    /// The number of steps.
    pub(crate) fn len(&self) -> usize {
        usize::try_from((self.end_ms - self.start_ms) / self.step_ms + 1)
            .expect("end is not before start")
    }

    /// The timestamp of step `index`.
    pub(crate) fn at(&self, index: usize) -> i64 {
        self.start_ms + self.step_ms * i64::try_from(index).expect("step index fits i64")
    }

    /// The index of the step at `ts_ms`, which must be on the grid.
    pub(crate) fn index_of(&self, ts_ms: i64) -> usize {
        usize::try_from((ts_ms - self.start_ms) / self.step_ms).expect("timestamp on the grid")
    }

    /// Every step's timestamp.
    pub(crate) fn timestamps(&self) -> impl Iterator<Item = i64> + '_ {
        (0..self.len()).map(|index| self.at(index))
    }
}

/// A series of an instant-vector node: a value at some of the grid's steps.
#[derive(Debug, Clone)]
pub(crate) struct StepSeries {
    pub(crate) labels: Labels,
    /// `(step timestamp, value)`, ascending.
    pub(crate) points: Vec<(i64, f64)>,
}

/// What a node evaluates to.
#[derive(Debug)]
pub(crate) enum Evaluated {
    /// One value per step.
    Scalar(Vec<f64>),
    String(String),
    Vector(Vec<StepSeries>),
    /// Raw samples of a range selector (a top-level expression of an instant query only).
    Matrix(Vec<Series>),
}

impl Evaluated {
    /// How many samples it holds (a scalar: one per step).
    pub(crate) fn sample_count(&self) -> usize {
        match self {
            Evaluated::Scalar(values) => values.len(),
            Evaluated::String(_) => 0,
            Evaluated::Vector(series) => series.iter().map(|one| one.points.len()).sum(),
            Evaluated::Matrix(series) => series.iter().map(|one| one.points.len()).sum(),
        }
    }
}

/// Evaluates expressions over one grid against one source.
pub(crate) struct Evaluator<'a> {
    pub(crate) source: &'a dyn SeriesSource,
    pub(crate) grid: StepGrid,
    pub(crate) lookback_ms: i64,
    pub(crate) samples: Arc<SampleLimit>,
    started: Instant,
    timeout: Duration,
}

impl<'a> Evaluator<'a> {
    pub(crate) fn new(
        source: &'a dyn SeriesSource,
        grid: StepGrid,
        options: &QueryOptions,
    ) -> Evaluator<'a> {
        Evaluator {
            source,
            grid,
            lookback_ms: options.lookback_delta_ms,
            samples: Arc::new(SampleLimit::new(options.max_samples)),
            started: Instant::now(),
            timeout: options.timeout,
        }
    }

    /// Evaluates `expr` over another grid (a subquery's), sharing this query's clock and
    /// sample budget.
    pub(crate) fn eval_on_grid(
        &mut self,
        grid: StepGrid,
        expr: &Expr,
    ) -> Result<Evaluated, QueryError> {
        let mut inner = Evaluator {
            source: self.source,
            grid,
            lookback_ms: self.lookback_ms,
            samples: Arc::clone(&self.samples),
            started: self.started,
            timeout: self.timeout,
        };
        inner.eval(expr)
    }

    /// Fails once the query has run longer than its timeout.
    pub(crate) fn check_timeout(&self) -> Result<(), QueryError> {
        if self.started.elapsed() > self.timeout {
            return Err(QueryError::Timeout);
        }
        Ok(())
    }

    /// Fails if `grid` has more steps than the sample limit: what is evaluated on it holds a
    /// point per step and series, so it cannot fit.
    pub(crate) fn check_grid_fits(&self, grid: &StepGrid) -> Result<(), QueryError> {
        let steps =
            (i128::from(grid.end_ms) - i128::from(grid.start_ms)) / i128::from(grid.step_ms) + 1;
        if steps > i128::try_from(self.samples.max_samples()).unwrap_or(i128::MAX) {
            return Err(QueryError::TooManySamples);
        }
        Ok(())
    }

    /// Counts `count` more samples held by the query; fails past the limit.
    pub(crate) fn hold_samples(&self, count: usize) -> Result<(), QueryError> {
        self.samples.hold(count)
    }

    /// Evaluates `expr` over the whole grid. Its inputs are freed when it returns, and only
    /// its output stays counted against the sample limit.
    pub(crate) fn eval(&mut self, expr: &Expr) -> Result<Evaluated, QueryError> {
        self.check_timeout()?;
        let held_before = self.samples.held();
        let evaluated = self.eval_node(expr)?;
        let output = evaluated.sample_count();
        if !counts_its_output(expr) {
            // Built next to its inputs, which are still counted: both were in memory at once.
            self.hold_samples(output)?;
        }
        self.samples.release_to(held_before.saturating_add(output));
        Ok(evaluated)
    }

    fn eval_node(&mut self, expr: &Expr) -> Result<Evaluated, QueryError> {
        match expr {
            Expr::NumberLiteral(number) => Ok(Evaluated::Scalar(vec![number.val; self.grid.len()])),
            Expr::StringLiteral(string) => Ok(Evaluated::String(string.val.clone())),
            Expr::Paren(paren) => self.eval(&paren.expr),
            Expr::Unary(unary) => match self.eval(&unary.expr)? {
                Evaluated::Scalar(values) => {
                    Ok(Evaluated::Scalar(values.into_iter().map(|v| -v).collect()))
                }
                Evaluated::Vector(series) => {
                    let negated = series
                        .into_iter()
                        .map(|s| StepSeries {
                            labels: labels::drop_name(&s.labels),
                            points: s.points.into_iter().map(|(t, v)| (t, -v)).collect(),
                        })
                        .collect();
                    Ok(Evaluated::Vector(merge_same_labels(negated, true)?))
                }
                _ => Err(QueryError::BadQuery(
                    "unary expression only allowed on expressions of type scalar or instant vector"
                        .to_owned(),
                )),
            },
            Expr::VectorSelector(selector) => {
                Ok(Evaluated::Vector(self.eval_vector_selector(selector)?))
            }
            Expr::MatrixSelector(selector) => {
                Ok(Evaluated::Matrix(self.eval_matrix_selector(selector)?))
            }
            Expr::Call(function_call) => call::eval_call(self, function_call),
            Expr::Aggregate(aggregation) => aggregate::eval_aggregate(self, aggregation),
            Expr::Binary(operation) => binary::eval_binary(self, operation),
            Expr::Subquery(subquery) => Ok(Evaluated::Matrix(self.eval_subquery_matrix(subquery)?)),
            Expr::Extension(_) => Err(QueryError::Unsupported(
                "extension expressions are not supported".to_owned(),
            )),
        }
    }

    /// Evaluates an expression the parser typed as an instant vector.
    pub(crate) fn eval_vector(&mut self, expr: &Expr) -> Result<Vec<StepSeries>, QueryError> {
        match self.eval(expr)? {
            Evaluated::Vector(series) => Ok(series),
            other => Err(QueryError::BadQuery(format!(
                "expected an instant vector, got {}",
                kind(&other)
            ))),
        }
    }

    /// Evaluates an expression the parser typed as a scalar: one value per step.
    pub(crate) fn eval_scalar(&mut self, expr: &Expr) -> Result<Vec<f64>, QueryError> {
        match self.eval(expr)? {
            Evaluated::Scalar(values) => Ok(values),
            other => Err(QueryError::BadQuery(format!(
                "expected a scalar, got {}",
                kind(&other)
            ))),
        }
    }
}

/// Tells whether evaluating `expr` counts its output as it builds it (so that a result over
/// the limit stops early): selectors, range-vector functions and aggregations do; other
/// nodes build outputs no larger than their counted inputs and are counted once built.
fn counts_its_output(expr: &Expr) -> bool {
    match expr {
        Expr::VectorSelector(_) | Expr::Paren(_) | Expr::Aggregate(_) => true,
        Expr::Call(call) => is_range_function(call.func.name),
        _ => false,
    }
}

fn kind(value: &Evaluated) -> &'static str {
    match value {
        Evaluated::Scalar(_) => "scalar",
        Evaluated::String(_) => "string",
        Evaluated::Vector(_) => "instant vector",
        Evaluated::Matrix(_) => "range vector",
    }
}

/// Walks step by step through series whose points lie on the grid.
pub(crate) struct StepCursor {
    positions: Vec<usize>,
}

impl StepCursor {
    pub(crate) fn new(series_count: usize) -> StepCursor {
        StepCursor {
            positions: vec![0; series_count],
        }
    }

    /// Fills `out` with `(series index, value)` of every series with a point at `ts_ms`.
    /// Calls must come with ascending `ts_ms`.
    pub(crate) fn gather(
        &mut self,
        series: &[StepSeries],
        ts_ms: i64,
        out: &mut Vec<(usize, f64)>,
    ) {
        out.clear();
        for (index, one) in series.iter().enumerate() {
            let position = &mut self.positions[index];
            while *position < one.points.len() && one.points[*position].0 < ts_ms {
                *position += 1;
            }
            if let Some(&(t, value)) = one.points.get(*position)
                && t == ts_ms
            {
                out.push((index, value));
            }
        }
    }
}

/// Gathers per-step outputs into series keyed by labels, in order of first appearance;
/// two outputs with the same labels at the same step are an error, as in Prometheus.
#[derive(Default)]
pub(crate) struct SeriesCollector {
    index: HashMap<Labels, usize>,
    series: Vec<StepSeries>,
}

impl SeriesCollector {
    /// The index of the output series with `labels`, created if new. Callers that emit the
    /// same labels at every step keep the slot instead of hashing labels per step.
    pub(crate) fn slot(&mut self, labels: &Labels) -> usize {
        if let Some(&at) = self.index.get(labels) {
            return at;
        }
        self.index.insert(labels.clone(), self.series.len());
        self.series.push(StepSeries {
            labels: labels.clone(),
            points: Vec::new(),
        });
        self.series.len() - 1
    }

    /// Adds a point to the output series at `slot`.
    pub(crate) fn push_to(
        &mut self,
        slot: usize,
        ts_ms: i64,
        value: f64,
    ) -> Result<(), QueryError> {
        let points = &mut self.series[slot].points;
        if points.last().is_some_and(|&(t, _)| t == ts_ms) {
            return Err(duplicate_labelset());
        }
        points.push((ts_ms, value));
        Ok(())
    }

    /// The slot of `labels`, remembered in `cache[key]`.
    pub(crate) fn cached_slot(
        &mut self,
        cache: &mut [Option<usize>],
        key: usize,
        labels: &Labels,
    ) -> usize {
        match cache[key] {
            Some(slot) => slot,
            None => {
                let slot = self.slot(labels);
                cache[key] = Some(slot);
                slot
            }
        }
    }

    /// The output series that received points, in order of first appearance.
    pub(crate) fn finish(self) -> Vec<StepSeries> {
        self.series
            .into_iter()
            .filter(|series| !series.points.is_empty())
            .collect()
    }
}

/// Merges series that ended up with equal labels (after dropping the metric name). With
/// `strict`, any such pair is an error (Prometheus's rule for range-vector functions and
/// unary minus); otherwise only points at the same step are (its rule for per-step
/// operations).
pub(crate) fn merge_same_labels(
    series: Vec<StepSeries>,
    strict: bool,
) -> Result<Vec<StepSeries>, QueryError> {
    let mut index: HashMap<Labels, usize> = HashMap::with_capacity(series.len());
    let mut merged: Vec<StepSeries> = Vec::with_capacity(series.len());
    for one in series {
        if one.points.is_empty() {
            continue;
        }
        match index.get(&one.labels) {
            None => {
                index.insert(one.labels.clone(), merged.len());
                merged.push(one);
            }
            Some(_) if strict => return Err(duplicate_labelset()),
            Some(&at) => {
                let target = &mut merged[at].points;
                target.extend(one.points);
                target.sort_by_key(|&(t, _)| t);
                if target.windows(2).any(|pair| pair[0].0 == pair[1].0) {
                    return Err(duplicate_labelset());
                }
            }
        }
    }
    Ok(merged)
}
