//! What a query returns: a scalar, a string, an instant vector or a range vector (matrix), in
//! Prometheus's four result types. Timestamps are unix milliseconds; labels sorted by name.

use crate::series::select::Labels;

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series' labels (without `__name__` where an operation dropped it).
    pub labels: Labels,
    /// The evaluation time, not the time of the sample the value came from.
    pub timestamp_ms: i64,
    pub value: f64,
}

/// One series of a range vector, its points ascending by time.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The series' labels.
    pub labels: Labels,
    /// `(unix ms, value)`: evaluation steps for a range query, sample times for a range
    /// selector evaluated as an instant query.
    pub points: Vec<(i64, f64)>,
}

/// The result of a query.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `(timestamp_ms, value)`.
    Scalar(i64, f64),
    /// `(timestamp_ms, value)`.
    String(i64, String),
    /// An instant vector, in evaluation order (as Prometheus: not sorted).
    Vector(Vec<Sample>),
    /// A range vector; sorted by labels.
    Matrix(Vec<Series>),
}

impl Value {
    /// The `resultType` Prometheus gives this value.
    pub fn result_type(&self) -> &'static str {
        match self {
            Value::Scalar(..) => "scalar",
            Value::String(..) => "string",
            Value::Vector(_) => "vector",
            Value::Matrix(_) => "matrix",
        }
    }
}

/// Formats a value as Prometheus does (Go's `strconv.FormatFloat(v, 'f', -1, 64)`): the
/// shortest decimal that reads back as the same float, never an exponent; `NaN`, `+Inf`,
/// `-Inf`.
pub fn format_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value == f64::INFINITY {
        "+Inf".to_owned()
    } else if value == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        value.to_string()
    }
}
