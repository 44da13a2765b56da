//! Record context: the records just before and after one record of a stream, in `seq` order.
//!
//! The rule a reader must not miss: a stream's records can sit in several day partitions (a
//! log file written across midnight), so the window is gathered from every partition of the
//! record's tenant and merged by `seq`; never from the record's partition alone.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::Column;
use tantivy::query::{Query, TermQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::{DocAddress, DocId, Score, SegmentOrdinal, SegmentReader, Term};

use crate::budget;
use crate::error::Result;
use crate::index::partition::LogStore;
use crate::index::partition_cache::OpenPartition;
use crate::index::record::RecordLoader;
use crate::index::schema::stream_text;
use crate::index::search::Hit;

/// Most records a context may ask for on each side.
pub const MAX_CONTEXT: usize = 1000;

/// Which record to show the context of, and how much of it.
#[derive(Debug, Clone)]
pub struct ContextRequest {
    /// Tenants the caller may read: nothing else is searched.
    pub tenants: Vec<String>,
    pub stream: u64,
    pub seq: u64,
    /// Records wanted before the record (at most `MAX_CONTEXT`).
    pub before: usize,
    /// Records wanted after the record (at most `MAX_CONTEXT`).
    pub after: usize,
}

/// A record and its neighbours in its stream, each side in ascending `seq` order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    pub before: Vec<Hit>,
    pub hit: Hit,
    pub after: Vec<Hit>,
}

/// Returns the context of `(stream, seq)`, or `None` when no readable tenant holds that record.
/// The first tenant (in `request.tenants` order) holding the record is the one searched.
pub fn context(store: &LogStore, request: &ContextRequest) -> Result<Option<Context>> {
    let schema = store.schema();
    let query = TermQuery::new(
        Term::from_field_text(schema.stream, &stream_text(request.stream)),
        IndexRecordOption::Basic,
    );
    let collector = WindowCollector {
        seq: request.seq,
        before: request.before.min(MAX_CONTEXT),
        after: request.after.min(MAX_CONTEXT),
    };
    for tenant in &request.tenants {
        let partitions = store.partitions_for(std::slice::from_ref(tenant), None, None)?;
        if let Some(context) = context_in(store, &partitions, &query, &collector)? {
            return Ok(Some(context));
        }
    }
    Ok(None)
}

/// Gathers the window over `partitions` (one tenant's), then loads only the chosen records.
fn context_in(
    store: &LogStore,
    partitions: &[OpenPartition],
    query: &dyn Query,
    collector: &WindowCollector,
) -> Result<Option<Context>> {
    let mut searchers = Vec::with_capacity(partitions.len());
    let mut merged = Window::default();
    for (partition_index, partition) in partitions.iter().enumerate() {
        budget::check()?;
        let searcher = partition.reader.searcher();
        let window = searcher
            .search(query, collector)
            .map_err(|source| partition.error(source))?;
        let tag = |(seq, address)| (seq, partition_index, address);
        merged.hit = merged.hit.or(window.hit.map(tag));
        merged.before.extend(window.before.into_iter().map(tag));
        merged.after.extend(window.after.into_iter().map(tag));
        searchers.push(searcher);
    }
    let Some(hit) = merged.hit else {
        return Ok(None);
    };
    merged.before.sort_unstable_by_key(|(seq, ..)| *seq);
    let skipped = merged.before.len().saturating_sub(collector.before);
    merged.before.drain(..skipped);
    merged.after.sort_unstable_by_key(|(seq, ..)| *seq);
    merged.after.truncate(collector.after);
    let mut loaders: Vec<RecordLoader<'_>> = searchers
        .iter()
        .zip(partitions)
        .map(|(searcher, partition)| {
            RecordLoader::new(
                searcher,
                &partition.key.tenant,
                store.schema(),
                store.columns(),
            )
        })
        .collect();
    let mut load = |(_, partition_index, address): (u64, usize, DocAddress)| -> Result<Hit> {
        loaders[partition_index]
            .load(address)
            .map_err(|source| partitions[partition_index].error(source))
    };
    let before = merged
        .before
        .into_iter()
        .map(&mut load)
        .collect::<Result<_>>()?;
    let hit = load(hit)?;
    let after = merged.after.into_iter().map(load).collect::<Result<_>>()?;
    Ok(Some(Context { before, hit, after }))
}

/// Finds, among one stream's documents, the record at `seq` and the nearest `before` and
/// `after` records around it, reading the fast `seq` column only.
struct WindowCollector {
    seq: u64,
    before: usize,
    after: usize,
}

/// What one segment (or a merge of segments) found: `(seq, address)` pairs, unsorted.
#[derive(Debug)]
struct Window<T> {
    hit: Option<T>,
    before: Vec<T>,
    after: Vec<T>,
}

// Not derived: a derive would require `T: Default`, which `DocAddress` is not.
impl<T> Default for Window<T> {
    fn default() -> Self {
        Window {
            hit: None,
            before: Vec::new(),
            after: Vec::new(),
        }
    }
}

struct WindowSegmentCollector {
    segment: SegmentOrdinal,
    target: u64,
    before_limit: usize,
    after_limit: usize,
    seq: Column<u64>,
    hit: Option<(u64, DocAddress)>,
    /// Heap whose top is the smallest seq kept, i.e. the farthest of the nearest-before records.
    before: BinaryHeap<(Reverse<u64>, DocAddress)>,
    /// Heap whose top is the largest seq kept, i.e. the farthest of the nearest-after records.
    after: BinaryHeap<(u64, DocAddress)>,
}

impl Collector for WindowCollector {
    type Fruit = Window<(u64, DocAddress)>;
    type Child = WindowSegmentCollector;

    fn for_segment(
        &self,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<WindowSegmentCollector> {
        Ok(WindowSegmentCollector {
            segment,
            target: self.seq,
            before_limit: self.before,
            after_limit: self.after,
            seq: reader.fast_fields().u64("seq")?,
            hit: None,
            before: BinaryHeap::with_capacity(self.before + 1),
            after: BinaryHeap::with_capacity(self.after + 1),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Self::Fruit>) -> tantivy::Result<Self::Fruit> {
        let mut merged = Window::default();
        for fruit in fruits {
            merged.hit = merged.hit.or(fruit.hit);
            merged.before.extend(fruit.before);
            merged.after.extend(fruit.after);
        }
        merged.before.sort_unstable_by_key(|(seq, _)| Reverse(*seq));
        merged.before.truncate(self.before);
        merged.after.sort_unstable_by_key(|(seq, _)| *seq);
        merged.after.truncate(self.after);
        Ok(merged)
    }
}

impl SegmentCollector for WindowSegmentCollector {
    type Fruit = Window<(u64, DocAddress)>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        let Some(seq) = self.seq.first(doc) else {
            return;
        };
        let address = DocAddress::new(self.segment, doc);
        match seq.cmp(&self.target) {
            Ordering::Equal => self.hit = Some((seq, address)),
            Ordering::Less => {
                // Nearest before = largest seq: keep the `before_limit` largest.
                self.before.push((Reverse(seq), address));
                if self.before.len() > self.before_limit {
                    self.before.pop();
                }
            }
            Ordering::Greater => {
                self.after.push((seq, address));
                if self.after.len() > self.after_limit {
                    self.after.pop();
                }
            }
        }
    }

    fn harvest(self) -> Self::Fruit {
        Window {
            hit: self.hit,
            before: self
                .before
                .into_iter()
                .map(|(Reverse(seq), address)| (seq, address))
                .collect(),
            after: self.after.into_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::config::DEFAULT_MAX_OPEN_PARTITIONS;
    use crate::index::writer::LogWriter;
    use crate::index::writer::tests::entry;

    /// Midnight UTC starting 2026-11-28.
    const MIDNIGHT: i64 = 1_795_824_000_000_000;

    /// Stream 1 (node `a`) has seqs 0, 10, …, 90 with 0..=40 before midnight and the rest
    /// after; stream 2 (node `b`) interleaves in time with seqs 0..10.
    async fn store_across_midnight() -> Result<(tempfile::TempDir, Arc<LogStore>)> {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(LogStore::open(dir.path(), DEFAULT_MAX_OPEN_PARTITIONS)?);
        let writer = LogWriter::start(Arc::clone(&store), Duration::from_millis(20), None)?;
        let mut entries: Vec<_> = (0..10u64)
            .map(|index| {
                let ts = MIDNIGHT - 5_000_000 + index as i64 * 1_000_000;
                entry(ts, "a", 1, index * 10, &format!("a {}", index * 10))
            })
            .collect();
        entries.extend((0..10u64).map(|index| {
            let ts = MIDNIGHT - 5_000_000 + index as i64 * 1_000_000;
            entry(ts, "b", 2, index, &format!("b {index}"))
        }));
        writer.write("t".to_owned(), entries).await?;
        writer.shutdown().await;
        assert_eq!(store.keys_for(&["t".to_owned()], None, None).len(), 2);
        Ok((dir, store))
    }

    fn request(stream: u64, seq: u64, before: usize, after: usize) -> ContextRequest {
        ContextRequest {
            tenants: vec!["t".to_owned()],
            stream,
            seq,
            before,
            after,
        }
    }

    fn messages(hits: &[Hit]) -> Vec<&str> {
        hits.iter().map(|hit| hit.message.as_str()).collect()
    }

    #[tokio::test]
    async fn context_in_the_middle_is_ordered_by_seq_within_the_stream() -> Result<()> {
        let (_dir, store) = store_across_midnight().await?;
        let found = context(&store, &request(2, 5, 2, 3))?.expect("record exists");
        assert_eq!(messages(&found.before), ["b 3", "b 4"]);
        assert_eq!(found.hit.message, "b 5");
        assert_eq!(found.hit.key.stream, 2);
        assert_eq!(found.hit.key.node, "b");
        assert_eq!(messages(&found.after), ["b 6", "b 7", "b 8"]);
        Ok(())
    }

    #[tokio::test]
    async fn context_at_the_start_of_a_stream_has_nothing_before() -> Result<()> {
        let (_dir, store) = store_across_midnight().await?;
        let found = context(&store, &request(1, 0, 10, 2))?.expect("record exists");
        assert!(found.before.is_empty());
        assert_eq!(found.hit.message, "a 0");
        assert_eq!(messages(&found.after), ["a 10", "a 20"]);
        Ok(())
    }

    #[tokio::test]
    async fn context_spans_the_day_boundary() -> Result<()> {
        let (_dir, store) = store_across_midnight().await?;
        let found = context(&store, &request(1, 40, 3, 3))?.expect("record exists");
        assert_eq!(messages(&found.before), ["a 10", "a 20", "a 30"]);
        assert!(found.hit.key.ts_micros < MIDNIGHT);
        assert_eq!(messages(&found.after), ["a 50", "a 60", "a 70"]);
        assert!(
            found.after[0].key.ts_micros >= MIDNIGHT,
            "from the next day"
        );
        let found = context(&store, &request(1, 50, 2, 100))?.expect("record exists");
        assert_eq!(messages(&found.before), ["a 30", "a 40"]);
        assert_eq!(messages(&found.after), ["a 60", "a 70", "a 80", "a 90"]);
        Ok(())
    }

    #[tokio::test]
    async fn unknown_records_and_unreadable_tenants_find_nothing() -> Result<()> {
        let (_dir, store) = store_across_midnight().await?;
        assert_eq!(context(&store, &request(1, 5, 1, 1))?, None, "no such seq");
        assert_eq!(
            context(&store, &request(3, 0, 1, 1))?,
            None,
            "no such stream"
        );
        let mut other_tenant = request(1, 0, 1, 1);
        other_tenant.tenants = vec!["u".to_owned()];
        assert_eq!(context(&store, &other_tenant)?, None);
        Ok(())
    }
}
