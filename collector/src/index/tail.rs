//! Live tail: the records the writer adds, as they are added, for `/api/v1/logs/tail`. The
//! writer announces each batch's new records (only while someone listens); a listener matches
//! them against its query in a small in-memory index, so the query means exactly what it
//! means in search.
//!
//! The rule a reader must not miss: a listener that falls behind is not waited for. The
//! channel keeps the last `CAPACITY` batches; a listener further behind is told it lagged and
//! must reconnect, so a slow client never slows ingest nor grows memory.

use std::sync::Arc;

use tantivy::collector::DocSetCollector;
use tantivy::{Index, IndexWriter};
use tokio::sync::broadcast;

use crate::error::{Error, Result};
use crate::index::query::LogQuery;
use crate::index::schema::LogSchema;
use crate::index::search::{Hit, SortKey, parse_query};
use crate::index::writer::{LogEntry, document};

/// Batches kept for listeners that are behind.
const CAPACITY: usize = 256;

/// Heap the in-memory index of one batch may use while it is built (tantivy's minimum is
/// 15 MB per thread).
const BATCH_INDEX_HEAP: usize = 15_000_000;

/// New records of one tenant, in the order they were added.
#[derive(Debug)]
pub struct Arrived {
    pub tenant: String,
    pub entries: Vec<LogEntry>,
}

/// Where the writer announces what it adds.
pub struct Arrivals {
    sender: broadcast::Sender<Arc<Arrived>>,
}

impl Default for Arrivals {
    fn default() -> Arrivals {
        Arrivals {
            sender: broadcast::channel(CAPACITY).0,
        }
    }
}

impl Arrivals {
    /// Tells whether anyone listens (else the writer does not copy its records).
    pub fn listening(&self) -> bool {
        self.sender.receiver_count() > 0
    }

    /// Hands `entries` of `tenant` to every listener.
    pub fn announce(&self, tenant: &str, entries: Vec<LogEntry>) {
        if entries.is_empty() {
            return;
        }
        let _ = self.sender.send(Arc::new(Arrived {
            tenant: tenant.to_owned(),
            entries,
        }));
    }

    /// A new listener, which sees what is announced from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Arrived>> {
        self.sender.subscribe()
    }
}

/// A tail's query, ready to match batches of records.
pub struct TailMatcher {
    schema: LogSchema,
    query: LogQuery,
}

impl TailMatcher {
    /// Parses `text` as search does; a bad query is `Error::BadQuery`.
    pub fn new(schema: &LogSchema, text: &str) -> Result<TailMatcher> {
        Ok(TailMatcher {
            schema: schema.clone(),
            query: parse_query(schema, text)?,
        })
    }

    /// The records of `entries`, of `tenant`, the query matches, as hits in
    /// `(ts, node, source, seq)` order.
    pub fn matching(&self, tenant: &str, entries: &[LogEntry]) -> Result<Vec<Hit>> {
        let Some(query) = self.query.for_tenant(tenant)? else {
            return Ok(Vec::new());
        };
        let index = Index::create_in_ram(self.schema.schema.clone());
        let in_memory = |source| Error::Index {
            path: "(tail)".into(),
            source,
        };
        let mut writer: IndexWriter = index
            .writer_with_num_threads(1, BATCH_INDEX_HEAP)
            .map_err(in_memory)?;
        for entry in entries {
            writer
                .add_document(document(&self.schema, entry))
                .map_err(in_memory)?;
        }
        writer.commit().map_err(in_memory)?;
        let searcher = index.reader().map_err(in_memory)?.searcher();
        let found = searcher
            .search(query.as_ref(), &DocSetCollector)
            .map_err(in_memory)?;
        // One segment, documents in the order they were added.
        let mut hits: Vec<Hit> = found
            .into_iter()
            .filter_map(|address| entries.get(address.doc_id as usize))
            .map(|entry| Hit::of(tenant, entry))
            .collect();
        hits.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(hits)
    }
}

impl Hit {
    /// The hit of `entry`, a record of `tenant`.
    fn of(tenant: &str, entry: &LogEntry) -> Hit {
        Hit {
            tenant: tenant.to_owned(),
            key: SortKey {
                ts_micros: entry.ts_micros,
                node: entry.node.clone(),
                source: entry.source.clone(),
                seq: entry.seq,
                stream: entry.stream,
            },
            cluster: entry.cluster.clone(),
            role: entry.role.clone(),
            level: entry.level.clone(),
            logger: entry.logger.clone(),
            message: entry.message.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::writer::tests::entry;

    #[test]
    fn a_batch_is_matched_as_search_would_and_comes_out_in_order() -> Result<()> {
        let schema = LogSchema::new();
        let matcher = TailMatcher::new(&schema, "\"killed by signal\" AND node:w2")?;
        let entries = vec![
            entry(30, "w2", 2, 9, "Worker process 7 was killed by signal 9"),
            entry(10, "w1", 1, 4, "Worker process 5 was killed by signal 9"),
            entry(20, "w2", 2, 8, "Worker process 6 was killed by signal 15"),
            entry(5, "w2", 2, 7, "signal killed by nothing"),
        ];
        let hits = matcher.matching("t", &entries)?;
        let seqs: Vec<u64> = hits.iter().map(|hit| hit.key.seq).collect();
        assert_eq!(seqs, [8, 9]);
        assert!(hits.iter().all(|hit| hit.tenant == "t"));
        let other_tenant = TailMatcher::new(&schema, "\"killed by signal\" AND tenant:u")?;
        assert!(other_tenant.matching("t", &entries)?.is_empty());
        assert_eq!(other_tenant.matching("u", &entries)?.len(), 3);
        assert!(TailMatcher::new(&schema, "level:(ERROR").is_err());
        Ok(())
    }

    #[test]
    fn nothing_is_copied_without_listeners_and_a_late_listener_sees_only_what_follows() {
        let arrivals = Arrivals::default();
        assert!(!arrivals.listening());
        arrivals.announce("t", vec![entry(1, "w1", 1, 1, "before")]);
        let mut listener = arrivals.subscribe();
        assert!(arrivals.listening());
        arrivals.announce("t", vec![entry(2, "w1", 1, 2, "after")]);
        let arrived = listener.try_recv().expect("one batch");
        assert_eq!(arrived.entries[0].message, "after");
        assert!(listener.try_recv().is_err());
    }
}
