//! PromQL evaluation over a `SeriesSource`, with Prometheus's semantics (lookback and
//! staleness, extrapolated rates, vector matching) for the subset of the language listed in
//! `call.rs`, `aggregate.rs` and `binary.rs`. The one rule: each selector reads the store
//! once for the whole query range, never per step.

mod aggregate;
mod binary;
mod call;
mod depth;
mod durations;
mod engine;
mod error;
mod histogram;
mod labels;
mod range_call;
mod range_functions;
mod sample_limit;
mod selector;
mod top_k;
mod value;

#[cfg(test)]
pub(crate) mod tests;

use std::time::Duration;

use promql_parser::parser::value::ValueType;
use promql_parser::parser::{self, Expr};

pub use error::QueryError;
pub use selector::matcher_sets;
pub use value::{Sample, Series, Value, format_value};

use crate::promql::engine::{Evaluated, Evaluator, StepGrid};
use crate::series::select::SeriesSource;

/// Prometheus's default lookback: an instant selector sees samples up to 5 minutes old.
pub const DEFAULT_LOOKBACK_DELTA_MS: i64 = 300_000;

/// What one sample a query holds costs in memory at the query's peak, in bytes: a point is
/// 16 bytes, and the JSON answer (about 35 bytes a point) is written while the result is
/// still held. Measured through the real collector with answers of 5 million points
/// (`rate(x[3h])` and `sum by (i) (rate(x[3h]))` over 20,000 series and 250 steps): the peak
/// RSS grew by 65 to 70 bytes per sample held; rounded up.
pub const PEAK_BYTES_PER_SAMPLE: usize = 80;

/// `[query] max_concurrent` by default: a query is split over the cores already, so more at
/// once would not end sooner; the rest wait for a place.
pub const DEFAULT_MAX_CONCURRENT: usize = 4;

/// `[query] max_samples` by default (Prometheus's 50 million is for servers with tens of GB):
/// `DEFAULT_MAX_CONCURRENT` queries of 3 million samples at 80 bytes take at most 960 MB, so
/// that a collector whose stores and caches take about 1 GB fits in 2 GB. A range query of
/// 11,000 points fits for 270 series, one of 1,000 points for 3,000.
pub const DEFAULT_MAX_SAMPLES: usize = 3_000_000;

/// Prometheus's default `--query.timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// Prometheus's limit on the points of one series in a range query.
pub const MAX_POINTS_PER_SERIES: i64 = 11_000;

/// Limits and knobs of one query.
#[derive(Debug, Clone)]
pub struct QueryOptions {
    /// How far back an instant selector looks for a sample.
    pub lookback_delta_ms: i64,
    /// The most samples the query may hold; more is `QueryError::TooManySamples`.
    pub max_samples: usize,
    /// How long evaluation may run; checked between steps and series.
    pub timeout: Duration,
}

impl Default for QueryOptions {
    fn default() -> QueryOptions {
        QueryOptions {
            lookback_delta_ms: DEFAULT_LOOKBACK_DELTA_MS,
            max_samples: DEFAULT_MAX_SAMPLES,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// Logs the most samples a query held at once: what `[query] max_samples` is weighed against.
fn log_peak(evaluator: &Evaluator<'_>) {
    tracing::debug!(
        peak_samples = evaluator.samples.peak(),
        max_samples = evaluator.samples.max_samples(),
        "promql query evaluated"
    );
}

/// Parses a query, mapping the parser's message to `QueryError::Parse`.
pub fn parse(query: &str) -> Result<Expr, QueryError> {
    depth::check_query_depth(query)?;
    durations::check_numeric_durations(query)?;
    parser::parse(query).map_err(QueryError::Parse)
}

/// Evaluates `query` at `time_ms`: a scalar, string, instant vector (stamped `time_ms`) or,
/// for a bare range selector, a matrix of raw samples.
pub fn instant_query(
    source: &dyn SeriesSource,
    query: &str,
    time_ms: i64,
    opts: &QueryOptions,
) -> Result<Value, QueryError> {
    let expr = parse(query)?;
    let grid = StepGrid {
        start_ms: time_ms,
        end_ms: time_ms,
        step_ms: 1,
    };
    let mut evaluator = Evaluator::new(source, grid, opts);
    let evaluated = evaluator.eval(&expr);
    log_peak(&evaluator);
    Ok(match evaluated? {
        Evaluated::Scalar(values) => Value::Scalar(time_ms, values[0]),
        Evaluated::String(text) => Value::String(time_ms, text),
        Evaluated::Vector(series) => Value::Vector(
            series
                .into_iter()
                .filter_map(|one| {
                    let (_, value) = *one.points.first()?;
                    Some(Sample {
                        labels: one.labels,
                        timestamp_ms: time_ms,
                        value,
                    })
                })
                .collect(),
        ),
        Evaluated::Matrix(matrix) => Value::Matrix(matrix),
    })
}

/// Evaluates `query` at every step from `start_ms` to `end_ms` inclusive: always a matrix,
/// sorted by labels (a scalar becomes one series without labels).
pub fn range_query(
    source: &dyn SeriesSource,
    query: &str,
    start_ms: i64,
    end_ms: i64,
    step_ms: i64,
    opts: &QueryOptions,
) -> Result<Value, QueryError> {
    let expr = parse(query)?;
    match expr.value_type() {
        ValueType::Vector | ValueType::Scalar => {}
        other => {
            let documented = match other {
                ValueType::Matrix => "range vector",
                _ => "string",
            };
            return Err(QueryError::BadQuery(format!(
                "invalid expression type \"{documented}\" for range query, must be Scalar or instant Vector"
            )));
        }
    }
    if step_ms <= 0 {
        return Err(QueryError::BadQuery(
            "zero or negative query resolution step widths are not accepted. Try a positive integer"
                .to_owned(),
        ));
    }
    if end_ms < start_ms {
        return Err(QueryError::BadQuery(
            "end timestamp must not be before start time".to_owned(),
        ));
    }
    let grid = StepGrid {
        start_ms,
        end_ms,
        step_ms,
    };
    let mut evaluator = Evaluator::new(source, grid, opts);
    evaluator.check_grid_fits(&grid)?;
    let evaluated = evaluator.eval(&expr);
    log_peak(&evaluator);
    let mut matrix = match evaluated? {
        Evaluated::Scalar(values) => vec![Series {
            labels: Vec::new(),
            points: grid.timestamps().zip(values).collect(),
        }],
        Evaluated::Vector(series) => series
            .into_iter()
            .filter(|one| !one.points.is_empty())
            .map(|one| Series {
                labels: one.labels,
                points: one.points,
            })
            .collect(),
        Evaluated::String(_) | Evaluated::Matrix(_) => {
            return Err(QueryError::BadQuery(
                "invalid expression type for range query, must be Scalar or instant Vector"
                    .to_owned(),
            ));
        }
    };
    matrix.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(Value::Matrix(matrix))
}
