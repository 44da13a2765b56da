//! Parses one log line's header (timestamp, logger, level) in a configured format.
//! A line that does not parse is not an error: it is a continuation or standalone output,
//! which `multiline` decides.

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use serde::Deserialize;

/// A line format: how the timestamp, logger and level are laid out in front of the message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LineFormat {
    /// Dask's default `%(asctime)s - %(name)s - %(levelname)s - %(message)s`:
    /// `2026-11-27 13:56:53,599 - distributed.worker - INFO - message`, local time.
    #[default]
    Dask,
    /// No header at all: every line is standalone output (or a continuation of the one
    /// before it), timestamped when read.
    Plain,
}

/// The header fields of a line that starts a record, borrowed from the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineHeader<'a> {
    /// The record's time, converted to UTC.
    pub ts: Timestamp,
    /// Python logger name, e.g. `distributed.worker`.
    pub logger: &'a str,
    /// Level as written, e.g. `INFO`.
    pub level: &'a str,
    /// The rest of the line after the header.
    pub message: &'a str,
}

impl LineFormat {
    /// Returns the header of `line` if it starts a record in this format. Timestamps without
    /// an offset are read in `timezone`.
    pub fn parse_header<'a>(self, line: &'a str, timezone: &TimeZone) -> Option<LineHeader<'a>> {
        match self {
            LineFormat::Dask => parse_dask_header(line, timezone),
            LineFormat::Plain => None,
        }
    }
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
    let (logger, rest) = rest.split_once(DASK_SEPARATOR)?;
    let (level, message) = match rest.split_once(DASK_SEPARATOR) {
        Some((level, message)) => (level, message),
        // `logger.info("")` leaves `LEVEL - ` with the trailing space possibly stripped.
        None => (rest.strip_suffix(" -").unwrap_or(rest), ""),
    };
    if logger.is_empty() || !is_level_name(level) {
        return None;
    }
    let ts = timezone.to_ambiguous_timestamp(civil).compatible().ok()?;
    Some(LineHeader {
        ts,
        logger,
        level,
        message,
    })
}

/// Parses `YYYY-MM-DD HH:MM:SS,mmm` (a `.` before the milliseconds is accepted too).
fn parse_dask_timestamp(bytes: &[u8]) -> Option<DateTime> {
    let number = |range: std::ops::Range<usize>| -> Option<i32> {
        bytes[range].iter().try_fold(0i32, |acc, &byte| {
            byte.is_ascii_digit()
                .then(|| acc * 10 + i32::from(byte - b'0'))
        })
    };
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

/// Python's level names are upper-case words (`INFO`, `WARNING`, custom `TRACE`, `Level 5`).
fn is_level_name(level: &str) -> bool {
    !level.is_empty()
        && level.len() <= 16
        && level
            .bytes()
            .all(|byte| byte.is_ascii_uppercase() || byte.is_ascii_digit() || byte == b' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dask_default_line() {
        let line = "2026-11-27 13:56:53,599 - distributed.scheduler - INFO - Register worker addr: tcp://127.0.0.1:42737 name: worker-1";
        let header = LineFormat::Dask
            .parse_header(line, &TimeZone::UTC)
            .expect("a dask line");
        assert_eq!(header.ts.to_string(), "2026-11-27T13:56:53.599Z");
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
        let header = LineFormat::Dask
            .parse_header(
                "2026-11-27 13:56:53,599 - distributed.worker - ERROR - boom",
                &zone,
            )
            .expect("a dask line");
        assert_eq!(header.ts.to_string(), "2026-11-27T11:56:53.599Z");
    }

    #[test]
    fn keeps_separators_inside_the_message() {
        let header = LineFormat::Dask
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
        let header = LineFormat::Dask
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
                LineFormat::Dask.parse_header(line, &TimeZone::UTC),
                None,
                "{line}"
            );
        }
    }
}
