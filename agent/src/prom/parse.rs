//! The exposition-format parser: one pass over the page's lines, metadata opening families
//! and samples joining them.
//!
//! It is lenient: a bad line is recorded in [`ParsedPage::problems`] and skipped, the rest of
//! the page is still read, and no input makes it panic. A scrape should not lose a whole
//! exporter's page because one collector in it wrote one bad line; the caller counts the
//! problems (and [`parse_strict`] turns the first into an error for callers that want that).
//!
//! A sample joins, in this order: the family named exactly like the sample (so a separately
//! typed `foo_count_total` is never folded into `foo_count`); else the family whose name is the
//! sample's name less one suffix its type allows (`_total`, `_bucket`, `_count`, `_sum`,
//! `_created`, `_info`, `_gcount`, `_gsum`); else a new untyped family of the sample's own
//! name. When a name has two families (metadata repeated), the latest one is meant.

use std::collections::HashMap;

use super::{Family, Format, MetricKind, ParseError, QUOTED_LINE_MAX_CHARS, Sample};

/// A parsed page: its families in the order they first appear, and the lines that were
/// skipped.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ParsedPage {
    /// The families, each with its samples in page order.
    pub families: Vec<Family>,
    /// Every line that was skipped (or, for [`ParseError::RepeatedMetadata`], kept with a
    /// warning), in page order, and a missing OpenMetrics `# EOF` last.
    pub problems: Vec<ParseError>,
}

/// Parses a whole page in `format`, skipping and recording bad lines.
pub fn parse(text: &str, format: Format) -> ParsedPage {
    let mut parser = PageParser::new(format);
    let mut lines = text.split('\n').enumerate().peekable();
    let mut seen_eof = false;
    while let Some((index, raw_line)) = lines.next() {
        let line_number = index + 1;
        let line = raw_line.strip_suffix('\r').unwrap_or(raw_line);
        // The newline that ends the last line leaves an empty piece: not a line.
        if line.is_empty() && lines.peek().is_none() {
            break;
        }
        if seen_eof {
            parser.problems.push(ParseError::AfterEof { line_number });
            break;
        }
        if format == Format::OpenMetrics && line == "# EOF" {
            seen_eof = true;
            continue;
        }
        parser.read_line(line, line_number);
    }
    if format == Format::OpenMetrics && !seen_eof {
        parser.problems.push(ParseError::MissingEof);
    }
    ParsedPage {
        families: parser.families,
        problems: parser.problems,
    }
}

/// Parses a whole page in `format`, failing on its first bad line (or a missing OpenMetrics
/// `# EOF`), as Prometheus itself does.
pub fn parse_strict(text: &str, format: Format) -> Result<Vec<Family>, ParseError> {
    let page = parse(text, format);
    match page.problems.into_iter().next() {
        Some(problem) => Err(problem),
        None => Ok(page.families),
    }
}

/// What metadata a family has had, to tell a family's `# HELP` + `# TYPE` apart from a second
/// family of the same name.
#[derive(Debug, Clone, Copy, Default)]
struct FamilyMetadataSeen {
    help: bool,
    kind: bool,
    unit: bool,
}

/// A metadata line's keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Metadata {
    Help,
    Type,
    Unit,
}

struct PageParser {
    format: Format,
    families: Vec<Family>,
    metadata_seen: Vec<FamilyMetadataSeen>,
    /// Family name to the index of the latest family of that name.
    family_index: HashMap<String, usize>,
    problems: Vec<ParseError>,
}

impl PageParser {
    fn new(format: Format) -> PageParser {
        PageParser {
            format,
            families: Vec::new(),
            metadata_seen: Vec::new(),
            family_index: HashMap::new(),
            problems: Vec::new(),
        }
    }

    fn read_line(&mut self, line: &str, line_number: usize) {
        let trimmed = line.trim_start_matches(is_blank);
        if trimmed.is_empty() {
            return;
        }
        let result = if let Some(comment) = trimmed.strip_prefix('#') {
            self.read_comment(comment, line, line_number)
        } else {
            self.read_sample(trimmed, line_number)
        };
        if let Err(problem) = result {
            self.problems.push(problem);
        }
    }

    /// Reads a line that starts with `#`; anything but a metadata line is a comment.
    fn read_comment(
        &mut self,
        comment: &str,
        line: &str,
        line_number: usize,
    ) -> Result<(), ParseError> {
        if !comment.starts_with(is_blank) {
            return Ok(());
        }
        let (keyword, rest) = split_token(comment.trim_start_matches(is_blank));
        let metadata = match keyword {
            "HELP" => Metadata::Help,
            "TYPE" => Metadata::Type,
            "UNIT" if self.format == Format::OpenMetrics => Metadata::Unit,
            _ => return Ok(()),
        };
        let metadata_error = || ParseError::Metadata {
            line_number,
            line: quote_line(line),
        };
        let (name, rest) = split_token(rest.trim_start_matches(is_blank));
        if !is_metric_name(name) {
            return Err(metadata_error());
        }
        // One run of blanks separates the name from the text; the text keeps the rest as is.
        let text = rest.trim_start_matches(is_blank);
        let kind = match metadata {
            Metadata::Type => Some(
                MetricKind::from_type_word(text.trim_end_matches(is_blank), self.format)
                    .ok_or_else(metadata_error)?,
            ),
            Metadata::Help | Metadata::Unit => None,
        };
        let index = self.family_for_metadata(name, metadata, line_number);
        let family = &mut self.families[index];
        match metadata {
            Metadata::Help => family.help = Some(unescape_help(text, self.format)),
            Metadata::Type => {
                if let Some(kind) = kind {
                    family.kind = kind;
                }
            }
            Metadata::Unit => family.unit = Some(text.trim_end_matches(is_blank).to_owned()),
        }
        Ok(())
    }

    /// Returns the family a metadata line for `name` belongs to: the latest family of that
    /// name if it has no samples and not this metadata yet, else a new family (recording the
    /// repetition when a family of that name existed).
    fn family_for_metadata(&mut self, name: &str, metadata: Metadata, line_number: usize) -> usize {
        if let Some(&index) = self.family_index.get(name) {
            let seen = &mut self.metadata_seen[index];
            let already = match metadata {
                Metadata::Help => &mut seen.help,
                Metadata::Type => &mut seen.kind,
                Metadata::Unit => &mut seen.unit,
            };
            if !*already && self.families[index].samples.is_empty() {
                *already = true;
                return index;
            }
            self.problems.push(ParseError::RepeatedMetadata {
                line_number,
                name: name.to_owned(),
            });
        }
        let index = self.open_family(name);
        let seen = &mut self.metadata_seen[index];
        match metadata {
            Metadata::Help => seen.help = true,
            Metadata::Type => seen.kind = true,
            Metadata::Unit => seen.unit = true,
        }
        index
    }

    fn open_family(&mut self, name: &str) -> usize {
        let index = self.families.len();
        self.families.push(Family {
            name: name.to_owned(),
            kind: MetricKind::untyped(self.format),
            help: None,
            unit: None,
            samples: Vec::new(),
        });
        self.metadata_seen.push(FamilyMetadataSeen::default());
        self.family_index.insert(name.to_owned(), index);
        index
    }

    fn read_sample(&mut self, line: &str, line_number: usize) -> Result<(), ParseError> {
        let sample = parse_sample_line(line, line_number, self.format)?;
        let index = self.family_for_sample(&sample.name);
        self.families[index].samples.push(sample);
        Ok(())
    }

    /// Returns the family a sample named `sample_name` joins (see the module doc).
    fn family_for_sample(&mut self, sample_name: &str) -> usize {
        if let Some(&index) = self.family_index.get(sample_name) {
            return index;
        }
        for suffix in ALL_SAMPLE_SUFFIXES {
            let Some(family_name) = sample_name.strip_suffix(suffix) else {
                continue;
            };
            if let Some(&index) = self.family_index.get(family_name)
                && self.families[index]
                    .kind
                    .sample_suffixes()
                    .contains(&suffix)
            {
                return index;
            }
        }
        self.open_family(sample_name)
    }
}

/// Every suffix any kind allows; a name ends with at most one of them.
const ALL_SAMPLE_SUFFIXES: [&str; 8] = [
    "_total", "_bucket", "_count", "_sum", "_created", "_info", "_gcount", "_gsum",
];

/// Parses `name{labels} value [timestamp] [# exemplar]`; `line` has no leading blanks.
fn parse_sample_line(line: &str, line_number: usize, format: Format) -> Result<Sample, ParseError> {
    let name_end = line
        .find(|c: char| !is_metric_name_char(c))
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if !is_metric_name(name) {
        return Err(ParseError::MetricName {
            line_number,
            line: quote_line(line),
        });
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    let after_blanks = rest.trim_start_matches(is_blank);
    if let Some(label_text) = after_blanks.strip_prefix('{') {
        rest = parse_labels(label_text, &mut labels).map_err(|reason| ParseError::Labels {
            line_number,
            reason,
            line: quote_line(line),
        })?;
    }
    // A value is separated from what comes before it by blanks.
    if !rest.starts_with(is_blank) {
        return Err(if rest.is_empty() {
            ParseError::Value {
                line_number,
                value: String::new(),
            }
        } else {
            ParseError::MetricName {
                line_number,
                line: quote_line(line),
            }
        });
    }
    let (value_text, rest) = split_token(rest.trim_start_matches(is_blank));
    let value = parse_value(value_text).ok_or_else(|| ParseError::Value {
        line_number,
        value: quote_line(value_text),
    })?;
    let rest = rest.trim_start_matches(is_blank);
    let mut timestamp_ms = None;
    let rest = if rest.is_empty() || is_exemplar_start(rest, format) {
        rest
    } else {
        let (timestamp_text, after_timestamp) = split_token(rest);
        let timestamp =
            parse_timestamp_ms(timestamp_text, format).ok_or_else(|| ParseError::Timestamp {
                line_number,
                timestamp: quote_line(timestamp_text),
            })?;
        timestamp_ms = Some(timestamp);
        after_timestamp.trim_start_matches(is_blank)
    };
    if !rest.is_empty() && !is_exemplar_start(rest, format) {
        return Err(ParseError::TrailingText {
            line_number,
            line: quote_line(line),
        });
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
        timestamp_ms,
    })
}

/// OpenMetrics exemplars (` # {trace_id="…"} 1.0`) follow a sample; they are not kept.
fn is_exemplar_start(text: &str, format: Format) -> bool {
    format == Format::OpenMetrics && text.starts_with('#')
}

/// Parses the label pairs after `{` into `labels` and returns the text after the closing `}`.
fn parse_labels<'a>(
    mut text: &'a str,
    labels: &mut Vec<(String, String)>,
) -> Result<&'a str, &'static str> {
    loop {
        text = text.trim_start_matches(is_blank);
        if let Some(rest) = text.strip_prefix('}') {
            return Ok(rest);
        }
        let name_end = text
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(text.len());
        let name = &text[..name_end];
        if !is_label_name(name) {
            return Err("bad label name");
        }
        text = text[name_end..].trim_start_matches(is_blank);
        text = text.strip_prefix('=').ok_or("no = after a label name")?;
        text = text.trim_start_matches(is_blank);
        text = text
            .strip_prefix('"')
            .ok_or("no quote before a label value")?;
        let (value, rest) = unescape_label_value(text)?;
        if labels.iter().any(|(seen, _)| seen == name) {
            return Err("a label given twice");
        }
        labels.push((name.to_owned(), value));
        text = rest.trim_start_matches(is_blank);
        if let Some(rest) = text.strip_prefix(',') {
            text = rest;
        } else if !text.starts_with('}') {
            return Err("no , or } after a label value");
        }
    }
}

/// Reads a label value up to its closing quote, undoing `\\`, `\"` and `\n`; any other
/// backslash is kept as written (as Prometheus does). Returns the value and the text after
/// the quote.
fn unescape_label_value(text: &str) -> Result<(String, &str), &'static str> {
    let bytes = text.as_bytes();
    let mut value = String::new();
    let mut copied_up_to = 0;
    let mut position = 0;
    while position < bytes.len() {
        match bytes[position] {
            b'"' => {
                value.push_str(&text[copied_up_to..position]);
                return Ok((value, &text[position + 1..]));
            }
            b'\\' => {
                value.push_str(&text[copied_up_to..position]);
                match bytes.get(position + 1) {
                    Some(b'\\') => value.push('\\'),
                    Some(b'"') => value.push('"'),
                    Some(b'n') => value.push('\n'),
                    Some(_) => {
                        // Keep the backslash; the next character is copied as it is.
                        value.push('\\');
                        position += 1;
                        copied_up_to = position;
                        continue;
                    }
                    None => return Err("unterminated label value"),
                }
                position += 2;
                copied_up_to = position;
            }
            _ => position += 1,
        }
    }
    Err("unterminated label value")
}

/// Undoes a HELP text's escapes: `\\` and `\n`, and in OpenMetrics `\"`; any other backslash
/// is kept as written.
fn unescape_help(text: &str, format: Format) -> String {
    if !text.contains('\\') {
        return text.to_owned();
    }
    let mut help = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            help.push(c);
            continue;
        }
        match chars.peek() {
            Some('\\') => help.push('\\'),
            Some('n') => help.push('\n'),
            Some('"') if format == Format::OpenMetrics => help.push('"'),
            _ => {
                help.push('\\');
                continue;
            }
        }
        chars.next();
    }
    help
}

/// Parses a sample value: a float as Go's `ParseFloat` reads it in decimal, including `+Inf`,
/// `-Inf` and `NaN`.
fn parse_value(text: &str) -> Option<f64> {
    // Rust also reads `infinity`, `inf` and `nan` in any case, as Go does; it does not read
    // Go's hexadecimal floats or `_` separators, which no exporter writes.
    if text.is_empty() {
        return None;
    }
    text.parse().ok()
}

/// Parses a timestamp into Unix milliseconds: integer milliseconds in 0.0.4, seconds with an
/// optional fraction in OpenMetrics (rounded to the nearest millisecond).
fn parse_timestamp_ms(text: &str, format: Format) -> Option<i64> {
    match format {
        Format::Text004 => text.parse().ok(),
        Format::OpenMetrics => parse_seconds_as_ms(text),
    }
}

/// Reads decimal seconds exactly where it can (`1520879607.789` is 1520879607789 ms, with no
/// binary rounding), and through `f64` otherwise (exponents).
fn parse_seconds_as_ms(text: &str) -> Option<i64> {
    let (negative, unsigned) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let is_decimal = (!whole.is_empty() || !fraction.is_empty())
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit());
    if !is_decimal {
        let seconds: f64 = text.parse().ok()?;
        let ms = (seconds * 1000.0).round();
        // Casts saturate; keep only values an i64 holds exactly enough.
        return (ms.is_finite() && ms.abs() < 9.0e18).then_some(ms as i64);
    }
    let whole_seconds: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut fraction_ms: i64 = 0;
    for (place, digit) in fraction.bytes().take(3).enumerate() {
        let weight = [100, 10, 1][place];
        fraction_ms += i64::from(digit - b'0') * weight;
    }
    if fraction
        .as_bytes()
        .get(3)
        .is_some_and(|&digit| digit >= b'5')
    {
        fraction_ms += 1;
    }
    let ms = whole_seconds.checked_mul(1000)?.checked_add(fraction_ms)?;
    Some(if negative { -ms } else { ms })
}

/// Splits off the first blank-separated token; the rest keeps its leading blanks.
fn split_token(text: &str) -> (&str, &str) {
    let end = text.find(is_blank).unwrap_or(text.len());
    text.split_at(end)
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn is_metric_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

fn is_metric_name(name: &str) -> bool {
    name.chars().next().is_some_and(|first| {
        (first.is_ascii_alphabetic() || first == '_' || first == ':')
            && name.chars().all(is_metric_name_char)
    })
}

fn is_label_name(name: &str) -> bool {
    name.chars().next().is_some_and(|first| {
        (first.is_ascii_alphabetic() || first == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// Keeps at most `QUOTED_LINE_MAX_CHARS` characters of a line for an error.
fn quote_line(line: &str) -> String {
    match line.char_indices().nth(QUOTED_LINE_MAX_CHARS) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use proptest::prelude::*;

    use super::*;

    fn fixture(path: &str) -> String {
        let full_path = format!("{}/../tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&full_path)
            .unwrap_or_else(|error| panic!("cannot read fixture {full_path}: {error}"))
    }

    const DASK_PAGES: [&str; 4] = [
        "dask/metrics/scheduler-metrics-t1-idle.prom",
        "dask/metrics/scheduler-metrics-t2-load.prom",
        "dask/metrics/worker-1-metrics-t1-idle.prom",
        "dask/metrics/worker-1-metrics-t2-load.prom",
    ];

    const NODE_EXPORTER_PAGE: &str = "node_exporter/metrics.prom";

    /// A compact, stable rendering of a page for snapshots: every family with its kind, help
    /// and sample count, and its first three samples.
    fn render(page: &ParsedPage) -> String {
        let mut out = String::new();
        for family in &page.families {
            let _ = writeln!(
                out,
                "{} {:?} samples={}{}{}",
                family.name,
                family.kind,
                family.samples.len(),
                family
                    .unit
                    .as_ref()
                    .map(|unit| format!(" unit={unit}"))
                    .unwrap_or_default(),
                family
                    .help
                    .as_ref()
                    .map(|help| format!(" help={help:?}"))
                    .unwrap_or_default(),
            );
            for sample in family.samples.iter().take(3) {
                let labels: Vec<String> = sample
                    .labels
                    .iter()
                    .map(|(name, value)| format!("{name}={value:?}"))
                    .collect();
                let _ = writeln!(
                    out,
                    "    {}{{{}}} {:?}{}",
                    sample.name,
                    labels.join(","),
                    sample.value,
                    sample
                        .timestamp_ms
                        .map(|ms| format!(" @{ms}"))
                        .unwrap_or_default(),
                );
            }
        }
        for problem in &page.problems {
            let _ = writeln!(out, "problem: {problem}");
        }
        out
    }

    fn family<'a>(families: &'a [Family], name: &str) -> &'a Family {
        families
            .iter()
            .find(|family| family.name == name)
            .unwrap_or_else(|| panic!("no family {name} in {families:#?}"))
    }

    #[test]
    fn dask_pages_snapshot() {
        for path in DASK_PAGES {
            let page = parse(&fixture(path), Format::Text004);
            assert!(page.problems.is_empty(), "{path}: {:?}", page.problems);
            let name = path
                .trim_start_matches("dask/metrics/")
                .replace(".prom", "");
            insta::assert_snapshot!(format!("dask_{name}"), render(&page));
        }
    }

    #[test]
    fn node_exporter_page_snapshot() {
        let page = parse(&fixture(NODE_EXPORTER_PAGE), Format::Text004);
        assert!(page.problems.is_empty(), "{:?}", page.problems);
        insta::assert_snapshot!(render(&page));
    }

    #[test]
    fn dask_gauge_and_counter_total_stay_separate_families() -> Result<(), ParseError> {
        // The real lines, from tests/fixtures/dask/metrics/worker-1-metrics-t2-load.prom.
        let text = "\
# HELP dask_worker_transfer_incoming_count Number of open data transfers from other workers
# TYPE dask_worker_transfer_incoming_count gauge
dask_worker_transfer_incoming_count 0.0
# HELP dask_worker_transfer_incoming_count_total Total number of data transfers from other workers since the worker was started
# TYPE dask_worker_transfer_incoming_count_total counter
dask_worker_transfer_incoming_count_total 2.0
";
        assert!(fixture(DASK_PAGES[3]).contains(text));
        let families = parse_strict(text, Format::Text004)?;
        assert_eq!(families.len(), 2);
        let gauge = family(&families, "dask_worker_transfer_incoming_count");
        assert_eq!(gauge.kind, MetricKind::Gauge);
        assert_eq!(gauge.samples.len(), 1);
        assert_eq!(gauge.samples[0].value, 0.0);
        let counter = family(&families, "dask_worker_transfer_incoming_count_total");
        assert_eq!(counter.kind, MetricKind::Counter);
        assert_eq!(counter.samples.len(), 1);
        assert_eq!(counter.samples[0].name, counter.name);
        assert_eq!(counter.samples[0].value, 2.0);
        Ok(())
    }

    #[test]
    fn dask_collision_in_openmetrics_keeps_both_families() {
        // How Dask's client writes the same two metrics in OpenMetrics: both families are
        // named `dask_worker_transfer_incoming_count`.
        let text = "\
# HELP dask_worker_transfer_incoming_count Number of open data transfers from other workers
# TYPE dask_worker_transfer_incoming_count gauge
dask_worker_transfer_incoming_count 0.0
# HELP dask_worker_transfer_incoming_count Total number of data transfers from other workers since the worker was started
# TYPE dask_worker_transfer_incoming_count counter
dask_worker_transfer_incoming_count_total 2.0
# EOF
";
        let page = parse(text, Format::OpenMetrics);
        assert_eq!(page.families.len(), 2);
        assert_eq!(page.families[0].kind, MetricKind::Gauge);
        assert_eq!(page.families[0].samples[0].value, 0.0);
        assert_eq!(page.families[1].kind, MetricKind::Counter);
        assert_eq!(
            page.families[1].samples[0].name,
            "dask_worker_transfer_incoming_count_total"
        );
        assert_eq!(page.families[1].samples[0].value, 2.0);
        assert_eq!(
            page.problems,
            vec![ParseError::RepeatedMetadata {
                line_number: 4,
                name: "dask_worker_transfer_incoming_count".to_owned()
            }]
        );
    }

    #[test]
    fn exact_family_name_wins_over_suffix_match() -> Result<(), ParseError> {
        let text = "\
# TYPE rpc histogram
rpc_bucket{le=\"+Inf\"} 3
rpc_count 3
rpc_sum 1.5
# TYPE rpc_count_total counter
rpc_count_total 7
# TYPE requests counter
requests_total 9
requests_created 1700000000
";
        let families = parse_strict(text, Format::Text004)?;
        let names: Vec<(&str, usize)> = families
            .iter()
            .map(|family| (family.name.as_str(), family.samples.len()))
            .collect();
        assert_eq!(
            names,
            vec![("rpc", 3), ("rpc_count_total", 1), ("requests", 2)]
        );
        Ok(())
    }

    #[test]
    fn suffix_only_joins_a_family_whose_kind_allows_it() -> Result<(), ParseError> {
        // A gauge has no `_total` samples: `temperature_total` is its own untyped family.
        let text = "# TYPE temperature gauge\ntemperature 3\ntemperature_total 4\n";
        let families = parse_strict(text, Format::Text004)?;
        assert_eq!(families.len(), 2);
        assert_eq!(families[1].name, "temperature_total");
        assert_eq!(families[1].kind, MetricKind::Untyped);
        Ok(())
    }

    #[test]
    fn samples_without_type_become_untyped_families_of_their_own_name() -> Result<(), ParseError> {
        let text = "loose_metric{a=\"1\"} 1\nloose_metric{a=\"2\"} 2\nother_total 3\n";
        let families = parse_strict(text, Format::Text004)?;
        assert_eq!(families.len(), 2);
        assert_eq!(families[0].name, "loose_metric");
        assert_eq!(families[0].kind, MetricKind::Untyped);
        assert_eq!(families[0].samples.len(), 2);
        assert_eq!(families[1].name, "other_total");
        let page = parse("loose 1\n# EOF\n", Format::OpenMetrics);
        assert_eq!(page.families[0].kind, MetricKind::Unknown);
        Ok(())
    }

    #[test]
    fn label_value_escapes_are_undone() -> Result<(), ParseError> {
        let text = r#"m{path="C:\\dir",quote="say \"hi\"",multi="a\nb",other="\x2d",empty=""} 1
"#;
        let families = parse_strict(text, Format::Text004)?;
        let sample = &families[0].samples[0];
        assert_eq!(sample.label("path"), Some(r"C:\dir"));
        assert_eq!(sample.label("quote"), Some(r#"say "hi""#));
        assert_eq!(sample.label("multi"), Some("a\nb"));
        assert_eq!(sample.label("other"), Some(r"\x2d"));
        assert_eq!(sample.label("empty"), Some(""));
        let names: Vec<&str> = sample
            .labels
            .iter()
            .map(|(name, _)| name.as_str())
            .collect();
        assert_eq!(names, ["path", "quote", "multi", "other", "empty"]);
        Ok(())
    }

    #[test]
    fn label_sets_allow_blanks_trailing_comma_and_unicode() -> Result<(), ParseError> {
        let text = "m { a = \"x,}\" , b=\"ünï\",} 1\nn{} 2\n";
        let families = parse_strict(text, Format::Text004)?;
        assert_eq!(
            families[0].samples[0].labels,
            vec![
                ("a".to_owned(), "x,}".to_owned()),
                ("b".to_owned(), "ünï".to_owned())
            ]
        );
        assert!(families[1].samples[0].labels.is_empty());
        Ok(())
    }

    #[test]
    fn bad_label_sets_are_problems() {
        for (text, reason) in [
            ("m{a=\"1} 1", "unterminated label value"),
            ("m{a=\"1\\", "unterminated label value"),
            ("m{1a=\"1\"} 1", "bad label name"),
            ("m{a 1", "no = after a label name"),
            ("m{a=1} 1", "no quote before a label value"),
            ("m{a=\"1\" b=\"2\"} 1", "no , or } after a label value"),
            ("m{a=\"1\",a=\"2\"} 1", "a label given twice"),
        ] {
            let page = parse(text, Format::Text004);
            assert!(page.families.is_empty(), "{text}");
            assert!(
                matches!(&page.problems[..], [ParseError::Labels { line_number: 1, reason: got, .. }] if *got == reason),
                "{text}: {:?}",
                page.problems
            );
        }
    }

    #[test]
    fn special_values_parse() -> Result<(), ParseError> {
        let text = "a +Inf\nb -Inf\nc NaN\nd 1.5e-3\ne -0\nf 12345678901234567890\n";
        let families = parse_strict(text, Format::Text004)?;
        let values: Vec<f64> = families
            .iter()
            .map(|family| family.samples[0].value)
            .collect();
        assert_eq!(values[0], f64::INFINITY);
        assert_eq!(values[1], f64::NEG_INFINITY);
        assert!(values[2].is_nan());
        assert_eq!(values[3], 0.0015);
        assert_eq!(values[4], 0.0);
        assert_eq!(values[5], 1.2345678901234567e19);
        Ok(())
    }

    #[test]
    fn bad_values_are_problems_and_the_page_goes_on() {
        let page = parse("a one\nb 1\nc\nd 2 3 4\n", Format::Text004);
        assert_eq!(page.families.len(), 1);
        assert_eq!(page.families[0].name, "b");
        assert_eq!(
            page.problems,
            vec![
                ParseError::Value {
                    line_number: 1,
                    value: "one".to_owned()
                },
                ParseError::Value {
                    line_number: 3,
                    value: String::new()
                },
                ParseError::TrailingText {
                    line_number: 4,
                    line: "d 2 3 4".to_owned()
                },
            ]
        );
    }

    #[test]
    fn text_004_timestamps_are_milliseconds() -> Result<(), ParseError> {
        let text = "a 1 1700000000123\nb 2\nc 3 -5\n";
        let families = parse_strict(text, Format::Text004)?;
        assert_eq!(families[0].samples[0].timestamp_ms, Some(1_700_000_000_123));
        assert_eq!(families[1].samples[0].timestamp_ms, None);
        assert_eq!(families[2].samples[0].timestamp_ms, Some(-5));
        let page = parse("a 1 1.5\n", Format::Text004);
        assert!(matches!(
            page.problems[..],
            [ParseError::Timestamp { line_number: 1, .. }]
        ));
        Ok(())
    }

    #[test]
    fn openmetrics_timestamps_are_seconds_with_a_fraction() -> Result<(), ParseError> {
        let text = "a 1 1520879607.789\nb 1 1520879607\nc 1 1520879607.7895\nd 1 1.5e9\ne 1 -1.25\n# EOF\n";
        let families = parse_strict(text, Format::OpenMetrics)?;
        let timestamps: Vec<Option<i64>> = families
            .iter()
            .map(|family| family.samples[0].timestamp_ms)
            .collect();
        assert_eq!(
            timestamps,
            vec![
                Some(1_520_879_607_789),
                Some(1_520_879_607_000),
                Some(1_520_879_607_790),
                Some(1_500_000_000_000),
                Some(-1_250),
            ]
        );
        for bad in ["a 1 NaN", "a 1 1e30", "a 1 99999999999999999999", "a 1 ."] {
            let page = parse(&format!("{bad}\n# EOF\n"), Format::OpenMetrics);
            assert!(
                matches!(page.problems[..], [ParseError::Timestamp { .. }]),
                "{bad}: {:?}",
                page.problems
            );
        }
        Ok(())
    }

    #[test]
    fn openmetrics_exemplars_are_skipped() -> Result<(), ParseError> {
        let text = "\
# TYPE latency histogram
latency_bucket{le=\"0.1\"} 8 # {trace_id=\"abc\"} 0.05 1520879607.7
latency_bucket{le=\"+Inf\"} 9 1520879608 # {trace_id=\"def\"} 3.2
latency_count 9
latency_sum 4.5
# EOF
";
        let families = parse_strict(text, Format::OpenMetrics)?;
        let samples = &families[0].samples;
        assert_eq!(samples.len(), 4);
        assert_eq!(samples[0].timestamp_ms, None);
        assert_eq!(samples[1].label("le"), Some("+Inf"));
        assert_eq!(samples[1].timestamp_ms, Some(1_520_879_608_000));
        // In 0.0.4 a `#` after the value is not an exemplar.
        let page = parse("a 1 # {x=\"y\"} 1\n", Format::Text004);
        assert_eq!(page.problems.len(), 1);
        Ok(())
    }

    #[test]
    fn histogram_and_summary_samples_join_their_family() -> Result<(), ParseError> {
        let text = "\
# HELP http_request_duration_seconds A histogram of the request duration.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le=\"0.05\"} 24054
http_request_duration_seconds_bucket{le=\"0.1\"} 33444
http_request_duration_seconds_bucket{le=\"+Inf\"} 144320
http_request_duration_seconds_sum 53423
http_request_duration_seconds_count 144320
# HELP rpc_duration_seconds A summary of the RPC duration in seconds.
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{quantile=\"0.01\"} 3102
rpc_duration_seconds{quantile=\"0.5\"} 4773
rpc_duration_seconds{quantile=\"0.99\"} NaN
rpc_duration_seconds_sum 1.7560473e+07
rpc_duration_seconds_count 2693
";
        let families = parse_strict(text, Format::Text004)?;
        assert_eq!(families.len(), 2);
        assert_eq!(families[0].kind, MetricKind::Histogram);
        assert_eq!(families[0].samples.len(), 5);
        assert_eq!(families[0].samples[2].value, 144320.0);
        assert_eq!(families[1].kind, MetricKind::Summary);
        assert_eq!(families[1].samples.len(), 5);
        assert!(families[1].samples[2].value.is_nan());
        Ok(())
    }

    #[test]
    fn openmetrics_kinds_and_units() -> Result<(), ParseError> {
        let text = "\
# TYPE build info
build_info{version=\"1.2\"} 1
# TYPE door stateset
door{door=\"open\"} 1
door{door=\"closed\"} 0
# TYPE queue gaugehistogram
queue_bucket{le=\"+Inf\"} 4
queue_gcount 4
queue_gsum 2.5
# TYPE request_seconds counter
# UNIT request_seconds seconds
# HELP request_seconds Time \"spent\" \\ serving.
request_seconds_total 5
request_seconds_created 1520430000.123
# TYPE thing unknown
thing 1
# EOF
";
        let families = parse_strict(text, Format::OpenMetrics)?;
        let kinds: Vec<(&str, MetricKind, usize)> = families
            .iter()
            .map(|family| (family.name.as_str(), family.kind, family.samples.len()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("build", MetricKind::Info, 1),
                ("door", MetricKind::StateSet, 2),
                ("queue", MetricKind::GaugeHistogram, 3),
                ("request_seconds", MetricKind::Counter, 2),
                ("thing", MetricKind::Unknown, 1),
            ]
        );
        let counter = family(&families, "request_seconds");
        assert_eq!(counter.unit.as_deref(), Some("seconds"));
        assert_eq!(counter.help.as_deref(), Some(r#"Time "spent" \ serving."#));
        // `untyped` is 0.0.4's word, `unknown` OpenMetrics'.
        let page = parse("# TYPE a untyped\n# EOF\n", Format::OpenMetrics);
        assert!(matches!(page.problems[..], [ParseError::Metadata { .. }]));
        let page = parse("# TYPE a unknown\n", Format::Text004);
        assert!(matches!(page.problems[..], [ParseError::Metadata { .. }]));
        Ok(())
    }

    #[test]
    fn help_escapes_are_undone() -> Result<(), ParseError> {
        let text =
            "# HELP a First line\\nsecond \\\\ line \\\"kept\\\" \\t\n# HELP b\n# TYPE b gauge\n";
        let families = parse_strict(text, Format::Text004)?;
        assert_eq!(
            families[0].help.as_deref(),
            Some("First line\nsecond \\ line \\\"kept\\\" \\t")
        );
        assert_eq!(families[1].help.as_deref(), Some(""));
        // The real Dask HELP with `\n`.
        let families = parse_strict(&fixture(DASK_PAGES[1]), Format::Text004)?;
        let help = family(&families, "dask_semaphore_max_leases").help.clone();
        assert_eq!(
            help.as_deref(),
            Some(
                "Maximum leases allowed per semaphore\nNote: This will be constant for each semaphore during its lifetime."
            )
        );
        Ok(())
    }

    #[test]
    fn families_with_no_samples_are_kept() -> Result<(), ParseError> {
        // The Dask scheduler announces its semaphore families before any semaphore exists.
        let families = parse_strict(&fixture(DASK_PAGES[1]), Format::Text004)?;
        let semaphore = family(&families, "dask_semaphore_acquire_total");
        assert_eq!(semaphore.kind, MetricKind::Counter);
        assert!(semaphore.samples.is_empty());
        assert!(semaphore.help.is_some());
        Ok(())
    }

    #[test]
    fn metadata_after_samples_opens_a_new_family() {
        let page = parse("a 1\n# TYPE a gauge\na 2\n", Format::Text004);
        assert_eq!(page.families.len(), 2);
        assert_eq!(page.families[0].kind, MetricKind::Untyped);
        assert_eq!(page.families[1].kind, MetricKind::Gauge);
        assert_eq!(page.families[1].samples[0].value, 2.0);
        assert_eq!(
            page.problems,
            vec![ParseError::RepeatedMetadata {
                line_number: 2,
                name: "a".to_owned()
            }]
        );
    }

    #[test]
    fn comments_blank_lines_and_crlf_are_ignored() -> Result<(), ParseError> {
        let text = "# just a comment\r\n#HELP not metadata\n\n   \n\t# TYPE a gauge\r\na 1\r\n";
        let families = parse_strict(text, Format::Text004)?;
        assert_eq!(families.len(), 1);
        assert_eq!(families[0].kind, MetricKind::Gauge);
        assert_eq!(families[0].samples[0].value, 1.0);
        Ok(())
    }

    #[test]
    fn openmetrics_needs_eof_and_nothing_after_it() {
        let page = parse("a 1\n", Format::OpenMetrics);
        assert_eq!(page.families.len(), 1);
        assert_eq!(page.problems, vec![ParseError::MissingEof]);
        let page = parse("a 1\n# EOF", Format::OpenMetrics);
        assert!(page.problems.is_empty());
        let page = parse("a 1\n# EOF\nb 2\n", Format::OpenMetrics);
        assert_eq!(page.families.len(), 1);
        assert_eq!(page.problems, vec![ParseError::AfterEof { line_number: 3 }]);
        assert_eq!(
            parse_strict("", Format::OpenMetrics),
            Err(ParseError::MissingEof)
        );
        // In 0.0.4 `# EOF` is a comment.
        let page = parse("a 1\n# EOF\nb 2\n", Format::Text004);
        assert_eq!(page.families.len(), 2);
        assert!(page.problems.is_empty());
    }

    #[test]
    fn format_comes_from_the_content_type() {
        for (content_type, format) in [
            (
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                Format::OpenMetrics,
            ),
            ("Application/OpenMetrics-Text", Format::OpenMetrics),
            ("text/plain; version=0.0.4; charset=utf-8", Format::Text004),
            ("text/plain", Format::Text004),
            ("", Format::Text004),
        ] {
            assert_eq!(Format::from_content_type(content_type), format);
        }
    }

    #[test]
    fn bad_metric_names_and_metadata_are_problems() {
        let page = parse(
            "1abc 1\nfoo-bar 1\n# TYPE 1x gauge\n# HELP\n# TYPE a\n",
            Format::Text004,
        );
        assert!(page.families.is_empty(), "{:?}", page.families);
        assert!(matches!(
            page.problems[..],
            [
                ParseError::MetricName { line_number: 1, .. },
                ParseError::MetricName { line_number: 2, .. },
                ParseError::Metadata { line_number: 3, .. },
                ParseError::Metadata { line_number: 4, .. },
                ParseError::Metadata { line_number: 5, .. },
            ]
        ));
    }

    #[test]
    fn long_bad_lines_are_quoted_short() {
        let long_line = format!("{}{{", "é".repeat(1000));
        let page = parse(&long_line, Format::Text004);
        let [ParseError::MetricName { line, .. }] = &page.problems[..] else {
            panic!("{:?}", page.problems);
        };
        assert_eq!(line.chars().count(), QUOTED_LINE_MAX_CHARS + 1);
    }

    /// Characters that matter to the grammar, to mutate pages with.
    const GRAMMAR_CHARS: &[char] = &[
        '{', '}', '"', ',', '=', '\\', '\n', ' ', '\t', '#', '.', '-', '+', 'e', 'n', '_', 'é',
        '0', '9',
    ];

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC*", openmetrics in any::<bool>()) {
            let format = if openmetrics { Format::OpenMetrics } else { Format::Text004 };
            let _ = parse(&text, format);
        }

        #[test]
        fn arbitrary_grammar_soup_never_panics(
            chars in prop::collection::vec(prop::sample::select(GRAMMAR_CHARS), 0..200),
            openmetrics in any::<bool>(),
        ) {
            let text: String = chars.into_iter().collect();
            let format = if openmetrics { Format::OpenMetrics } else { Format::Text004 };
            let _ = parse(&text, format);
        }

        #[test]
        fn mutated_fixture_pages_never_panic(
            page_index in 0..5_usize,
            edits in prop::collection::vec(
                (any::<prop::sample::Index>(), 0..3_u8, prop::sample::select(GRAMMAR_CHARS)),
                1..20,
            ),
            openmetrics in any::<bool>(),
        ) {
            let path = DASK_PAGES.get(page_index).copied().unwrap_or(NODE_EXPORTER_PAGE);
            let mut chars: Vec<char> = fixture(path).chars().collect();
            for (position, operation, c) in edits {
                let at = position.index(chars.len() + 1);
                match operation {
                    0 => chars.insert(at, c),
                    1 if at < chars.len() => { chars.remove(at); }
                    _ if at < chars.len() => chars[at] = c,
                    _ => chars.push(c),
                }
            }
            let text: String = chars.into_iter().collect();
            let format = if openmetrics { Format::OpenMetrics } else { Format::Text004 };
            let page = parse(&text, format);
            // Every sample line either became a sample or a problem.
            let samples: usize = page.families.iter().map(|family| family.samples.len()).sum();
            prop_assert!(samples + page.problems.len() <= text.split('\n').count() + 1);
        }
    }
}
