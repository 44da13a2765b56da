//! Reading records back from a partition: `message` from the doc store, every other field
//! from its fast column (the schema stores nothing else); and the cache that opens each
//! segment's fast columns once, for every query that reads them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tantivy::columnar::{Column, StrColumn};
use tantivy::index::SegmentId;
use tantivy::schema::{Field, Value};
use tantivy::{DateTime, DocAddress, DocId, Searcher, SegmentOrdinal, SegmentReader};
use tantivy::{TantivyDocument, TantivyError};

use crate::index::schema::{LogSchema, parse_stream_text};
use crate::index::search::{Hit, SortKey};

/// The fast columns of one segment.
pub struct SegmentColumns {
    pub ts: Column<DateTime>,
    cluster: Option<StrColumn>,
    node: Option<StrColumn>,
    role: Option<StrColumn>,
    source: Option<StrColumn>,
    level: Option<StrColumn>,
    logger: Option<StrColumn>,
    stream: Option<StrColumn>,
    pub seq: Column<u64>,
    /// `None` in a segment written before the field existed: every record reads false.
    truncated: Option<Column<bool>>,
    ts_inferred: Option<Column<bool>>,
}

impl SegmentColumns {
    fn open(reader: &SegmentReader) -> tantivy::Result<SegmentColumns> {
        let fast = reader.fast_fields();
        Ok(SegmentColumns {
            ts: fast.date("ts")?,
            cluster: fast.str("cluster")?,
            node: fast.str("node")?,
            role: fast.str("role")?,
            source: fast.str("source")?,
            level: fast.str("level")?,
            logger: fast.str("logger")?,
            stream: fast.str("stream")?,
            seq: fast.u64("seq")?,
            truncated: fast.column_opt("truncated")?,
            ts_inferred: fast.column_opt("ts_inferred")?,
        })
    }

    /// The sort key of `doc`, whose `ts` the caller has read already.
    pub fn key(&self, doc: DocId, ts_micros: i64) -> SortKey {
        SortKey {
            ts_micros,
            node: first_str(self.node.as_ref(), doc),
            source: first_str(self.source.as_ref(), doc),
            seq: self.seq.first(doc).unwrap_or_default(),
            stream: parse_stream_text(&first_str(self.stream.as_ref(), doc)).unwrap_or_default(),
        }
    }

    /// The string column of the keyword field `name` (one of `KEYWORD_FIELDS`), if the
    /// segment has one.
    pub fn keyword(&self, name: &str) -> Option<&StrColumn> {
        match name {
            "cluster" => self.cluster.as_ref(),
            "node" => self.node.as_ref(),
            "role" => self.role.as_ref(),
            "source" => self.source.as_ref(),
            "level" => self.level.as_ref(),
            "logger" => self.logger.as_ref(),
            _ => None,
        }
    }

    fn ts_micros(&self, doc: DocId) -> i64 {
        self.ts
            .first(doc)
            .map_or(0, |ts| ts.into_timestamp_micros())
    }
}

/// Every segment's fast columns, opened on first use and kept until the segment leaves its
/// partition's reader. Opening a column reads its dictionary and block metadata: more work than
/// a rare-term search itself, so a query must not pay it again for every segment it touches.
#[derive(Default)]
pub struct ColumnCache {
    segments: Mutex<HashMap<SegmentId, Arc<SegmentColumns>>>,
}

impl ColumnCache {
    /// The columns of the segment `reader` reads.
    pub fn get(&self, reader: &SegmentReader) -> tantivy::Result<Arc<SegmentColumns>> {
        let id = reader.segment_id();
        if let Some(columns) = self.lock().get(&id) {
            return Ok(Arc::clone(columns));
        }
        let columns = Arc::new(SegmentColumns::open(reader)?);
        self.lock().insert(id, Arc::clone(&columns));
        Ok(columns)
    }

    /// Drops the columns of `segments` (merged away, or their partition closed).
    pub fn forget(&self, segments: impl IntoIterator<Item = SegmentId>) {
        let mut cached = self.lock();
        for id in segments {
            cached.remove(&id);
        }
    }

    /// How many segments have their columns open.
    pub fn open_segments(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SegmentId, Arc<SegmentColumns>>> {
        self.segments
            .lock()
            .expect("column cache lock is not poisoned")
    }
}

/// The first value of `doc` in a string column, or "" when it has none.
fn first_str(column: Option<&StrColumn>, doc: DocId) -> String {
    let mut text = String::new();
    if let Some(column) = column
        && let Some(ord) = column.term_ords(doc).next()
    {
        let _ = column.ord_to_str(ord, &mut text);
    }
    text
}

/// The value of `doc` in a flag column, false when the column or the value is missing.
fn flag(column: Option<&Column<bool>>, doc: DocId) -> bool {
    column.and_then(|column| column.first(doc)).unwrap_or(false)
}

/// Loads hits from one searcher, keeping each segment's columns open between hits.
pub struct RecordLoader<'a> {
    searcher: &'a Searcher,
    /// The tenant of the searcher's partition.
    tenant: &'a str,
    message: Field,
    cache: &'a ColumnCache,
    columns: HashMap<SegmentOrdinal, Arc<SegmentColumns>>,
}

impl<'a> RecordLoader<'a> {
    /// Loads from `searcher`, of a partition of `tenant`.
    pub fn new(
        searcher: &'a Searcher,
        tenant: &'a str,
        schema: &LogSchema,
        cache: &'a ColumnCache,
    ) -> RecordLoader<'a> {
        RecordLoader {
            searcher,
            tenant,
            message: schema.message,
            cache,
            columns: HashMap::new(),
        }
    }

    /// The record at `address`.
    pub fn load(&mut self, address: DocAddress) -> Result<Hit, TantivyError> {
        let document: TantivyDocument = self.searcher.doc(address)?;
        let columns = match self.columns.entry(address.segment_ord) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => entry.insert(
                self.cache
                    .get(self.searcher.segment_reader(address.segment_ord))?,
            ),
        };
        let doc = address.doc_id;
        Ok(Hit {
            tenant: self.tenant.to_owned(),
            key: columns.key(doc, columns.ts_micros(doc)),
            cluster: first_str(columns.cluster.as_ref(), doc),
            role: first_str(columns.role.as_ref(), doc),
            level: first_str(columns.level.as_ref(), doc),
            logger: first_str(columns.logger.as_ref(), doc),
            message: document
                .get_first(self.message)
                .and_then(|value| value.as_str())
                .unwrap_or_default()
                .to_owned(),
            truncated: flag(columns.truncated.as_ref(), doc),
            ts_inferred: flag(columns.ts_inferred.as_ref(), doc),
        })
    }
}
