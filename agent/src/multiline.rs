//! Groups lines into records: a line with a header starts a record; tracebacks,
//! chained exceptions and `Compute Failed` blocks join the record before them; a Python
//! warning (`path.py:LINE: UserWarning: message`) takes its message lines up to its indented
//! source line; any other line without a header (a task's `print()`) is a record of its own.
//! A line without a timestamp of its own gets one from the records around it (`LineTime`).
//!
//! The rule a reader must not miss: a line joins the open record only if it *looks like* a
//! continuation; when in doubt it stands alone, so user output is never hidden inside an
//! unrelated record. And an inferred time never goes before the record before it in the
//! stream, nor after the record after it when that one is already read.

use std::sync::Arc;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::format::LineParser;

/// One finished record, ready to ship.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssembledRecord {
    /// Byte offset of the record's first line in its file: the record's `seq`.
    pub offset_bytes: u64,
    /// Where the line after the record starts (the line that closed it), or where the caller
    /// said reading stood when it flushed the record: where reading resumes once the record
    /// is delivered.
    pub end_offset_bytes: u64,
    /// The header's time; for a line without one, the time inferred by `LineTime`'s rule.
    pub ts: Timestamp,
    /// `ts` was inferred: the record's first line has no timestamp of its own.
    pub ts_inferred: bool,
    /// Level as written; empty for lines without a header, `WARNING` for a Python warning.
    /// Shared with the records before it that have the same one (no allocation per record).
    pub level: Arc<str>,
    /// Logger name; empty for lines without a header, the category (`UserWarning`) for a
    /// Python warning. Shared like `level`.
    pub logger: Arc<str>,
    /// The record's text: the first line's message, then each continuation line.
    pub message: String,
    /// Some line was cut at the length limit, or continuation lines were dropped.
    pub truncated: bool,
}

/// How a line was read, which decides the time of a record whose first line has no
/// timestamp. Such a record's time lies between the times of the records around it in its
/// stream: never before the record before it, nor after the record after it when that one is
/// already read (in the same read, or before the record was closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineTime {
    /// The line's time is known from outside its text: a container runtime's timestamp.
    /// Not inferred.
    Stamped(Timestamp),
    /// Read as it was written: a pipe, or a file the agent had read to its end whose newest
    /// byte is under a second old. The time is `read_at`, or the previous record's if later.
    Live { read_at: Timestamp },
    /// Read late (a restart, a late start, a file found late). The time is the previous
    /// record's; with none before it, the next record's if already read, otherwise
    /// `file_modified`.
    Backlog { file_modified: Timestamp },
}

impl LineTime {
    /// The time of a record read this way, between `previous` and `next` (the times of the
    /// records around it, where known).
    fn infer(self, previous: Option<Timestamp>, next: Option<Timestamp>) -> Timestamp {
        let candidate = match self {
            LineTime::Stamped(ts) => return ts,
            LineTime::Live { read_at } => read_at,
            LineTime::Backlog { file_modified } => previous.or(next).unwrap_or(file_modified),
        };
        let capped = next.map_or(candidate, |next| candidate.min(next));
        // Records out of order around it: staying after the previous record wins.
        previous.map_or(capped, |previous| capped.max(previous))
    }
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
/// The key distributed writes last in a `Compute Failed` block.
const COMPUTE_FAILED_LAST_KEY: &str = "Traceback:";

const TRACEBACK_START: &str = "Traceback (most recent call last):";
const CHAINED_EXCEPTION_LINES: [&str; 2] = [
    "The above exception was the direct cause of the following exception:",
    "During handling of the above exception, another exception occurred:",
];
/// The level of a Python warning written by the `warnings` module.
const WARNING_LEVEL: &str = "WARNING";

/// Turns a file's lines, in order, into records.
#[derive(Debug)]
pub struct RecordAssembler {
    parser: LineParser,
    timezone: TimeZone,
    max_record_bytes: usize,
    open: Option<OpenRecord>,
    /// Closed records whose time waits for the next record's (in order, all inferred): the
    /// next record with a time of its own, or the end of the read, settles them.
    unsettled: Vec<(AssembledRecord, LineTime)>,
    /// The time of the last record handed out: the earliest time the next one may get.
    previous_ts: Option<Timestamp>,
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
    /// How the first line was read, when its time is to be inferred.
    inferred_from: Option<LineTime>,
    compute_failed: ComputeFailed,
    warning: WarningPart,
    in_traceback: bool,
    last_line_indented: bool,
}

/// Where a `Compute Failed` record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ComputeFailed {
    No,
    /// Its last key (`Traceback:`) is still to come.
    Started,
    Complete,
}

/// Where a Python warning record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WarningPart {
    /// The record is not a warning.
    No,
    /// Message lines join it until its source line, indented by two spaces, arrives.
    AwaitingSourceLine,
    /// Code without a file (`<string>:1:`, `<dynamic-code>:8:`) has no source line: message
    /// lines join it until the next header.
    WithoutSourceLine,
    /// Its source line arrived: the record is complete.
    Ended,
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
            unsettled: Vec::new(),
            previous_ts: None,
            held_blank_lines: 0,
            last_level: Arc::clone(&empty),
            last_logger: Arc::clone(&empty),
            empty,
        }
    }

    /// Adds the line that starts at `offset_bytes` (without its line ending), read as `time`
    /// says, and appends to `closed` the records it closed (several when their times waited
    /// for this line's). Call `end_read` once the data read so far is used up.
    pub fn push_line(
        &mut self,
        line: &str,
        offset_bytes: u64,
        time: LineTime,
        line_truncated: bool,
        closed: &mut Vec<AssembledRecord>,
    ) {
        if let Some(header) = self.parser.parse_header(line, &self.timezone) {
            let (ts, inferred_from) = match (header.ts, time) {
                (Some(ts), _) | (None, LineTime::Stamped(ts)) => (ts, None),
                (None, _) => (Timestamp::UNIX_EPOCH, Some(time)),
            };
            let record = AssembledRecord {
                offset_bytes,
                end_offset_bytes: offset_bytes,
                ts,
                ts_inferred: false,
                level: shared(&mut self.last_level, header.level),
                logger: shared(&mut self.last_logger, header.logger),
                message: header.message.to_owned(),
                truncated: line_truncated,
            };
            let compute_failed = if header.message.starts_with("Compute Failed") {
                ComputeFailed::Started
            } else {
                ComputeFailed::No
            };
            // `logging.captureWarnings(True)` logs a warning with a header of its own.
            let warning = parse_warning_header(header.message)
                .map_or(WarningPart::No, |warning| warning.part);
            self.start_record(record, inferred_from, compute_failed, warning, closed);
            return;
        }
        if line.trim().is_empty() {
            if self.open.is_some() {
                self.held_blank_lines += 1;
            }
            return;
        }
        let warning = parse_warning_header(line);
        if warning.is_none()
            && let Some(open) = &mut self.open
            && open.accepts_continuation(line)
        {
            let blank_lines = std::mem::take(&mut self.held_blank_lines);
            open.append_line(line, blank_lines, line_truncated, self.max_record_bytes);
            return;
        }
        let (level, logger, part) = match warning {
            Some(warning) => (
                shared(&mut self.last_level, WARNING_LEVEL),
                shared(&mut self.last_logger, warning.category),
                warning.part,
            ),
            None => (
                Arc::clone(&self.empty),
                Arc::clone(&self.empty),
                WarningPart::No,
            ),
        };
        let (ts, inferred_from) = match time {
            LineTime::Stamped(ts) => (ts, None),
            _ => (Timestamp::UNIX_EPOCH, Some(time)),
        };
        let record = AssembledRecord {
            offset_bytes,
            end_offset_bytes: offset_bytes,
            ts,
            ts_inferred: false,
            level,
            logger,
            message: line.to_owned(),
            truncated: line_truncated,
        };
        self.start_record(record, inferred_from, ComputeFailed::No, part, closed);
        if let Some(open) = &mut self.open {
            open.note_line(line);
        }
    }

    /// The data read so far is used up: the records whose time waited for a later record's
    /// get theirs without it, and are appended to `closed`. The open record stays open.
    pub fn end_read(&mut self, closed: &mut Vec<AssembledRecord>) {
        self.settle(None, closed);
    }

    /// Closes the open record (a quiet file's last record, or at shutdown) and appends it to
    /// `closed`, after any record whose time waited. `end_offset_bytes` is where reading
    /// stands: past the record and the blank lines after it.
    pub fn flush(&mut self, end_offset_bytes: u64, closed: &mut Vec<AssembledRecord>) {
        self.held_blank_lines = 0;
        if let Some(open) = self.open.take() {
            self.close(open, end_offset_bytes, closed);
        }
        self.settle(None, closed);
    }

    /// Tells whether a record is waiting for possible continuation lines.
    pub fn has_open_record(&self) -> bool {
        self.open.is_some()
    }

    /// Tells whether the open record looks unfinished: a traceback without its final
    /// exception line, a `Compute Failed` block without its last key, a warning without its
    /// source line. Python writes a record whole, so any other record that ends where a read
    /// ended is almost surely complete.
    pub fn open_record_looks_unfinished(&self) -> bool {
        self.open.as_ref().is_some_and(OpenRecord::looks_unfinished)
    }

    /// Where the first record not handed out yet starts (one waiting for continuation lines,
    /// or for its time), if any.
    pub fn open_record_offset(&self) -> Option<u64> {
        match self.unsettled.first() {
            Some((record, _)) => Some(record.offset_bytes),
            None => self.open.as_ref().map(|open| open.record.offset_bytes),
        }
    }

    /// Makes `record` the open record; the one it replaces is closed where `record` starts.
    fn start_record(
        &mut self,
        record: AssembledRecord,
        inferred_from: Option<LineTime>,
        compute_failed: ComputeFailed,
        warning: WarningPart,
        closed: &mut Vec<AssembledRecord>,
    ) {
        self.held_blank_lines = 0;
        let starts_at = record.offset_bytes;
        let known_ts = inferred_from.is_none().then_some(record.ts);
        let next = OpenRecord {
            record,
            inferred_from,
            compute_failed,
            warning,
            in_traceback: false,
            last_line_indented: false,
        };
        if let Some(previous) = self.open.replace(next) {
            self.close(previous, starts_at, closed);
        }
        // A time of its own bounds the records before it that wait for one.
        if known_ts.is_some() {
            self.settle(known_ts, closed);
        }
    }

    /// Hands out `open`, or keeps it back until the next record's time is known.
    fn close(
        &mut self,
        open: OpenRecord,
        end_offset_bytes: u64,
        closed: &mut Vec<AssembledRecord>,
    ) {
        let mut record = open.record;
        record.end_offset_bytes = end_offset_bytes;
        match open.inferred_from {
            Some(time) => self.unsettled.push((record, time)),
            None => {
                debug_assert!(
                    self.unsettled.is_empty(),
                    "a record with a time settles those before it"
                );
                self.previous_ts = Some(record.ts);
                closed.push(record);
            }
        }
    }

    /// Gives the waiting records their times, bounded by `next_ts`, and hands them out.
    fn settle(&mut self, next_ts: Option<Timestamp>, closed: &mut Vec<AssembledRecord>) {
        for (mut record, time) in self.unsettled.drain(..) {
            record.ts = time.infer(self.previous_ts, next_ts);
            record.ts_inferred = true;
            self.previous_ts = Some(record.ts);
            closed.push(record);
        }
    }
}

impl OpenRecord {
    fn accepts_continuation(&self, line: &str) -> bool {
        match self.warning {
            WarningPart::Ended => return false,
            WarningPart::AwaitingSourceLine | WarningPart::WithoutSourceLine => return true,
            WarningPart::No => {}
        }
        is_indented(line)
            || line.starts_with(TRACEBACK_START)
            || CHAINED_EXCEPTION_LINES.contains(&line.trim_end())
            // The exception line that ends a traceback: `ValueError: boom`.
            || (self.in_traceback && self.last_line_indented)
            || (self.compute_failed != ComputeFailed::No
                && COMPUTE_FAILED_KEYS.iter().any(|key| line.starts_with(key)))
    }

    fn looks_unfinished(&self) -> bool {
        let awaiting_exception_line = self.in_traceback
            && (self.last_line_indented || self.record.message.ends_with(TRACEBACK_START));
        let awaiting_chained_traceback = CHAINED_EXCEPTION_LINES
            .iter()
            .any(|chained| self.record.message.ends_with(chained));
        awaiting_exception_line
            || awaiting_chained_traceback
            || self.compute_failed == ComputeFailed::Started
            || self.warning == WarningPart::AwaitingSourceLine
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
        if self.compute_failed == ComputeFailed::Started
            && line.starts_with(COMPUTE_FAILED_LAST_KEY)
        {
            self.compute_failed = ComputeFailed::Complete;
        }
        if self.warning != WarningPart::No && is_warning_source_line(line) {
            self.warning = WarningPart::Ended;
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

/// The first line of a Python warning, as `warnings.formatwarning` writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct WarningHeader<'a> {
    /// `UserWarning`, `FutureWarning`, … (the class name alone, as Python writes it).
    category: &'a str,
    /// Whether a source line will follow: not for code without a file (`<string>`).
    part: WarningPart,
}

/// Reads `path.py:LINE: CategoryWarning: message`. The category is a class name ending in
/// `Warning`, as the built-in categories and almost all third-party ones do; requiring it
/// keeps ordinary output such as `note: 3: Error: x` a line of its own.
fn parse_warning_header(line: &str) -> Option<WarningHeader<'_>> {
    const SUFFIX: &str = "Warning: ";
    let mut from = 0;
    while let Some(found) = line.get(from..)?.find(SUFFIX) {
        let category_end = from + found + SUFFIX.len() - 2;
        from = category_end;
        let Some(separator) = line[..category_end].rfind(": ") else {
            continue;
        };
        let category = &line[separator + 2..category_end];
        let Some((path, line_number)) = line[..separator].rsplit_once(':') else {
            continue;
        };
        let is_class_name = category.starts_with(|c: char| c.is_ascii_uppercase())
            && category
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_');
        let is_line_number =
            !line_number.is_empty() && line_number.bytes().all(|b| b.is_ascii_digit());
        if is_class_name && is_line_number && !path.trim().is_empty() {
            // `exec`, `-c` and the like name a pseudo-file that `linecache` cannot read.
            let part = if path.starts_with('<') && path.ends_with('>') {
                WarningPart::WithoutSourceLine
            } else {
                WarningPart::AwaitingSourceLine
            };
            return Some(WarningHeader { category, part });
        }
    }
    None
}

/// `warnings.formatwarning` writes the source line stripped, after two spaces.
fn is_warning_source_line(line: &str) -> bool {
    line.strip_prefix("  ")
        .is_some_and(|rest| rest.starts_with(|c: char| !c.is_whitespace()))
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

    /// Assembles `text` (lines at their byte offsets, UTC, read in one read as a backlog of a
    /// file modified at the epoch) with `parser`.
    pub(crate) fn assemble_with(parser: LineParser, text: &str) -> Vec<AssembledRecord> {
        let time = LineTime::Backlog {
            file_modified: Timestamp::UNIX_EPOCH,
        };
        let mut assembler = RecordAssembler::new(parser, TimeZone::UTC, 1 << 20);
        let mut records = Vec::new();
        let mut offset = 0u64;
        for line in text.split_inclusive('\n') {
            let content = line.strip_suffix('\n').unwrap_or(line);
            assembler.push_line(content, offset, time, false, &mut records);
            offset += line.len() as u64;
        }
        assembler.end_read(&mut records);
        assembler.flush(offset, &mut records);
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

    fn at(text: &str) -> Timestamp {
        text.parse().expect("a valid time")
    }

    /// Pushes each of `reads` (lines read together, the same way) and ends each read; flushes
    /// at the end. Returns every record handed out, and how many after each read.
    fn assemble_reads(
        parser: LineParser,
        reads: &[(LineTime, &str)],
    ) -> (Vec<AssembledRecord>, Vec<usize>) {
        let mut assembler = RecordAssembler::new(parser, TimeZone::UTC, 1 << 20);
        let mut records = Vec::new();
        let mut after_each_read = Vec::new();
        let mut offset = 0u64;
        for (time, text) in reads {
            for line in text.split_inclusive('\n') {
                let content = line.strip_suffix('\n').unwrap_or(line);
                assembler.push_line(content, offset, *time, false, &mut records);
                offset += line.len() as u64;
            }
            assembler.end_read(&mut records);
            after_each_read.push(records.len());
        }
        assembler.flush(offset, &mut records);
        (records, after_each_read)
    }

    fn times(records: &[AssembledRecord]) -> Vec<(String, bool, &str)> {
        records
            .iter()
            .map(|record| {
                (
                    record.ts.to_string(),
                    record.ts_inferred,
                    record.message.as_str(),
                )
            })
            .collect()
    }

    const BEFORE_PRINT: &str = "2026-11-27 13:57:10,000 - distributed.worker - INFO - before\n";
    const AFTER_PRINT: &str = "2026-11-27 13:59:40,000 - distributed.worker - INFO - after\n";

    #[test]
    fn a_print_read_late_takes_the_previous_records_time_not_the_read_time() {
        let backlog = LineTime::Backlog {
            file_modified: at("2026-11-27T14:00:00Z"),
        };
        let text = format!("{BEFORE_PRINT}user print() from task 2\n{AFTER_PRINT}");
        let (records, _) = assemble_reads(dask_parser(), &[(backlog, &text)]);
        assert_eq!(
            times(&records),
            [
                ("2026-11-27T13:57:10Z".to_owned(), false, "before"),
                (
                    "2026-11-27T13:57:10Z".to_owned(),
                    true,
                    "user print() from task 2"
                ),
                ("2026-11-27T13:59:40Z".to_owned(), false, "after"),
            ]
        );
    }

    #[test]
    fn a_backlog_line_with_no_record_before_it_takes_the_next_records_time_else_the_files() {
        let modified = at("2026-11-27T14:00:00Z");
        let backlog = LineTime::Backlog {
            file_modified: modified,
        };
        let text = format!("first print\nsecond print\n{AFTER_PRINT}");
        let (records, _) = assemble_reads(dask_parser(), &[(backlog, &text)]);
        assert_eq!(
            times(&records),
            [
                ("2026-11-27T13:59:40Z".to_owned(), true, "first print"),
                ("2026-11-27T13:59:40Z".to_owned(), true, "second print"),
                ("2026-11-27T13:59:40Z".to_owned(), false, "after"),
            ]
        );
        // Nothing with a time follows in the read: the file's modification time, at once.
        let (records, after_each_read) = assemble_reads(dask_parser(), &[(backlog, "one\ntwo\n")]);
        assert_eq!(after_each_read, [1], "the closed print waits for nothing");
        assert_eq!(
            times(&records),
            [
                (modified.to_string(), true, "one"),
                (modified.to_string(), true, "two"),
            ]
        );
    }

    #[test]
    fn a_live_line_takes_its_read_time_between_the_records_around_it() {
        let live = |read_at: &str| LineTime::Live {
            read_at: at(read_at),
        };
        let (records, _) = assemble_reads(
            dask_parser(),
            &[
                (live("2026-11-27T13:57:11Z"), BEFORE_PRINT),
                (live("2026-11-27T13:58:30Z"), "written live\n"),
                // The agent's clock behind the record before it: not before that record.
                (live("2026-11-27T13:50:00Z"), "clock behind\n"),
                // Read together with the record after it, which is earlier than the read.
                (
                    live("2026-11-27T14:30:00Z"),
                    &format!("stalled print\n{AFTER_PRINT}"),
                ),
            ],
        );
        assert_eq!(
            times(&records),
            [
                ("2026-11-27T13:57:10Z".to_owned(), false, "before"),
                ("2026-11-27T13:58:30Z".to_owned(), true, "written live"),
                ("2026-11-27T13:58:30Z".to_owned(), true, "clock behind"),
                ("2026-11-27T13:59:40Z".to_owned(), true, "stalled print"),
                ("2026-11-27T13:59:40Z".to_owned(), false, "after"),
            ]
        );
    }

    #[test]
    fn records_waiting_for_their_time_keep_their_order_and_end_offsets() {
        let backlog = LineTime::Backlog {
            file_modified: at("2026-11-27T14:00:00Z"),
        };
        let text = format!("one\n\ntwo\n{AFTER_PRINT}");
        let (records, _) = assemble_reads(dask_parser(), &[(backlog, &text)]);
        let spans: Vec<(u64, u64)> = records
            .iter()
            .map(|record| (record.offset_bytes, record.end_offset_bytes))
            .collect();
        let after = text.find("2026").expect("a header") as u64;
        assert_eq!(spans, [(0, 5), (5, after), (after, text.len() as u64)]);
    }

    #[test]
    fn a_regex_header_without_a_time_is_inferred_and_a_container_runtime_time_is_not() {
        let parser = LineParser::new(
            crate::format::LineFormat::Regex,
            Some(r"^(?:(?P<ts>\S+Z) )?(?P<level>[A-Z]+) (?P<message>.*)"),
            None,
        )
        .expect("a valid regex");
        let backlog = LineTime::Backlog {
            file_modified: at("2026-11-27T14:00:00Z"),
        };
        let text = "2026-11-27T13:57:10Z INFO timed\nWARNING untimed\n";
        let (records, _) = assemble_reads(parser, &[(backlog, text)]);
        assert_eq!(
            times(&records),
            [
                ("2026-11-27T13:57:10Z".to_owned(), false, "timed"),
                ("2026-11-27T13:57:10Z".to_owned(), true, "untimed"),
            ]
        );
        assert_eq!(&*records[1].level, "WARNING");

        let stamped = LineTime::Stamped(at("2026-11-27T13:58:00Z"));
        let (records, _) = assemble_reads(dask_parser(), &[(stamped, "print\n")]);
        assert_eq!(
            times(&records),
            [("2026-11-27T13:58:00Z".to_owned(), false, "print")]
        );
    }

    fn client_regex_parser() -> LineParser {
        LineParser::new(
            crate::format::LineFormat::Regex,
            Some(r"^(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d) CLIENT (?P<message>.*)$"),
            None,
        )
        .expect("a valid regex")
    }

    #[test]
    fn distributeds_large_graph_warning_in_a_regex_client_log_is_one_record() {
        let text = fixture("client-regex.log");
        let records = assemble_with(client_regex_parser(), &text);
        let warnings: Vec<&AssembledRecord> = records
            .iter()
            .filter(|record| record.message.contains("Sending large graph"))
            .collect();
        let [warning] = warnings[..] else {
            panic!("one record holds the warning: {warnings:#?}");
        };
        let start = text
            .find("/srv/daskrun")
            .expect("the warning is in the fixture");
        let source_line = "  warnings.warn(";
        let end = text.find(source_line).expect("its source line") + source_line.len();
        assert_eq!(warning.message, text[start..end]);
        assert_eq!(warning.message.lines().count(), 6);
        assert_eq!(
            (&*warning.level, &*warning.logger, warning.offset_bytes),
            ("WARNING", "UserWarning", start as u64)
        );
        // No timestamp of its own: the client line before it gives one.
        assert!(warning.ts_inferred);
        assert_eq!(warning.ts.to_string(), "2026-11-27T13:59:26Z");
        // The lines after it: the client's own line, then the script's print on its own.
        let index = records
            .iter()
            .position(|record| record.offset_bytes == start as u64)
            .expect("listed");
        let next: Vec<(&str, bool)> = records[index + 1..index + 3]
            .iter()
            .map(|record| (record.message.as_str(), record.ts_inferred))
            .collect();
        assert_eq!(next, [("sum is 20000000", false), ("done computing", true)]);
    }

    #[test]
    fn a_warning_is_one_record_in_every_format() {
        let warning = "/srv/app/job.py:12: FutureWarning: the default will change\n\
                       Pass `strict=True` to keep today's behaviour.\n\
                       \n\
                       See the release notes.\n\
                       \x20 warnings.warn(\n";
        let header_for = |format| match format {
            crate::format::LineFormat::Dask => {
                "2026-11-27 13:57:10,000 - distributed.worker - INFO - hello\n"
            }
            crate::format::LineFormat::DaskIso => {
                "2026-11-27T13:57:10.000Z 21338 distributed.worker INFO hello\n"
            }
            crate::format::LineFormat::DaskPipe => {
                "2026-11-27 13:57:10,000|INFO|distributed.worker|21339|hello\n"
            }
            _ => "hello\n",
        };
        use crate::format::LineFormat;
        for format in [
            LineFormat::Dask,
            LineFormat::DaskIso,
            LineFormat::DaskPipe,
            LineFormat::Plain,
        ] {
            let parser = LineParser::new(format, None, None).expect("a preset");
            let text = format!(
                "{}{warning}  indented after the warning\n",
                header_for(format)
            );
            let records = assemble_with(parser, &text);
            let summary: Vec<(&str, &str, usize)> = records
                .iter()
                .map(|record| {
                    (
                        &*record.level,
                        &*record.logger,
                        record.message.lines().count(),
                    )
                })
                .collect();
            let first_level = if format == LineFormat::Plain {
                ""
            } else {
                "INFO"
            };
            let first_logger = if format == LineFormat::Plain {
                ""
            } else {
                "distributed.worker"
            };
            assert_eq!(
                summary,
                [
                    (first_level, first_logger, 1),
                    ("WARNING", "FutureWarning", 5),
                    // The warning ended with its source line: when in doubt, stand alone.
                    ("", "", 1),
                ],
                "{}",
                format.name()
            );
            assert!(
                records[1]
                    .message
                    .ends_with("\n\nSee the release notes.\n  warnings.warn(")
            );
        }
    }

    #[test]
    fn a_warning_from_code_without_a_file_ends_at_the_next_header() {
        let text = "\
<dynamic-code>:8: UserWarning: first line
second line of the message
<string>:1: DeprecationWarning: old
2026-11-27 13:58:04,595 - distributed.worker - INFO - next
";
        let records = assemble(text);
        let summary: Vec<(&str, &str)> = records
            .iter()
            .map(|record| (&*record.logger, record.message.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "UserWarning",
                    "<dynamic-code>:8: UserWarning: first line\nsecond line of the message"
                ),
                ("DeprecationWarning", "<string>:1: DeprecationWarning: old"),
                ("distributed.worker", "next"),
            ]
        );
    }

    #[test]
    fn a_captured_warning_keeps_its_log_header_and_takes_its_lines() {
        let text = "\
2026-11-27 13:58:04,595 - py.warnings - WARNING - /srv/app/job.py:3: UserWarning: two
lines
  warnings.warn(\"two\\nlines\")
a print
";
        let records = assemble(text);
        let summary: Vec<(&str, &str)> = records
            .iter()
            .map(|record| (&*record.logger, record.message.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "py.warnings",
                    "/srv/app/job.py:3: UserWarning: two\nlines\n  warnings.warn(\"two\\nlines\")"
                ),
                ("", "a print"),
            ]
        );
    }

    #[test]
    fn an_indented_line_after_a_print_belongs_to_the_print_and_lookalikes_stand_alone() {
        let text = "\
result table:
  a  1
note: 3: Error: not a warning
job.py:x: UserWarning: no line number
";
        let messages: Vec<String> = assemble(text).into_iter().map(|r| r.message).collect();
        assert_eq!(
            messages,
            [
                "result table:\n  a  1",
                "note: 3: Error: not a warning",
                "job.py:x: UserWarning: no line number",
            ]
        );
    }

    /// Whether the open record looks unfinished after each line of `text`.
    fn unfinished_after_each_line(text: &str) -> Vec<bool> {
        let mut assembler = RecordAssembler::new(dask_parser(), TimeZone::UTC, 1 << 20);
        let mut closed = Vec::new();
        let time = LineTime::Live {
            read_at: Timestamp::UNIX_EPOCH,
        };
        text.lines()
            .map(|line| {
                assembler.push_line(line, 0, time, false, &mut closed);
                assembler.open_record_looks_unfinished()
            })
            .collect()
    }

    #[test]
    fn tracebacks_compute_failed_blocks_and_warnings_look_unfinished_until_their_last_line() {
        let traceback = "\
2026-11-27 14:08:42,740 - distributed.batched - INFO - Batched Comm Closed
Traceback (most recent call last):
  File \"tcp.py\", line 298, in write
tornado.iostream.StreamClosedError: Stream is closed
The above exception was the direct cause of the following exception:
Traceback (most recent call last):
  File \"batched.py\", line 115, in _background_send
distributed.comm.core.CommClosedError: in <TCP>: Stream is closed
";
        assert_eq!(
            unfinished_after_each_line(traceback),
            [false, true, true, false, true, true, true, false]
        );
        let compute_failed = "\
2026-11-27 13:58:04,595 - distributed.worker - ERROR - Compute Failed
Key:       fails-42
Exception: \"ValueError('deliberate failure for input 42')\"
Traceback: '  File \"<dynamic-code>\", line 32, in fails\\n'
";
        assert_eq!(
            unfinished_after_each_line(compute_failed),
            [true, true, true, false]
        );
        let warnings = "\
job.py:3: UserWarning: careful
  warnings.warn('careful')
<string>:1: UserWarning: no source line
a print
";
        assert_eq!(
            unfinished_after_each_line(warnings),
            [true, false, false, false]
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
        let at = LineTime::Live {
            read_at: Timestamp::UNIX_EPOCH,
        };
        let mut closed = Vec::new();
        assembler.push_line(
            "2026-11-27 13:58:04,595 - distributed.worker - ERROR - x",
            0,
            at,
            false,
            &mut closed,
        );
        for offset in 1..100 {
            assembler.push_line(
                "  File \"a.py\", line 1, in f",
                offset,
                at,
                false,
                &mut closed,
            );
        }
        assembler.flush(100, &mut closed);
        let [record] = &closed[..] else {
            panic!("one record: {closed:#?}");
        };
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
                .filter(|record| !record.ts_inferred)
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
            let of_their_own = |level: &str, first_word: &str| {
                let from_records: Vec<&str> = records
                    .iter()
                    .filter(|record| record.ts_inferred && *record.level == *level)
                    .map(|record| record.message.as_str())
                    .collect();
                let expected: Vec<&str> = text
                    .lines()
                    .filter(|line| line.starts_with(first_word))
                    .collect();
                assert_eq!(from_records, expected, "{name}");
            };
            of_their_own("", "user ");
            // `exec`'d task code has no source line: each warning ends at the next header.
            of_their_own(WARNING_LEVEL, "<dynamic-code>");
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
