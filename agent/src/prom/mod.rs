//! Prometheus metrics pages as data: the text exposition format 0.0.4 and OpenMetrics 1.0,
//! parsed into families of samples ([`parse`]). Families are keyed by their `# TYPE` name as
//! written, never by a name with `_total` stripped: Dask exposes a gauge
//! `dask_worker_transfer_incoming_count` beside a counter
//! `dask_worker_transfer_incoming_count_total`, and the two must stay apart.

mod parse;

pub use parse::{ParsedPage, parse, parse_strict};

/// Which exposition format a page is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The Prometheus text format 0.0.4 (`text/plain; version=0.0.4`): timestamps are integer
    /// milliseconds, `# EOF` is an ordinary comment.
    Text004,
    /// OpenMetrics 1.0 (`application/openmetrics-text`): timestamps are seconds with an
    /// optional fraction, `# UNIT` lines, exemplars, and the page must end with `# EOF`.
    OpenMetrics,
}

impl Format {
    /// Returns the format a `Content-Type` header announces: OpenMetrics for
    /// `application/openmetrics-text` (any version or parameters), the text format 0.0.4 for
    /// anything else, which is what Prometheus itself falls back to.
    pub fn from_content_type(content_type: &str) -> Format {
        let media_type = content_type.split(';').next().unwrap_or_default().trim();
        if media_type.eq_ignore_ascii_case("application/openmetrics-text") {
            Format::OpenMetrics
        } else {
            Format::Text004
        }
    }
}

/// A family's type, as its `# TYPE` line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// `counter`: samples `name` (0.0.4) or `name_total`, and `name_created`.
    Counter,
    /// `gauge`: samples `name`.
    Gauge,
    /// `histogram`: samples `name_bucket` (with `le`), `name_count`, `name_sum`,
    /// `name_created`.
    Histogram,
    /// `summary`: samples `name` (with `quantile`), `name_count`, `name_sum`, `name_created`.
    Summary,
    /// `untyped` (0.0.4), also the kind of samples that no `# TYPE` line announced in 0.0.4.
    Untyped,
    /// `info` (OpenMetrics): samples `name_info`.
    Info,
    /// `stateset` (OpenMetrics): samples `name`.
    StateSet,
    /// `gaugehistogram` (OpenMetrics): samples `name_bucket`, `name_gcount`, `name_gsum`.
    GaugeHistogram,
    /// `unknown` (OpenMetrics), also the kind of samples that no `# TYPE` line announced in
    /// OpenMetrics.
    Unknown,
}

impl MetricKind {
    /// Returns the kind a `# TYPE` line's type word names in `format`, if it is one.
    pub fn from_type_word(word: &str, format: Format) -> Option<MetricKind> {
        let kind = match (word, format) {
            ("counter", _) => MetricKind::Counter,
            ("gauge", _) => MetricKind::Gauge,
            ("histogram", _) => MetricKind::Histogram,
            ("summary", _) => MetricKind::Summary,
            ("untyped", Format::Text004) => MetricKind::Untyped,
            ("info", Format::OpenMetrics) => MetricKind::Info,
            ("stateset", Format::OpenMetrics) => MetricKind::StateSet,
            ("gaugehistogram", Format::OpenMetrics) => MetricKind::GaugeHistogram,
            ("unknown", Format::OpenMetrics) => MetricKind::Unknown,
            _ => return None,
        };
        Some(kind)
    }

    /// The kind of samples no `# TYPE` line announced.
    pub fn untyped(format: Format) -> MetricKind {
        match format {
            Format::Text004 => MetricKind::Untyped,
            Format::OpenMetrics => MetricKind::Unknown,
        }
    }

    /// The suffixes a sample name may add to the family name for this kind (the bare family
    /// name is always allowed).
    pub fn sample_suffixes(self) -> &'static [&'static str] {
        match self {
            MetricKind::Counter => &["_total", "_created"],
            MetricKind::Histogram => &["_bucket", "_count", "_sum", "_created"],
            MetricKind::Summary => &["_count", "_sum", "_created"],
            MetricKind::GaugeHistogram => &["_bucket", "_gcount", "_gsum"],
            MetricKind::Info => &["_info"],
            MetricKind::Gauge
            | MetricKind::Untyped
            | MetricKind::StateSet
            | MetricKind::Unknown => &[],
        }
    }
}

/// One metric family: its metadata and its samples in page order.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// The name on the family's `# TYPE` (or `# HELP`) line, or, for samples no metadata
    /// announced, the sample name.
    pub name: String,
    /// The family's type.
    pub kind: MetricKind,
    /// The `# HELP` text, unescaped.
    pub help: Option<String>,
    /// The `# UNIT` (OpenMetrics only).
    pub unit: Option<String>,
    /// The samples, possibly none (a family announced with no samples yet).
    pub samples: Vec<Sample>,
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The full sample name, e.g. `foo_bucket` in the family `foo`.
    pub name: String,
    /// The labels in page order, values unescaped.
    pub labels: Vec<(String, String)>,
    /// The value; `+Inf`, `-Inf` and `NaN` included.
    pub value: f64,
    /// The sample's own timestamp in Unix milliseconds, if the page gave one (OpenMetrics'
    /// seconds are converted, rounding below a millisecond).
    pub timestamp_ms: Option<i64>,
}

impl Sample {
    /// Returns the value of the label `name`, if the sample has it.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(label_name, _)| label_name == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Why a line (or an OpenMetrics page) is not valid. Lines carry their 1-based number and, to
/// bound memory, at most [`QUOTED_LINE_MAX_CHARS`] characters of their text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A sample line whose metric name is missing or has characters outside
    /// `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    #[error("line {line_number}: invalid metric name in {line:?}")]
    MetricName { line_number: usize, line: String },
    /// A label set that is malformed: bad label name, missing `=` or quotes, unterminated
    /// value, a label given twice.
    #[error("line {line_number}: invalid labels ({reason}) in {line:?}")]
    Labels {
        line_number: usize,
        reason: &'static str,
        line: String,
    },
    /// A sample value that is not a number, `+Inf`, `-Inf` or `NaN`.
    #[error("line {line_number}: invalid sample value {value:?}")]
    Value { line_number: usize, value: String },
    /// A timestamp that is not integer milliseconds (0.0.4) or seconds (OpenMetrics), or that
    /// is out of range.
    #[error("line {line_number}: invalid timestamp {timestamp:?}")]
    Timestamp {
        line_number: usize,
        timestamp: String,
    },
    /// Text after a sample's value and timestamp (other than an OpenMetrics exemplar).
    #[error("line {line_number}: unexpected text after the sample in {line:?}")]
    TrailingText { line_number: usize, line: String },
    /// A `# HELP`, `# TYPE` or `# UNIT` line without a valid metric name or with a type word
    /// the format does not know.
    #[error("line {line_number}: invalid metadata line {line:?}")]
    Metadata { line_number: usize, line: String },
    /// A second `# TYPE` (or `# HELP`, `# UNIT`) for a name that already has one, or metadata
    /// for a name whose samples already came. The line still opens a new family of that name,
    /// which the samples after it join: nothing is lost.
    #[error("line {line_number}: metadata for {name} repeated or after its samples")]
    RepeatedMetadata { line_number: usize, name: String },
    /// OpenMetrics: a line after `# EOF`.
    #[error("line {line_number}: text after # EOF")]
    AfterEof { line_number: usize },
    /// OpenMetrics: the page does not end with `# EOF`, so it may have been cut short.
    #[error("no # EOF at the end of an OpenMetrics page")]
    MissingEof,
}

/// How many characters of a bad line a [`ParseError`] keeps.
pub const QUOTED_LINE_MAX_CHARS: usize = 160;
