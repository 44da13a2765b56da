//! The tantivy schema of a log partition. Every partition of every tenant uses
//! this one schema, so a query parsed once runs against all of them.
//!
//! The rule a reader must not miss: only `message` is stored. Every other field is read back
//! from its fast column (`index::record`), and nothing has field norms, since hits are ordered
//! by time, never scored. This keeps the index near a quarter of the raw logs (BENCHMARKS.md).
//!
//! Fields are only ever appended, and an appended field is fast-only: a partition written
//! before it existed is upgraded in place (`LogSchema::extends`), its records reading the new
//! column as absent (false), instead of being set aside.

use tantivy::schema::{
    DateOptions, DateTimePrecision, FAST, Field, IndexRecordOption, NumericOptions, Schema,
    TextFieldIndexing, TextOptions,
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
    /// The agent cut the record's text at its size limit: fast only.
    pub truncated: Field,
    /// The record's line had no timestamp of its own; the agent gave it one: fast only.
    pub ts_inferred: Field,
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
        let flag = NumericOptions::default().set_fast();
        let truncated = builder.add_bool_field("truncated", flag.clone());
        let ts_inferred = builder.add_bool_field("ts_inferred", flag);
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
            truncated,
            ts_inferred,
        }
    }

    /// Tells whether `older`, the schema of a partition on disk, is this one without some
    /// of its last fields, each of them fast-only (neither indexed nor stored). Such a
    /// partition is opened with this schema: its segments have no column for the new fields,
    /// and every reader takes a missing column as absent values.
    pub fn extends(&self, older: &Schema) -> bool {
        let current: Vec<_> = self.schema.fields().map(|(_, entry)| entry).collect();
        let before: Vec<_> = older.fields().map(|(_, entry)| entry).collect();
        before.len() < current.len()
            && current[..before.len()] == before[..]
            && current[before.len()..]
                .iter()
                .all(|entry| entry.is_fast() && !entry.is_indexed() && !entry.is_stored())
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
