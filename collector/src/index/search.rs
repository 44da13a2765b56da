//! Log search: parses a query, runs it over the partitions that can hold matches, and merges
//! hits in `(ts, node, source, seq, stream)` order with cursor pagination.
//!
//! The rule a reader must not miss: order and cursors use the full sort key, not just `ts`.
//! Dask writes many records in the same millisecond, so a cursor on `ts` alone would skip or
//! repeat records at page boundaries.

use std::cmp::Ordering;
use std::sync::Arc;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::query::QueryParser;
use tantivy::tokenizer::TokenizerManager;
use tantivy::{COLLECT_BLOCK_BUFFER_LEN, DocAddress, DocId, Score, SegmentOrdinal, SegmentReader};

use crate::budget;
use crate::error::Result;
use crate::index::partition::LogStore;
use crate::index::query::{FieldFilter, LogQuery};
use crate::index::query_bounds::check_log_query;
use crate::index::record::{ColumnCache, RecordLoader, SegmentColumns};
use crate::index::schema::LogSchema;

/// Most hits one page may ask for.
pub const MAX_LIMIT: usize = 10_000;

/// Which end of time a search starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SortOrder {
    /// Oldest first.
    #[default]
    Asc,
    /// Newest first.
    Desc,
}

/// A search over the partitions of some tenants.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    /// Tenants the caller may read: nothing else is searched.
    pub tenants: Vec<String>,
    /// tantivy query syntax, default field `message`; empty or `*` matches everything.
    pub query: String,
    /// Facet filters ANDed to `query`.
    pub filters: Vec<FieldFilter>,
    /// Inclusive lower bound.
    pub start: Option<Timestamp>,
    /// Exclusive upper bound.
    pub end: Option<Timestamp>,
    pub limit: usize,
    pub order: SortOrder,
    /// Return only hits after this key (in `order`).
    pub after: Option<SortKey>,
}

/// The total order of hits. Field order is the comparison order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SortKey {
    pub ts_micros: i64,
    pub node: String,
    pub source: String,
    pub seq: u64,
    pub stream: u64,
}

impl SortKey {
    /// Encodes the key as an opaque, URL-safe cursor.
    pub fn to_cursor(&self) -> String {
        let json = serde_json::to_vec(self).expect("a sort key serializes");
        json.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    /// Decodes a cursor made by `to_cursor`.
    pub fn from_cursor(cursor: &str) -> Option<SortKey> {
        if !cursor.len().is_multiple_of(2) || !cursor.is_ascii() {
            return None;
        }
        let bytes: Option<Vec<u8>> = (0..cursor.len())
            .step_by(2)
            .map(|at| u8::from_str_radix(&cursor[at..at + 2], 16).ok())
            .collect();
        serde_json::from_slice(&bytes?).ok()
    }
}

/// One record found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// The tenant whose partition holds it (records do not store it).
    pub tenant: String,
    pub key: SortKey,
    pub cluster: String,
    pub role: String,
    pub level: String,
    pub logger: String,
    pub message: String,
    /// The agent cut the message at its size limit.
    pub truncated: bool,
    /// The record's time was given by the agent, the line having none.
    pub ts_inferred: bool,
}

/// One page of hits and the key to continue after, if more hits exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchPage {
    pub hits: Vec<Hit>,
    pub next: Option<SortKey>,
    /// How many partitions were searched for it (the walk stops once the page is full).
    pub partitions_searched: usize,
}

/// Parses `text` in tantivy's query syntax with `message` as the default field and AND
/// between terms, plus `tenant:` (`index::query`). Returns the parser's message on error,
/// and refuses a query too long or nested too deeply to parse safely (`query_bounds`) before
/// the parser sees it.
pub fn parse_query(schema: &LogSchema, text: &str) -> Result<LogQuery> {
    parse_filtered_query(schema, text, &[])
}

/// `parse_query` of `text` ANDed with facet `filters`.
pub fn parse_filtered_query(
    schema: &LogSchema,
    text: &str,
    filters: &[FieldFilter],
) -> Result<LogQuery> {
    check_log_query(text)?;
    let mut parser = QueryParser::new(
        schema.schema.clone(),
        vec![schema.message],
        TokenizerManager::default(),
    );
    parser.set_conjunction_by_default();
    // For the wildcards `query_fields` rewrites; a `/regex/` typed is refused before this.
    parser.allow_regexes();
    LogQuery::parse(&parser, &schema.schema, text, filters)
}

/// Runs `request` against `store`.
pub fn search(store: &LogStore, request: &SearchRequest) -> Result<SearchPage> {
    let schema = store.schema();
    let query = parse_filtered_query(schema, &request.query, &request.filters)?;
    let range = (request.start, request.end);
    let start_micros = request.start.map(|ts| ts.as_microsecond());
    let end_micros = request.end.map(|ts| ts.as_microsecond());
    let limit = request.limit.clamp(1, MAX_LIMIT);
    let collector = OrderedCollector {
        columns: store.columns(),
        // One more than asked, to know whether another page exists.
        limit: limit + 1,
        order: request.order,
        after: request.after.clone(),
        start_micros,
        end_micros,
    };
    // Days are walked in the page's order; every key of a later day comes after every key
    // of an earlier one, so once a day leaves more candidates than the page holds, no later
    // day can change the page (the newest 100 usually need today alone). A partition is
    // opened when the walk reaches its day.
    let mut keys = Vec::new();
    for key in store.keys_for(&request.tenants, request.start, request.end) {
        if let Some(tenant_query) = query.for_tenant(&key.tenant)? {
            keys.push((key, tenant_query));
        }
    }
    if request.order == SortOrder::Desc {
        keys.reverse();
    }
    let mut candidates = Vec::new();
    let mut partitions = Vec::with_capacity(keys.len());
    let mut searchers = Vec::with_capacity(keys.len());
    let mut searched = 0;
    while searched < keys.len() {
        let day = keys[searched].0.day;
        while searched < keys.len() && keys[searched].0.day == day {
            budget::check()?;
            let (key, tenant_query) = &keys[searched];
            let partition = store.partition(key)?;
            let searcher = partition.reader.searcher();
            let found = searcher
                .search(
                    partition.within(tenant_query.as_ref(), range).as_ref(),
                    &collector,
                )
                .map_err(|source| partition.error(source))?;
            candidates.extend(
                found
                    .into_iter()
                    .map(|(key, address)| (key, searched, address)),
            );
            searchers.push(searcher);
            partitions.push(partition);
            searched += 1;
        }
        if candidates.len() > limit {
            break;
        }
    }
    candidates.sort_by(|a, b| request.order.compare(&a.0, &b.0));
    let has_more = candidates.len() > limit;
    candidates.truncate(limit);
    let mut loaders: Vec<RecordLoader<'_>> = searchers
        .iter()
        .zip(&partitions)
        .map(|(searcher, partition)| {
            RecordLoader::new(searcher, &partition.key.tenant, schema, store.columns())
        })
        .collect();
    let mut hits = Vec::with_capacity(candidates.len());
    for (_, partition_index, address) in candidates {
        let hit = loaders[partition_index]
            .load(address)
            .map_err(|source| partitions[partition_index].error(source))?;
        hits.push(hit);
    }
    let next = if has_more {
        hits.last().map(|hit| hit.key.clone())
    } else {
        None
    };
    Ok(SearchPage {
        hits,
        next,
        partitions_searched: searched,
    })
}

impl SortOrder {
    /// Compares two keys so that the first to return sorts first.
    pub fn compare(self, a: &SortKey, b: &SortKey) -> Ordering {
        match self {
            SortOrder::Asc => a.cmp(b),
            SortOrder::Desc => b.cmp(a),
        }
    }
}

/// Keeps the first `limit` matches in `order` after the cursor, reading fast fields only.
struct OrderedCollector<'a> {
    columns: &'a ColumnCache,
    limit: usize,
    order: SortOrder,
    after: Option<SortKey>,
    start_micros: Option<i64>,
    end_micros: Option<i64>,
}

/// One segment's share of an `OrderedCollector`.
///
/// Most documents are rejected on their `ts` alone: the collector keeps candidates `(ts, doc)`
/// and a `threshold`, the `ts` of the `limit`-th best candidate once that many are kept; a
/// document beyond it cannot make the page. Candidates are pruned to the threshold (with its
/// ties) whenever their buffer fills, and only the survivors' strings are read, at harvest.
struct OrderedSegmentCollector {
    segment: SegmentOrdinal,
    limit: usize,
    order: SortOrder,
    after: Option<SortKey>,
    start_micros: Option<i64>,
    end_micros: Option<i64>,
    columns: Arc<SegmentColumns>,
    candidates: Vec<(i64, DocId)>,
    /// Prune when `candidates` reaches this length.
    prune_at: usize,
    threshold: Option<i64>,
}

impl Collector for OrderedCollector<'_> {
    type Fruit = Vec<(SortKey, DocAddress)>;
    type Child = OrderedSegmentCollector;

    fn for_segment(
        &self,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<OrderedSegmentCollector> {
        let prune_at = (2 * self.limit).max(COLLECT_BLOCK_BUFFER_LEN);
        Ok(OrderedSegmentCollector {
            segment,
            limit: self.limit,
            order: self.order,
            after: self.after.clone(),
            start_micros: self.start_micros,
            end_micros: self.end_micros,
            columns: self.columns.get(reader)?,
            candidates: Vec::with_capacity(prune_at),
            prune_at,
            threshold: None,
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Self::Fruit>) -> tantivy::Result<Self::Fruit> {
        let mut all: Vec<(SortKey, DocAddress)> = fruits.into_iter().flatten().collect();
        all.sort_by(|a, b| self.order.compare(&a.0, &b.0));
        all.truncate(self.limit);
        Ok(all)
    }
}

impl OrderedSegmentCollector {
    /// Whether `a` comes strictly before `b` in the page's order.
    fn before(&self, a: i64, b: i64) -> bool {
        match self.order {
            SortOrder::Asc => a < b,
            SortOrder::Desc => a > b,
        }
    }

    /// Tells whether the document `doc` at `ts_micros` can still make the page.
    fn may_qualify(&self, doc: DocId, ts_micros: i64) -> bool {
        if self.start_micros.is_some_and(|start| ts_micros < start)
            || self.end_micros.is_some_and(|end| ts_micros >= end)
            || self
                .threshold
                .is_some_and(|threshold| self.before(threshold, ts_micros))
        {
            return false;
        }
        match &self.after {
            Some(after) if ts_micros == after.ts_micros => {
                // The cursor's own microsecond: only the full key tells.
                self.order.compare(&self.columns.key(doc, ts_micros), after) == Ordering::Greater
            }
            Some(after) => self.before(after.ts_micros, ts_micros),
            None => true,
        }
    }

    /// Keeps the `limit` best candidates by `ts`, and their ties, and moves the threshold.
    fn prune(&mut self) {
        let order = self.order;
        let nth = self.limit - 1;
        let (_, boundary, _) = self
            .candidates
            .select_nth_unstable_by(nth, |a, b| match order {
                SortOrder::Asc => a.0.cmp(&b.0),
                SortOrder::Desc => b.0.cmp(&a.0),
            });
        let threshold = boundary.0;
        self.threshold = Some(threshold);
        let before = |a: i64, b: i64| match order {
            SortOrder::Asc => a < b,
            SortOrder::Desc => a > b,
        };
        self.candidates.retain(|(ts, _)| !before(threshold, *ts));
        // Many ties at the threshold cannot be pruned: grow rather than prune at every push.
        self.prune_at = self.prune_at.max(2 * self.candidates.len());
    }
}

impl SegmentCollector for OrderedSegmentCollector {
    type Fruit = Vec<(SortKey, DocAddress)>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        self.collect_block(&[doc]);
    }

    fn collect_block(&mut self, docs: &[DocId]) {
        let mut ts = [None; COLLECT_BLOCK_BUFFER_LEN];
        for docs in docs.chunks(COLLECT_BLOCK_BUFFER_LEN) {
            let ts = &mut ts[..docs.len()];
            ts.fill(None);
            self.columns.ts.first_vals(docs, ts);
            for (&doc, ts) in docs.iter().zip(ts.iter()) {
                let Some(ts) = ts else { continue };
                let ts_micros = ts.into_timestamp_micros();
                if self.may_qualify(doc, ts_micros) {
                    self.candidates.push((ts_micros, doc));
                    if self.candidates.len() >= self.prune_at {
                        self.prune();
                    }
                }
            }
        }
    }

    fn harvest(self) -> Self::Fruit {
        let mut found: Vec<(SortKey, DocAddress)> = self
            .candidates
            .iter()
            .map(|&(ts_micros, doc)| {
                (
                    self.columns.key(doc, ts_micros),
                    DocAddress::new(self.segment, doc),
                )
            })
            .collect();
        found.sort_by(|a, b| self.order.compare(&a.0, &b.0));
        found.truncate(self.limit);
        found
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::config::DEFAULT_MAX_OPEN_PARTITIONS;
    use crate::error::Error;
    use crate::index::writer::{LogEntry, LogWriter};

    fn entry(ts_micros: i64, node: &str, seq: u64, message: &str) -> LogEntry {
        let stream = u64::from(node.as_bytes()[0]);
        let mut entry = crate::index::writer::tests::entry(ts_micros, node, stream, seq, message);
        if message.contains("fail") {
            entry.level = "ERROR".to_owned();
        }
        entry
    }

    fn request(
        query: &str,
        limit: usize,
        order: SortOrder,
        after: Option<SortKey>,
    ) -> SearchRequest {
        SearchRequest {
            tenants: vec!["t".to_owned()],
            query: query.to_owned(),
            filters: Vec::new(),
            start: None,
            end: None,
            limit,
            order,
            after,
        }
    }

    /// A store with 3 nodes writing 40 records, many in the same microsecond.
    async fn store_with_ties() -> Result<(tempfile::TempDir, Arc<LogStore>)> {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(LogStore::open(dir.path(), DEFAULT_MAX_OPEN_PARTITIONS)?);
        let writer = LogWriter::start(Arc::clone(&store), Duration::from_millis(20), None)?;
        let base = 1_795_787_813_000_000;
        for node in ["b", "a", "c"] {
            let entries = (0..40u64)
                .map(|seq| {
                    entry(
                        base + (seq / 7) as i64,
                        node,
                        seq * 10,
                        &format!(
                            "{node} record {seq} {}",
                            if seq % 9 == 0 { "failed" } else { "ok" }
                        ),
                    )
                })
                .collect();
            writer.write("t".to_owned(), entries).await?;
        }
        writer.shutdown().await;
        Ok((dir, store))
    }

    fn keys(page: &SearchPage) -> Vec<SortKey> {
        page.hits.iter().map(|hit| hit.key.clone()).collect()
    }

    #[tokio::test]
    async fn hits_are_ordered_by_the_full_key_in_both_directions() -> Result<()> {
        let (_dir, store) = store_with_ties().await?;
        let ascending = keys(&search(&store, &request("*", 1000, SortOrder::Asc, None))?);
        assert_eq!(ascending.len(), 120);
        let mut expected = ascending.clone();
        expected.sort();
        assert_eq!(ascending, expected);
        let mut descending = keys(&search(&store, &request("*", 1000, SortOrder::Desc, None))?);
        descending.reverse();
        assert_eq!(descending, ascending);
        Ok(())
    }

    #[tokio::test]
    async fn cursor_pages_return_the_same_hits_as_one_page() -> Result<()> {
        let (_dir, store) = store_with_ties().await?;
        for order in [SortOrder::Asc, SortOrder::Desc] {
            for query in ["*", "failed", "level:INFO AND -node:b"] {
                let whole = keys(&search(&store, &request(query, 1000, order, None))?);
                let mut paged = Vec::new();
                let mut after = None;
                loop {
                    let page = search(&store, &request(query, 4, order, after))?;
                    paged.extend(keys(&page));
                    match page.next {
                        Some(next) => after = Some(next),
                        None => break,
                    }
                }
                assert_eq!(paged, whole, "{order:?} {query}");
            }
        }
        Ok(())
    }

    /// Past its deadline (`budget`), a query stops before the next partition: the page walk
    /// and the searches spread over the cores (here a histogram) alike.
    #[tokio::test]
    async fn a_query_past_its_deadline_stops_with_over_budget() -> Result<()> {
        let (_dir, store) = store_with_ties().await?;
        let passed = tokio::time::Instant::now() - Duration::from_millis(1);
        let page = crate::budget::with_deadline(Some(passed), || {
            search(&store, &request("*", 10, SortOrder::Asc, None))
        });
        assert!(matches!(page, Err(Error::OverBudget)), "{page:?}");
        let histogram = crate::budget::with_deadline(Some(passed), || {
            crate::index::histogram::histogram(
                &store,
                &crate::index::histogram::HistogramRequest {
                    tenants: vec!["t".to_owned()],
                    query: "*".to_owned(),
                    filters: Vec::new(),
                    start: Timestamp::UNIX_EPOCH,
                    end: Timestamp::from_second(4_000_000_000).expect("in range"),
                    step: jiff::SignedDuration::from_hours(24 * 365),
                },
            )
        });
        assert!(matches!(histogram, Err(Error::OverBudget)), "{histogram:?}");
        assert_eq!(
            search(&store, &request("*", 10, SortOrder::Asc, None))?
                .hits
                .len(),
            10
        );
        Ok(())
    }

    /// The collector rejects most records on `ts` alone and prunes its candidates as it goes:
    /// 1,000 records in shuffled order, ts drawn from 40 values (25 ties each on average), must give the
    /// same pages as sorting everything, for any limit, order and cursor.
    #[tokio::test]
    async fn pruned_pages_equal_a_full_sort() -> Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(LogStore::open(dir.path(), DEFAULT_MAX_OPEN_PARTITIONS)?);
        let writer = LogWriter::start(Arc::clone(&store), Duration::from_millis(20), None)?;
        let base = 1_795_787_813_000_000;
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut entries: Vec<LogEntry> = (0..1000u64)
            .map(|seq| {
                // A stream per record: a stream's records arrive in seq order, and these don't.
                let node = ["a", "b", "c", "d"][(seq % 4) as usize];
                let ts = base + (next() % 40) as i64;
                crate::index::writer::tests::entry(ts, node, seq, seq % 3, "record")
            })
            .collect();
        for at in (1..entries.len()).rev() {
            entries.swap(at, (next() % (at as u64 + 1)) as usize);
        }
        writer.write("t".to_owned(), entries).await?;
        writer.shutdown().await;
        let mut all = keys(&search(
            &store,
            &request("*", MAX_LIMIT, SortOrder::Asc, None),
        )?);
        assert_eq!(all.len(), 1000);
        let mut sorted = all.clone();
        sorted.sort();
        assert_eq!(all, sorted);
        for order in [SortOrder::Asc, SortOrder::Desc] {
            if order == SortOrder::Desc {
                all.reverse();
            }
            for limit in [1, 7, 100, 999] {
                for cursor_at in [None, Some(0), Some(333), Some(998)] {
                    let after = cursor_at.map(|at: usize| all[at].clone());
                    let page = search(&store, &request("*", limit, order, after))?;
                    let skip = cursor_at.map_or(0, |at| at + 1);
                    let expected: Vec<SortKey> =
                        all.iter().skip(skip).take(limit).cloned().collect();
                    assert_eq!(
                        keys(&page),
                        expected,
                        "{order:?} limit {limit} after {cursor_at:?}"
                    );
                }
            }
        }
        Ok(())
    }

    /// Records keep arriving between pages, some in the middle of what was already paged
    /// (same milliseconds, other nodes), some ahead of it: no hit is skipped or repeated, the
    /// pages stay in order, and what arrives ahead of the cursor is included.
    #[tokio::test]
    async fn pages_stay_exact_while_records_keep_arriving() -> Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(LogStore::open(dir.path(), DEFAULT_MAX_OPEN_PARTITIONS)?);
        let writer = LogWriter::start(Arc::clone(&store), Duration::from_millis(20), None)?;
        let base = 1_795_787_813_000_000;
        let initial: Vec<LogEntry> = (0..200u64)
            .map(|seq| entry(base + (seq / 3) as i64, "a", seq, "tick"))
            .collect();
        writer.write("t".to_owned(), initial).await?;
        for order in [SortOrder::Asc, SortOrder::Desc] {
            let before = keys(&search(&store, &request("tick", MAX_LIMIT, order, None))?);
            let mut paged: Vec<SortKey> = Vec::new();
            let mut after = None;
            let mut round = 0u64;
            loop {
                let page = search(&store, &request("tick", 25, order, after))?;
                paged.extend(keys(&page));
                let Some(next) = page.next else { break };
                after = Some(next);
                // Two more records of a new node each round: one among what was paged, one
                // at the far end of the order.
                round += 1;
                let node = format!("n{round}");
                let far = if order == SortOrder::Asc {
                    10_000_000
                } else {
                    -10_000_000
                };
                writer
                    .write(
                        "t".to_owned(),
                        // (Nodes `n…` share a stream in these tests: seqs go on.)
                        vec![
                            entry(base + 3, &node, round * 10 + 1, "tick"),
                            entry(base + far + round as i64, &node, round * 10 + 2, "tick"),
                        ],
                    )
                    .await?;
            }
            let mut sorted = paged.clone();
            sorted.sort_by(|a, b| order.compare(a, b));
            sorted.dedup();
            assert_eq!(paged, sorted, "{order:?}: in order, nothing twice");
            assert!(
                before.iter().all(|key| paged.contains(key)),
                "{order:?}: none skipped"
            );
            let ahead = paged
                .iter()
                .filter(|key| key.node != "a" && (key.ts_micros - base).abs() > 1_000)
                .count();
            assert!(
                ahead as u64 + 1 >= round,
                "{order:?}: {ahead} arrivals ahead included of {round}"
            );
        }
        writer.shutdown().await;
        Ok(())
    }

    #[tokio::test]
    async fn a_bad_query_is_reported_with_the_parsers_message() -> Result<()> {
        let (_dir, store) = store_with_ties().await?;
        let error = search(&store, &request("level:(ERROR", 10, SortOrder::Asc, None))
            .expect_err("unbalanced");
        assert!(matches!(error, Error::BadQuery(_)), "{error}");
        let error = search(&store, &request("nosuchfield:x", 10, SortOrder::Asc, None))
            .expect_err("unknown field");
        assert!(error.to_string().contains("nosuchfield"), "{error}");
        Ok(())
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_rejected() {
        let key = SortKey {
            ts_micros: -5,
            node: "w\"1".to_owned(),
            source: "/x".to_owned(),
            seq: 7,
            stream: u64::MAX,
        };
        assert_eq!(SortKey::from_cursor(&key.to_cursor()), Some(key));
        for garbage in ["", "zz", "abc", "7b7d", "é"] {
            assert_eq!(SortKey::from_cursor(garbage), None, "{garbage}");
        }
    }

    /// The queries of `docs/search.md` (its `query` blocks).
    fn documented_queries() -> Vec<String> {
        let docs = include_str!("../../../docs/search.md");
        docs.split("```query\n")
            .skip(1)
            .map(|block| {
                block
                    .split("```")
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_owned()
            })
            .collect()
    }

    #[test]
    fn every_query_the_user_docs_show_parses() {
        let queries = documented_queries();
        assert!(queries.len() >= 9, "{queries:?}");
        for query in queries {
            if let Err(error) = parse_query(&LogSchema::new(), &query) {
                panic!("docs/search.md shows {query:?}, which does not parse: {error}");
            }
        }
    }

    /// What `docs/search.md` says of fields and words.
    #[tokio::test]
    async fn the_user_docs_rules_hold() -> Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(LogStore::open(dir.path(), DEFAULT_MAX_OPEN_PARTITIONS)?);
        let writer = LogWriter::start(Arc::clone(&store), Duration::from_millis(20), None)?;
        let mut print = entry(2, "worker-node-3", 2, "afterglow-print 7 from w-3");
        print.level = String::new();
        print.logger = String::new();
        let mut failed = entry(3, "worker-node-3", 3, "Compute Failed\nKey:       fails-42");
        failed.logger = "distributed.worker.state_machine".to_owned();
        writer
            .write(
                "t".to_owned(),
                vec![
                    entry(
                        1,
                        "worker-node-3",
                        1,
                        "Remove worker addr: tcp://10.0.0.5:40123",
                    ),
                    print,
                    failed,
                    entry(4, "scheduler-0", 4, "Scheduler at: tcp://scheduler:8786"),
                ],
            )
            .await?;
        writer.shutdown().await;
        let found = |query: &str| -> Result<Vec<u64>> {
            let page = search(&store, &request(query, 10, SortOrder::Asc, None))?;
            Ok(page.hits.iter().map(|hit| hit.key.seq).collect())
        };
        assert_eq!(found("level:ERROR")?, [3]);
        assert_eq!(found("level:error")?, Vec::<u64>::new(), "fields are exact");
        assert_eq!(found("COMPUTE failed")?, [3], "words ignore case");
        assert_eq!(found("\"10.0.0.5 40123\"")?, [1]);
        assert_eq!(found("\"tcp://10.0.0.5:40123\"")?, [1]);
        assert_eq!(found("\"fails-42\"")?, [3]);
        assert_eq!(found("tcp://10.0.0.5:40123")?, [1], "addresses as they are");
        assert_eq!(found("10.0.0.5:40123")?, [1]);
        assert_eq!(found("scheduler:8786")?, [4]);
        assert_eq!(found("logger:distributed.worker*")?, [1, 3, 4]);
        assert_eq!(found("logger:distributed.worker.*")?, [3]);
        assert_eq!(found("logger:distributed.worker")?, [1, 4]);
        assert_eq!(found("unrespons* OR fail*")?, [3]);
        assert!(found("scheduler:abc").is_err(), "an unknown field");
        let prints = documented_queries()
            .into_iter()
            .find(|query| query.contains("-level:ERROR"))
            .expect("the print example");
        assert_eq!(found(&prints)?, [2]);
        Ok(())
    }

    /// The newest page of a week needs only the newest day; a page that the newest day
    /// cannot fill walks on, and every page equals the one a full search of all days gives.
    #[tokio::test]
    async fn a_page_walks_days_in_its_order_and_stops_once_full() -> Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(LogStore::open(dir.path(), DEFAULT_MAX_OPEN_PARTITIONS)?);
        let writer = LogWriter::start(Arc::clone(&store), Duration::from_millis(20), None)?;
        let day_micros = 86_400_000_000;
        let first_day = 1_795_737_600_000_000; // 2026-11-27T00:00:00Z
        for (tenant, node) in [("t", "a"), ("u", "b")] {
            let entries = (0..7i64)
                .flat_map(|day| {
                    (0..30u64).map(move |n| {
                        let seq = u64::try_from(day).expect("day") * 100 + n;
                        entry(first_day + day * day_micros + n as i64, node, seq, "tick")
                    })
                })
                .collect();
            writer.write(tenant.to_owned(), entries).await?;
        }
        writer.shutdown().await;
        let both = |limit: usize, order: SortOrder| {
            let mut request = request("tick", limit, order, None);
            request.tenants = vec!["t".to_owned(), "u".to_owned()];
            request
        };
        let newest = search(&store, &both(50, SortOrder::Desc))?;
        assert_eq!(
            newest.partitions_searched, 2,
            "the newest day of both tenants"
        );
        assert_eq!(newest.hits.len(), 50);
        let deeper = search(&store, &both(100, SortOrder::Desc))?;
        assert_eq!(deeper.partitions_searched, 4, "two days of both tenants");
        let oldest = search(&store, &both(61, SortOrder::Asc))?;
        assert_eq!(oldest.partitions_searched, 4);
        // The same hits as a page of everything, cut.
        for (page, order) in [
            (&newest, SortOrder::Desc),
            (&deeper, SortOrder::Desc),
            (&oldest, SortOrder::Asc),
        ] {
            let everything = search(&store, &both(MAX_LIMIT, order))?;
            assert_eq!(everything.partitions_searched, 14);
            let expected: Vec<SortKey> = everything.hits[..page.hits.len()]
                .iter()
                .map(|hit| hit.key.clone())
                .collect();
            assert_eq!(keys(page), expected);
            assert!(page.next.is_some());
        }
        Ok(())
    }
}
