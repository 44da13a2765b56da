//! Fuzzes the exposition-format parser: any bytes, read as UTF-8 (lossily) and parsed in both
//! formats, must never panic.

#![no_main]

use afterglow_agent::prom::{Format, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = parse(&text, Format::Text004);
    let _ = parse(&text, Format::OpenMetrics);
});
