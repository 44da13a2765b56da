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
#[path = "parse_tests.rs"]
mod tests;
