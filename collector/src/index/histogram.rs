//! Log histograms: how many records match a query per time bucket, split by level.
//!
//! The rule a reader must not miss: buckets are aligned to multiples of the step since the Unix
//! epoch (a `1d` step gives UTC days), so the first and last buckets may start before `start` or
//! end after `end`; only records in `[start, end)` are counted. Counting reads the fast `ts` and
//! `level` columns, never a stored record.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::{COLLECT_BLOCK_BUFFER_LEN, DocId, Score, SegmentOrdinal, SegmentReader};

use crate::error::{Error, Result};
use crate::index::partition::LogStore;
use crate::index::query::FieldFilter;
use crate::index::record::{ColumnCache, SegmentColumns};
use crate::index::search::parse_filtered_query;

/// Most buckets one histogram may have.
pub const MAX_BUCKETS: usize = 1000;

/// Steps the automatic choice picks from, smallest first; beyond the last, whole days.
pub const NICE_STEPS: [SignedDuration; 13] = [
    SignedDuration::from_secs(1),
    SignedDuration::from_secs(5),
    SignedDuration::from_secs(10),
    SignedDuration::from_secs(30),
    SignedDuration::from_secs(60),
    SignedDuration::from_secs(5 * 60),
    SignedDuration::from_secs(10 * 60),
    SignedDuration::from_secs(30 * 60),
    SignedDuration::from_secs(3600),
    SignedDuration::from_secs(3 * 3600),
    SignedDuration::from_secs(6 * 3600),
    SignedDuration::from_secs(12 * 3600),
    SignedDuration::from_secs(86_400),
];

/// A histogram over the partitions of some tenants.
#[derive(Debug, Clone)]
pub struct HistogramRequest {
    /// Tenants the caller may read: nothing else is counted.
    pub tenants: Vec<String>,
    /// tantivy query syntax, as for search; empty or `*` matches everything.
    pub query: String,
    /// Facet filters ANDed to `query`.
    pub filters: Vec<FieldFilter>,
    /// Inclusive lower bound.
    pub start: Timestamp,
    /// Exclusive upper bound, after `start`.
    pub end: Timestamp,
    /// Bucket width, positive, whole microseconds.
    pub step: SignedDuration,
}

/// Counts per bucket; bucket `i` starts at `first_bucket_micros + i * step_micros`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Histogram {
    pub step_micros: i64,
    pub first_bucket_micros: i64,
    /// Per bucket, oldest first, the count of matching records per level; empty buckets too.
    pub buckets: Vec<BTreeMap<String, u64>>,
}

/// The epoch-aligned start of the bucket holding `ts_micros`.
fn bucket_floor(ts_micros: i64, step_micros: i64) -> i64 {
    ts_micros.div_euclid(step_micros) * step_micros
}

/// How many `step` buckets, aligned to the epoch, cover `[start, end)`; 0 when the range or the
/// step is empty. Saturates instead of overflowing.
pub fn bucket_count(start: Timestamp, end: Timestamp, step: SignedDuration) -> u64 {
    let step_micros = step_micros(step);
    let (start_micros, end_micros) = (start.as_microsecond(), end.as_microsecond());
    if step_micros <= 0 || end_micros <= start_micros {
        return 0;
    }
    let first = bucket_floor(start_micros, step_micros);
    let span = i128::from(end_micros) - i128::from(first);
    let count = (span + i128::from(step_micros) - 1) / i128::from(step_micros);
    u64::try_from(count).unwrap_or(u64::MAX)
}

fn step_micros(step: SignedDuration) -> i64 {
    i64::try_from(step.as_micros()).unwrap_or(i64::MAX)
}

/// The smallest nice step (`NICE_STEPS`, then whole days) giving at most `max_buckets` buckets
/// over `[start, end)`.
pub fn automatic_step(start: Timestamp, end: Timestamp, max_buckets: usize) -> SignedDuration {
    let max_buckets = max_buckets.max(1) as u64;
    if let Some(step) = NICE_STEPS
        .iter()
        .find(|step| bucket_count(start, end, **step) <= max_buckets)
    {
        return *step;
    }
    let span_days = (end - start).as_secs().div_euclid(86_400).max(1);
    let mut days = (span_days as u64).div_ceil(max_buckets).max(2);
    loop {
        let step =
            SignedDuration::from_secs(days.saturating_mul(86_400).min(i64::MAX as u64) as i64);
        if bucket_count(start, end, step) <= max_buckets {
            return step;
        }
        days += 1;
    }
}

/// Counts the records of `request` per bucket and level.
pub fn histogram(store: &LogStore, request: &HistogramRequest) -> Result<Histogram> {
    let schema = store.schema();
    let step_micros = step_micros(request.step);
    let bucket_total = bucket_count(request.start, request.end, request.step);
    if step_micros <= 0 || bucket_total > MAX_BUCKETS as u64 {
        return Err(Error::BadQuery(format!(
            "{bucket_total} buckets of {step_micros}µs: at most {MAX_BUCKETS} are allowed"
        )));
    }
    let start_micros = request.start.as_microsecond();
    let end_micros = request.end.as_microsecond();
    let query = parse_filtered_query(schema, &request.query, &request.filters)?;
    let collector = LevelHistogramCollector {
        columns: store.columns(),
        first_bucket_micros: bucket_floor(start_micros, step_micros),
        step_micros,
        bucket_total: bucket_total as usize,
        start_micros,
        end_micros,
    };
    let mut buckets = vec![BTreeMap::new(); bucket_total as usize];
    for (_, counts) in store.search_partitions(
        &request.tenants,
        (Some(request.start), Some(request.end)),
        &query,
        &collector,
    )? {
        add_counts(&mut buckets, counts);
    }
    Ok(Histogram {
        step_micros,
        first_bucket_micros: collector.first_bucket_micros,
        buckets,
    })
}

fn add_counts(into: &mut [BTreeMap<String, u64>], counts: Vec<BTreeMap<String, u64>>) {
    for (bucket, levels) in into.iter_mut().zip(counts) {
        for (level, count) in levels {
            *bucket.entry(level).or_default() += count;
        }
    }
}

/// Counts matches per (bucket, level) from fast columns.
struct LevelHistogramCollector<'a> {
    columns: &'a ColumnCache,
    first_bucket_micros: i64,
    step_micros: i64,
    bucket_total: usize,
    start_micros: i64,
    end_micros: i64,
}

struct LevelHistogramSegmentCollector {
    first_bucket_micros: i64,
    step_micros: i64,
    start_micros: i64,
    end_micros: i64,
    columns: Arc<SegmentColumns>,
    /// Level ordinals of this segment: one more than the dictionary, for records without level.
    level_slots: usize,
    /// `counts[bucket * level_slots + slot]`.
    counts: Vec<u64>,
    /// The last bucket found and where it starts: neighbouring records mostly share a
    /// bucket, and a division per record was most of the time spent.
    last_bucket: usize,
    last_bucket_micros: i64,
}

impl LevelHistogramSegmentCollector {
    /// The bucket of a record at `ts_micros`, which is in `[start, end)`.
    fn bucket(&mut self, ts_micros: i64) -> usize {
        let offset = ts_micros - self.last_bucket_micros;
        if (0..self.step_micros).contains(&offset) {
            return self.last_bucket;
        }
        let bucket = (ts_micros - self.first_bucket_micros) / self.step_micros;
        self.last_bucket = bucket as usize;
        self.last_bucket_micros = self.first_bucket_micros + bucket * self.step_micros;
        self.last_bucket
    }
}

impl Collector for LevelHistogramCollector<'_> {
    type Fruit = Vec<BTreeMap<String, u64>>;
    type Child = LevelHistogramSegmentCollector;

    fn for_segment(
        &self,
        _segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<LevelHistogramSegmentCollector> {
        let columns = self.columns.get(reader)?;
        let level_slots = columns
            .keyword("level")
            .map_or(0, |column| column.num_terms())
            + 1;
        Ok(LevelHistogramSegmentCollector {
            first_bucket_micros: self.first_bucket_micros,
            step_micros: self.step_micros,
            start_micros: self.start_micros,
            end_micros: self.end_micros,
            columns,
            level_slots,
            counts: vec![0; self.bucket_total * level_slots],
            last_bucket: 0,
            last_bucket_micros: self.first_bucket_micros,
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Self::Fruit>) -> tantivy::Result<Self::Fruit> {
        let mut merged = vec![BTreeMap::new(); self.bucket_total];
        for fruit in fruits {
            add_counts(&mut merged, fruit);
        }
        Ok(merged)
    }
}

impl SegmentCollector for LevelHistogramSegmentCollector {
    type Fruit = Vec<BTreeMap<String, u64>>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        self.collect_block(&[doc]);
    }

    fn collect_block(&mut self, docs: &[DocId]) {
        let mut ts = [None; COLLECT_BLOCK_BUFFER_LEN];
        let mut levels = [None; COLLECT_BLOCK_BUFFER_LEN];
        for docs in docs.chunks(COLLECT_BLOCK_BUFFER_LEN) {
            let ts = &mut ts[..docs.len()];
            let levels = &mut levels[..docs.len()];
            ts.fill(None);
            levels.fill(None);
            self.columns.ts.first_vals(docs, ts);
            if let Some(column) = self.columns.keyword("level") {
                column.ords().first_vals(docs, levels);
            }
            for (ts, level) in ts.iter().zip(levels.iter()) {
                let Some(ts) = ts else { continue };
                let ts_micros = ts.into_timestamp_micros();
                if ts_micros < self.start_micros || ts_micros >= self.end_micros {
                    continue;
                }
                let bucket = self.bucket(ts_micros);
                // The last slot is "no level".
                let slot = level.map_or(self.level_slots - 1, |ord| ord as usize);
                if let Some(count) = self.counts.get_mut(bucket * self.level_slots + slot) {
                    *count += 1;
                }
            }
        }
    }

    fn harvest(self) -> Self::Fruit {
        let mut names = Vec::with_capacity(self.level_slots);
        for ord in 0..self.level_slots - 1 {
            let mut name = String::new();
            if let Some(column) = self.columns.keyword("level") {
                let _ = column.ord_to_str(ord as u64, &mut name);
            }
            names.push(name);
        }
        names.push(String::new());
        self.counts
            .chunks(self.level_slots)
            .map(|slots| {
                slots
                    .iter()
                    .zip(&names)
                    .filter(|(count, _)| **count > 0)
                    .map(|(count, name)| (name.clone(), *count))
                    .collect()
            })
            .collect()
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

    /// 2026-11-28T00:00:00Z.
    const MIDNIGHT: i64 = 1_795_824_000_000_000;
    const MINUTE: i64 = 60_000_000;

    fn at(micros: i64) -> Timestamp {
        Timestamp::from_microsecond(micros).expect("valid")
    }

    /// Around midnight: 23:58:10 INFO, 23:59:20 ERROR, 23:59:30 INFO, 00:00:00 ERROR,
    /// 00:02:59 WARNING (the minute 00:01 is empty).
    async fn store_around_midnight() -> Result<(tempfile::TempDir, Arc<LogStore>)> {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(LogStore::open(dir.path(), DEFAULT_MAX_OPEN_PARTITIONS)?);
        let writer = LogWriter::start(Arc::clone(&store), Duration::from_millis(20), None)?;
        let records = [
            (MIDNIGHT - 110_000_000, "INFO", "started"),
            (MIDNIGHT - 40_000_000, "ERROR", "task failed"),
            (MIDNIGHT - 30_000_000, "INFO", "heartbeat"),
            (MIDNIGHT, "ERROR", "task failed again"),
            (MIDNIGHT + 179_000_000, "WARNING", "slow"),
        ];
        let entries = records
            .iter()
            .enumerate()
            .map(|(seq, (ts, level, message))| {
                let mut entry = entry(*ts, "a", 1, seq as u64, message);
                entry.level = (*level).to_owned();
                entry
            })
            .collect();
        writer.write("t".to_owned(), entries).await?;
        writer.shutdown().await;
        Ok((dir, store))
    }

    fn request(query: &str, start: i64, end: i64, step: SignedDuration) -> HistogramRequest {
        HistogramRequest {
            tenants: vec!["t".to_owned()],
            query: query.to_owned(),
            filters: Vec::new(),
            start: at(start),
            end: at(end),
            step,
        }
    }

    fn levels(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
        pairs
            .iter()
            .map(|(level, count)| ((*level).to_owned(), *count))
            .collect()
    }

    #[tokio::test]
    async fn counts_split_by_level_across_the_day_boundary_with_empty_buckets() -> Result<()> {
        let (_dir, store) = store_around_midnight().await?;
        let minute = SignedDuration::from_secs(60);
        let found = histogram(
            &store,
            &request("*", MIDNIGHT - 2 * MINUTE, MIDNIGHT + 3 * MINUTE, minute),
        )?;
        assert_eq!(found.step_micros, MINUTE);
        assert_eq!(found.first_bucket_micros, MIDNIGHT - 2 * MINUTE);
        assert_eq!(
            found.buckets,
            [
                levels(&[("INFO", 1)]),
                levels(&[("ERROR", 1), ("INFO", 1)]),
                levels(&[("ERROR", 1)]),
                levels(&[]),
                levels(&[("WARNING", 1)]),
            ]
        );
        Ok(())
    }

    #[tokio::test]
    async fn only_matches_inside_the_range_count_and_buckets_align_to_the_step() -> Result<()> {
        let (_dir, store) = store_around_midnight().await?;
        let minute = SignedDuration::from_secs(60);
        // 23:59:25 to 00:00:00 exclusive: the 23:59:30 INFO only, in the bucket of 23:59.
        let found = histogram(
            &store,
            &request("*", MIDNIGHT - 35_000_000, MIDNIGHT, minute),
        )?;
        assert_eq!(found.first_bucket_micros, MIDNIGHT - MINUTE);
        assert_eq!(found.buckets, [levels(&[("INFO", 1)])]);
        let failed = histogram(
            &store,
            &request("failed", MIDNIGHT - 2 * MINUTE, MIDNIGHT + MINUTE, minute),
        )?;
        assert_eq!(
            failed.buckets,
            [
                levels(&[]),
                levels(&[("ERROR", 1)]),
                levels(&[("ERROR", 1)])
            ]
        );
        Ok(())
    }

    #[tokio::test]
    async fn too_many_buckets_and_bad_queries_are_refused() -> Result<()> {
        let (_dir, store) = store_around_midnight().await?;
        let second = SignedDuration::from_secs(1);
        let error =
            histogram(&store, &request("*", 0, MIDNIGHT, second)).expect_err("too many buckets");
        assert!(error.to_string().contains("at most 1000"), "{error}");
        let error =
            histogram(&store, &request("level:(ERROR", 0, MINUTE, second)).expect_err("bad query");
        assert!(matches!(error, Error::BadQuery(_)), "{error}");
        Ok(())
    }

    #[test]
    fn bucket_counts_cover_partial_buckets_at_both_ends() {
        let minute = SignedDuration::from_secs(60);
        assert_eq!(bucket_count(at(0), at(60 * MINUTE), minute), 60);
        assert_eq!(bucket_count(at(1), at(60 * MINUTE), minute), 60);
        assert_eq!(bucket_count(at(1), at(60 * MINUTE + 1), minute), 61);
        assert_eq!(bucket_count(at(MINUTE), at(MINUTE), minute), 0);
    }

    #[test]
    fn automatic_step_is_the_smallest_nice_step_within_the_bucket_limit() {
        let step = |span: i64, max: usize| automatic_step(at(MIDNIGHT), at(MIDNIGHT + span), max);
        assert_eq!(step(60 * MINUTE, 60), SignedDuration::from_secs(60));
        assert_eq!(step(60 * MINUTE, 59), SignedDuration::from_secs(300));
        assert_eq!(step(30_000_000, 60), SignedDuration::from_secs(1));
        assert_eq!(step(24 * 60 * MINUTE, 60), SignedDuration::from_secs(1800));
        assert_eq!(step(24 * 60 * MINUTE, 1), SignedDuration::from_secs(86_400));
        let ninety_days = 90 * 24 * 60 * MINUTE;
        assert_eq!(
            step(ninety_days, 10),
            SignedDuration::from_secs(10 * 86_400)
        );
        let year = 365 * 24 * 60 * MINUTE;
        assert_eq!(step(year, 60), SignedDuration::from_secs(7 * 86_400));
    }
}
