//! The tantivy schema of a log partition. Every partition of every tenant uses
//! this one schema, so a query parsed once runs against all of them.
//!
//! The rule a reader must not miss: only `message` is stored. Every other field is read back
//! from its fast column (`index::record`), and nothing has field norms, since hits are ordered
//! by time, never scored. This keeps the index near a quarter of the raw logs (BENCHMARKS.md).

use tantivy::schema::{
    DateOptions, DateTimePrecision, FAST, Field, IndexRecordOption, Schema, TextFieldIndexing,
    TextOptions,
};

/// The schema and its fields, looked up once.
#[derive(Debug, Clone)]
pub struct LogSchema {
    pub schema: Schema,
    /// UTC time, microseconds: fast only (time ranges run on the column).
    pub ts: Field,
    pub cluster: Field,
    pub node: Field,
    pub role: Field,
    pub source: Field,
    pub level: Field,
    pub logger: Field,
    /// The record's text, tokenized with positions (for phrases): the default search field,
    /// and the only stored one.
    pub message: Field,
    /// The stream id as a keyword (`stream_text`): dictionary-encoded, a stream id costs a
    /// few bits per record in its column where a 64-bit hash as a number would cost 8 bytes.
    pub stream: Field,
    pub seq: Field,
}

/// Names of the raw string fields a query may filter on, e.g. `node:worker-1`.
pub const KEYWORD_FIELDS: [&str; 6] = ["cluster", "node", "role", "source", "level", "logger"];

/// How a stream id is written in its keyword field: 16 lowercase hex digits.
pub fn stream_text(stream: u64) -> String {
    format!("{stream:016x}")
}

/// The stream id written by `stream_text`.
pub fn parse_stream_text(text: &str) -> Option<u64> {
    u64::from_str_radix(text, 16).ok()
}

impl LogSchema {
    /// Builds the schema.
    pub fn new() -> LogSchema {
        let mut builder = Schema::builder();
        let ts = builder.add_date_field(
            "ts",
            DateOptions::from(FAST).set_precision(DateTimePrecision::Microseconds),
        );
        let keyword = TextOptions::default()
            .set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer("raw")
                    .set_index_option(IndexRecordOption::Basic)
                    .set_fieldnorms(false),
            )
            .set_fast("raw");
        let [cluster, node, role, source, level, logger] =
            KEYWORD_FIELDS.map(|name| builder.add_text_field(name, keyword.clone()));
        let message = builder.add_text_field(
            "message",
            TextOptions::default()
                .set_indexing_options(
                    TextFieldIndexing::default()
                        .set_tokenizer("default")
                        .set_index_option(IndexRecordOption::WithFreqsAndPositions)
                        .set_fieldnorms(false),
                )
                .set_stored(),
        );
        let stream = builder.add_text_field("stream", keyword);
        let seq = builder.add_u64_field("seq", FAST);
        LogSchema {
            schema: builder.build(),
            ts,
            cluster,
            node,
            role,
            source,
            level,
            logger,
            message,
            stream,
            seq,
        }
    }
}

impl Default for LogSchema {
    fn default() -> Self {
        LogSchema::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_text_round_trips_and_sorts_like_the_number() {
        for stream in [0, 1, 0xdead_beef, u64::MAX] {
            assert_eq!(parse_stream_text(&stream_text(stream)), Some(stream));
        }
        assert!(stream_text(9) < stream_text(10));
        assert!(stream_text(0xff) < stream_text(0x100));
        assert_eq!(parse_stream_text("not hex"), None);
    }
}
