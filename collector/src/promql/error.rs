//! Why a PromQL query failed. Each variant maps to one Prometheus `errorType` at the HTTP
//! boundary (`api/prom.rs`): parse and type errors are the caller's (`bad_data`), the rest
//! happened while evaluating (`execution`, `timeout`, `internal`).

use crate::series::select::SelectError;

/// Errors of query parsing and evaluation. Messages follow Prometheus's where one exists.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The query text is not valid PromQL.
    #[error("{0}")]
    Parse(String),
    /// The query parses but cannot be run as asked (a range vector asked as a range query).
    #[error("{0}")]
    BadQuery(String),
    /// Valid PromQL that this engine does not implement (yet).
    #[error("{0}")]
    Unsupported(String),
    /// Evaluation found the data inconsistent with the query (duplicate label sets, …).
    #[error("{0}")]
    Execution(String),
    /// More samples than `QueryOptions::max_samples` would be held at once.
    #[error("query processing would load too many samples into memory in query execution")]
    TooManySamples,
    /// The query ran longer than `QueryOptions::timeout`.
    #[error("query timed out in expression evaluation")]
    Timeout,
    /// The series store failed.
    #[error("{0}")]
    Storage(String),
}

impl From<SelectError> for QueryError {
    fn from(error: SelectError) -> QueryError {
        match error {
            SelectError::TooManySamples { .. } => QueryError::TooManySamples,
            SelectError::Storage(message) => QueryError::Storage(message),
        }
    }
}

/// The error Prometheus raises when two output series end up with the same labels.
pub(crate) fn duplicate_labelset() -> QueryError {
    QueryError::Execution("vector cannot contain metrics with the same labelset".to_owned())
}
