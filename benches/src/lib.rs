//! Benchmark inputs built from the real Dask fixture logs, and the loop that feeds them to the
//! agent's record assembler the way the tailer does (one line at a time, with its byte offset).

use std::hint::black_box;

use afterglow_agent::format::{LineFormat, LineParser};
use afterglow_agent::multiline::{LineTime, RecordAssembler};
use jiff::Timestamp;
use jiff::tz::TimeZone;

/// The Dask fixture logs of `tests/fixtures/dask/logs`, in the order they are concatenated:
/// scheduler, worker-1, worker-2. Each ends with a newline.
pub const DASK_FIXTURE_LOGS: [&str; 3] = [
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/dask/logs/scheduler.log"
    )),
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/dask/logs/worker-1.log"
    )),
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/dask/logs/worker-2.log"
    )),
];

/// One header line, copied from `worker-1.log` line 2.
pub const DASK_HEADER_LINE: &str = "2026-11-27 13:56:53,567 - distributed.worker - INFO -       Start worker at:      tcp://127.0.0.1:42737";

/// Size the throughput input reaches at least: 1 MiB. The Python peer
/// (`benches/peer/python_dask_parse.py`) builds the same input by the same rule.
pub const DASK_INPUT_MIN_BYTES: usize = 1 << 20;

/// The agent's default record size limit (`logs.max_line_bytes`).
pub const MAX_RECORD_BYTES: usize = 1 << 20;

/// The fixture logs concatenated, the whole concatenation repeated until the text is at least
/// `min_bytes` long.
pub fn dask_fixture_input(min_bytes: usize) -> String {
    let once: String = DASK_FIXTURE_LOGS.concat();
    let copies = min_bytes.div_ceil(once.len()).max(1);
    once.repeat(copies)
}

/// Feeds every line of `text` to a fresh Dask-format assembler in UTC, flushes it, and returns
/// how many records came out. Every record is passed through `black_box` so none is optimised
/// away.
pub fn assemble_dask_records(text: &str) -> usize {
    let time = LineTime::Backlog {
        file_modified: Timestamp::UNIX_EPOCH,
    };
    let parser = LineParser::new(LineFormat::Dask, None, None).expect("dask needs no regex");
    let mut assembler = RecordAssembler::new(parser, TimeZone::UTC, MAX_RECORD_BYTES);
    let mut records = 0;
    let mut offset = 0u64;
    let mut closed = Vec::with_capacity(4);
    for line in text.split_inclusive('\n') {
        let content = line.strip_suffix('\n').unwrap_or(line);
        assembler.push_line(content, offset, time, false, &mut closed);
        records += closed.len();
        for record in closed.drain(..) {
            black_box(record);
        }
        offset += line.len() as u64;
    }
    assembler.end_read(&mut closed);
    assembler.flush(offset, &mut closed);
    records += closed.len();
    for record in closed.drain(..) {
        black_box(record);
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_line_is_a_fixture_line_that_parses() {
        assert!(
            DASK_FIXTURE_LOGS[1]
                .lines()
                .any(|line| line == DASK_HEADER_LINE)
        );
        let header = LineParser::new(LineFormat::Dask, None, None)
            .expect("dask needs no regex")
            .parse_header(DASK_HEADER_LINE, &TimeZone::UTC)
            .expect("a Dask header");
        assert_eq!(header.logger, "distributed.worker");
        assert_eq!(header.level, "INFO");
        assert_eq!(
            header.ts.expect("a timestamp").to_string(),
            "2026-11-27T13:56:53.567Z"
        );
    }

    #[test]
    fn input_repeats_whole_fixture_sets_past_one_mib() {
        let once = DASK_FIXTURE_LOGS.concat();
        let input = dask_fixture_input(DASK_INPUT_MIN_BYTES);
        assert!(input.len() >= DASK_INPUT_MIN_BYTES);
        assert!(input.len() < DASK_INPUT_MIN_BYTES + once.len());
        assert_eq!(input.len() % once.len(), 0);
    }

    #[test]
    fn repeating_the_input_repeats_the_records() {
        let once = assemble_dask_records(&DASK_FIXTURE_LOGS.concat());
        let input = dask_fixture_input(DASK_INPUT_MIN_BYTES);
        let copies = input.len() / DASK_FIXTURE_LOGS.concat().len();
        assert_eq!(assemble_dask_records(&input), once * copies);
        println!(
            "{copies} copies, {} bytes, {} records",
            input.len(),
            once * copies
        );
    }
}
