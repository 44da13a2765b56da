//! Fuzzes the tailer's line path: bytes split into lines (`LineSplitter`, in pieces of a
//! fuzzed size), unwrapped and joined as container-runtime lines for `cri`, then grouped into
//! records (`RecordAssembler`) in every line format, as `tail/records.rs` does. No panic, and
//! no line or record outgrows its limits.

#![no_main]

use afterglow_agent::format::{CriJoiner, CriStream, LineFormat, LineParser};
use afterglow_agent::lines::{Line, LineSplitter};
use afterglow_agent::multiline::{AssembledRecord, RecordAssembler};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use libfuzzer_sys::fuzz_target;

/// A `regex` format with a `ts_format`, and one that reads the time without one.
const REGEX_WITH_TS_FORMAT: &str = r"^(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+) (?P<level>[A-Z]+) (?P<logger>\S+) (?P<message>.*)$";
const REGEX_WITHOUT_TS_FORMAT: &str = r"^(?P<ts>\S+) \[(?P<level>\w+)\] (?P<message>.*)";

fn parser(choice: u8) -> LineParser {
    let made = match choice % 7 {
        0 => LineParser::new(LineFormat::Dask, None, None),
        1 => LineParser::new(LineFormat::DaskIso, None, None),
        2 => LineParser::new(LineFormat::DaskPipe, None, None),
        3 => LineParser::new(
            LineFormat::Regex,
            Some(REGEX_WITH_TS_FORMAT),
            Some("%Y-%m-%d %H:%M:%S,%f"),
        ),
        4 => LineParser::new(LineFormat::Regex, Some(REGEX_WITHOUT_TS_FORMAT), None),
        5 => LineParser::new(LineFormat::Cri, None, None),
        _ => LineParser::new(LineFormat::Plain, None, None),
    };
    made.expect("the fuzzed formats are valid")
}

/// One file's records, as `tail::records::FileRecords` keeps them.
enum Records {
    Plain(RecordAssembler),
    Cri {
        joiner: CriJoiner,
        pipes: [RecordAssembler; 2],
    },
}

struct Limits {
    max_line_bytes: usize,
    max_record_bytes: usize,
}

impl Limits {
    fn check_record(&self, record: &AssembledRecord) {
        // A line may grow by U+FFFD replacing bad bytes (3 bytes for 1); a record's first line
        // is kept whole, later lines only while the record fits.
        let bound = (3 * self.max_line_bytes).max(self.max_record_bytes);
        assert!(
            record.message.len() <= bound,
            "record of {} bytes, over {bound}",
            record.message.len()
        );
    }

    fn check_line(&self, line: &Line<'_>) {
        assert!(line.text.len() <= 3 * self.max_line_bytes);
    }
}

fn pipe(stream: CriStream) -> usize {
    match stream {
        CriStream::Stdout => 0,
        CriStream::Stderr => 1,
    }
}

fuzz_target!(|data: &[u8]| {
    let [format_choice, limits_choice, chunk_choice, rest @ ..] = data else {
        return;
    };
    let limits = Limits {
        max_line_bytes: [8, 64, 1024, 64 * 1024][usize::from(limits_choice % 4)],
        max_record_bytes: [16, 256, 4096, 1 << 20][usize::from((limits_choice >> 2) % 4)],
    };
    let timezone = if limits_choice & 0x80 != 0 {
        // Daylight saving time: local times in the gap and the fold.
        TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").expect("a valid POSIX zone")
    } else {
        TimeZone::UTC
    };
    let chunk_bytes = [1, 3, 17, 256, 8192][usize::from(chunk_choice % 5)];
    let read_at = Timestamp::from_second(1_795_787_813).expect("a valid time");
    let parser = parser(*format_choice);
    let assembler =
        || RecordAssembler::new(parser.clone(), timezone.clone(), limits.max_record_bytes);
    let mut records = if format_choice % 7 == 5 {
        Records::Cri {
            joiner: CriJoiner::new(limits.max_line_bytes),
            pipes: [assembler(), assembler()],
        }
    } else {
        Records::Plain(assembler())
    };

    let push = |line: Line<'_>, records: &mut Records| {
        limits.check_line(&line);
        let closed = match records {
            Records::Plain(assembler) => {
                assembler.push_line(&line.text, line.offset, read_at, line.truncated)
            }
            Records::Cri { joiner, pipes } => match joiner.push(&line.text) {
                Ok(Some(joined)) => {
                    assert!(joined.content.len() <= limits.max_line_bytes * 3);
                    pipes[pipe(joined.stream)].push_line(
                        &joined.content,
                        line.offset,
                        joined.ts,
                        joined.truncated,
                    )
                }
                Ok(None) | Err(_) => None,
            },
        };
        if let Some(record) = closed {
            limits.check_record(&record);
        }
    };

    let mut splitter = LineSplitter::new(0, limits.max_line_bytes);
    for piece in rest.chunks(chunk_bytes) {
        let (_, stopped) = splitter.push(piece, |line| {
            push(line, &mut records);
            true
        });
        assert!(!stopped);
        assert!(splitter.complete_lines_end() <= splitter.read_offset());
    }
    splitter.finish(|line| push(line, &mut records));
    assert_eq!(splitter.read_offset(), rest.len() as u64);

    let end = splitter.complete_lines_end();
    let mut flushed = Vec::new();
    match &mut records {
        Records::Plain(assembler) => flushed.extend(assembler.flush()),
        Records::Cri { joiner, pipes } => {
            for part in joiner.flush() {
                flushed.extend(pipes[pipe(part.stream)].push_line(
                    &part.content,
                    end,
                    part.ts,
                    part.truncated,
                ));
            }
            for assembler in pipes.iter_mut() {
                flushed.extend(assembler.flush());
            }
        }
    }
    for record in &flushed {
        limits.check_record(record);
    }
});
