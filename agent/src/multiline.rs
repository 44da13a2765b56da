//! Groups lines into records: a line with a header starts a record; tracebacks,
//! chained exceptions and `Compute Failed` blocks join the record before them; any other line
//! without a header (a task's `print()`, a bare warning) is a record of its own.
//!
//! The rule a reader must not miss: a line joins the open record only if it *looks like* a
//! continuation; when in doubt it stands alone, so user output is never hidden inside an
//! unrelated record.

use std::sync::Arc;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::format::LineParser;

/// One finished record, ready to ship.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssembledRecord {
    /// Byte offset of the record's first line in its file: the record's `seq`.
    pub offset_bytes: u64,
    /// The header's time, or when the line was read if it had no header.
    pub ts: Timestamp,
    /// Level as written; empty for lines without a header. Shared with the records before it
    /// that have the same one (no allocation per record).
    pub level: Arc<str>,
    /// Logger name; empty for lines without a header. Shared like `level`.
    pub logger: Arc<str>,
    /// The record's text: the first line's message, then each continuation line.
    pub message: String,
    /// Some line was cut at the length limit, or continuation lines were dropped.
    pub truncated: bool,
}

/// The lines that may follow a `Compute Failed` record (distributed's `worker.py`).
const COMPUTE_FAILED_KEYS: [&str; 9] = [
    "Key:",
    "State:",
    "Task:",
    "Function:",
    "Args:",
    "Kwargs:",
    "Exception:",
    "Traceback:",
    "Run ID:",
];

const TRACEBACK_START: &str = "Traceback (most recent call last):";
const CHAINED_EXCEPTION_LINES: [&str; 2] = [
    "The above exception was the direct cause of the following exception:",
    "During handling of the above exception, another exception occurred:",
];

/// Turns a file's lines, in order, into records.
#[derive(Debug)]
pub struct RecordAssembler {
    parser: LineParser,
    timezone: TimeZone,
    max_record_bytes: usize,
    open: Option<OpenRecord>,
    /// Blank lines seen after the open record: kept only if a continuation follows.
    held_blank_lines: usize,
    /// The last level and logger seen, handed to the next records that have them too.
    last_level: Arc<str>,
    last_logger: Arc<str>,
    empty: Arc<str>,
}

/// `text` as the shared string `last`, which becomes `text` first if it is another one.
fn shared(last: &mut Arc<str>, text: &str) -> Arc<str> {
    if **last != *text {
        *last = Arc::from(text);
    }
    Arc::clone(last)
}

#[derive(Debug)]
struct OpenRecord {
    record: AssembledRecord,
    is_compute_failed: bool,
    in_traceback: bool,
    last_line_indented: bool,
}

impl RecordAssembler {
    /// Creates an assembler for lines whose headers `parser` reads; timestamps written without
    /// an offset are local to `timezone`. A record's message grows to at most
    /// `max_record_bytes`.
    pub fn new(parser: LineParser, timezone: TimeZone, max_record_bytes: usize) -> Self {
        let empty: Arc<str> = Arc::from("");
        RecordAssembler {
            parser,
            timezone,
            max_record_bytes,
            open: None,
            held_blank_lines: 0,
            last_level: Arc::clone(&empty),
            last_logger: Arc::clone(&empty),
            empty,
        }
    }

    /// Adds the line that starts at `offset_bytes` (without its line ending), read at
    /// `read_at`: the time of a record whose first line has no timestamp. Returns the record
    /// this line closed, if any.
    pub fn push_line(
        &mut self,
        line: &str,
        offset_bytes: u64,
        read_at: Timestamp,
        line_truncated: bool,
    ) -> Option<AssembledRecord> {
        if let Some(header) = self.parser.parse_header(line, &self.timezone) {
            let record = AssembledRecord {
                offset_bytes,
                ts: header.ts.unwrap_or(read_at),
                level: shared(&mut self.last_level, header.level),
                logger: shared(&mut self.last_logger, header.logger),
                message: header.message.to_owned(),
                truncated: line_truncated,
            };
            let is_compute_failed = header.message.starts_with("Compute Failed");
            return self.replace_open(record, is_compute_failed);
        }
        if line.trim().is_empty() {
            if self.open.is_some() {
                self.held_blank_lines += 1;
            }
            return None;
        }
        if let Some(open) = &mut self.open
            && open.accepts_continuation(line)
        {
            let blank_lines = std::mem::take(&mut self.held_blank_lines);
            open.append_line(line, blank_lines, line_truncated, self.max_record_bytes);
            return None;
        }
        let record = AssembledRecord {
            offset_bytes,
            ts: read_at,
            level: Arc::clone(&self.empty),
            logger: Arc::clone(&self.empty),
            message: line.to_owned(),
            truncated: line_truncated,
        };
        let finished = self.replace_open(record, false);
        if let Some(open) = &mut self.open {
            open.note_line(line);
        }
        finished
    }

    /// Closes and returns the open record (a quiet file's last record, or at shutdown).
    pub fn flush(&mut self) -> Option<AssembledRecord> {
        self.held_blank_lines = 0;
        self.open.take().map(|open| open.record)
    }

    /// Tells whether a record is waiting for possible continuation lines.
    pub fn has_open_record(&self) -> bool {
        self.open.is_some()
    }

    /// Where the record waiting for continuation lines starts, if one is.
    pub fn open_record_offset(&self) -> Option<u64> {
        self.open.as_ref().map(|open| open.record.offset_bytes)
    }

    fn replace_open(
        &mut self,
        record: AssembledRecord,
        is_compute_failed: bool,
    ) -> Option<AssembledRecord> {
        self.held_blank_lines = 0;
        let next = OpenRecord {
            record,
            is_compute_failed,
            in_traceback: false,
            last_line_indented: false,
        };
        self.open.replace(next).map(|open| open.record)
    }
}

impl OpenRecord {
    fn accepts_continuation(&self, line: &str) -> bool {
        is_indented(line)
            || line.starts_with(TRACEBACK_START)
            || CHAINED_EXCEPTION_LINES.contains(&line.trim_end())
            // The exception line that ends a traceback: `ValueError: boom`.
            || (self.in_traceback && self.last_line_indented)
            || (self.is_compute_failed && COMPUTE_FAILED_KEYS.iter().any(|key| line.starts_with(key)))
    }

    fn append_line(
        &mut self,
        line: &str,
        blank_lines: usize,
        line_truncated: bool,
        max_record_bytes: usize,
    ) {
        let message = &mut self.record.message;
        let added_bytes = blank_lines + 1 + line.len();
        if message.len() + added_bytes > max_record_bytes {
            self.record.truncated = true;
        } else {
            message.extend(std::iter::repeat_n('\n', blank_lines + 1));
            message.push_str(line);
            self.record.truncated |= line_truncated;
        }
        self.note_line(line);
    }

    /// Tracks where in a traceback the record is, to recognise its final exception line.
    fn note_line(&mut self, line: &str) {
        if line.starts_with(TRACEBACK_START) {
            self.in_traceback = true;
            self.last_line_indented = false;
            return;
        }
        let indented = is_indented(line);
        if self.in_traceback && self.last_line_indented && !indented {
            self.in_traceback = false;
        }
        self.last_line_indented = indented;
    }
}

fn is_indented(line: &str) -> bool {
    line.starts_with(' ') || line.starts_with('\t')
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::format::LineFormat;

    fn dask_parser() -> LineParser {
        LineParser::new(LineFormat::Dask, None, None).expect("dask needs no regex")
    }

    fn assemble(text: &str) -> Vec<AssembledRecord> {
        assemble_with(dask_parser(), text)
    }

    /// Assembles `text` (lines at their byte offsets, UTC, read at the epoch) with `parser`.
    pub(crate) fn assemble_with(parser: LineParser, text: &str) -> Vec<AssembledRecord> {
        let read_at = Timestamp::UNIX_EPOCH;
        let mut assembler = RecordAssembler::new(parser, TimeZone::UTC, 1 << 20);
        let mut records = Vec::new();
        let mut offset = 0u64;
        for line in text.split_inclusive('\n') {
            let content = line.strip_suffix('\n').unwrap_or(line);
            records.extend(assembler.push_line(content, offset, read_at, false));
            offset += line.len() as u64;
        }
        records.extend(assembler.flush());
        records
    }

    #[test]
    fn traceback_with_blank_lines_and_chaining_stays_in_its_record() {
        let text = "\
2026-11-27 14:08:42,740 - distributed.batched - INFO - Batched Comm Closed
Traceback (most recent call last):
  File \"tcp.py\", line 298, in write
    raise StreamClosedError()
tornado.iostream.StreamClosedError: Stream is closed

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File \"batched.py\", line 115, in _background_send
distributed.comm.core.CommClosedError: in <TCP>: Stream is closed
2026-11-27 14:08:42,799 - distributed.nanny - INFO - Closing Nanny
";
        let records = assemble(text);
        assert_eq!(records.len(), 2);
        assert!(
            records[0]
                .message
                .starts_with("Batched Comm Closed\nTraceback")
        );
        assert!(records[0].message.contains("\n\nThe above exception"));
        assert!(
            records[0]
                .message
                .ends_with("CommClosedError: in <TCP>: Stream is closed")
        );
        assert_eq!(records[1].message, "Closing Nanny");
        assert_eq!(
            records[1].offset_bytes,
            text.find("2026-11-27 14:08:42,799").unwrap() as u64
        );
    }

    #[test]
    fn compute_failed_block_is_one_record_and_prints_stand_alone() {
        let text = "\
user print() from task 0
2026-11-27 13:58:04,595 - distributed.worker - ERROR - Compute Failed
Key:       fails-42
State:     executing
Exception: \"ValueError('deliberate failure for input 42')\"
Traceback: '  File \"<dynamic-code>\", line 32, in fails\\n'

user print after the block
";
        let records = assemble(text);
        let messages: Vec<&str> = records.iter().map(|r| r.message.as_str()).collect();
        assert_eq!(messages.len(), 3, "{messages:#?}");
        assert_eq!(messages[0], "user print() from task 0");
        assert!(messages[1].starts_with("Compute Failed\nKey:"));
        assert!(messages[1].ends_with("in fails\\n'"));
        assert_eq!(messages[2], "user print after the block");
        assert_eq!(&*records[0].level, "");
    }

    #[test]
    fn a_warning_keeps_its_indented_source_line() {
        let records = assemble("t.py:3: UserWarning: careful\n  warnings.warn('careful')\nnext\n");
        assert_eq!(records.len(), 2);
        assert_eq!(
            records[0].message,
            "t.py:3: UserWarning: careful\n  warnings.warn('careful')"
        );
    }

    #[test]
    fn key_like_lines_after_an_ordinary_record_stand_alone() {
        let records = assemble(
            "2026-11-27 13:58:04,595 - distributed.worker - INFO - hello\nKey: printed by a task\n",
        );
        assert_eq!(records.len(), 2);
    }

    #[test]
    fn an_oversized_record_is_cut_and_flagged() {
        let mut assembler = RecordAssembler::new(dask_parser(), TimeZone::UTC, 64);
        let at = Timestamp::UNIX_EPOCH;
        assembler.push_line(
            "2026-11-27 13:58:04,595 - distributed.worker - ERROR - x",
            0,
            at,
            false,
        );
        for offset in 1..100 {
            assembler.push_line("  File \"a.py\", line 1, in f", offset, at, false);
        }
        let record = assembler.flush().expect("an open record");
        assert!(record.truncated);
        assert!(record.message.len() <= 64);
    }

    /// The real Dask logs of `tests/fixtures/dask/logs`, shared with the end-to-end tests.
    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/../tests/fixtures/dask/logs/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("cannot read {path}: {error}"))
    }

    /// Finds the header lines of a Dask log without the parser under test: by position.
    fn header_lines(text: &str) -> Vec<(u64, String, String, String)> {
        let mut offset = 0u64;
        let mut headers = Vec::new();
        for line in text.split_inclusive('\n') {
            let fields: Vec<&str> = line.trim_end_matches('\n').splitn(4, " - ").collect();
            if line.len() > 24
                && line.as_bytes()[19] == b','
                && line.starts_with("2026-")
                && fields.len() >= 3
            {
                let ts = format!("{}T{}.{}Z", &line[..10], &line[11..19], &line[20..23]);
                headers.push((offset, ts, fields[1].to_owned(), fields[2].to_owned()));
            }
            offset += line.len() as u64;
        }
        headers
    }

    #[test]
    fn every_timestamped_fixture_line_starts_exactly_one_record() {
        for name in ["scheduler.log", "worker-1.log", "worker-2.log"] {
            let text = fixture(name);
            let records = assemble(&text);
            let from_records: Vec<(u64, String, String, String)> = records
                .iter()
                .filter(|record| !record.level.is_empty())
                .map(|record| {
                    // Normalise to millisecond precision like the expected side.
                    let ts = record.ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
                    (
                        record.offset_bytes,
                        ts,
                        record.logger.to_string(),
                        record.level.to_string(),
                    )
                })
                .collect();
            assert_eq!(from_records, header_lines(&text), "{name}");
        }
    }

    #[test]
    fn fixture_compute_failed_and_chained_traceback_are_one_record_each() {
        let records = assemble(&fixture("worker-1.log"));
        let compute_failed: Vec<_> = records
            .iter()
            .filter(|r| r.message.contains("fails-42"))
            .collect();
        assert_eq!(compute_failed.len(), 1);
        let block = &compute_failed[0].message;
        for part in [
            "Compute Failed",
            "Key:       fails-42",
            "State:",
            "Task:",
            "Exception:",
            "Traceback:",
        ] {
            assert!(block.contains(part), "{part:?} missing from {block}");
        }
        let chained: Vec<_> = records
            .iter()
            .filter(|r| r.message.contains("StreamClosedError"))
            .collect();
        assert_eq!(chained.len(), 1);
        let traceback = &chained[0].message;
        assert!(traceback.starts_with("Batched Comm Closed"));
        assert!(traceback.contains(
            "\n\nThe above exception was the direct cause of the following exception:\n\n"
        ));
        assert!(traceback.ends_with("Stream is closed"));
        assert_eq!(
            traceback
                .matches("Traceback (most recent call last):")
                .count(),
            2
        );
    }

    #[test]
    fn fixture_prints_and_warnings_are_records_of_their_own() {
        for name in ["worker-1.log", "worker-2.log"] {
            let text = fixture(name);
            let records = assemble(&text);
            let standalone: Vec<&str> = records
                .iter()
                .filter(|record| record.level.is_empty())
                .map(|record| record.message.as_str())
                .collect();
            let expected: Vec<&str> = text
                .lines()
                .filter(|line| line.starts_with("user ") || line.starts_with("<dynamic-code>"))
                .collect();
            assert_eq!(standalone, expected, "{name}");
        }
    }

    #[test]
    fn fixture_worker_1_records_snapshot() {
        let records = assemble(&fixture("worker-1.log"));
        let summary: Vec<String> = records
            .iter()
            .map(|record| {
                let first_line = record.message.lines().next().unwrap_or("");
                let lines = record.message.lines().count();
                format!(
                    "{:>5} {:<7} {:<24} [{lines}] {first_line}",
                    record.offset_bytes, record.level, record.logger
                )
            })
            .collect();
        insta::assert_snapshot!(summary.join("\n"));
    }
}
