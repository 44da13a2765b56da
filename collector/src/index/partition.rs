//! Log partitions: one tantivy index per (tenant, UTC day) under `data_dir/logs/<tenant>/<day>`.
//! Queries pick partitions here, by tenant and time, before any index is searched — this is
//! where tenant scoping happens.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use jiff::Timestamp;
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use tantivy::collector::Collector;
use tantivy::directory::MmapDirectory;
use tantivy::index::SegmentId;
use tantivy::query::{BooleanQuery, Query, RangeQuery};
use tantivy::schema::Field;
use tantivy::store::{Compressor, ZstdCompressor};
use tantivy::{DateTime, Index, IndexReader, IndexSettings, ReloadPolicy, Term};

use crate::error::{Error, Result};
use crate::index::record::ColumnCache;
use crate::index::schema::LogSchema;
use crate::index::tail::Arrivals;
use crate::parallel;

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
    /// The store's column cache, which this partition's segments leave when they leave it.
    columns: Arc<ColumnCache>,
}

impl Partition {
    /// Makes the reader see the latest commit, and forgets the columns of segments it no
    /// longer has (merged away).
    pub fn reload(&self) -> tantivy::Result<()> {
        let before = self.segment_ids();
        self.reader.reload()?;
        let after = self.segment_ids();
        self.columns
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
        self.columns.forget(self.segment_ids());
    }
}

/// Every log partition of the collector.
pub struct LogStore {
    root: PathBuf,
    schema: LogSchema,
    partitions: RwLock<BTreeMap<PartitionKey, Arc<Partition>>>,
    arrivals: Arrivals,
    columns: Arc<ColumnCache>,
}

impl LogStore {
    /// Opens the store under `root`, opening every partition found there.
    pub fn open(root: &Path) -> Result<LogStore> {
        std::fs::create_dir_all(root).map_err(|source| Error::CreateDir {
            path: root.to_owned(),
            source,
        })?;
        let store = LogStore {
            root: root.to_owned(),
            schema: LogSchema::new(),
            partitions: RwLock::new(BTreeMap::new()),
            arrivals: Arrivals::default(),
            columns: Arc::default(),
        };
        for key in store.keys_on_disk()? {
            store.get_or_create(&key)?;
        }
        Ok(store)
    }

    /// The schema shared by all partitions.
    pub fn schema(&self) -> &LogSchema {
        &self.schema
    }

    /// The fast columns of every open partition's segments.
    pub fn columns(&self) -> &ColumnCache {
        &self.columns
    }

    /// Where the writer announces the records it adds (the live tail listens there).
    pub fn arrivals(&self) -> &Arrivals {
        &self.arrivals
    }

    /// Returns the partition for `key`, creating it on disk if needed.
    pub fn get_or_create(&self, key: &PartitionKey) -> Result<Arc<Partition>> {
        if let Some(partition) = self.read_partitions().get(key) {
            return Ok(Arc::clone(partition));
        }
        let mut partitions = self
            .partitions
            .write()
            .expect("partition map lock is not poisoned");
        if let Some(partition) = partitions.get(key) {
            return Ok(Arc::clone(partition));
        }
        let partition = Arc::new(self.open_partition(key)?);
        partitions.insert(key.clone(), Arc::clone(&partition));
        Ok(partition)
    }

    /// The partitions of `tenants` whose day overlaps `[start, end)`, oldest first.
    pub fn partitions_for(
        &self,
        tenants: &[String],
        start: Option<Timestamp>,
        end: Option<Timestamp>,
    ) -> Vec<Arc<Partition>> {
        let utc_day = |ts: Timestamp| ts.to_zoned_datetime(TimeZone::UTC).date();
        let first_day = start.map(utc_day);
        let last_day = end.map(utc_day);
        self.read_partitions()
            .values()
            .filter(|partition| tenants.contains(&partition.key.tenant))
            .filter(|partition| first_day.is_none_or(|day| partition.key.day >= day))
            .filter(|partition| last_day.is_none_or(|day| partition.key.day <= day))
            .cloned()
            .collect()
    }

    /// Runs `collector` over every partition of `tenants` overlapping `[start, end)`, the
    /// partitions split over the cores; each fruit with its partition, oldest day first.
    pub fn search_partitions<C>(
        &self,
        tenants: &[String],
        range: TimeRange,
        query: &dyn Query,
        collector: &C,
    ) -> Result<Vec<(Arc<Partition>, C::Fruit)>>
    where
        C: Collector,
        C::Fruit: Send,
    {
        let mut partitions = self.partitions_for(tenants, range.0, range.1);
        partitions.sort_by_key(|partition| partition.key.day);
        let cores = parallel::cores().min(partitions.len()).max(1);
        let parts: Vec<Vec<Arc<Partition>>> = partitions
            .chunks(partitions.len().div_ceil(cores).max(1))
            .map(<[Arc<Partition>]>::to_vec)
            .collect();
        let mut found = Vec::with_capacity(partitions.len());
        for part in parallel::map_parts(parts, |part| {
            part.into_iter()
                .map(|partition| {
                    let fruit = partition.search(query, range, collector)?;
                    Ok((partition, fruit))
                })
                .collect::<Result<Vec<_>>>()
        }) {
            found.extend(part?);
        }
        Ok(found)
    }

    fn read_partitions(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, BTreeMap<PartitionKey, Arc<Partition>>> {
        self.partitions
            .read()
            .expect("partition map lock is not poisoned")
    }

    fn partition_dir(&self, key: &PartitionKey) -> PathBuf {
        self.root.join(&key.tenant).join(key.day.to_string())
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
        let directory = MmapDirectory::open(&dir).map_err(|error| index_error(error.into()))?;
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
        Ok(Partition {
            key: key.clone(),
            index,
            reader,
            ts_field: self.schema.ts,
            columns: Arc::clone(&self.columns),
        })
    }

    fn keys_on_disk(&self) -> Result<Vec<PartitionKey>> {
        let mut keys = Vec::new();
        let list = |path: &Path| {
            std::fs::read_dir(path).map_err(|source| Error::ReadDir {
                path: path.to_owned(),
                source,
            })
        };
        for tenant_dir in list(&self.root)?.flatten() {
            let tenant = tenant_dir.file_name().to_string_lossy().into_owned();
            for day_dir in list(&tenant_dir.path())?.flatten() {
                let name = day_dir.file_name().to_string_lossy().into_owned();
                match name.parse::<Date>() {
                    Ok(day) => keys.push(PartitionKey {
                        tenant: tenant.clone(),
                        day,
                    }),
                    Err(_) => {
                        tracing::warn!(path = %day_dir.path().display(), "ignoring a directory that is not a partition")
                    }
                }
            }
        }
        Ok(keys)
    }
}
