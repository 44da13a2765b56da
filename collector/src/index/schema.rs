//! The tantivy schema of a log partition (DESIGN §6). Every partition of every tenant uses
//! this one schema, so a query parsed once runs against all of them.

use tantivy::schema::{
    DateOptions, DateTimePrecision, FAST, Field, INDEXED, STORED, STRING, Schema, TEXT,
};

/// The schema and its fields, looked up once.
#[derive(Debug, Clone)]
pub struct LogSchema {
    pub schema: Schema,
    /// UTC time, microseconds: indexed, fast and stored.
    pub ts: Field,
    pub cluster: Field,
    pub node: Field,
    pub role: Field,
    pub source: Field,
    pub level: Field,
    pub logger: Field,
    /// The record's text, tokenized with positions: the default search field.
    pub message: Field,
    pub stream: Field,
    pub seq: Field,
}

/// Names of the raw string fields a query may filter on, e.g. `node:worker-1`.
pub const KEYWORD_FIELDS: [&str; 6] = ["cluster", "node", "role", "source", "level", "logger"];

impl LogSchema {
    /// Builds the schema.
    pub fn new() -> LogSchema {
        let mut builder = Schema::builder();
        let ts = builder.add_date_field(
            "ts",
            DateOptions::default()
                .set_indexed()
                .set_fast()
                .set_stored()
                .set_precision(DateTimePrecision::Microseconds),
        );
        let [cluster, node, role, source, level, logger] =
            KEYWORD_FIELDS.map(|name| builder.add_text_field(name, STRING | FAST | STORED));
        let message = builder.add_text_field("message", TEXT | STORED);
        let stream = builder.add_u64_field("stream", INDEXED | FAST | STORED);
        let seq = builder.add_u64_field("seq", INDEXED | FAST | STORED);
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
