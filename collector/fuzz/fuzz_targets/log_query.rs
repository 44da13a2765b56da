//! Fuzzes the log query language of `/api/v1/logs/search` (`q=`, tantivy's query syntax over
//! the log schema): any text parses or is a clear error, never a panic.

#![no_main]

use std::sync::OnceLock;

use afterglow_collector::index::schema::LogSchema;
use afterglow_collector::index::search::parse_query;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    static SCHEMA: OnceLock<LogSchema> = OnceLock::new();
    let schema = SCHEMA.get_or_init(LogSchema::new);
    let text = String::from_utf8_lossy(data);
    if let Err(error) = parse_query(schema, &text) {
        assert!(!error.to_string().is_empty());
    }
});
