//! Divan benchmarks of the agent's exposition-format parser over real pages: a Dask worker's
//! and a Dask scheduler's `/metrics` under load, and a node_exporter page.

use afterglow_agent::prom::{Format, parse};
use divan::Bencher;
use divan::counter::BytesCount;

fn main() {
    divan::main();
}

/// The pages, as the Python peer (`benches/peer/python_prom_parse.py`) reads them too.
const PAGES: [(&str, &str); 3] = [
    (
        "dask_worker_load",
        include_str!("../../tests/fixtures/dask/metrics/worker-1-metrics-t2-load.prom"),
    ),
    (
        "dask_scheduler_load",
        include_str!("../../tests/fixtures/dask/metrics/scheduler-metrics-t2-load.prom"),
    ),
    (
        "node_exporter",
        include_str!("../../tests/fixtures/node_exporter/metrics.prom"),
    ),
];

/// Parses one whole page (text format 0.0.4, as Dask and node_exporter serve it).
#[divan::bench(args = ["dask_worker_load", "dask_scheduler_load", "node_exporter"])]
fn parse_page(bencher: Bencher<'_, '_>, name: &str) {
    let (_, page) = PAGES
        .iter()
        .find(|(page_name, _)| *page_name == name)
        .expect("a known page");
    let parsed = parse(page, Format::Text004);
    assert!(parsed.problems.is_empty(), "{name}: {:?}", parsed.problems);
    bencher
        .counter(BytesCount::of_str(page))
        .bench(|| parse(divan::black_box(page), Format::Text004));
}
