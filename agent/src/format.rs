//! Line formats: parses one log line's header (timestamp, logger, level) in the format a
//! `[[logs]]` table names, and reads Kubernetes CRI container-log lines.
//! A line that does not parse is not an error: it is a continuation or standalone output,
//! which `multiline` decides.
//!
//! Dask's default format keeps a hand-written parser (no regex): it is the common case and is
//! benchmarked. CRI lines are unwrapped (and partial lines joined) by the tailer with
//! [`CriJoiner`]; the joined content is then parsed as Dask's default format.

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::fmt::strtime::{self, BrokenDownTime};
use jiff::tz::{Offset, TimeZone};
use regex::Regex;
use serde::Deserialize;

/// A line format: how the timestamp, logger and level are laid out in front of the message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LineFormat {
    /// Dask's default `%(asctime)s - %(name)s - %(levelname)s - %(message)s`:
    /// `2026-11-27 13:56:53,599 - distributed.worker - INFO - message`, local time.
    #[default]
    Dask,
    /// A `logging.config.dictConfig` shape with an ISO 8601 time and the process id:
    /// `2026-11-27T14:05:34.263Z 21338 distributed.comm.core DEBUG message`. The time may end
    /// in `Z`, in an offset (`+02:00`, `+0200`, `+02`) or in nothing (then it is local time).
    DaskIso,
    /// Fields joined by `|`: `2026-11-27 14:05:33,321|DEBUG|distributed.comm.core|21339|message`
    /// (time, level, logger, process id, message). The time is read like `dask-iso`'s, with a
    /// space or `T` before the hours and `,` or `.` before the fraction.
    DaskPipe,
    /// A user regex with the named groups `message` (required) and `ts`, `level`, `logger`
    /// (each optional), and optionally a `ts_format`; see [`LineParser::new`].
    Regex,
    /// Kubernetes container-runtime (CRI) log lines, `<time> <stream> <P|F> <content>`, whose
    /// joined content is in Dask's default format.
    Cri,
    /// No header at all: every line is standalone output (or a continuation of the one
    /// before it), timestamped when read.
    Plain,
}

impl LineFormat {
    /// The name used in the configuration, e.g. `dask-iso`.
    pub fn name(self) -> &'static str {
        match self {
            LineFormat::Dask => "dask",
            LineFormat::DaskIso => "dask-iso",
            LineFormat::DaskPipe => "dask-pipe",
            LineFormat::Regex => "regex",
            LineFormat::Cri => "cri",
            LineFormat::Plain => "plain",
        }
    }
}

/// The header fields of a line that starts a record, borrowed from the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineHeader<'a> {
    /// The record's time, converted to UTC; `None` when the format has no timestamp for this
    /// line (a `regex` without a matching `ts` group): the record then takes the time the line
    /// was read.
    pub ts: Option<Timestamp>,
    /// Python logger name, e.g. `distributed.worker`; empty if the format has none.
    pub logger: &'a str,
    /// Level as written, e.g. `INFO`; empty if the format has none.
    pub level: &'a str,
    /// The rest of the line after the header.
    pub message: &'a str,
}

/// Reads line headers in one `[[logs]]` table's format; built once per table, cloned cheaply.
#[derive(Debug, Clone)]
pub struct LineParser {
    format: LineFormat,
    /// Set exactly when `format` is `Regex`.
    regex: Option<RegexHeaderParser>,
}

/// A compiled `format = "regex"`.
#[derive(Debug, Clone)]
struct RegexHeaderParser {
    regex: Regex,
    ts_group: Option<usize>,
    level_group: Option<usize>,
    logger_group: Option<usize>,
    message_group: usize,
    ts_format: Option<String>,
}

impl LineParser {
    /// Builds the parser for `format`. `regex` and `ts_format` are read only with
    /// `LineFormat::Regex`, which needs `regex`.
    ///
    /// The regex is searched for like [`Regex::captures`] (start it with `^` to anchor it at
    /// the line's start). Its named groups `ts`, `level`, `logger` and `message` become the
    /// header's fields; `message` is required and other group names are ignored. A `ts` is read
    /// with `ts_format`, a `jiff::fmt::strtime` format such as `%Y-%m-%d %H:%M:%S,%f`, or
    /// without one as RFC 3339 or Dask's `YYYY-MM-DD HH:MM:SS,mmm`. A line whose `ts` group
    /// matched text that does not parse as a time does not start a record.
    ///
    /// The error, one line, names the problem and the key to fix.
    pub fn new(
        format: LineFormat,
        regex: Option<&str>,
        ts_format: Option<&str>,
    ) -> Result<LineParser, String> {
        if format != LineFormat::Regex {
            let name = format.name();
            if regex.is_some() {
                return Err(format!(
                    "`regex` is only read with `format = \"regex\"`, not with `format = \"{name}\"`"
                ));
            }
            if ts_format.is_some() {
                return Err(format!(
                    "`ts_format` is only read with `format = \"regex\"`, not with `format = \"{name}\"`"
                ));
            }
            return Ok(LineParser {
                format,
                regex: None,
            });
        }
        let Some(pattern) = regex else {
            return Err(
                "`format = \"regex\"` needs a `regex` with a `(?P<message>…)` group".to_owned(),
            );
        };
        let regex = RegexHeaderParser::new(pattern, ts_format)?;
        Ok(LineParser {
            format,
            regex: Some(regex),
        })
    }

    /// Returns the header of `line` if it starts a record in this format. Timestamps written
    /// with an offset use it; timestamps without one are read in `timezone`.
    ///
    /// With `LineFormat::Cri`, `line` is a CRI line's (joined) content, read as Dask's default
    /// format.
    pub fn parse_header<'a>(&self, line: &'a str, timezone: &TimeZone) -> Option<LineHeader<'a>> {
        match self.format {
            LineFormat::Dask | LineFormat::Cri => parse_dask_header(line, timezone),
            LineFormat::DaskIso => parse_dask_iso_header(line, timezone),
            LineFormat::DaskPipe => parse_dask_pipe_header(line, timezone),
            LineFormat::Regex => self
                .regex
                .as_ref()
                .expect("a regex parser is built with its regex")
                .parse_header(line, timezone),
            LineFormat::Plain => None,
        }
    }
}

impl RegexHeaderParser {
    fn new(pattern: &str, ts_format: Option<&str>) -> Result<RegexHeaderParser, String> {
        let regex = Regex::new(pattern).map_err(|error| {
            // A syntax error's message draws the pattern with a caret under the problem and
            // ends with `error: …`; a configuration problem is one line, so only that is kept.
            let message = error.to_string();
            let last_line = message.lines().last().unwrap_or_default();
            let reason = last_line.strip_prefix("error: ").unwrap_or(last_line);
            format!("bad `regex` {pattern:?}: {reason}")
        })?;
        let group = |name: &str| {
            regex
                .capture_names()
                .position(|group_name| group_name == Some(name))
        };
        let Some(message_group) = group("message") else {
            return Err(format!(
                "`regex` {pattern:?} has no `message` group: name the message part `(?P<message>…)`"
            ));
        };
        let ts_group = group("ts");
        if let Some(ts_format) = ts_format {
            if ts_group.is_none() {
                return Err(format!(
                    "`ts_format` is set but `regex` {pattern:?} has no `ts` group to read with it"
                ));
            }
            check_ts_format(ts_format)?;
        }
        Ok(RegexHeaderParser {
            ts_group,
            level_group: group("level"),
            logger_group: group("logger"),
            message_group,
            ts_format: ts_format.map(str::to_owned),
            regex,
        })
    }

    fn parse_header<'a>(&self, line: &'a str, timezone: &TimeZone) -> Option<LineHeader<'a>> {
        let captures = self.regex.captures(line)?;
        let text_of = |group: Option<usize>| {
            group
                .and_then(|index| captures.get(index))
                .map(|found| found.as_str())
        };
        let ts = match text_of(self.ts_group) {
            Some(ts_text) => Some(self.parse_ts(ts_text, timezone)?),
            None => None,
        };
        Some(LineHeader {
            ts,
            logger: text_of(self.logger_group).unwrap_or(""),
            level: text_of(self.level_group).unwrap_or(""),
            message: text_of(Some(self.message_group)).unwrap_or(""),
        })
    }

    fn parse_ts(&self, text: &str, timezone: &TimeZone) -> Option<Timestamp> {
        match &self.ts_format {
            Some(ts_format) => {
                let broken_down = strtime::parse(ts_format, text).ok()?;
                broken_down_timestamp(&broken_down, timezone).ok()
            }
            None => parse_iso_timestamp(text)?.to_timestamp(timezone),
        }
    }
}

/// Checks a `ts_format` by writing a sample time with it and reading that back.
fn check_ts_format(ts_format: &str) -> Result<(), String> {
    let sample = jiff::civil::date(2026, 11, 27)
        .at(13, 56, 53, 599_000_000)
        .to_zoned_datetime(TimeZone::UTC)
        .expect("a fixed time in UTC exists");
    let bad = |error: jiff::Error| format!("bad `ts_format` {ts_format:?}: {error}");
    let written = strtime::format(ts_format, &sample).map_err(bad)?;
    let read = strtime::parse(ts_format, &written).map_err(bad)?;
    broken_down_timestamp(&read, &TimeZone::UTC).map_err(|error| {
        format!("bad `ts_format` {ts_format:?}: it does not give a point in time: {error}")
    })?;
    Ok(())
}

/// The instant of a time read with a `ts_format`: an epoch time (`%s`) as is, a time with an
/// offset (`%z`) or zone name (`%Q`) in it, otherwise local to `timezone`.
fn broken_down_timestamp(
    broken_down: &BrokenDownTime,
    timezone: &TimeZone,
) -> Result<Timestamp, jiff::Error> {
    if let Some(timestamp) = broken_down.timestamp() {
        return Ok(timestamp);
    }
    let datetime = broken_down.to_datetime()?;
    if let Some(offset) = broken_down.offset() {
        return offset.to_timestamp(datetime);
    }
    if let Some(zone_name) = broken_down.iana_time_zone() {
        return TimeZone::get(zone_name)?
            .to_ambiguous_timestamp(datetime)
            .compatible();
    }
    timezone.to_ambiguous_timestamp(datetime).compatible()
}

/// Length of `2026-11-27 13:56:53,599`.
const DASK_TIMESTAMP_LEN: usize = 23;
const DASK_SEPARATOR: &str = " - ";

fn parse_dask_header<'a>(line: &'a str, timezone: &TimeZone) -> Option<LineHeader<'a>> {
    let bytes = line.as_bytes();
    if bytes.len() < DASK_TIMESTAMP_LEN || !bytes[0].is_ascii_digit() {
        return None;
    }
    let civil = parse_dask_timestamp(&bytes[..DASK_TIMESTAMP_LEN])?;
    let rest = line[DASK_TIMESTAMP_LEN..].strip_prefix(DASK_SEPARATOR)?;
    let (logger, rest) = split_at_dask_separator(rest)?;
    let (level, message) = match split_at_dask_separator(rest) {
        Some((level, message)) => (level, message),
        // `logger.info("")` leaves `LEVEL - ` with the trailing space possibly stripped.
        None => (rest.strip_suffix(" -").unwrap_or(rest), ""),
    };
    if logger.is_empty() || !is_level_name(level) {
        return None;
    }
    let ts = timezone.to_ambiguous_timestamp(civil).compatible().ok()?;
    Some(LineHeader {
        ts: Some(ts),
        logger,
        level,
        message,
    })
}

/// `text.split_once(" - ")`, without building a substring searcher per call (a hot path).
fn split_at_dask_separator(text: &str) -> Option<(&str, &str)> {
    let bytes = text.as_bytes();
    let mut from = 1;
    while let Some(found) = bytes.get(from..)?.iter().position(|&byte| byte == b'-') {
        let dash = from + found;
        if bytes[dash - 1] == b' ' && bytes.get(dash + 1) == Some(&b' ') {
            return Some((&text[..dash - 1], &text[dash + 2..]));
        }
        from = dash + 1;
    }
    None
}

/// Parses `YYYY-MM-DD HH:MM:SS,mmm` (a `.` before the milliseconds is accepted too).
fn parse_dask_timestamp(bytes: &[u8]) -> Option<DateTime> {
    let number = |range: std::ops::Range<usize>| parse_digits(&bytes[range]);
    let separators_ok = bytes[4] == b'-'
        && bytes[7] == b'-'
        && (bytes[10] == b' ' || bytes[10] == b'T')
        && bytes[13] == b':'
        && bytes[16] == b':'
        && (bytes[19] == b',' || bytes[19] == b'.');
    if !separators_ok {
        return None;
    }
    let year = i16::try_from(number(0..4)?).ok()?;
    let month = i8::try_from(number(5..7)?).ok()?;
    let day = i8::try_from(number(8..10)?).ok()?;
    let hour = i8::try_from(number(11..13)?).ok()?;
    let minute = i8::try_from(number(14..16)?).ok()?;
    let second = i8::try_from(number(17..19)?).ok()?;
    let millis = number(20..23)?;
    DateTime::new(year, month, day, hour, minute, second, millis * 1_000_000).ok()
}

/// The decimal value of `bytes`, if they are all ASCII digits (at most 9 of them).
fn parse_digits(bytes: &[u8]) -> Option<i32> {
    if bytes.is_empty() || bytes.len() > 9 {
        return None;
    }
    bytes.iter().try_fold(0i32, |acc, &byte| {
        byte.is_ascii_digit()
            .then(|| acc * 10 + i32::from(byte - b'0'))
    })
}

/// Python's level names are upper-case words (`INFO`, `WARNING`, custom `TRACE`, `Level 5`).
fn is_level_name(level: &str) -> bool {
    !level.is_empty()
        && level.len() <= 16
        && level
            .bytes()
            .all(|byte| byte.is_ascii_uppercase() || byte.is_ascii_digit() || byte == b' ')
}

fn is_process_id(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit())
}

/// A time as written: civil date and time, and the offset if one was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct WrittenTime {
    datetime: DateTime,
    offset: Option<Offset>,
}

impl WrittenTime {
    /// The instant: with the written offset, or local to `timezone` without one.
    fn to_timestamp(self, timezone: &TimeZone) -> Option<Timestamp> {
        match self.offset {
            Some(offset) => offset.to_timestamp(self.datetime).ok(),
            None => timezone
                .to_ambiguous_timestamp(self.datetime)
                .compatible()
                .ok(),
        }
    }
}

/// Parses all of `text` as `YYYY-MM-DD?HH:MM:SS[.fraction][offset]`: `?` is `T`, `t` or a
/// space; the fraction (1 to 9 digits) follows `.` or `,`; the offset is `Z`, `z`, `±HH`,
/// `±HHMM` or `±HH:MM`. This reads RFC 3339 and Dask's `YYYY-MM-DD HH:MM:SS,mmm`.
fn parse_iso_timestamp(text: &str) -> Option<WrittenTime> {
    let bytes = text.as_bytes();
    if bytes.len() < 19 {
        return None;
    }
    let separators_ok = bytes[4] == b'-'
        && bytes[7] == b'-'
        && matches!(bytes[10], b'T' | b't' | b' ')
        && bytes[13] == b':'
        && bytes[16] == b':';
    if !separators_ok {
        return None;
    }
    let number = |range: std::ops::Range<usize>| parse_digits(&bytes[range]);
    let year = i16::try_from(number(0..4)?).ok()?;
    let month = i8::try_from(number(5..7)?).ok()?;
    let day = i8::try_from(number(8..10)?).ok()?;
    let hour = i8::try_from(number(11..13)?).ok()?;
    let minute = i8::try_from(number(14..16)?).ok()?;
    let second = i8::try_from(number(17..19)?).ok()?;
    let mut rest = &bytes[19..];
    let mut nanosecond = 0;
    if let [b'.' | b',', after_point @ ..] = rest {
        let digit_count = after_point
            .iter()
            .take_while(|byte| byte.is_ascii_digit())
            .count();
        let fraction = parse_digits(&after_point[..digit_count])?;
        let scale = 10i32.pow(u32::try_from(9 - digit_count).ok()?);
        nanosecond = fraction * scale;
        rest = &after_point[digit_count..];
    }
    let offset = parse_offset(rest)?;
    let datetime = DateTime::new(year, month, day, hour, minute, second, nanosecond).ok()?;
    Some(WrittenTime { datetime, offset })
}

/// Parses all of `bytes` as an offset: `Some(None)` for none, `Some(Some(_))` for `Z`, `z`,
/// `±HH`, `±HHMM` or `±HH:MM`, `None` for anything else.
fn parse_offset(bytes: &[u8]) -> Option<Option<Offset>> {
    let (sign, digits) = match bytes {
        [] => return Some(None),
        [b'Z' | b'z'] => return Some(Some(Offset::UTC)),
        [b'+', digits @ ..] => (1, digits),
        [b'-', digits @ ..] => (-1, digits),
        _ => return None,
    };
    let (hours, minutes) = match digits.len() {
        2 => (parse_digits(digits)?, 0),
        4 => (parse_digits(&digits[..2])?, parse_digits(&digits[2..])?),
        5 if digits[2] == b':' => (parse_digits(&digits[..2])?, parse_digits(&digits[3..])?),
        _ => return None,
    };
    if hours > 23 || minutes > 59 {
        return None;
    }
    Offset::from_seconds(sign * (hours * 3600 + minutes * 60))
        .ok()
        .map(Some)
}

/// `2026-11-27T14:05:34.263Z 21338 distributed.comm.core DEBUG message`: the time, process id,
/// logger and level are separated by spaces; the message starts after the one space that
/// follows the level, so its own leading spaces are kept.
fn parse_dask_iso_header<'a>(line: &'a str, timezone: &TimeZone) -> Option<LineHeader<'a>> {
    if !line.as_bytes().first()?.is_ascii_digit() {
        return None;
    }
    let (ts_text, rest) = line.split_once(' ')?;
    let (process_id, rest) = rest.trim_start_matches(' ').split_once(' ')?;
    let (logger, rest) = rest.trim_start_matches(' ').split_once(' ')?;
    let rest = rest.trim_start_matches(' ');
    let (level, message) = rest.split_once(' ').unwrap_or((rest, ""));
    header_with_process_id(ts_text, process_id, logger, level, message, timezone)
}

/// `2026-11-27 14:05:33,321|DEBUG|distributed.comm.core|21339|message`.
fn parse_dask_pipe_header<'a>(line: &'a str, timezone: &TimeZone) -> Option<LineHeader<'a>> {
    if !line.as_bytes().first()?.is_ascii_digit() {
        return None;
    }
    let mut fields = line.splitn(5, '|');
    let ts_text = fields.next()?;
    let level = fields.next()?;
    let logger = fields.next()?;
    let process_id = fields.next()?;
    let message = fields.next()?;
    header_with_process_id(ts_text, process_id, logger, level, message, timezone)
}

/// The header of a preset that writes a process id: checks every field, reads the time.
fn header_with_process_id<'a>(
    ts_text: &str,
    process_id: &str,
    logger: &'a str,
    level: &'a str,
    message: &'a str,
    timezone: &TimeZone,
) -> Option<LineHeader<'a>> {
    if !is_process_id(process_id) || logger.is_empty() || !is_level_name(level) {
        return None;
    }
    let ts = parse_iso_timestamp(ts_text)?.to_timestamp(timezone)?;
    Some(LineHeader {
        ts: Some(ts),
        logger,
        level,
        message,
    })
}

/// The stream a container wrote a CRI line to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CriStream {
    Stdout,
    Stderr,
}

/// One line of a CRI container log file: `<time> <stream> <tag> <content>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CriLine<'a> {
    /// When the runtime read the content (RFC 3339 with nanoseconds and an offset).
    pub ts: Timestamp,
    /// The stream the content came from.
    pub stream: CriStream,
    /// Tag `P`: the content is part of a longer line that continues in the stream's next CRI
    /// line. Tag `F`: the content ends a line.
    pub partial: bool,
    /// The content, without the line ending.
    pub content: &'a str,
}

/// Why a line is not a CRI log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CriError {
    #[error("malformed cri line: no RFC 3339 time with an offset at its start")]
    Timestamp,
    #[error("malformed cri line: the stream is neither `stdout` nor `stderr`")]
    Stream,
    #[error("malformed cri line: the tag is neither `P` nor `F`")]
    Tag,
}

/// Parses a CRI log line, e.g.
/// `2026-11-27T14:05:34.263012345Z stderr F 2026-11-27 14:05:34,263 - distributed.worker - INFO - msg`;
/// `None` if it is not one.
pub fn parse_cri_line(line: &str) -> Option<CriLine<'_>> {
    read_cri_line(line).ok()
}

fn read_cri_line(line: &str) -> Result<CriLine<'_>, CriError> {
    let (ts_text, rest) = line.split_once(' ').ok_or(CriError::Timestamp)?;
    let written = parse_iso_timestamp(ts_text).ok_or(CriError::Timestamp)?;
    // A CRI time always has an offset: the runtime writes RFC 3339.
    let offset = written.offset.ok_or(CriError::Timestamp)?;
    let ts = offset
        .to_timestamp(written.datetime)
        .map_err(|_| CriError::Timestamp)?;
    let (stream, rest) = rest.split_once(' ').ok_or(CriError::Stream)?;
    let stream = match stream {
        "stdout" => CriStream::Stdout,
        "stderr" => CriStream::Stderr,
        _ => return Err(CriError::Stream),
    };
    // An empty line may be written without the space before its (empty) content.
    let (tags, content) = rest.split_once(' ').unwrap_or((rest, ""));
    // Tags are `:`-separated; the first one tells partial from full.
    let partial = match tags.split(':').next() {
        Some("P") => true,
        Some("F") => false,
        _ => return Err(CriError::Tag),
    };
    Ok(CriLine {
        ts,
        stream,
        partial,
        content,
    })
}

/// A whole line of container output, joined from one or more CRI lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CriJoined {
    /// The time of the line's first part.
    pub ts: Timestamp,
    /// The stream the line came from.
    pub stream: CriStream,
    /// The joined content.
    pub content: String,
    /// Parts past the joiner's size limit were dropped.
    pub truncated: bool,
}

/// Joins partial (`P`) CRI lines with the full (`F`) line that ends them, per stream: stdout
/// and stderr parts may interleave in one file.
#[derive(Debug)]
pub struct CriJoiner {
    max_content_bytes: usize,
    stdout: Option<CriJoined>,
    stderr: Option<CriJoined>,
}

impl CriJoiner {
    /// Creates a joiner whose joined lines keep at most `max_content_bytes` of content.
    pub fn new(max_content_bytes: usize) -> Self {
        CriJoiner {
            max_content_bytes,
            stdout: None,
            stderr: None,
        }
    }

    /// Takes the next CRI line of a file. Returns the joined line that an `F` line completes,
    /// `Ok(None)` after a `P` line, and an error (leaving the joiner as it was) for a line that
    /// is not CRI.
    pub fn push(&mut self, line: &str) -> Result<Option<CriJoined>, CriError> {
        let cri = read_cri_line(line)?;
        let max_content_bytes = self.max_content_bytes;
        let pending = match cri.stream {
            CriStream::Stdout => &mut self.stdout,
            CriStream::Stderr => &mut self.stderr,
        };
        let joined = pending.get_or_insert_with(|| CriJoined {
            ts: cri.ts,
            stream: cri.stream,
            content: String::new(),
            truncated: false,
        });
        let room = max_content_bytes.saturating_sub(joined.content.len());
        if cri.content.len() <= room {
            joined.content.push_str(cri.content);
        } else {
            joined
                .content
                .push_str(&cri.content[..floor_char_boundary(cri.content, room)]);
            joined.truncated = true;
        }
        if cri.partial {
            return Ok(None);
        }
        Ok(pending.take())
    }

    /// Returns the lines still waiting for their `F` part, oldest first, and forgets them
    /// (when the file ends for good).
    pub fn flush(&mut self) -> Vec<CriJoined> {
        let mut pending: Vec<CriJoined> = self
            .stdout
            .take()
            .into_iter()
            .chain(self.stderr.take())
            .collect();
        pending.sort_by_key(|joined| joined.ts);
        pending
    }

    /// Tells whether a partial line waits for its `F` part.
    pub fn has_pending(&self) -> bool {
        self.stdout.is_some() || self.stderr.is_some()
    }
}

/// The largest index at most `index` that is on a char boundary of `text`.
fn floor_char_boundary(text: &str, index: usize) -> usize {
    (0..=index.min(text.len()))
        .rev()
        .find(|&candidate| text.is_char_boundary(candidate))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn preset(format: LineFormat) -> LineParser {
        LineParser::new(format, None, None).expect("a preset needs no regex")
    }

    fn regex_parser(regex: &str, ts_format: Option<&str>) -> LineParser {
        LineParser::new(LineFormat::Regex, Some(regex), ts_format).expect("a valid regex format")
    }

    fn ts_string(header: &LineHeader<'_>) -> String {
        header.ts.expect("a timestamp").to_string()
    }

    #[test]
    fn parses_dask_default_line() {
        let line = "2026-11-27 13:56:53,599 - distributed.scheduler - INFO - Register worker addr: tcp://127.0.0.1:42737 name: worker-1";
        let header = preset(LineFormat::Dask)
            .parse_header(line, &TimeZone::UTC)
            .expect("a dask line");
        assert_eq!(ts_string(&header), "2026-11-27T13:56:53.599Z");
        assert_eq!(header.logger, "distributed.scheduler");
        assert_eq!(header.level, "INFO");
        assert_eq!(
            header.message,
            "Register worker addr: tcp://127.0.0.1:42737 name: worker-1"
        );
    }

    #[test]
    fn converts_local_time_with_the_configured_zone() {
        let zone = TimeZone::fixed(jiff::tz::offset(2));
        let header = preset(LineFormat::Dask)
            .parse_header(
                "2026-11-27 13:56:53,599 - distributed.worker - ERROR - boom",
                &zone,
            )
            .expect("a dask line");
        assert_eq!(ts_string(&header), "2026-11-27T11:56:53.599Z");
    }

    #[test]
    fn keeps_separators_inside_the_message() {
        let header = preset(LineFormat::Dask)
            .parse_header(
                "2026-11-27 13:56:53,568 - distributed.worker - INFO - -------------------------------------------------",
                &TimeZone::UTC,
            )
            .expect("a dask line");
        assert_eq!(
            header.message,
            "-------------------------------------------------"
        );
    }

    #[test]
    fn accepts_an_empty_message() {
        let header = preset(LineFormat::Dask)
            .parse_header(
                "2026-11-27 13:56:53,568 - distributed.worker - INFO -",
                &TimeZone::UTC,
            )
            .expect("a dask line");
        assert_eq!((header.level, header.message), ("INFO", ""));
    }

    #[test]
    fn rejects_lines_that_only_look_similar() {
        for line in [
            "user print() from task 0",
            "2026-11-27 13:56:53 - distributed.worker - INFO - no millis",
            "2026-13-27 13:56:53,599 - distributed.worker - INFO - bad month",
            "2026-11-27 13:56:53,599 - distributed.worker - info - lower-case level",
            "2026-11-27 13:56:53,599 distributed.worker INFO no separators",
            "2026-11-27 13:56:53,5",
            "<dynamic-code>:17: DeprecationWarning: deprecated thing used in task 0",
        ] {
            assert_eq!(
                preset(LineFormat::Dask).parse_header(line, &TimeZone::UTC),
                None,
                "{line}"
            );
        }
    }

    #[test]
    fn format_names_are_the_kebab_case_config_values() {
        #[derive(Deserialize)]
        struct Table {
            format: LineFormat,
        }
        for format in [
            LineFormat::Dask,
            LineFormat::DaskIso,
            LineFormat::DaskPipe,
            LineFormat::Regex,
            LineFormat::Cri,
            LineFormat::Plain,
        ] {
            let text = format!("format = {:?}", format.name());
            let table: Table = toml::from_str(&text).expect("a known format");
            assert_eq!(table.format, format, "{text}");
        }
        assert!(toml::from_str::<Table>("format = \"dask_iso\"").is_err());
        assert_eq!(LineFormat::default(), LineFormat::Dask);
    }

    #[test]
    fn plain_never_has_a_header() {
        let line = "2026-11-27 13:56:53,599 - distributed.worker - INFO - hello";
        assert_eq!(
            preset(LineFormat::Plain).parse_header(line, &TimeZone::UTC),
            None
        );
    }

    #[test]
    fn cri_content_is_read_as_the_dask_default_format() {
        let parser = preset(LineFormat::Cri);
        let cri = parse_cri_line(
            "2026-11-27T14:05:34.263012345Z stderr F 2026-11-27 14:05:34,263 - distributed.worker - INFO - msg",
        )
        .expect("a CRI line");
        let header = parser
            .parse_header(cri.content, &TimeZone::UTC)
            .expect("dask content");
        assert_eq!(ts_string(&header), "2026-11-27T14:05:34.263Z");
        assert_eq!(
            (header.logger, header.level, header.message),
            ("distributed.worker", "INFO", "msg")
        );
        assert_eq!(parser.parse_header("plain output", &TimeZone::UTC), None);
    }

    const DICTCONFIG_LOG: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/dask/logs/worker-4-dictconfig.stderr.log"
    ));

    #[test]
    fn dask_iso_parses_every_timestamped_line_of_the_dictconfig_fixture() {
        let parser = preset(LineFormat::DaskIso);
        let mut parsed = 0;
        for line in DICTCONFIG_LOG
            .lines()
            .filter(|line| line.starts_with("2026-"))
        {
            // The expected fields, found by splitting on spaces and parsing with jiff.
            let fields: Vec<&str> = line.splitn(5, ' ').collect();
            let expected_ts: Timestamp = fields[0].parse().expect("an RFC 3339 time");
            let header = parser
                .parse_header(line, &TimeZone::fixed(jiff::tz::offset(5)))
                .unwrap_or_else(|| panic!("not parsed: {line}"));
            assert_eq!(header.ts, Some(expected_ts), "{line}");
            assert_eq!(header.logger, fields[2], "{line}");
            assert_eq!(header.level, fields[3], "{line}");
            assert!(line.ends_with(header.message), "{line}");
            parsed += 1;
        }
        assert_eq!(parsed, 330);
    }

    #[test]
    fn dask_iso_keeps_the_message_indentation() {
        let header = preset(LineFormat::DaskIso)
            .parse_header(
                "2026-11-27T14:05:34.279Z 21338 distributed.nanny INFO         Start Nanny at: 'tcp://127.0.0.1:44613'",
                &TimeZone::UTC,
            )
            .expect("a dask-iso line");
        assert_eq!(
            header.message,
            "        Start Nanny at: 'tcp://127.0.0.1:44613'"
        );
    }

    #[test]
    fn dask_iso_reads_offsets_and_falls_back_to_the_configured_zone() {
        let parser = preset(LineFormat::DaskIso);
        let zone = TimeZone::fixed(jiff::tz::offset(-3));
        for (time, expected) in [
            ("2026-11-27T14:05:34.263Z", "2026-11-27T14:05:34.263Z"),
            ("2026-11-27T14:05:34.263+02:00", "2026-11-27T12:05:34.263Z"),
            ("2026-11-27T14:05:34.263+0200", "2026-11-27T12:05:34.263Z"),
            ("2026-11-27T14:05:34,263-01", "2026-11-27T15:05:34.263Z"),
            ("2026-11-27T14:05:34", "2026-11-27T17:05:34Z"),
            (
                "2026-11-27T14:05:34.123456789",
                "2026-11-27T17:05:34.123456789Z",
            ),
        ] {
            let line = format!("{time} 21338 distributed.worker INFO hello");
            let header = parser
                .parse_header(&line, &zone)
                .unwrap_or_else(|| panic!("not parsed: {line}"));
            assert_eq!(ts_string(&header), expected, "{line}");
            assert_eq!(header.message, "hello");
        }
        let header = parser
            .parse_header("2026-11-27T14:05:34Z 1 distributed.worker INFO", &zone)
            .expect("a line with an empty message");
        assert_eq!((header.level, header.message), ("INFO", ""));
    }

    #[test]
    fn dask_iso_rejects_lines_that_only_look_similar() {
        let parser = preset(LineFormat::DaskIso);
        for line in [
            "WARNING:bokeh.server.util:Host wildcard '*' will allow connections originating from multiple (or possibly all) hostnames or IPs. Use non-wildcard values to restrict access explicitly",
            "... [truncated: full 9604 lines] ...",
            "Traceback (most recent call last):",
            "2026-11-27 14:05:34.263 21338 distributed.worker INFO space before the hours",
            "2026-11-27T14:05:34.263Z distributed.worker INFO no process id",
            "2026-11-27T14:05:34.263Z 21338 distributed.worker info lower-case level",
            "2026-11-27T14:05:34.263Z 21338 distributed.worker",
            "2026-11-27T14:05:34.263+25:00 21338 distributed.worker INFO bad offset",
            "2026-11-27T14:05:34.2630000000Z 21338 distributed.worker INFO ten fraction digits",
            "2026-11-27T14:05:34.Z 21338 distributed.worker INFO no fraction digits",
            "2026-11-27 14:05:34,263 - distributed.worker - INFO - the dask format",
        ] {
            assert_eq!(parser.parse_header(line, &TimeZone::UTC), None, "{line}");
        }
    }

    #[test]
    fn dask_pipe_parses_its_sample_line() {
        let parser = preset(LineFormat::DaskPipe);
        let header = parser
            .parse_header(
                "2026-11-27 14:05:33,321|DEBUG|distributed.comm.core|21339|Connection to tcp://127.0.0.1:8786 | established",
                &TimeZone::fixed(jiff::tz::offset(1)),
            )
            .expect("a dask-pipe line");
        assert_eq!(ts_string(&header), "2026-11-27T13:05:33.321Z");
        assert_eq!(header.level, "DEBUG");
        assert_eq!(header.logger, "distributed.comm.core");
        assert_eq!(
            header.message,
            "Connection to tcp://127.0.0.1:8786 | established"
        );
        let with_offset = parser
            .parse_header(
                "2026-11-27T14:05:33.321+01:00|INFO|distributed.worker|7|",
                &TimeZone::UTC,
            )
            .expect("a dask-pipe line with an offset and no message");
        assert_eq!(ts_string(&with_offset), "2026-11-27T13:05:33.321Z");
        assert_eq!(with_offset.message, "");
        for line in [
            "2026-11-27 14:05:33,321|DEBUG|distributed.comm.core|21339",
            "2026-11-27 14:05:33,321|debug|distributed.comm.core|21339|msg",
            "2026-11-27 14:05:33,321|DEBUG||21339|msg",
            "2026-11-27 14:05:33,321|DEBUG|distributed.comm.core|pid|msg",
            "2026-11-27 14:05:33,3210000000|DEBUG|distributed.comm.core|21339|",
            "2026-11-27 14:05:33,321 - distributed.worker - INFO - msg",
            "user print | with pipes | in it | 1 | x",
        ] {
            assert_eq!(parser.parse_header(line, &TimeZone::UTC), None, "{line}");
        }
    }

    #[test]
    fn dask_pipe_timestamps_take_seconds_without_a_fraction() {
        let header = preset(LineFormat::DaskPipe)
            .parse_header(
                "2026-11-27 14:05:33|DEBUG|distributed.comm.core|21339|msg",
                &TimeZone::UTC,
            )
            .expect("whole seconds are a time");
        assert_eq!(ts_string(&header), "2026-11-27T14:05:33Z");
    }

    #[test]
    fn regex_without_ts_format_reads_rfc_3339_and_the_dask_form() {
        let parser = regex_parser(
            r"^\[(?P<ts>[^\]]+)\] (?P<level>[A-Z]+) (?P<logger>\S+): (?P<message>.*)$",
            None,
        );
        let zone = TimeZone::fixed(jiff::tz::offset(2));
        for (line, expected) in [
            (
                "[2026-11-27T14:05:34.263Z] INFO distributed.worker: hello",
                "2026-11-27T14:05:34.263Z",
            ),
            (
                "[2026-11-27T14:05:34.263-05:00] INFO distributed.worker: hello",
                "2026-11-27T19:05:34.263Z",
            ),
            (
                "[2026-11-27 14:05:34,263] INFO distributed.worker: hello",
                "2026-11-27T12:05:34.263Z",
            ),
        ] {
            let header = parser
                .parse_header(line, &zone)
                .unwrap_or_else(|| panic!("not parsed: {line}"));
            assert_eq!(ts_string(&header), expected, "{line}");
            assert_eq!(
                (header.level, header.logger, header.message),
                ("INFO", "distributed.worker", "hello")
            );
        }
        assert_eq!(
            parser.parse_header("[yesterday] INFO distributed.worker: hello", &zone),
            None
        );
        assert_eq!(parser.parse_header("no brackets", &zone), None);
    }

    #[test]
    fn regex_with_ts_format_reads_local_times_and_offsets() {
        let local = regex_parser(
            r"^(?P<ts>\S+ \S+) (?P<message>.*)",
            Some("%Y-%m-%d %H:%M:%S,%f"),
        );
        let zone = TimeZone::fixed(jiff::tz::offset(-1));
        let header = local
            .parse_header("2026-11-27 13:56:53,599 boom", &zone)
            .expect("a regex line");
        assert_eq!(ts_string(&header), "2026-11-27T14:56:53.599Z");
        assert_eq!(
            (header.level, header.logger, header.message),
            ("", "", "boom")
        );
        assert_eq!(
            local.parse_header("2026-11-27 13:56:53.599 dot", &zone),
            None
        );

        let with_offset = regex_parser(
            r"^(?P<ts>\d+/\w+/\d+:\S+ [+-]\d{4}) (?P<message>.*)",
            Some("%d/%b/%Y:%H:%M:%S %z"),
        );
        let header = with_offset
            .parse_header("27/Nov/2026:13:56:53 +0530 GET /status", &zone)
            .expect("a regex line with an offset");
        assert_eq!(ts_string(&header), "2026-11-27T08:26:53Z");
        assert_eq!(header.message, "GET /status");

        let epoch = regex_parser(r"^(?P<ts>\d+) (?P<message>.*)", Some("%s"));
        let header = epoch
            .parse_header("1795787813 epoch seconds", &zone)
            .expect("an epoch line");
        assert_eq!(ts_string(&header), "2026-11-27T13:56:53Z");
    }

    #[test]
    fn regex_without_a_ts_group_leaves_the_time_to_the_reader() {
        let parser = regex_parser(
            r"^(?P<level>[A-Z]+):(?P<logger>[^:]+):(?P<message>.*)",
            None,
        );
        let header = parser
            .parse_header(
                "WARNING:bokeh.server.util:Host wildcard '*' will allow connections",
                &TimeZone::UTC,
            )
            .expect("a regex line");
        assert_eq!(header.ts, None);
        assert_eq!(header.level, "WARNING");
        assert_eq!(header.logger, "bokeh.server.util");
        assert_eq!(header.message, "Host wildcard '*' will allow connections");

        let optional_ts = regex_parser(r"^(?:(?P<ts>\S+Z) )?(?P<message>.+)", None);
        let without = optional_ts
            .parse_header("just text", &TimeZone::UTC)
            .expect("the ts group is optional");
        assert_eq!((without.ts, without.message), (None, "just text"));
        let with = optional_ts
            .parse_header("2026-11-27T14:05:34Z text", &TimeZone::UTC)
            .expect("a line with a time");
        assert_eq!(ts_string(&with), "2026-11-27T14:05:34Z");
    }

    #[test]
    fn regex_is_searched_unanchored_unless_it_says_so() {
        let unanchored = regex_parser(r"level=(?P<level>\w+) msg=(?P<message>.*)", None);
        let header = unanchored
            .parse_header("pid=7 level=INFO msg=hello", &TimeZone::UTC)
            .expect("found inside the line");
        assert_eq!((header.level, header.message), ("INFO", "hello"));
        let anchored = regex_parser(r"^level=(?P<level>\w+) msg=(?P<message>.*)", None);
        assert_eq!(
            anchored.parse_header("pid=7 level=INFO msg=hello", &TimeZone::UTC),
            None
        );
    }

    #[test]
    fn line_parser_new_names_each_problem() {
        let error = |format, regex, ts_format| {
            LineParser::new(format, regex, ts_format).expect_err("a broken configuration")
        };
        let bad_regex = error(LineFormat::Regex, Some("(?P<message>.*"), None);
        assert_eq!(bad_regex, "bad `regex` \"(?P<message>.*\": unclosed group");

        let no_message = error(LineFormat::Regex, Some(r"^(?P<ts>\S+) (?P<msg>.*)"), None);
        assert!(
            no_message.contains("has no `message` group"),
            "{no_message}"
        );

        assert_eq!(
            error(LineFormat::DaskIso, Some("(?P<message>.*)"), None),
            "`regex` is only read with `format = \"regex\"`, not with `format = \"dask-iso\"`"
        );
        assert_eq!(
            error(LineFormat::Dask, None, Some("%s")),
            "`ts_format` is only read with `format = \"regex\"`, not with `format = \"dask\"`"
        );
        assert_eq!(
            error(LineFormat::Regex, None, None),
            "`format = \"regex\"` needs a `regex` with a `(?P<message>…)` group"
        );

        let with_ts = Some(r"^(?P<ts>\S+) (?P<message>.*)");
        let unknown_directive = error(LineFormat::Regex, with_ts, Some("%Y-%m-%d %J"));
        assert!(
            unknown_directive.starts_with("bad `ts_format` \"%Y-%m-%d %J\": "),
            "{unknown_directive}"
        );
        let no_date = error(LineFormat::Regex, with_ts, Some("%H:%M:%S"));
        assert!(
            no_date.starts_with("bad `ts_format` \"%H:%M:%S\": it does not give a point in time"),
            "{no_date}"
        );
        let no_ts_group = error(LineFormat::Regex, Some("(?P<message>.*)"), Some("%s"));
        assert!(no_ts_group.contains("has no `ts` group"), "{no_ts_group}");
    }

    #[test]
    fn parses_full_and_partial_cri_lines_of_both_streams() {
        let full = parse_cri_line(
            "2026-11-27T14:05:34.263012345Z stderr F 2026-11-27 14:05:34,263 - distributed.worker - INFO - msg",
        )
        .expect("a full CRI line");
        assert_eq!(full.ts.to_string(), "2026-11-27T14:05:34.263012345Z");
        assert_eq!(full.stream, CriStream::Stderr);
        assert!(!full.partial);
        assert_eq!(
            full.content,
            "2026-11-27 14:05:34,263 - distributed.worker - INFO - msg"
        );

        let partial = parse_cri_line("2026-11-27T15:05:34.5+01:00 stdout P   indented part ")
            .expect("a partial CRI line");
        assert_eq!(partial.ts.to_string(), "2026-11-27T14:05:34.5Z");
        assert_eq!(partial.stream, CriStream::Stdout);
        assert!(partial.partial);
        assert_eq!(partial.content, "  indented part ");

        let empty = parse_cri_line("2026-11-27T14:05:34Z stdout F").expect("an empty line");
        assert_eq!(empty.content, "");
        let extra_tags =
            parse_cri_line("2026-11-27T14:05:34Z stdout F:x text").expect("extra tags");
        assert_eq!((extra_tags.partial, extra_tags.content), (false, "text"));
    }

    #[test]
    fn rejects_malformed_cri_lines() {
        for (line, error) in [
            ("", CriError::Timestamp),
            ("plain output", CriError::Timestamp),
            (
                "2026-11-27 14:05:34,263 - distributed.worker - INFO - msg",
                CriError::Timestamp,
            ),
            (
                "2026-11-27T14:05:34.263012345 stdout F no offset",
                CriError::Timestamp,
            ),
            ("2026-11-27T14:05:34Z stdin F text", CriError::Stream),
            ("2026-11-27T14:05:34Z stdout", CriError::Stream),
            ("2026-11-27T14:05:34Z stdout X text", CriError::Tag),
            ("2026-11-27T14:05:34Z stdout  text", CriError::Tag),
        ] {
            assert_eq!(read_cri_line(line), Err(error), "{line:?}");
            assert_eq!(parse_cri_line(line), None, "{line:?}");
        }
    }

    #[test]
    fn cri_joiner_joins_partial_lines_with_the_full_one() {
        let mut joiner = CriJoiner::new(1 << 20);
        assert_eq!(
            joiner.push("2026-11-27T14:05:34.000000001Z stdout P 2026-11-27 14:05:34,263 - distributed.worker - INFO - a "),
            Ok(None)
        );
        assert_eq!(
            joiner.push("2026-11-27T14:05:34.000000002Z stdout P long "),
            Ok(None)
        );
        assert!(joiner.has_pending());
        let joined = joiner
            .push("2026-11-27T14:05:34.000000003Z stdout F line")
            .expect("a CRI line")
            .expect("the F part completes the line");
        assert_eq!(
            joined,
            CriJoined {
                ts: "2026-11-27T14:05:34.000000001Z".parse().expect("a time"),
                stream: CriStream::Stdout,
                content: "2026-11-27 14:05:34,263 - distributed.worker - INFO - a long line"
                    .to_owned(),
                truncated: false,
            }
        );
        assert!(!joiner.has_pending());
        let header = preset(LineFormat::Cri)
            .parse_header(&joined.content, &TimeZone::UTC)
            .expect("the joined content has a dask header");
        assert_eq!(header.message, "a long line");
    }

    #[test]
    fn cri_joiner_passes_a_lone_full_line_through() {
        let mut joiner = CriJoiner::new(1 << 20);
        let joined = joiner
            .push("2026-11-27T14:05:34.263012345Z stderr F print output")
            .expect("a CRI line")
            .expect("a full line");
        assert_eq!(joined.stream, CriStream::Stderr);
        assert_eq!(joined.content, "print output");
        assert_eq!(joined.ts.to_string(), "2026-11-27T14:05:34.263012345Z");
        assert!(!joined.truncated);
    }

    #[test]
    fn cri_joiner_keeps_streams_apart_and_reports_malformed_lines() {
        let mut joiner = CriJoiner::new(1 << 20);
        assert_eq!(joiner.push("2026-11-27T14:05:34Z stdout P out-"), Ok(None));
        let err = joiner
            .push("2026-11-27T14:05:35Z stderr F err")
            .expect("a CRI line")
            .expect("a full stderr line");
        assert_eq!(
            (err.stream, err.content.as_str()),
            (CriStream::Stderr, "err")
        );
        assert_eq!(
            joiner.push("not a CRI line"),
            Err(CriError::Timestamp),
            "malformed lines are errors the caller can count"
        );
        let out = joiner
            .push("2026-11-27T14:05:36Z stdout F put")
            .expect("a CRI line")
            .expect("the stdout line completes");
        assert_eq!(out.content, "out-put");
        assert_eq!(out.ts.to_string(), "2026-11-27T14:05:34Z");
    }

    #[test]
    fn cri_joiner_cuts_oversized_lines_and_flushes_unfinished_ones() {
        let mut joiner = CriJoiner::new(8);
        assert_eq!(joiner.push("2026-11-27T14:05:34Z stdout P 12345"), Ok(None));
        assert_eq!(joiner.push("2026-11-27T14:05:34Z stdout P 678é0"), Ok(None));
        let joined = joiner
            .push("2026-11-27T14:05:35Z stdout F more")
            .expect("a CRI line")
            .expect("a full line");
        // `é` is two bytes and would end past the limit: it is cut whole.
        assert_eq!(joined.content, "12345678");
        assert!(joined.truncated);

        assert_eq!(joiner.push("2026-11-27T14:05:37Z stderr P late"), Ok(None));
        assert_eq!(joiner.push("2026-11-27T14:05:36Z stdout P early"), Ok(None));
        let pending: Vec<String> = joiner
            .flush()
            .into_iter()
            .map(|joined| joined.content)
            .collect();
        assert_eq!(pending, ["early", "late"]);
        assert!(!joiner.has_pending());
    }

    #[test]
    fn dictconfig_fixture_traceback_joins_its_dask_iso_record() {
        let records = assemble_dictconfig_fixture();
        let chained: Vec<_> = records
            .iter()
            .filter(|record| record.message.contains("StreamClosedError"))
            .collect();
        assert_eq!(chained.len(), 1);
        let record = chained[0];
        assert_eq!(
            (&*record.level, &*record.logger),
            ("INFO", "distributed.batched")
        );
        assert!(
            record
                .message
                .starts_with("Batched Comm Closed <TCP (closed)")
        );
        assert!(record.message.ends_with(": Stream is closed"));
        assert_eq!(
            record
                .message
                .matches("Traceback (most recent call last):")
                .count(),
            2
        );
    }

    fn assemble_dictconfig_fixture() -> Vec<crate::multiline::AssembledRecord> {
        crate::multiline::tests::assemble_with(preset(LineFormat::DaskIso), DICTCONFIG_LOG)
    }

    #[test]
    fn dictconfig_fixture_records_snapshot() {
        let records = assemble_dictconfig_fixture();
        let summary: Vec<String> = records
            .iter()
            .take(40)
            .map(|record| {
                let first_line = record.message.lines().next().unwrap_or("");
                let lines = record.message.lines().count();
                let ts = record.ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ");
                format!(
                    "{:>5} {ts} {:<5} {:<22} [{lines}] {first_line}",
                    record.offset_bytes, record.level, record.logger
                )
            })
            .collect();
        insta::assert_snapshot!(summary.join("\n"));
    }

    #[test]
    fn the_dask_separator_is_found_like_split_once() {
        for text in [
            "a - b",
            "a - b - c",
            " - x",
            "a -b - c",
            "a-b - c",
            "no separator",
            "a - ",
            "-",
            "",
            "a  -  b",
            "é - ü",
        ] {
            assert_eq!(
                split_at_dask_separator(text),
                text.split_once(" - "),
                "{text:?}"
            );
        }
    }
}
