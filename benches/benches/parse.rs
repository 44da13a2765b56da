//! Divan benchmarks of the agent's record parsing over the real Dask fixture logs:
//! header parsing of one line, and whole-file record assembly with byte throughput.

use afterglow_agent::format::{LineFormat, LineParser};
use afterglow_benches::{
    DASK_HEADER_LINE, DASK_INPUT_MIN_BYTES, assemble_dask_records, dask_fixture_input,
};
use divan::Bencher;
use divan::counter::BytesCount;
use jiff::tz::TimeZone;

fn main() {
    divan::main();
}

/// Parses the header (timestamp to UTC, logger, level, message) of one Dask line.
#[divan::bench]
fn parse_dask_header_line(bencher: Bencher<'_, '_>) {
    let timezone = TimeZone::UTC;
    let parser = LineParser::new(LineFormat::Dask, None, None).expect("dask needs no regex");
    bencher
        .counter(BytesCount::of_str(DASK_HEADER_LINE))
        .bench(|| parser.parse_header(divan::black_box(DASK_HEADER_LINE), &timezone));
}

/// Assembles records from scheduler.log + worker-1.log + worker-2.log, concatenated and
/// repeated to at least 1 MiB: the throughput compared with the Python peer.
#[divan::bench]
fn assemble_dask_fixture_logs(bencher: Bencher<'_, '_>) {
    let input = dask_fixture_input(DASK_INPUT_MIN_BYTES);
    bencher
        .counter(BytesCount::new(input.len()))
        .bench(|| assemble_dask_records(divan::black_box(&input)));
}
