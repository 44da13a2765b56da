//! Retention: the janitor that deletes whole (tenant, UTC day) partitions of logs
//! and metrics once their day is older than their age limit, then the oldest partitions while
//! the data directory is over `max_disk`.
//!
//! The rule a reader must not miss: a partition is deleted by first moving its directory to
//! `<day>.deleting` (a name neither store reads) under the store's lock, and only then
//! removing it; start-up removes what a crash left as `.deleting`. A partition in use (held
//! open by a search or the writer, or a series partition being written) is skipped and tried
//! again at the next run. The settings follow the configuration file as it is reloaded.
//!
//! A cluster rule narrower than a partition deletes from inside it (`cluster` module): the
//! expired clusters' records through the index writer (delete, commit, merge) and their series
//! by a rewrite of the partition's blocks; the partition goes whole only once every cluster in
//! it is expired.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::{CollectorConfig, RetentionConfig};
use crate::error::{Error, Result};
use crate::index::partition::{LogStore, PartitionKey};
use crate::index::writer::LogWriter;
use crate::series::SeriesStore;
use crate::telemetry::CollectorMetrics;

/// What a partition directory being deleted is renamed to end with.
pub const DELETING_SUFFIX: &str = ".deleting";

/// The directories of the data directory that hold partitions as `<tenant>/<day>`.
const PARTITION_ROOTS: [&str; 2] = ["logs", "metrics"];

/// The limits in force, parsed from `[retention]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RetentionSettings {
    /// Age limit of logs and metrics unless a rule or a per-kind limit applies.
    pub max_age: Option<Duration>,
    /// Age limit of logs unless a rule applies.
    pub logs_max_age: Option<Duration>,
    /// Age limit of metrics unless a rule applies.
    pub metrics_max_age: Option<Duration>,
    /// Most bytes the data directory may take.
    pub max_disk_bytes: Option<u64>,
    /// Time between two runs.
    pub interval: Duration,
    /// Per-tenant and per-cluster age limits; the first that matches wins.
    pub rules: Vec<RetentionRule>,
}

/// A `[[retention.rules]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionRule {
    /// `None`: every tenant.
    pub tenant: Option<String>,
    /// `None`: every cluster.
    pub cluster: Option<ClusterGlob>,
    pub max_age: Duration,
}

impl RetentionRule {
    fn matches_tenant(&self, tenant: &str) -> bool {
        self.tenant.as_deref().is_none_or(|name| name == tenant)
    }
}

/// A glob of cluster names, compiled.
#[derive(Debug, Clone)]
pub struct ClusterGlob {
    pattern: String,
    matcher: globset::GlobMatcher,
}

impl ClusterGlob {
    /// Compiles `pattern`.
    pub fn new(pattern: &str) -> Result<ClusterGlob, globset::Error> {
        Ok(ClusterGlob {
            pattern: pattern.to_owned(),
            matcher: globset::Glob::new(pattern)?.compile_matcher(),
        })
    }

    /// Tells whether cluster `name` matches.
    pub fn is_match(&self, name: &str) -> bool {
        self.matcher.is_match(name)
    }
}

impl PartialEq for ClusterGlob {
    fn eq(&self, other: &ClusterGlob) -> bool {
        self.pattern == other.pattern
    }
}

impl Eq for ClusterGlob {}

/// The two kinds of data, each in its own partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DataKind {
    Logs,
    Metrics,
}

impl RetentionSettings {
    /// The age limit of `tenant`'s partitions of `kind`: the same for every cluster in them
    /// unless a cluster rule matching `tenant` comes before the first rule without `cluster`
    /// that does.
    pub fn max_age_for(&self, tenant: &str, kind: DataKind) -> PartitionMaxAge {
        match self.rules.iter().find(|rule| rule.matches_tenant(tenant)) {
            Some(rule) if rule.cluster.is_some() => PartitionMaxAge::PerCluster,
            Some(rule) => PartitionMaxAge::Uniform(Some(rule.max_age)),
            None => PartitionMaxAge::Uniform(self.kind_max_age(kind)),
        }
    }

    /// The age limit of `cluster`'s data of `kind` in `tenant`'s partitions: the first rule
    /// matching both's, else the kind's, else `max_age`; `None` keeps it for ever.
    pub fn max_age_for_cluster(
        &self,
        tenant: &str,
        cluster: &str,
        kind: DataKind,
    ) -> Option<Duration> {
        self.rules
            .iter()
            .find(|rule| {
                rule.matches_tenant(tenant)
                    && rule
                        .cluster
                        .as_ref()
                        .is_none_or(|glob| glob.is_match(cluster))
            })
            .map(|rule| rule.max_age)
            .or_else(|| self.kind_max_age(kind))
    }

    /// The shortest age limit any cluster's data of `kind` in `tenant`'s partitions can have;
    /// `None` when every one is kept for ever.
    pub fn shortest_max_age_for(&self, tenant: &str, kind: DataKind) -> Option<Duration> {
        let mut shortest: Option<Duration> = None;
        for rule in self.rules.iter().filter(|rule| rule.matches_tenant(tenant)) {
            shortest = Some(shortest.map_or(rule.max_age, |age| age.min(rule.max_age)));
            if rule.cluster.is_none() {
                // Every cluster matches it: no later rule, nor the kind's limit, applies.
                return shortest;
            }
        }
        match (shortest, self.kind_max_age(kind)) {
            (Some(age), Some(kind_age)) => Some(age.min(kind_age)),
            (age, kind_age) => age.or(kind_age),
        }
    }

    fn kind_max_age(&self, kind: DataKind) -> Option<Duration> {
        let per_kind = match kind {
            DataKind::Logs => self.logs_max_age,
            DataKind::Metrics => self.metrics_max_age,
        };
        per_kind.or(self.max_age)
    }

    /// Tells whether no limit is set, so the janitor has nothing to do.
    pub fn keeps_everything(&self) -> bool {
        self.max_age.is_none()
            && self.logs_max_age.is_none()
            && self.metrics_max_age.is_none()
            && self.max_disk_bytes.is_none()
            && self.rules.is_empty()
    }
}

/// The age limit of a tenant's partitions of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionMaxAge {
    /// The same for every cluster; `None` keeps them for ever (as far as age goes).
    Uniform(Option<Duration>),
    /// Depends on the cluster (`RetentionSettings::max_age_for_cluster`).
    PerCluster,
}

/// What a store did when asked to let a partition go.
#[derive(Debug, PartialEq, Eq)]
pub enum Detach {
    /// Held by a search or being written: left as it was.
    InUse,
    /// Out of the store, with no directory on disk.
    NothingOnDisk,
    /// Out of the store; its directory was moved here, to be removed by the caller.
    MovedAside(PathBuf),
}

/// Renames partition directory `dir` to `<dir>.deleting` (removing an older one of that name)
/// and returns the new path; `None` when `dir` does not exist.
pub(crate) fn move_aside_for_deletion(dir: &Path) -> io::Result<Option<PathBuf>> {
    let mut name = dir
        .file_name()
        .expect("partition directories have a name")
        .to_owned();
    name.push(DELETING_SUFFIX);
    let aside = dir.with_file_name(name);
    match std::fs::remove_dir_all(&aside) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    match std::fs::rename(dir, &aside) {
        Ok(()) => Ok(Some(aside)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}

/// Removes the `<tenant>/<day>.deleting` directories a crash left under `data_dir`'s logs and
/// metrics; returns them. Run before the stores open.
pub fn remove_leftovers(data_dir: &Path) -> Result<Vec<PathBuf>> {
    let list = |path: &Path| {
        std::fs::read_dir(path).map_err(|source| Error::ReadDir {
            path: path.to_owned(),
            source,
        })
    };
    let mut removed = Vec::new();
    for root in PARTITION_ROOTS {
        let root = data_dir.join(root);
        if !root.is_dir() {
            continue;
        }
        for tenant in list(&root)?.flatten() {
            let tenant = tenant.path();
            if !tenant.is_dir() {
                continue;
            }
            for day in list(&tenant)?.flatten() {
                let day = day.path();
                let is_leftover = day
                    .file_name()
                    .and_then(|name| name.to_str())
                    .is_some_and(|name| name.ends_with(DELETING_SUFFIX));
                if !is_leftover || !day.is_dir() {
                    continue;
                }
                std::fs::remove_dir_all(&day).map_err(|source| Error::DeletePartition {
                    path: day.clone(),
                    source,
                })?;
                tracing::info!(path = %day.display(), "removed a partition whose deletion a stop interrupted");
                removed.push(day);
            }
        }
    }
    Ok(removed)
}

/// Bytes that the files under `path` take on disk (allocated blocks, as `du` counts them).
pub fn disk_bytes(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(metadata) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    let own = metadata.blocks() * 512;
    if !metadata.is_dir() {
        return own;
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        return own;
    };
    own + entries
        .flatten()
        .map(|entry| disk_bytes(&entry.path()))
        .sum::<u64>()
}

/// Why a partition was deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeletionReason {
    /// Its day is older than its age limit.
    Age,
    /// The data directory was over `max_disk` and it was among the oldest.
    Disk,
}

/// One partition of either store.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct StoredPartition {
    pub day: Date,
    pub kind: DataKind,
    pub tenant: String,
    pub dir: PathBuf,
}

/// A partition the janitor deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deletion {
    pub partition: StoredPartition,
    pub reason: DeletionReason,
    pub bytes_freed: u64,
}

/// What one run did.
#[derive(Debug, Default)]
pub struct RetentionReport {
    pub deleted: Vec<Deletion>,
    /// Expired clusters' data deleted from inside partitions other clusters keep.
    pub cluster_deletions: Vec<ClusterDeletion>,
    /// Due for deletion but in use; tried again at the next run.
    pub skipped_in_use: Vec<StoredPartition>,
}

/// Applies the retention settings to both stores.
pub struct Janitor {
    data_dir: PathBuf,
    logs: Arc<LogStore>,
    series: Arc<SeriesStore>,
    /// `[retention]` in force and its limits; replaced when the file is reloaded.
    current: RwLock<Arc<(RetentionConfig, RetentionSettings)>>,
    metrics: Arc<CollectorMetrics>,
    /// Deletes expired clusters' records from log partitions; without it they are kept.
    log_writer: Option<LogWriter>,
}

impl Janitor {
    /// A janitor of the stores under `data_dir` keeping to `config` (validated).
    pub fn new(
        data_dir: PathBuf,
        logs: Arc<LogStore>,
        series: Arc<SeriesStore>,
        config: RetentionConfig,
        metrics: Arc<CollectorMetrics>,
    ) -> Janitor {
        let settings = config.settings();
        Janitor {
            data_dir,
            logs,
            series,
            current: RwLock::new(Arc::new((config, settings))),
            metrics,
            log_writer: None,
        }
    }

    /// Deletes expired clusters' records from log partitions through `writer` (the writer
    /// thread owns every partition's `IndexWriter`). `run_at` then blocks on it: call it from
    /// a blocking thread.
    pub fn with_log_writer(mut self, writer: LogWriter) -> Janitor {
        self.log_writer = Some(writer);
        self
    }

    /// `[retention]` in force and its limits.
    fn current(&self) -> Arc<(RetentionConfig, RetentionSettings)> {
        Arc::clone(
            &self
                .current
                .read()
                .expect("retention settings lock is not poisoned"),
        )
    }

    /// The limits in force.
    pub fn settings(&self) -> RetentionSettings {
        self.current().1.clone()
    }

    /// Keeps to `config` (validated) from now on.
    pub fn set_config(&self, config: RetentionConfig) {
        let settings = config.settings();
        *self
            .current
            .write()
            .expect("retention settings lock is not poisoned") = Arc::new((config, settings));
    }

    /// Every partition of both stores, oldest day first (logs before metrics on a day).
    pub fn partitions(&self) -> Vec<StoredPartition> {
        let mut partitions: Vec<StoredPartition> = self
            .logs
            .all_keys()
            .into_iter()
            .map(|key| StoredPartition {
                dir: self.logs.partition_dir(&key),
                day: key.day,
                kind: DataKind::Logs,
                tenant: key.tenant,
            })
            .collect();
        partitions.extend(
            self.series
                .partition_days()
                .into_iter()
                .map(|(tenant, day, dir)| StoredPartition {
                    day,
                    kind: DataKind::Metrics,
                    tenant,
                    dir,
                }),
        );
        partitions.sort();
        partitions
    }

    /// Deletes, as if the time were `now`, the partitions older than their age limit (and
    /// the expired clusters' data inside the others), then the oldest while the data directory
    /// is over `max_disk`. Blocks: file system work, and waits for the index writer.
    pub fn run_at(&self, now: Timestamp) -> RetentionReport {
        let current = self.current();
        let settings = &current.1;
        let mut report = RetentionReport::default();
        let mut kept = Vec::new();
        for partition in self.partitions() {
            let expired = match settings.max_age_for(&partition.tenant, partition.kind) {
                PartitionMaxAge::Uniform(max_age) => {
                    max_age.is_some_and(|max_age| day_end(partition.day) + max_age < now)
                }
                PartitionMaxAge::PerCluster => {
                    self.apply_cluster_rules(&partition, settings, now, &mut report)
                        == ClusterVerdict::AllExpired
                }
            };
            if expired {
                self.delete(partition, DeletionReason::Age, &mut report);
            } else {
                kept.push(partition);
            }
        }
        let Some(max_disk_bytes) = settings.max_disk_bytes else {
            return report;
        };
        let mut used_bytes = disk_bytes(&self.data_dir);
        for partition in kept {
            if used_bytes <= max_disk_bytes {
                break;
            }
            if let Some(freed) = self.delete(partition, DeletionReason::Disk, &mut report) {
                used_bytes = used_bytes.saturating_sub(freed);
            }
        }
        if used_bytes > max_disk_bytes {
            tracing::warn!(
                used_bytes,
                max_disk_bytes,
                "the data directory stays over [retention] max_disk: what is left is in use or not a partition"
            );
        }
        report
    }

    /// Deletes `partition` unless it is in use; the bytes freed when it was deleted.
    fn delete(
        &self,
        partition: StoredPartition,
        reason: DeletionReason,
        report: &mut RetentionReport,
    ) -> Option<u64> {
        let bytes = disk_bytes(&partition.dir);
        let detached = match partition.kind {
            DataKind::Logs => self
                .logs
                .detach_unless_in_use(&PartitionKey {
                    tenant: partition.tenant.clone(),
                    day: partition.day,
                })
                .map_err(|error| error.to_string()),
            DataKind::Metrics => self
                .series
                .detach_unless_written(&partition.tenant, partition.day)
                .map_err(|error| error.to_string()),
        };
        let bytes_freed = match detached {
            Err(error) => {
                tracing::warn!(partition = %partition.dir.display(), %error, "cannot delete a partition, trying again at the next run");
                return None;
            }
            Ok(Detach::InUse) => {
                tracing::info!(partition = %partition.dir.display(), ?reason, "a partition due for deletion is in use, trying again at the next run");
                report.skipped_in_use.push(partition);
                return None;
            }
            Ok(Detach::NothingOnDisk) => 0,
            Ok(Detach::MovedAside(aside)) => {
                if let Err(error) = std::fs::remove_dir_all(&aside) {
                    // Out of the store already: start-up removes it if this run cannot.
                    tracing::warn!(path = %aside.display(), %error, "cannot remove a deleted partition's files");
                }
                bytes
            }
        };
        tracing::info!(
            partition = %partition.dir.display(),
            kind = ?partition.kind,
            reason = ?reason,
            bytes_freed,
            "retention deleted a partition"
        );
        self.metrics.retention_deleted(
            match partition.kind {
                DataKind::Logs => "logs",
                DataKind::Metrics => "metrics",
            },
            match reason {
                DeletionReason::Age => "age",
                DeletionReason::Disk => "disk",
            },
            bytes_freed,
        );
        report.deleted.push(Deletion {
            partition,
            reason,
            bytes_freed,
        });
        Some(bytes_freed)
    }

    /// The settings in force as `tenants`' reader may see them and, per tenant of `tenants`,
    /// the oldest day kept and the bytes used by logs and metrics. Unless `whole_collector`
    /// (an admin), the rules naming other tenants are left out (rules naming no tenant apply
    /// to every tenant and stay) and so is the whole data directory's size. Blocks: walks the
    /// partition directories.
    pub fn status(&self, tenants: &[String], whole_collector: bool) -> RetentionStatus {
        let mut by_tenant: BTreeMap<String, TenantUsage> = BTreeMap::new();
        for partition in self.partitions() {
            if !tenants.contains(&partition.tenant) {
                continue;
            }
            let usage = by_tenant.entry(partition.tenant.clone()).or_default();
            let kind = match partition.kind {
                DataKind::Logs => &mut usage.logs,
                DataKind::Metrics => &mut usage.metrics,
            };
            // Partitions come oldest first: the first one seen is the oldest.
            kind.oldest_day
                .get_or_insert_with(|| partition.day.to_string());
            kind.partitions += 1;
            kind.bytes += disk_bytes(&partition.dir);
        }
        let current = self.current();
        let mut settings = current.0.clone();
        if !whole_collector {
            // Another tenant's rule never matches these tenants' data: leaving it out changes
            // no rule that applies to them, and hides its tenant's name and cluster globs.
            settings.rules.retain(|rule| {
                rule.tenant
                    .as_ref()
                    .is_none_or(|tenant| tenants.contains(tenant))
            });
        }
        RetentionStatus {
            settings,
            max_disk_bytes: current.1.max_disk_bytes,
            data_dir_bytes: whole_collector.then(|| disk_bytes(&self.data_dir)),
            tenants: by_tenant,
        }
    }
}

/// The first instant after `day` (UTC).
fn day_end(day: Date) -> Timestamp {
    let next = day.tomorrow().unwrap_or(day);
    TimeZone::UTC
        .to_timestamp(next.to_datetime(Time::midnight()))
        .unwrap_or(Timestamp::MAX)
}

/// The answer of `GET /api/v1/retention`.
#[derive(Debug, Serialize)]
pub struct RetentionStatus {
    /// `[retention]` as configured.
    pub settings: RetentionConfig,
    /// `max_disk` in bytes.
    pub max_disk_bytes: Option<u64>,
    /// What the whole data directory takes now; for an admin only (`null` for others).
    pub data_dir_bytes: Option<u64>,
    pub tenants: BTreeMap<String, TenantUsage>,
}

/// One tenant's data.
#[derive(Debug, Default, Serialize)]
pub struct TenantUsage {
    pub logs: KindUsage,
    pub metrics: KindUsage,
}

/// One tenant's data of one kind.
#[derive(Debug, Default, Serialize)]
pub struct KindUsage {
    /// The UTC day of the oldest partition kept, `YYYY-MM-DD`.
    pub oldest_day: Option<String>,
    pub partitions: usize,
    pub bytes: u64,
}

/// Runs the janitor now and then every `interval` until `shutdown`, each run on a blocking
/// thread (a run with no limit set deletes nothing). With `reloads`, a new configuration's
/// `[retention]` applies at once: the janitor runs with it and keeps its `interval`.
pub async fn run_periodically(
    janitor: Arc<Janitor>,
    mut reloads: Option<watch::Receiver<Arc<CollectorConfig>>>,
    shutdown: CancellationToken,
) {
    let mut ticks = interval_of(&janitor.settings());
    log_settings(&janitor.settings(), "retention janitor started");
    loop {
        let reload = async {
            match reloads.as_mut() {
                Some(reloads) => reloads.changed().await.is_ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
            reloaded = reload => {
                let Some(config) = reloads.as_mut().filter(|_| reloaded).map(|reloads| Arc::clone(&reloads.borrow_and_update())) else {
                    // The watcher stopped: keep the settings in force.
                    reloads = None;
                    continue;
                };
                janitor.set_config(config.retention.clone());
                log_settings(&janitor.settings(), "retention settings reloaded");
                ticks = interval_of(&janitor.settings());
                continue;
            }
        }
        if janitor.settings().keeps_everything() {
            continue;
        }
        let run = Arc::clone(&janitor);
        let finished = tokio::task::spawn_blocking(move || run.run_at(Timestamp::now())).await;
        match finished {
            Ok(report) => tracing::debug!(
                deleted = report.deleted.len(),
                cluster_deletions = report.cluster_deletions.len(),
                skipped_in_use = report.skipped_in_use.len(),
                "retention run finished"
            ),
            Err(error) => tracing::error!(%error, "a retention run failed unexpectedly"),
        }
    }
}

/// A ticker every `interval` of `settings`, its first tick at once.
fn interval_of(settings: &RetentionSettings) -> tokio::time::Interval {
    let mut ticks = tokio::time::interval(settings.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks
}

fn log_settings(settings: &RetentionSettings, what: &str) {
    tracing::info!(
        max_age = ?settings.max_age,
        logs_max_age = ?settings.logs_max_age,
        metrics_max_age = ?settings.metrics_max_age,
        max_disk_bytes = ?settings.max_disk_bytes,
        rules = settings.rules.len(),
        interval = ?settings.interval,
        keeps_everything = settings.keeps_everything(),
        "{what}"
    );
}

mod cluster;

pub use cluster::ClusterDeletion;
use cluster::ClusterVerdict;

#[cfg(test)]
pub(crate) mod tests;
