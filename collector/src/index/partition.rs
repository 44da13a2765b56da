//! Log partitions: one tantivy index per (tenant, UTC day) under `data_dir/logs/<tenant>/<day>`.
//! Queries pick partitions here, by tenant and time, before any index is searched — this is
//! where tenant scoping happens. The store knows every partition's key; only the picked
//! partitions are opened, and a bounded few are kept open (`partition_cache`).

use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, RwLock};

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use tantivy::collector::{Collector, Count};
use tantivy::directory::MmapDirectory;
use tantivy::index::SegmentId;
use tantivy::query::{BooleanQuery, Query, RangeQuery, TermQuery};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::store::{Compressor, ZstdCompressor};
use tantivy::{DateTime, Index, IndexReader, IndexSettings, ReloadPolicy, Term};

use crate::budget;
use crate::error::{Error, Result};
use crate::index::clusters::ActivityCache;
use crate::index::partition_cache::{OpenPartition, PartitionCache};
use crate::index::query::LogQuery;
use crate::index::record::ColumnCache;
use crate::index::schema::LogSchema;
use crate::index::tail::Arrivals;
use crate::parallel;
use crate::retention::{self, Detach};

/// zstd level of the stored records: level 1 costs about half of the default 3 in the writer,
/// for a slightly larger store (see BENCHMARKS.md, collector ingest).
const DOCSTORE_ZSTD_LEVEL: i32 = 1;
/// Records are compressed in blocks of this size: larger blocks mean fewer zstd contexts set
/// up per byte, at the cost of decompressing more to fetch one hit.
const DOCSTORE_BLOCK_BYTES: usize = 64 * 1024;

/// A time range `[start, end)`; an absent bound is open.
pub type TimeRange = (Option<Timestamp>, Option<Timestamp>);

/// Which partition a record belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartitionKey {
    pub tenant: String,
    /// The UTC day of the records' timestamps.
    pub day: Date,
}

impl PartitionKey {
    /// The partition of a record of `tenant` at `ts_micros`.
    pub fn for_record(tenant: &str, ts_micros: i64) -> PartitionKey {
        let ts = Timestamp::from_microsecond(ts_micros).unwrap_or(Timestamp::UNIX_EPOCH);
        PartitionKey {
            tenant: tenant.to_owned(),
            day: ts.to_zoned_datetime(TimeZone::UTC).date(),
        }
    }
}

/// One open partition: its index and a reader that the writer reloads after each commit.
pub struct Partition {
    pub key: PartitionKey,
    pub index: Index,
    pub reader: IndexReader,
    /// The schema's `ts` field.
    ts_field: Field,
    /// What the store keeps about all partitions.
    shared: Arc<Shared>,
}

/// What a store keeps about all its partitions, open or not.
#[derive(Default)]
pub struct Shared {
    /// Fast columns of open segments; a segment's leave when it leaves its partition.
    pub columns: ColumnCache,
    /// When each partition last showed new records.
    pub stamps: ChangeStamps,
}

/// When each partition last showed new records, as numbers drawn from one counter: something
/// computed from a partition while its stamp was `s` still holds while the stamp is `s`.
/// Partitions not written since start-up have stamp 0.
#[derive(Default)]
pub struct ChangeStamps {
    counter: AtomicU64,
    by_key: Mutex<HashMap<PartitionKey, u64>>,
}

impl ChangeStamps {
    /// The stamp of partition `key` now.
    pub fn get(&self, key: &PartitionKey) -> u64 {
        self.lock().get(key).copied().unwrap_or(0)
    }

    fn forget(&self, key: &PartitionKey) {
        self.lock().remove(key);
    }

    fn bump(&self, key: &PartitionKey) {
        let stamp = self.counter.fetch_add(1, AtomicOrdering::Relaxed) + 1;
        self.lock().insert(key.clone(), stamp);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PartitionKey, u64>> {
        self.by_key
            .lock()
            .expect("change stamp lock is not poisoned")
    }
}

impl Partition {
    /// Partition `key` of `index`, read by `reader`, keeping its columns and stamp in `shared`.
    pub fn new(
        key: PartitionKey,
        index: Index,
        reader: IndexReader,
        schema: &LogSchema,
        shared: Arc<Shared>,
    ) -> Partition {
        Partition {
            key,
            index,
            reader,
            ts_field: schema.ts,
            shared,
        }
    }

    /// Makes the reader see the latest commit (the writer calls it after committing records):
    /// stamps the partition as changed and forgets the columns of segments it no longer has
    /// (merged away).
    pub fn reload(&self) -> tantivy::Result<()> {
        let before = self.segment_ids();
        self.reader.reload()?;
        self.shared.stamps.bump(&self.key);
        let after = self.segment_ids();
        self.shared
            .columns
            .forget(before.into_iter().filter(|id| !after.contains(id)));
        Ok(())
    }

    fn segment_ids(&self) -> Vec<SegmentId> {
        self.reader
            .searcher()
            .segment_readers()
            .iter()
            .map(|reader| reader.segment_id())
            .collect()
    }

    /// An index error of this partition, named `tenant/day`.
    pub fn error(&self, source: tantivy::TantivyError) -> Error {
        Error::Index {
            path: format!("{}/{}", self.key.tenant, self.key.day).into(),
            source,
        }
    }

    /// Runs `collector` over what this partition's reader sees now, for the records matching
    /// `query` in `range`.
    pub fn search<C: Collector>(
        &self,
        query: &dyn Query,
        range: TimeRange,
        collector: &C,
    ) -> Result<C::Fruit> {
        self.reader
            .searcher()
            .search(self.within(query, range).as_ref(), collector)
            .map_err(|source| self.error(source))
    }

    /// `query` limited to `[start, end)` in this partition: the query alone when the range
    /// holds the partition's whole day (most partitions of a multi-day search), so that no
    /// time filter runs; otherwise intersected with a range on the fast `ts` column.
    pub fn within(&self, query: &dyn Query, (start, end): TimeRange) -> Box<dyn Query> {
        let midnight = |day: Date| TimeZone::UTC.to_timestamp(day.to_datetime(Time::midnight()));
        let day_start = midnight(self.key.day).ok();
        let day_end = self.key.day.tomorrow().and_then(midnight).ok();
        let starts_before = match (start, day_start) {
            (None, _) => true,
            (Some(start), Some(day_start)) => start <= day_start,
            (Some(_), None) => false,
        };
        let ends_after = match (end, day_end) {
            (None, _) => true,
            (Some(end), Some(day_end)) => end >= day_end,
            (Some(_), None) => false,
        };
        if starts_before && ends_after {
            return query.box_clone();
        }
        let ts_term = |ts: Timestamp| {
            Term::from_field_date(
                self.ts_field,
                DateTime::from_timestamp_micros(ts.as_microsecond()),
            )
        };
        let range = RangeQuery::new(
            start.map_or(Bound::Unbounded, |ts| Bound::Included(ts_term(ts))),
            end.map_or(Bound::Unbounded, |ts| Bound::Excluded(ts_term(ts))),
        );
        Box::new(BooleanQuery::intersection(vec![
            query.box_clone(),
            Box::new(range),
        ]))
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        self.shared.columns.forget(self.segment_ids());
    }
}

/// Every log partition of the collector: all their keys, and the few partitions open now.
pub struct LogStore {
    root: PathBuf,
    schema: LogSchema,
    keys: RwLock<BTreeSet<PartitionKey>>,
    open_partitions: PartitionCache,
    arrivals: Arc<Arrivals>,
    shared: Arc<Shared>,
    activity: ActivityCache,
}

impl LogStore {
    /// Opens the store under `root`, finding every partition there without opening any; at
    /// most `max_open_partitions` are kept open, more only while in use.
    pub fn open(root: &Path, max_open_partitions: usize) -> Result<LogStore> {
        std::fs::create_dir_all(root).map_err(|source| Error::CreateDir {
            path: root.to_owned(),
            source,
        })?;
        let keys = keys_on_disk(root)?;
        Ok(LogStore {
            root: root.to_owned(),
            schema: LogSchema::new(),
            keys: RwLock::new(keys),
            open_partitions: PartitionCache::new(max_open_partitions),
            arrivals: Arc::default(),
            shared: Arc::default(),
            activity: ActivityCache::default(),
        })
    }

    /// The schema shared by all partitions.
    pub fn schema(&self) -> &LogSchema {
        &self.schema
    }

    /// The fast columns of every open partition's segments.
    pub fn columns(&self) -> &ColumnCache {
        &self.shared.columns
    }

    /// Cluster summaries of partitions, kept until they change.
    pub fn activity_cache(&self) -> &ActivityCache {
        &self.activity
    }

    /// The stamp of partition `key` (see `ChangeStamps`).
    pub fn change_stamp(&self, key: &PartitionKey) -> u64 {
        self.shared.stamps.get(key)
    }

    /// Where the writer announces the records it adds (the live tail listens there).
    pub fn arrivals(&self) -> &Arc<Arrivals> {
        &self.arrivals
    }

    /// Returns the partition for `key`, creating it on disk if needed.
    pub fn get_or_create(&self, key: &PartitionKey) -> Result<OpenPartition> {
        self.open_partitions.get_or_open(key, || {
            let partition = self.open_partition(key)?;
            // Under the cache's lock, as retention takes keys out: an open partition is a key.
            self.keys
                .write()
                .expect("partition key lock is not poisoned")
                .insert(key.clone());
            Ok(partition)
        })
    }

    /// Returns partition `key` (one of `keys_for`), opening it if it is not open; fails with
    /// `Error::PartitionDeleted` when retention deleted it since `keys_for`.
    pub fn partition(&self, key: &PartitionKey) -> Result<OpenPartition> {
        self.open_partitions.get_or_open(key, || {
            // Checked under the cache's lock: a read must not create a deleted partition anew.
            if !self
                .keys
                .read()
                .expect("partition key lock is not poisoned")
                .contains(key)
            {
                return Err(Error::PartitionDeleted {
                    partition: format!("{}/{}", key.tenant, key.day),
                });
            }
            self.open_partition(key)
        })
    }

    /// Every partition's key, in (tenant, day) order.
    pub fn all_keys(&self) -> Vec<PartitionKey> {
        self.keys
            .read()
            .expect("partition key lock is not poisoned")
            .iter()
            .cloned()
            .collect()
    }

    /// Every tenant with a partition, by name.
    pub fn tenants(&self) -> Vec<String> {
        let keys = self
            .keys
            .read()
            .expect("partition key lock is not poisoned");
        let mut tenants: Vec<String> = keys.iter().map(|key| key.tenant.clone()).collect();
        tenants.dedup();
        tenants
    }

    /// Takes partition `key` out of the store and moves its directory aside for deletion
    /// (`retention::move_aside_for_deletion`), unless a search or the writer holds it open:
    /// `Detach::InUse` then, and nothing changes. Its cluster summary and change stamp go too
    /// (its columns go as it closes). The caller deletes the directory moved aside.
    pub fn detach_unless_in_use(&self, key: &PartitionKey) -> Result<Detach> {
        let dir = self.partition_dir(key);
        let detached = self.open_partitions.remove_unless_in_use(key, || {
            let aside = retention::move_aside_for_deletion(&dir).map_err(|source| {
                Error::DeletePartition {
                    path: dir.clone(),
                    source,
                }
            })?;
            self.keys
                .write()
                .expect("partition key lock is not poisoned")
                .remove(key);
            Ok(aside.map_or(Detach::NothingOnDisk, Detach::MovedAside))
        });
        let Some(detached) = detached else {
            return Ok(Detach::InUse);
        };
        self.activity.forget(key);
        self.shared.stamps.forget(key);
        detached
    }

    /// The clusters with records in partition `key` (deleted records not counted), each with
    /// its number of records, by name.
    pub fn live_clusters(&self, key: &PartitionKey) -> Result<Vec<(String, u64)>> {
        let partition = self.partition(key)?;
        let searcher = partition.reader.searcher();
        let field = self.schema.cluster;
        let mut names = BTreeSet::new();
        for segment in searcher.segment_readers() {
            let inverted = segment
                .inverted_index(field)
                .map_err(|source| partition.error(source))?;
            let mut terms = inverted
                .terms()
                .stream()
                .map_err(|source| partition.error(source.into()))?;
            while terms.advance() {
                names.insert(String::from_utf8_lossy(terms.key()).into_owned());
            }
        }
        let mut clusters = Vec::with_capacity(names.len());
        for name in names {
            // A term's document frequency counts deleted records too; a search does not.
            let query = TermQuery::new(
                Term::from_field_text(field, &name),
                IndexRecordOption::Basic,
            );
            let records = searcher
                .search(&query, &Count)
                .map_err(|source| partition.error(source))?;
            if records > 0 {
                clusters.push((name, records as u64));
            }
        }
        Ok(clusters)
    }

    /// The keys of the partitions of `tenants` whose day overlaps `[start, end)`, oldest day
    /// first.
    pub fn keys_for(
        &self,
        tenants: &[String],
        start: Option<Timestamp>,
        end: Option<Timestamp>,
    ) -> Vec<PartitionKey> {
        let utc_day = |ts: Timestamp| ts.to_zoned_datetime(TimeZone::UTC).date();
        let first_day = start.map(utc_day);
        // `end` is exclusive: a range ending at midnight does not reach into that day.
        let last_day = end.map(|end| utc_day(end - SignedDuration::from_micros(1)));
        let mut keys: Vec<PartitionKey> = self
            .keys
            .read()
            .expect("partition key lock is not poisoned")
            .iter()
            .filter(|key| tenants.contains(&key.tenant))
            .filter(|key| first_day.is_none_or(|day| key.day >= day))
            .filter(|key| last_day.is_none_or(|day| key.day <= day))
            .cloned()
            .collect();
        keys.sort_by_key(|key| key.day);
        keys
    }

    /// The partitions of `tenants` whose day overlaps `[start, end)`, oldest day first, each
    /// opened if it is not open.
    pub fn partitions_for(
        &self,
        tenants: &[String],
        start: Option<Timestamp>,
        end: Option<Timestamp>,
    ) -> Result<Vec<OpenPartition>> {
        self.keys_for(tenants, start, end)
            .iter()
            .map(|key| self.partition(key))
            .collect()
    }

    /// How many partitions are open now.
    pub fn open_count(&self) -> usize {
        self.open_partitions.open_count()
    }

    /// Runs `collector` over every partition of `tenants` overlapping `[start, end)` that
    /// `query` may match records of, the partitions split over the cores; each fruit with its
    /// partition's key, oldest day first. A partition is held open only while it is searched.
    pub fn search_partitions<C>(
        &self,
        tenants: &[String],
        range: TimeRange,
        query: &LogQuery,
        collector: &C,
    ) -> Result<Vec<(PartitionKey, C::Fruit)>>
    where
        C: Collector,
        C::Fruit: Send,
    {
        let mut picked = Vec::new();
        for key in self.keys_for(tenants, range.0, range.1) {
            if let Some(tenant_query) = query.for_tenant(&key.tenant)? {
                picked.push((key, tenant_query));
            }
        }
        self.search_each(&picked, range, collector)
    }

    /// Runs `collector` over the partitions `keys` (from `keys_for`), as `search_partitions`.
    pub fn search_keys<C>(
        &self,
        keys: &[PartitionKey],
        range: TimeRange,
        query: &dyn Query,
        collector: &C,
    ) -> Result<Vec<(PartitionKey, C::Fruit)>>
    where
        C: Collector,
        C::Fruit: Send,
    {
        let query: Arc<dyn Query> = Arc::from(query.box_clone());
        let picked: Vec<(PartitionKey, Arc<dyn Query>)> = keys
            .iter()
            .map(|key| (key.clone(), Arc::clone(&query)))
            .collect();
        self.search_each(&picked, range, collector)
    }

    /// Runs `collector` over each partition of `picked` with its query, as `search_partitions`.
    fn search_each<C>(
        &self,
        picked: &[(PartitionKey, Arc<dyn Query>)],
        range: TimeRange,
        collector: &C,
    ) -> Result<Vec<(PartitionKey, C::Fruit)>>
    where
        C: Collector,
        C::Fruit: Send,
    {
        let cores = parallel::cores().min(picked.len()).max(1);
        let parts: Vec<&[(PartitionKey, Arc<dyn Query>)]> =
            picked.chunks(picked.len().div_ceil(cores).max(1)).collect();
        let mut found = Vec::with_capacity(picked.len());
        for part in parallel::map_parts(parts, |part| {
            let mut found = Vec::with_capacity(part.len());
            for (key, query) in part {
                budget::check()?;
                let partition = match self.partition(key) {
                    // Deleted by retention since it was picked: it holds nothing now.
                    Err(Error::PartitionDeleted { .. }) => continue,
                    other => other?,
                };
                found.push((
                    key.clone(),
                    partition.search(query.as_ref(), range, collector)?,
                ));
            }
            Ok::<_, Error>(found)
        }) {
            found.extend(part?);
        }
        Ok(found)
    }

    /// The directory of partition `key`.
    pub fn partition_dir(&self, key: &PartitionKey) -> PathBuf {
        self.root.join(&key.tenant).join(key.day.to_string())
    }

    /// Moves partition `key`'s directory, written with another schema (by an older
    /// Afterglow), to `<data_dir>/logs-incompatible/<tenant>/<day>-<unix seconds>`, where its
    /// records are kept but no longer searched, and makes an empty one in its place: new
    /// records of that day must not fail for ever on a schema they do not fit.
    fn set_aside(&self, key: &PartitionKey, dir: &Path) -> Result<()> {
        let aside_dir = self
            .root
            .with_file_name("logs-incompatible")
            .join(&key.tenant);
        std::fs::create_dir_all(&aside_dir).map_err(|source| Error::CreateDir {
            path: aside_dir.clone(),
            source,
        })?;
        let aside = aside_dir.join(format!("{}-{}", key.day, Timestamp::now().as_second()));
        std::fs::rename(dir, &aside).map_err(|source| Error::SetAside {
            from: dir.to_owned(),
            to: aside.clone(),
            source,
        })?;
        tracing::error!(
            partition = %dir.display(),
            moved_to = %aside.display(),
            "a log partition written with another schema (an older Afterglow) was moved aside; its records are no longer searched"
        );
        std::fs::create_dir_all(dir).map_err(|source| Error::CreateDir {
            path: dir.to_owned(),
            source,
        })
    }

    fn open_partition(&self, key: &PartitionKey) -> Result<Partition> {
        let dir = self.partition_dir(key);
        std::fs::create_dir_all(&dir).map_err(|source| Error::CreateDir {
            path: dir.clone(),
            source,
        })?;
        let index_error = |source| Error::Index {
            path: dir.clone(),
            source,
        };
        let mut directory = MmapDirectory::open(&dir).map_err(|error| index_error(error.into()))?;
        if Index::exists(&directory).map_err(|error| index_error(error.into()))? {
            let existing = Index::open(directory.clone()).map_err(index_error)?;
            if self.schema.extends(&existing.schema()) {
                upgrade_schema(&existing, &directory, &self.schema, &dir).map_err(index_error)?;
            } else if existing.schema() != self.schema.schema {
                drop(existing);
                self.set_aside(key, &dir)?;
                directory = MmapDirectory::open(&dir).map_err(|error| index_error(error.into()))?;
            }
        }
        let settings = IndexSettings {
            docstore_compression: Compressor::Zstd(ZstdCompressor {
                compression_level: Some(DOCSTORE_ZSTD_LEVEL),
            }),
            docstore_blocksize: DOCSTORE_BLOCK_BYTES,
            ..IndexSettings::default()
        };
        let index = Index::builder()
            .schema(self.schema.schema.clone())
            .settings(settings)
            .open_or_create(directory)
            .map_err(index_error)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(index_error)?;
        Ok(Partition::new(
            key.clone(),
            index,
            reader,
            &self.schema,
            Arc::clone(&self.shared),
        ))
    }
}

/// Rewrites the `meta.json` of `index`, whose schema `schema` extends (`LogSchema::extends`),
/// with `schema`: its segments are left as they are, without columns for the new fields.
/// Called before any writer or reader of the partition exists.
fn upgrade_schema(
    index: &Index,
    directory: &MmapDirectory,
    schema: &LogSchema,
    dir: &Path,
) -> tantivy::Result<()> {
    use tantivy::directory::Directory;
    let mut metas = index.load_metas()?;
    metas.schema = schema.schema.clone();
    let mut json = serde_json::to_vec_pretty(&metas)?;
    json.push(b'\n');
    directory.sync_directory()?;
    directory.atomic_write(Path::new("meta.json"), &json)?;
    tracing::info!(
        partition = %dir.display(),
        "a log partition of an older Afterglow was given the current schema's new fields"
    );
    Ok(())
}

/// The keys of the partition directories under `root`.
fn keys_on_disk(root: &Path) -> Result<BTreeSet<PartitionKey>> {
    let mut keys = BTreeSet::new();
    let list = |path: &Path| {
        std::fs::read_dir(path).map_err(|source| Error::ReadDir {
            path: path.to_owned(),
            source,
        })
    };
    for tenant_dir in list(root)?.flatten() {
        let tenant = tenant_dir.file_name().to_string_lossy().into_owned();
        for day_dir in list(&tenant_dir.path())?.flatten() {
            let name = day_dir.file_name().to_string_lossy().into_owned();
            match name.parse::<Date>() {
                Ok(day) => {
                    keys.insert(PartitionKey {
                        tenant: tenant.clone(),
                        day,
                    });
                }
                Err(_) => {
                    tracing::warn!(path = %day_dir.path().display(), "ignoring a directory that is not a partition")
                }
            }
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::index::clusters::cluster_activity;
    use crate::index::search::{SearchRequest, SortOrder, search};
    use crate::index::writer::LogWriter;
    use crate::index::writer::tests::entry;

    const DAY_MICROS: i64 = 86_400_000_000;
    /// 2026-11-28T00:00:00Z.
    const FIRST_MIDNIGHT_MICROS: i64 = 1_795_824_000_000_000;

    /// Noon of day `day` after the first midnight.
    fn noon(day: i64) -> i64 {
        FIRST_MIDNIGHT_MICROS + day * DAY_MICROS + DAY_MICROS / 2
    }

    fn tenants() -> Vec<String> {
        vec!["t".to_owned()]
    }

    /// The messages of tenant `t` between the midnights starting `days`, oldest first.
    fn messages(store: &LogStore, days: std::ops::Range<i64>) -> Result<Vec<String>> {
        let midnight = |day| {
            Timestamp::from_microsecond(FIRST_MIDNIGHT_MICROS + day * DAY_MICROS).expect("in range")
        };
        let request = SearchRequest {
            tenants: tenants(),
            query: String::new(),
            filters: Vec::new(),
            start: Some(midnight(days.start)),
            end: Some(midnight(days.end)),
            limit: 1000,
            order: SortOrder::Asc,
            after: None,
        };
        let page = search(store, &request)?;
        Ok(page.hits.into_iter().map(|hit| hit.message).collect())
    }

    /// Writes one record a day on days `0..5` into a store under `root`, then stops writing.
    async fn five_days_written(root: &Path, max_open_partitions: usize) -> Result<Arc<LogStore>> {
        let store = Arc::new(LogStore::open(root, max_open_partitions)?);
        let writer = LogWriter::start(Arc::clone(&store), Duration::from_millis(20), None)?;
        let records = (0..5)
            .map(|day| entry(noon(day), "a", 1, day as u64, &format!("day {day}")))
            .collect();
        writer.write("t".to_owned(), records).await?;
        writer.shutdown().await;
        Ok(store)
    }

    fn all_days() -> Vec<String> {
        (0..5).map(|day| format!("day {day}")).collect()
    }

    #[tokio::test]
    async fn a_search_over_more_days_than_the_bound_leaves_the_bound_open() -> Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = five_days_written(dir.path(), 2).await?;
        assert_eq!(store.open_count(), 2, "the stopped writer holds none");
        assert_eq!(messages(&store, 0..5)?, all_days());
        assert_eq!(store.open_count(), 2);
        assert_eq!(
            store.columns().open_segments(),
            2,
            "closed partitions' columns are forgotten (one segment a day)"
        );
        let records: u64 = cluster_activity(&store, &tenants())?
            .iter()
            .flat_map(|cluster| cluster.records_by_level.values())
            .sum();
        assert_eq!(
            records, 5,
            "searched on every core, one partition at a time"
        );
        assert_eq!(store.open_count(), 2);
        Ok(())
    }

    /// A partition written with another schema (an older Afterglow) is moved aside, with its
    /// files, and the day's new records go to a fresh partition instead of failing for ever.
    #[tokio::test]
    async fn a_partition_of_another_schema_is_moved_aside_and_the_day_keeps_working() -> Result<()>
    {
        let dir = tempfile::tempdir().expect("tempdir");
        let logs = dir.path().join("logs");
        let day_dir = logs
            .join("t")
            .join(PartitionKey::for_record("t", noon(0)).day.to_string());
        std::fs::create_dir_all(&day_dir).expect("day dir");
        let mut old = tantivy::schema::Schema::builder();
        old.add_u64_field("stream", tantivy::schema::INDEXED);
        Index::create_in_dir(&day_dir, old.build()).expect("an old-schema index");
        let store = Arc::new(LogStore::open(&logs, 2)?);
        let writer = LogWriter::start(Arc::clone(&store), Duration::from_millis(20), None)?;
        writer
            .write(
                "t".to_owned(),
                vec![entry(noon(0), "a", 1, 1, "after the upgrade")],
            )
            .await?;
        writer.shutdown().await;
        assert_eq!(messages(&store, 0..1)?, ["after the upgrade"]);
        let aside: Vec<PathBuf> = std::fs::read_dir(dir.path().join("logs-incompatible").join("t"))
            .expect("the aside dir exists")
            .map(|entry| entry.expect("an entry").path())
            .collect();
        assert_eq!(aside.len(), 1);
        assert!(
            aside[0].join("meta.json").exists(),
            "the old files are kept"
        );
        Ok(())
    }

    /// A partition written before records carried `truncated` and `ts_inferred`
    /// (the schema without its last two fields) is upgraded in place, not set aside: its
    /// records stay searchable and read both flags as false, new records of the day keep
    /// theirs, and merging old and new segments keeps both.
    #[tokio::test]
    async fn a_partition_written_before_the_record_flags_reads_them_as_false() -> Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        let logs = dir.path().join("logs");
        let key = PartitionKey::for_record("t", noon(0));
        let day_dir = logs.join("t").join(key.day.to_string());
        std::fs::create_dir_all(&day_dir).expect("day dir");
        let current = LogSchema::new();
        let mut older = tantivy::schema::Schema::builder();
        for (field, field_entry) in current.schema.fields() {
            if field != current.truncated && field != current.ts_inferred {
                older.add_field(field_entry.clone());
            }
        }
        {
            let index = Index::create_in_dir(&day_dir, older.build()).expect("an old index");
            let mut writer: tantivy::IndexWriter = index.writer(15_000_000).expect("writer");
            let mut document = tantivy::TantivyDocument::new();
            let old = entry(noon(0), "a", 1, 1, "before the upgrade");
            for (field, value) in crate::index::writer::document(&current, &old).field_values() {
                if field != current.truncated && field != current.ts_inferred {
                    document.add_field_value(field, value);
                }
            }
            writer.add_document(document).expect("added");
            writer.commit().expect("committed");
        }
        let store = Arc::new(LogStore::open(&logs, 2)?);
        let writer = LogWriter::start(Arc::clone(&store), Duration::from_millis(20), None)?;
        let mut cut = entry(noon(0) + 1, "a", 1, 2, "after the upgrade");
        cut.truncated = true;
        cut.ts_inferred = true;
        writer.write("t".to_owned(), vec![cut]).await?;
        let merging = writer.clone();
        tokio::task::spawn_blocking(move || {
            merging.delete_clusters_blocking(key, vec!["no such cluster".to_owned()])
        })
        .await
        .expect("joined")?;
        writer.shutdown().await;
        assert!(
            !dir.path().join("logs-incompatible").exists(),
            "nothing set aside"
        );
        let page = search(
            &store,
            &SearchRequest {
                tenants: tenants(),
                query: String::new(),
                filters: Vec::new(),
                start: None,
                end: None,
                limit: 10,
                order: SortOrder::Asc,
                after: None,
            },
        )?;
        let flags: Vec<(&str, bool, bool)> = page
            .hits
            .iter()
            .map(|hit| (hit.message.as_str(), hit.truncated, hit.ts_inferred))
            .collect();
        assert_eq!(
            flags,
            [
                ("before the upgrade", false, false),
                ("after the upgrade", true, true)
            ]
        );
        Ok(())
    }

    /// `end` is exclusive: a range ending at a midnight picks no partition of that day, and
    /// one ending a microsecond later does.
    #[tokio::test]
    async fn a_range_ending_at_midnight_does_not_pick_the_next_day() -> Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = five_days_written(dir.path(), 2).await?;
        let at = |micros| Timestamp::from_microsecond(micros).expect("in range");
        let days = |end| -> Vec<i8> {
            store
                .keys_for(&tenants(), Some(at(FIRST_MIDNIGHT_MICROS)), Some(end))
                .iter()
                .map(|key| key.day.day())
                .collect()
        };
        let second_midnight = FIRST_MIDNIGHT_MICROS + DAY_MICROS;
        let first_day = days(at(second_midnight))[0];
        assert_eq!(days(at(second_midnight)), [first_day]);
        assert_eq!(days(at(second_midnight + 1)), [first_day, first_day + 1]);
        Ok(())
    }

    #[tokio::test]
    async fn partitions_in_use_stay_open_beyond_the_bound() -> Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = five_days_written(dir.path(), 2).await?;
        let held = store.partitions_for(&tenants(), None, None)?;
        assert_eq!(store.open_count(), 5);
        drop(held);
        assert_eq!(store.open_count(), 2);
        Ok(())
    }

    #[tokio::test]
    async fn a_partition_being_written_stays_searchable_while_others_churn() -> Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = five_days_written(dir.path(), 2).await?;
        let writer = LogWriter::start(Arc::clone(&store), Duration::from_millis(20), None)?;
        writer
            .write("t".to_owned(), vec![entry(noon(5), "a", 2, 0, "written 1")])
            .await?;
        // The writer holds day 5, least recently used once the older days are searched.
        for day in 0..5 {
            assert_eq!(messages(&store, day..day + 1)?, [format!("day {day}")]);
        }
        assert_eq!(
            store.open_count(),
            2,
            "the partition in use counts toward the bound"
        );
        let mut expected = all_days();
        expected.push("written 1".to_owned());
        assert_eq!(messages(&store, 0..6)?, expected);
        writer
            .write("t".to_owned(), vec![entry(noon(5), "a", 2, 1, "written 2")])
            .await?;
        assert_eq!(messages(&store, 5..6)?, ["written 1", "written 2"]);
        writer.shutdown().await;
        Ok(())
    }

    /// Retention deletes a partition between a search's `keys_for` and its reading: the search
    /// skips it, and no read makes it anew on disk.
    #[tokio::test]
    async fn a_partition_deleted_after_a_search_picked_it_is_skipped_not_recreated() -> Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = five_days_written(dir.path(), 2).await?;
        let keys = store.keys_for(&tenants(), None, None);
        let day_dir = store.partition_dir(&keys[0]);
        let Detach::MovedAside(aside) = store.detach_unless_in_use(&keys[0])? else {
            panic!("day 0 is on disk and not in use");
        };
        assert!(!day_dir.exists() && aside.exists());
        let found = store.search_keys(
            &keys,
            (None, None),
            &tantivy::query::AllQuery,
            &tantivy::collector::Count,
        )?;
        let counts: Vec<usize> = found.into_iter().map(|(_, count)| count).collect();
        assert_eq!(counts, [1, 1, 1, 1], "day 0 skipped");
        assert!(matches!(
            store.partition(&keys[0]),
            Err(Error::PartitionDeleted { .. })
        ));
        assert!(
            !day_dir.exists(),
            "a read does not create a deleted partition"
        );
        assert_eq!(messages(&store, 0..5)?, &all_days()[1..]);
        Ok(())
    }

    #[tokio::test]
    async fn a_reopened_store_finds_every_partition_and_opens_none() -> Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        drop(five_days_written(dir.path(), 2).await?);
        let store = LogStore::open(dir.path(), 2)?;
        assert_eq!(store.open_count(), 0);
        assert_eq!(store.keys_for(&tenants(), None, None).len(), 5);
        assert_eq!(messages(&store, 0..5)?, all_days());
        assert_eq!(store.open_count(), 2);
        Ok(())
    }

    #[tokio::test]
    async fn a_partition_that_cannot_be_opened_fails_only_the_searches_that_read_it() -> Result<()>
    {
        let dir = tempfile::tempdir().expect("tempdir");
        drop(five_days_written(dir.path(), 2).await?);
        let broken_dir = dir.path().join("t").join("2026-11-29");
        std::fs::write(broken_dir.join("meta.json"), "not json").expect("meta.json written");
        let store = LogStore::open(dir.path(), 2)?;
        assert_eq!(messages(&store, 2..5)?, ["day 2", "day 3", "day 4"]);
        match messages(&store, 0..5) {
            Err(Error::Index { path, .. }) => assert_eq!(path, broken_dir),
            other => panic!("expected an index error of day 1, got {other:?}"),
        }
        Ok(())
    }
}
