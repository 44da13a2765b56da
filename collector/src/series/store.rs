//! `SeriesStore`: where metric samples are admitted, appended, sealed into blocks, merged, and
//! read from. Partitions are (tenant, UTC day) directories `<dir>/<tenant>/<YYYY-MM-DD>/`.
//!
//! The rule a reader must not miss: the store keeps no per-stream seq marks for metrics; a
//! sample at or before its series' newest stored timestamp is a duplicate and dropped, which
//! makes WAL replays and resends harmless. `seal` makes everything appended before it durable;
//! only then may the WAL that fed it be released.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use afterglow_proto::v1::PushRequest;

use crate::retention::{self, Detach};
use crate::series::block::{self, BlockWriter, TEMP_SUFFIX};
use crate::series::column_cache::ColumnCache;
use crate::series::error::{SeriesError, SeriesResult};
use crate::series::index::{self, INDEX_FILE, IndexCache};
use crate::series::labels::series_labels;
use crate::series::partition::{
    DAY_MS, Partition, PartitionKey, PartitionState, day_of, parse_day_name,
};
use crate::series::select::{Labels, SeriesSource, TenantLabel};
use crate::series::senders::SenderCache;
use crate::series::source::TenantSource;

/// Series index bytes (as files) of finished partitions kept in memory between queries
/// (about 100,000 series).
const INDEX_CACHE_BYTES: u64 = 16 << 20;

/// Decoded samples kept in memory between queries (8 million samples, e.g. a day of 1,400
/// series at 15 s).
const COLUMN_CACHE_BYTES: usize = 128 << 20;

/// How the series store behaves.
#[derive(Debug, Clone)]
pub struct SeriesConfig {
    /// Distinct series one tenant may have in one UTC day; new series past it are refused.
    pub max_series_per_tenant: usize,
}

impl Default for SeriesConfig {
    fn default() -> SeriesConfig {
        SeriesConfig {
            max_series_per_tenant: 100_000,
        }
    }
}

/// What happened to the samples of an `append`. Every count is in samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AppendOutcome {
    /// Added to the head.
    pub added: usize,
    /// At or before their series' newest stored timestamp (a replay, a resend, or out of order).
    pub duplicates: usize,
    /// Of invalid series (bad metric or label name, repeated label, stream index out of range,
    /// timestamp outside the years -9999..=9999) or of a tenant name unfit for a directory.
    pub invalid: usize,
    /// Of new series past `max_series_per_tenant`.
    pub refused: usize,
    /// Of partitions whose files could not be read (logged as errors).
    pub failed: usize,
}

/// Numbers for the collector's own metrics and for benches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SeriesStats {
    /// Partitions on disk or in memory.
    pub partitions: usize,
    /// Partitions being written to (series index in memory).
    pub live_partitions: usize,
    /// Series of the live partitions.
    pub live_series: usize,
    /// Samples in the head, not sealed yet.
    pub head_samples: usize,
    pub blocks: usize,
    /// Blocks and series indexes.
    pub bytes_on_disk: u64,
}

/// The metric series store. Shared as `Arc`; every method takes `&self`.
#[derive(Debug)]
pub struct SeriesStore {
    root: PathBuf,
    config: SeriesConfig,
    partitions: RwLock<BTreeMap<PartitionKey, Arc<Partition>>>,
    /// Held by `seal` and `compact`, which therefore never run at the same time.
    maintenance: Mutex<()>,
    /// Series indexes of finished partitions, kept between queries.
    pub(crate) index_cache: IndexCache,
    /// Decoded columns of blocks, kept between queries.
    pub(crate) column_cache: ColumnCache,
    /// Who sent samples, per partition, from its blocks' directories.
    pub(crate) sender_cache: SenderCache,
}

/// Tells whether `tenant` can name a directory.
fn is_safe_tenant(tenant: &str) -> bool {
    !tenant.is_empty() && tenant != "." && tenant != ".." && !tenant.contains(['/', '\\', '\0'])
}

fn read_dir(path: &Path) -> SeriesResult<Vec<(String, PathBuf)>> {
    let entries = std::fs::read_dir(path).map_err(|source| SeriesError::ReadDir {
        path: path.to_owned(),
        source,
    })?;
    Ok(entries
        .flatten()
        .filter_map(|entry| Some((entry.file_name().into_string().ok()?, entry.path())))
        .collect())
}

fn delete(path: &Path) -> SeriesResult<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(SeriesError::Delete {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Reads a partition directory: deletes blocks being written when the process stopped and
/// blocks a finished merge replaced; describes the others.
fn open_partition_dir(dir: &Path) -> SeriesResult<PartitionState> {
    let mut blocks = BTreeMap::new();
    let mut highest_id = None;
    for (name, path) in read_dir(dir)? {
        if name.ends_with(TEMP_SUFFIX) {
            delete(&path)?;
            continue;
        }
        let Some(id) = block::block_id(&name) else {
            continue;
        };
        highest_id = highest_id.max(Some(id));
        match block::read_info(&path, id) {
            Ok(info) => {
                blocks.insert(id, info);
            }
            Err(error) => {
                tracing::error!(error = %error, "unreadable block left out of the store");
            }
        }
    }
    let mut deleted = false;
    let replacing: Vec<(u64, Vec<u64>)> = blocks
        .values()
        .filter(|info| !info.replaces.is_empty())
        .map(|info| (info.id, info.replaces.clone()))
        .collect();
    for (id, replaces) in replacing {
        highest_id = highest_id.max(replaces.iter().copied().max());
        let leftovers: Vec<u64> = replaces
            .into_iter()
            .filter(|replaced| blocks.contains_key(replaced))
            .collect();
        if leftovers.is_empty() || !block::meta_is_intact(&block::block_path(dir, id)) {
            continue;
        }
        for replaced in leftovers {
            if let Some(info) = blocks.remove(&replaced) {
                tracing::info!(block = %info.path.display(), "deleting a block a finished merge replaced");
                delete(&info.path)?;
                deleted = true;
            }
        }
    }
    if deleted {
        block::sync_dir(dir)?;
    }
    Ok(PartitionState {
        blocks: blocks.into_values().map(Arc::new).collect(),
        next_block_id: highest_id.map_or(0, |id| id + 1),
        live: None,
        deleted: false,
    })
}

/// The key of `tenant`'s partition of UTC day `day`.
fn partition_key(tenant: &str, day: jiff::civil::Date) -> Option<PartitionKey> {
    let start = jiff::tz::TimeZone::UTC
        .to_timestamp(day.to_datetime(jiff::civil::Time::midnight()))
        .ok()?;
    Some(PartitionKey {
        tenant: tenant.to_owned(),
        day: day_of(start.as_millisecond())?,
    })
}

/// The value of the `cluster` label of `labels` (sorted by name), `""` without one.
fn cluster_label(labels: &Labels) -> &str {
    labels
        .binary_search_by(|(name, _)| name.as_str().cmp("cluster"))
        .map_or("", |at| labels[at].1.as_str())
}

/// The series of a batch grouped by day: day → (labels, samples of that day).
type SeriesByDay = BTreeMap<i64, Vec<(Labels, Vec<(i64, f64)>)>>;

impl SeriesStore {
    /// Opens the store under `dir` (created when missing). Partitions are listed and their
    /// blocks described; series indexes are loaded when a partition is first written to (for
    /// queries of other partitions, per query). Deletes blocks left half-written and blocks a
    /// finished merge replaced.
    pub fn open(dir: &Path, config: SeriesConfig) -> Result<SeriesStore, SeriesError> {
        std::fs::create_dir_all(dir).map_err(|source| SeriesError::CreateDir {
            path: dir.to_owned(),
            source,
        })?;
        let mut partitions = BTreeMap::new();
        for (tenant, tenant_dir) in read_dir(dir)? {
            if !tenant_dir.is_dir() || !is_safe_tenant(&tenant) {
                continue;
            }
            for (day_name, day_dir) in read_dir(&tenant_dir)? {
                let Some(day) = parse_day_name(&day_name) else {
                    continue;
                };
                if !day_dir.is_dir() {
                    continue;
                }
                let key = PartitionKey {
                    tenant: tenant.clone(),
                    day,
                };
                let state = open_partition_dir(&day_dir)?;
                partitions.insert(key.clone(), Arc::new(Partition::new(key, day_dir, state)));
            }
        }
        Ok(SeriesStore {
            root: dir.to_owned(),
            config,
            partitions: RwLock::new(partitions),
            maintenance: Mutex::new(()),
            index_cache: IndexCache::new(INDEX_CACHE_BYTES),
            column_cache: ColumnCache::new(COLUMN_CACHE_BYTES),
            sender_cache: SenderCache::default(),
        })
    }

    /// The partition of `tenant` on `day`, created (in memory only) when missing.
    fn partition(&self, tenant: &str, day: i64) -> Arc<Partition> {
        let key = PartitionKey {
            tenant: tenant.to_owned(),
            day,
        };
        if let Some(partition) = self
            .partitions
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
        {
            return Arc::clone(partition);
        }
        let mut partitions = self
            .partitions
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let dir = self.root.join(tenant).join(key.day_name());
        Arc::clone(
            partitions
                .entry(key.clone())
                .or_insert_with(|| Arc::new(Partition::new(key, dir, PartitionState::default()))),
        )
    }

    /// Every partition as (tenant, UTC day, directory), in (tenant, day) order.
    pub(crate) fn partition_days(&self) -> Vec<(String, jiff::civil::Date, PathBuf)> {
        self.all_partitions()
            .iter()
            .map(|partition| {
                (
                    partition.key.tenant.clone(),
                    partition.key.date(),
                    partition.dir.clone(),
                )
            })
            .collect()
    }

    /// The partition of `tenant` on `day` to write to: never one retention just deleted.
    fn partition_to_write(&self, tenant: &str, day: i64) -> Arc<Partition> {
        loop {
            let partition = self.partition(tenant, day);
            if !partition.lock().deleted {
                return partition;
            }
            // Deleted after `partition` found it: the store no longer has it, the next
            // call makes a new one.
        }
    }

    /// Every partition, in (tenant, day) order.
    pub(crate) fn all_partitions(&self) -> Vec<Arc<Partition>> {
        self.partitions
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    /// The partitions of `tenants` whose day overlaps `[start_ms, end_ms]`, in day order per
    /// tenant. Nothing is opened.
    pub(crate) fn partitions_in_range(
        &self,
        tenants: &[String],
        start_ms: i64,
        end_ms: i64,
    ) -> Vec<Arc<Partition>> {
        let partitions = self
            .partitions
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let first_day = start_ms.div_euclid(DAY_MS);
        let last_day = end_ms.div_euclid(DAY_MS);
        let mut found = Vec::new();
        for tenant in tenants {
            let from = PartitionKey {
                tenant: tenant.clone(),
                day: first_day,
            };
            let to = PartitionKey {
                tenant: tenant.clone(),
                day: last_day,
            };
            if from > to {
                continue;
            }
            found.extend(partitions.range(from..=to).map(|(_, p)| Arc::clone(p)));
        }
        found
    }

    /// Before the WAL: removes from `batch` the series new to their (tenant, day) partition
    /// that would take the tenant past `max_series_per_tenant` series that day, and says so in
    /// a message a person can act on; `None` when nothing was refused. Invalid series are left
    /// for `append` to count.
    pub fn admit(&self, tenant: &str, batch: &mut PushRequest) -> Option<String> {
        if !is_safe_tenant(tenant) {
            return None;
        }
        let limit = self.config.max_series_per_tenant;
        // Series this batch adds, per day, so that a batch cannot pass the limit by itself.
        let mut new_series: HashMap<i64, HashSet<Labels>> = HashMap::new();
        let mut refused = 0usize;
        for family in &mut batch.metric_families {
            family.series.retain(|series| {
                let Some(labels) = series_labels(series) else {
                    return true;
                };
                let mut days: Vec<i64> = series
                    .samples
                    .iter()
                    .filter_map(|sample| day_of(sample.ts_unix_millis))
                    .collect();
                days.sort_unstable();
                days.dedup();
                for day in days {
                    let partition = self.partition_to_write(tenant, day);
                    let Ok(state) = partition.lock_live() else {
                        continue;
                    };
                    let live = state.live.as_ref().expect("lock_live loads it");
                    if live.index.get(&labels).is_some() {
                        continue;
                    }
                    let batch_new = new_series.entry(day).or_default();
                    if batch_new.contains(&labels) {
                        continue;
                    }
                    if live.index.len() + batch_new.len() >= limit {
                        refused += 1;
                        return false;
                    }
                    batch_new.insert(labels.clone());
                }
                true
            });
        }
        (refused > 0).then(|| {
            format!(
                "tenant {tenant}: {refused} new series refused: the limit is {limit} series per tenant per day ([metrics] max_series_per_tenant)"
            )
        })
    }

    /// From the WAL, in WAL order (start-up replay included): adds the batch's samples to the
    /// head. Samples at or before their series' newest stored timestamp are duplicates;
    /// invalid series are skipped; both are counted. Never fails.
    pub fn append(&self, tenant: &str, batch: &PushRequest) -> AppendOutcome {
        let mut outcome = AppendOutcome::default();
        let sample_count = |series: &afterglow_proto::v1::MetricSeries| series.samples.len();
        if !is_safe_tenant(tenant) {
            outcome.invalid = batch
                .metric_families
                .iter()
                .flat_map(|family| &family.series)
                .map(sample_count)
                .sum();
            return outcome;
        }
        let mut by_day = SeriesByDay::new();
        for family in &batch.metric_families {
            let stream_ok =
                usize::try_from(family.stream_index).is_ok_and(|at| at < batch.streams.len());
            for series in &family.series {
                let labels = if stream_ok {
                    series_labels(series)
                } else {
                    None
                };
                let Some(labels) = labels else {
                    outcome.invalid += sample_count(series);
                    continue;
                };
                let mut per_day: BTreeMap<i64, Vec<(i64, f64)>> = BTreeMap::new();
                for sample in &series.samples {
                    match day_of(sample.ts_unix_millis) {
                        Some(day) => per_day
                            .entry(day)
                            .or_default()
                            .push((sample.ts_unix_millis, sample.value)),
                        None => outcome.invalid += 1,
                    }
                }
                let mut days: Vec<(i64, Vec<(i64, f64)>)> = per_day.into_iter().collect();
                let last_day = days.pop();
                for (day, samples) in days {
                    by_day
                        .entry(day)
                        .or_default()
                        .push((labels.clone(), samples));
                }
                if let Some((day, samples)) = last_day {
                    by_day.entry(day).or_default().push((labels, samples));
                }
            }
        }
        for (day, series) in by_day {
            let partition = self.partition_to_write(tenant, day);
            let mut state = match partition.lock_live() {
                Ok(state) => state,
                Err(error) => {
                    tracing::error!(error = %error, partition = %partition.dir.display(), "cannot load series partition, dropping samples");
                    outcome.failed += series
                        .iter()
                        .map(|(_, samples)| samples.len())
                        .sum::<usize>();
                    continue;
                }
            };
            let live = state.live.as_mut().expect("lock_live loads it");
            for (labels, samples) in series {
                let Some(id) = live.id_or_insert(labels, self.config.max_series_per_tenant) else {
                    outcome.refused += samples.len();
                    continue;
                };
                for (ts_ms, value) in samples {
                    if live.push(id, ts_ms, value) {
                        outcome.added += 1;
                    } else {
                        outcome.duplicates += 1;
                    }
                }
            }
        }
        outcome
    }

    /// Makes every sample appended before the call durable in blocks (one new block per
    /// partition with samples in the head). After `Ok` the WAL that fed them may be released.
    /// On error what could not be sealed stays in the head and the next call retries.
    pub fn seal(&self) -> Result<(), SeriesError> {
        let _maintenance = self
            .maintenance
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut first_error = None;
        for partition in self.all_partitions() {
            if let Err(error) = self.seal_partition(&partition) {
                tracing::warn!(error = %error, partition = %partition.dir.display(), "cannot seal series partition, retrying at the next seal");
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn seal_partition(&self, partition: &Partition) -> SeriesResult<()> {
        let (pending, head, block_id) = {
            let mut state = partition.lock();
            let next_block_id = state.next_block_id;
            let Some(live) = state.live.as_ref() else {
                return Ok(());
            };
            if live.is_sealed() {
                return Ok(());
            }
            let head: Vec<(u32, Vec<i64>, Vec<f64>)> = (0..)
                .zip(&live.head)
                .filter(|(_, series)| !series.timestamps.is_empty())
                .map(|(id, series)| (id, series.timestamps.clone(), series.values.clone()))
                .collect();
            let pending = live.index.pending();
            if !head.is_empty() {
                state.next_block_id += 1;
            }
            (pending, head, next_block_id)
        };
        self.create_partition_dir(&partition.dir)?;
        if let Some(pending) = &pending {
            index::write_pending(&partition.dir.join(INDEX_FILE), pending)?;
        }
        let info = if head.is_empty() {
            None
        } else {
            let mut writer = BlockWriter::create(&partition.dir, block_id)?;
            for (id, timestamps, values) in &head {
                writer.add_series(*id, timestamps, values)?;
            }
            Some(writer.finish(0, Vec::new())?)
        };
        let mut state = partition.lock();
        if let Some(info) = info {
            state.blocks.push(Arc::new(info));
        }
        let live = state
            .live
            .as_mut()
            .expect("only compact drops it, not while we seal");
        if let Some(pending) = &pending {
            live.index.mark_persisted(pending);
        }
        for (id, timestamps, _) in &head {
            let series = &mut live.head[*id as usize];
            series.timestamps.drain(..timestamps.len());
            series.values.drain(..timestamps.len());
            live.head_samples -= timestamps.len();
        }
        Ok(())
    }

    /// Creates a partition directory and makes its entry in the tenant directory durable.
    fn create_partition_dir(&self, dir: &Path) -> SeriesResult<()> {
        if dir.is_dir() {
            return Ok(());
        }
        std::fs::create_dir_all(dir).map_err(|source| SeriesError::CreateDir {
            path: dir.to_owned(),
            source,
        })?;
        let tenant_dir = dir.parent().expect("partition dirs are under a tenant dir");
        block::sync_dir(tenant_dir)?;
        block::sync_dir(&self.root)
    }

    /// Merges blocks (see `compact_at`) with the wall clock's time.
    pub fn compact(&self) -> Result<(), SeriesError> {
        let now_ms = jiff::Timestamp::now().as_millisecond();
        self.compact_at(now_ms)
    }

    /// Merges blocks as if the time were `now_ms`: 8 blocks of one level become one of the
    /// next level, and every partition whose day ended more than an hour before `now_ms`
    /// becomes one block. Also drops from memory the live part of such partitions once all of
    /// it is sealed. Crash-safe: a merged block names the blocks it replaces and `open` deletes
    /// those if a crash left them. On error the partition keeps its blocks.
    pub fn compact_at(&self, now_ms: i64) -> Result<(), SeriesError> {
        let _maintenance = self
            .maintenance
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut first_error = None;
        for partition in self.all_partitions() {
            let day_closed = partition.key.end_ms().saturating_add(3_600_000) < now_ms;
            if let Err(error) = crate::series::compaction::compact_partition(&partition, day_closed)
            {
                tracing::warn!(error = %error, partition = %partition.dir.display(), "cannot merge series blocks, retrying at the next compaction");
                first_error.get_or_insert(error);
            }
            if day_closed {
                let mut state = partition.lock();
                if state.live.as_ref().is_some_and(|live| live.is_sealed()) {
                    state.live = None;
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Takes partition `key` out of the store and moves its directory aside for deletion
    /// (`retention::move_aside_for_deletion`), unless it is being written (its live part is
    /// loaded: today's, or a past day that got late samples and is not merged yet):
    /// `Detach::InUse` then, and nothing changes. A query that took its snapshot before keeps
    /// reading the blocks it opened (see `partition`); a later one finds no partition. The
    /// caller deletes the directory moved aside.
    pub(crate) fn detach_unless_written(
        &self,
        tenant: &str,
        day: jiff::civil::Date,
    ) -> SeriesResult<Detach> {
        let Some(key) = &partition_key(tenant, day) else {
            return Ok(Detach::NothingOnDisk);
        };
        // No seal or merge writes into the directory while it moves.
        let _maintenance = self
            .maintenance
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut partitions = self
            .partitions
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(partition) = partitions.get(key).cloned() else {
            return Ok(Detach::NothingOnDisk);
        };
        let mut state = partition.lock();
        if state.live.is_some() {
            return Ok(Detach::InUse);
        }
        let aside = retention::move_aside_for_deletion(&partition.dir).map_err(|source| {
            SeriesError::Delete {
                path: partition.dir.clone(),
                source,
            }
        })?;
        state.blocks.clear();
        state.deleted = true;
        drop(state);
        partitions.remove(key);
        drop(partitions);
        self.column_cache.forget_under(&partition.dir);
        self.index_cache.forget(&partition.dir.join(INDEX_FILE));
        self.sender_cache.forget(key);
        Ok(aside.map_or(Detach::NothingOnDisk, Detach::MovedAside))
    }

    /// The clusters (the `cluster` label; `""` for series without one) with samples in the
    /// blocks of `tenant`'s partition of `day`, each with its number of series, by name;
    /// `None` while the partition is being written (see `detach_unless_written`).
    pub(crate) fn clusters_in(
        &self,
        tenant: &str,
        day: jiff::civil::Date,
    ) -> SeriesResult<Option<Vec<(String, u64)>>> {
        let _maintenance = self
            .maintenance
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(partition) = self.existing_partition(tenant, day) else {
            return Ok(Some(Vec::new()));
        };
        let blocks = {
            let state = partition.lock();
            if state.live.is_some() {
                return Ok(None);
            }
            state.blocks.clone()
        };
        let mut series_ids = BTreeSet::new();
        for info in &blocks {
            let file = crate::series::partition::open_block(info)?;
            let directory = block::read_directory(&file, &info.path)?;
            series_ids.extend(directory.entries.iter().map(|entry| entry.series_id));
        }
        if series_ids.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let index = self.index_cache.load(&partition.dir.join(INDEX_FILE))?;
        let mut clusters: BTreeMap<String, u64> = BTreeMap::new();
        for (id, labels) in index.iter() {
            if series_ids.contains(&id) {
                *clusters
                    .entry(cluster_label(labels).to_owned())
                    .or_default() += 1;
            }
        }
        Ok(Some(clusters.into_iter().collect()))
    }

    /// Drops the series of `clusters` (the `cluster` label) from `tenant`'s partition of `day`:
    /// rewrites its blocks without them, replacing them as a merge does. `None` while the
    /// partition is being written; else how many series were dropped.
    pub(crate) fn drop_clusters(
        &self,
        tenant: &str,
        day: jiff::civil::Date,
        clusters: &[String],
    ) -> SeriesResult<Option<usize>> {
        let _maintenance = self
            .maintenance
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(partition) = self.existing_partition(tenant, day) else {
            return Ok(Some(0));
        };
        if partition.lock().live.is_some() {
            return Ok(None);
        }
        let index = self.index_cache.load(&partition.dir.join(INDEX_FILE))?;
        let dropped_ids: HashSet<u32> = index
            .iter()
            .filter(|(_, labels)| clusters.iter().any(|name| name == cluster_label(labels)))
            .map(|(id, _)| id)
            .collect();
        let dropped =
            crate::series::compaction::rewrite_without(&partition, |id| dropped_ids.contains(&id))?;
        if dropped > 0 {
            self.column_cache.forget_under(&partition.dir);
        }
        Ok(Some(dropped))
    }

    /// `tenant`'s partition of `day`, if the store has it.
    fn existing_partition(&self, tenant: &str, day: jiff::civil::Date) -> Option<Arc<Partition>> {
        let key = partition_key(tenant, day)?;
        self.partitions
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
            .cloned()
    }

    /// Every tenant with a partition, by name.
    pub fn tenants(&self) -> Vec<String> {
        let tenants: std::collections::BTreeSet<String> = self
            .all_partitions()
            .iter()
            .map(|partition| partition.key.tenant.clone())
            .collect();
        tenants.into_iter().collect()
    }

    /// Read access to the series of `tenants` only, without a `tenant` label.
    pub fn source(self: &Arc<Self>, tenants: Vec<String>) -> Arc<dyn SeriesSource> {
        self.source_labeled(tenants, TenantLabel::Omitted)
    }

    /// Read access to the series of `tenants` only, each series labeled with its tenant
    /// when `tenant_label` says so.
    pub fn source_labeled(
        self: &Arc<Self>,
        tenants: Vec<String>,
        tenant_label: TenantLabel,
    ) -> Arc<dyn SeriesSource> {
        Arc::new(TenantSource::new(Arc::clone(self), tenants, tenant_label))
    }

    /// Counts for the collector's metrics and for benches.
    pub fn stats(&self) -> SeriesStats {
        let mut stats = SeriesStats::default();
        for partition in self.all_partitions() {
            stats.partitions += 1;
            let state = partition.lock();
            stats.blocks += state.blocks.len();
            stats.bytes_on_disk += state.blocks.iter().map(|info| info.file_bytes).sum::<u64>();
            if let Some(live) = &state.live {
                stats.live_partitions += 1;
                stats.live_series += live.index.len();
                stats.head_samples += live.head_samples;
            }
            drop(state);
            stats.bytes_on_disk += std::fs::metadata(partition.dir.join(INDEX_FILE))
                .map_or(0, |metadata| metadata.len());
        }
        stats
    }
}
