//! Retention (issue 9): the janitor that deletes whole (tenant, UTC day) partitions of logs
//! and metrics once their day is older than their age limit, then the oldest partitions while
//! the data directory is over `max_disk`.
//!
//! The rule a reader must not miss: a partition is deleted by first moving its directory to
//! `<day>.deleting` (a name neither store reads) under the store's lock, and only then
//! removing it; start-up removes what a crash left as `.deleting`. A partition in use (held
//! open by a search or the writer, or a series partition being written) is skipped and tried
//! again at the next run.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::config::RetentionConfig;
use crate::error::{Error, Result};
use crate::index::partition::{LogStore, PartitionKey};
use crate::series::SeriesStore;

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
    /// Per-tenant age limits; the first that matches wins.
    pub rules: Vec<TenantRule>,
}

/// A `[[retention.rules]]` entry without a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRule {
    /// `None`: every tenant.
    pub tenant: Option<String>,
    pub max_age: Duration,
}

/// The two kinds of data, each in its own partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DataKind {
    Logs,
    Metrics,
}

impl RetentionSettings {
    /// The age limit of `tenant`'s data of `kind`: the first matching rule's, else the kind's,
    /// else `max_age`; `None` keeps it for ever (as far as age goes).
    pub fn max_age_for(&self, tenant: &str, kind: DataKind) -> Option<Duration> {
        if let Some(rule) = self
            .rules
            .iter()
            .find(|rule| rule.tenant.as_deref().is_none_or(|name| name == tenant))
        {
            return Some(rule.max_age);
        }
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
    /// Due for deletion but in use; tried again at the next run.
    pub skipped_in_use: Vec<StoredPartition>,
}

/// Applies the retention settings to both stores.
pub struct Janitor {
    data_dir: PathBuf,
    logs: Arc<LogStore>,
    series: Arc<SeriesStore>,
    config: RetentionConfig,
    settings: RetentionSettings,
}

impl Janitor {
    /// A janitor of the stores under `data_dir` keeping to `config` (validated).
    pub fn new(
        data_dir: PathBuf,
        logs: Arc<LogStore>,
        series: Arc<SeriesStore>,
        config: RetentionConfig,
    ) -> Janitor {
        let settings = config.settings();
        Janitor {
            data_dir,
            logs,
            series,
            config,
            settings,
        }
    }

    /// The limits in force.
    pub fn settings(&self) -> &RetentionSettings {
        &self.settings
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

    /// Deletes, as if the time were `now`, the partitions older than their age limit, then
    /// the oldest while the data directory is over `max_disk`. Blocks: file system work.
    pub fn run_at(&self, now: Timestamp) -> RetentionReport {
        let mut report = RetentionReport::default();
        let mut kept = Vec::new();
        for partition in self.partitions() {
            let expired = self
                .settings
                .max_age_for(&partition.tenant, partition.kind)
                .is_some_and(|max_age| day_end(partition.day) + max_age < now);
            if expired {
                self.delete(partition, DeletionReason::Age, &mut report);
            } else {
                kept.push(partition);
            }
        }
        let Some(max_disk_bytes) = self.settings.max_disk_bytes else {
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
        report.deleted.push(Deletion {
            partition,
            reason,
            bytes_freed,
        });
        Some(bytes_freed)
    }

    /// The settings in force and, per tenant of `tenants`, the oldest day kept and the bytes
    /// used by logs and metrics. Blocks: walks the partition directories.
    pub fn status(&self, tenants: &[String]) -> RetentionStatus {
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
        RetentionStatus {
            settings: self.config.clone(),
            max_disk_bytes: self.settings.max_disk_bytes,
            data_dir_bytes: disk_bytes(&self.data_dir),
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
    /// What the whole data directory takes now.
    pub data_dir_bytes: u64,
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
/// thread; does nothing when no limit is set.
pub async fn run_periodically(janitor: Arc<Janitor>, shutdown: CancellationToken) {
    if janitor.settings.keeps_everything() {
        return;
    }
    let settings = &janitor.settings;
    tracing::info!(
        max_age = ?settings.max_age,
        logs_max_age = ?settings.logs_max_age,
        metrics_max_age = ?settings.metrics_max_age,
        max_disk_bytes = ?settings.max_disk_bytes,
        rules = settings.rules.len(),
        interval = ?settings.interval,
        "retention janitor started"
    );
    let mut ticks = tokio::time::interval(janitor.settings.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let run = Arc::clone(&janitor);
        let finished = tokio::task::spawn_blocking(move || run.run_at(Timestamp::now())).await;
        match finished {
            Ok(report) => tracing::debug!(
                deleted = report.deleted.len(),
                skipped_in_use = report.skipped_in_use.len(),
                "retention run finished"
            ),
            Err(error) => tracing::error!(%error, "a retention run failed unexpectedly"),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use afterglow_proto::v1::{MetricFamily, MetricSeries, PushRequest, Sample, Stream};

    use super::*;
    use crate::config::DEFAULT_MAX_OPEN_PARTITIONS;
    use crate::index::search::{SearchRequest, SortOrder, search};
    use crate::index::writer::LogWriter;
    use crate::index::writer::tests::entry;
    use crate::series::SeriesConfig;

    const HOUR: Duration = Duration::from_secs(3600);
    const DAY_MS: i64 = 86_400_000;
    /// 2026-11-01T00:00:00Z.
    const FIRST_MIDNIGHT_MS: i64 = 1_793_491_200_000;

    /// Noon of day `day` after the first midnight, in milliseconds.
    fn noon_ms(day: i64) -> i64 {
        FIRST_MIDNIGHT_MS + day * DAY_MS + DAY_MS / 2
    }

    /// `hours` past the midnight that starts day `day`.
    fn at(day: i64, hours: i64) -> Timestamp {
        Timestamp::from_millisecond(FIRST_MIDNIGHT_MS + day * DAY_MS + hours * 3_600_000)
            .expect("in range")
    }

    fn date_of(day: i64) -> Date {
        at(day, 0).to_zoned_datetime(TimeZone::UTC).date()
    }

    /// The stores of a data directory, as the collector opens them.
    pub(crate) struct Stores {
        pub(crate) data_dir: PathBuf,
        pub(crate) logs: Arc<LogStore>,
        pub(crate) series: Arc<SeriesStore>,
    }

    impl Stores {
        pub(crate) fn open(data_dir: &Path) -> anyhow::Result<Stores> {
            Ok(Stores {
                data_dir: data_dir.to_owned(),
                logs: Arc::new(LogStore::open(
                    &data_dir.join("logs"),
                    DEFAULT_MAX_OPEN_PARTITIONS,
                )?),
                series: Arc::new(SeriesStore::open(
                    &data_dir.join("metrics"),
                    SeriesConfig::default(),
                )?),
            })
        }

        /// Writes one record a day on each of `days` for `tenant`, "<tenant> day <day>".
        pub(crate) async fn write_logs(&self, tenant: &str, days: &[i64]) -> anyhow::Result<()> {
            let writer = LogWriter::start(Arc::clone(&self.logs), Duration::from_millis(10), None)?;
            let records = days
                .iter()
                .map(|&day| {
                    let message = format!("{tenant} day {day}");
                    entry(noon_ms(day) * 1000, "a", 1, day as u64, &message)
                })
                .collect();
            writer.write(tenant.to_owned(), records).await?;
            writer.shutdown().await;
            Ok(())
        }

        /// Stores one sample a day of `up` on each of `days` for `tenant` (value: the day), sealed
        /// and, as at `now`, merged, so that past days are no longer being written.
        pub(crate) fn write_metrics(
            &self,
            tenant: &str,
            days: &[i64],
            now: Timestamp,
        ) -> anyhow::Result<()> {
            self.series.append(tenant, &push(days));
            self.series.seal()?;
            self.series.compact_at(now.as_millisecond())?;
            Ok(())
        }

        /// The log messages of `tenant`, oldest first.
        pub(crate) fn messages(&self, tenant: &str) -> anyhow::Result<Vec<String>> {
            let request = SearchRequest {
                tenants: vec![tenant.to_owned()],
                query: String::new(),
                start: None,
                end: None,
                limit: 1000,
                order: SortOrder::Asc,
                after: None,
            };
            let page = search(&self.logs, &request)?;
            Ok(page.hits.into_iter().map(|hit| hit.message).collect())
        }

        /// The days of `tenant`'s `up` samples, oldest first.
        pub(crate) fn metric_days(&self, tenant: &str) -> anyhow::Result<Vec<i64>> {
            let found =
                self.series
                    .source(vec![tenant.to_owned()])
                    .select(&[], i64::MIN, i64::MAX)?;
            Ok(found
                .iter()
                .flat_map(|series| series.samples.iter())
                .map(|&(_, value)| value as i64)
                .collect())
        }

        fn janitor(&self, config: RetentionConfig) -> Janitor {
            Janitor::new(
                self.data_dir.clone(),
                Arc::clone(&self.logs),
                Arc::clone(&self.series),
                config,
            )
        }

        /// The days of `tenant`'s partitions of `kind` on disk.
        fn days_on_disk(&self, kind: &str, tenant: &str) -> Vec<String> {
            let mut days: Vec<String> = std::fs::read_dir(self.data_dir.join(kind).join(tenant))
                .map(|entries| {
                    entries
                        .flatten()
                        .map(|entry| entry.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            days.sort();
            days
        }
    }

    /// A batch with one sample of `up` per day in `days`, valued the day.
    fn push(days: &[i64]) -> PushRequest {
        PushRequest {
            batch_number: 1,
            streams: vec![Stream {
                id: 1,
                cluster: "c".to_owned(),
                node: "n".to_owned(),
                role: 2,
                source: "http://n:8787/metrics".to_owned(),
            }],
            logs: Vec::new(),
            metric_families: vec![MetricFamily {
                stream_index: 0,
                name: "up".to_owned(),
                r#type: 2,
                help: String::new(),
                series: vec![MetricSeries {
                    metric: "up".to_owned(),
                    labels: Vec::new(),
                    samples: days
                        .iter()
                        .map(|&day| Sample {
                            ts_unix_millis: noon_ms(day),
                            value: day as f64,
                        })
                        .collect(),
                    seq: 1,
                }],
            }],
        }
    }

    fn config(text: &str) -> RetentionConfig {
        crate::CollectorConfig::parse(text)
            .expect("a valid configuration")
            .retention
    }

    fn day_messages(tenant: &str, days: std::ops::Range<i64>) -> Vec<String> {
        days.map(|day| format!("{tenant} day {day}")).collect()
    }

    fn deleted(report: &RetentionReport) -> Vec<(DataKind, String, Date, DeletionReason)> {
        report
            .deleted
            .iter()
            .map(|deletion| {
                let partition = &deletion.partition;
                (
                    partition.kind,
                    partition.tenant.clone(),
                    partition.day,
                    deletion.reason,
                )
            })
            .collect()
    }

    #[test]
    fn a_tenant_rule_beats_the_kind_limit_which_beats_max_age() {
        let settings = config(
            "[retention]\nmax_age = \"720h\"\nlogs_max_age = \"336h\"\n[[retention.rules]]\ntenant = \"team-a\"\nmax_age = \"72h\"\n[[retention.rules]]\nmax_age = \"1000h\"\n",
        )
        .settings();
        assert_eq!(
            settings.max_age_for("team-a", DataKind::Logs),
            Some(72 * HOUR)
        );
        assert_eq!(
            settings.max_age_for("team-a", DataKind::Metrics),
            Some(72 * HOUR)
        );
        assert_eq!(
            settings.max_age_for("team-b", DataKind::Logs),
            Some(1000 * HOUR)
        );
        let without_catch_all =
            config("[retention]\nmax_age = \"720h\"\nlogs_max_age = \"336h\"\n").settings();
        assert_eq!(
            without_catch_all.max_age_for("x", DataKind::Logs),
            Some(336 * HOUR)
        );
        assert_eq!(
            without_catch_all.max_age_for("x", DataKind::Metrics),
            Some(720 * HOUR)
        );
        assert!(config("").settings().keeps_everything());
        assert_eq!(config("").settings().max_age_for("x", DataKind::Logs), None);
    }

    /// Logs keep 3 days, metrics 7: a day goes once it ended that long ago, and what is newer
    /// stays searchable and queryable.
    #[tokio::test]
    async fn age_limits_apply_per_kind() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let stores = Stores::open(dir.path())?;
        let now = at(10, 1);
        let days: Vec<i64> = (0..10).collect();
        stores.write_logs("t", &days).await?;
        stores.write_metrics("t", &days, now)?;
        let janitor = stores.janitor(config(
            "[retention]\nlogs_max_age = \"72h\"\nmetrics_max_age = \"168h\"\n",
        ));
        let report = janitor.run_at(now);
        // Day 6 ended 3 days and 1 hour before `now`; day 7 ended 2 days and 1 hour before.
        assert_eq!(stores.messages("t")?, day_messages("t", 7..10));
        assert_eq!(stores.metric_days("t")?, (3..10).collect::<Vec<_>>());
        assert_eq!(report.deleted.len(), 7 + 3);
        assert!(
            report
                .deleted
                .iter()
                .all(|deletion| deletion.reason == DeletionReason::Age && deletion.bytes_freed > 0)
        );
        assert!(report.skipped_in_use.is_empty());
        let expected_logs: Vec<String> = (7..10).map(|day| date_of(day).to_string()).collect();
        assert_eq!(stores.days_on_disk("logs", "t"), expected_logs);
        assert_eq!(stores.days_on_disk("metrics", "t").len(), 7);
        // Nothing else expires within the same day.
        assert!(janitor.run_at(at(10, 23)).deleted.is_empty());

        // A reopened store finds the same, with nothing left over.
        drop((janitor, stores));
        let reopened = Stores::open(dir.path())?;
        assert_eq!(reopened.messages("t")?, day_messages("t", 7..10));
        assert_eq!(reopened.metric_days("t")?, (3..10).collect::<Vec<_>>());
        assert!(remove_leftovers(dir.path())?.is_empty());
        Ok(())
    }

    #[tokio::test]
    async fn a_tenant_rule_beats_the_global_limit() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let stores = Stores::open(dir.path())?;
        let now = at(10, 1);
        let days: Vec<i64> = (5..10).collect();
        for tenant in ["team-a", "team-b"] {
            stores.write_logs(tenant, &days).await?;
            stores.write_metrics(tenant, &days, now)?;
        }
        let janitor = stores.janitor(config(
            "[retention]\nmax_age = \"168h\"\n[[retention.rules]]\ntenant = \"team-a\"\nmax_age = \"48h\"\n",
        ));
        janitor.run_at(now);
        // Day 7 ended 49 hours before `now`, day 8 25 hours before.
        assert_eq!(stores.messages("team-a")?, day_messages("team-a", 8..10));
        assert_eq!(stores.metric_days("team-a")?, [8, 9]);
        assert_eq!(stores.messages("team-b")?, day_messages("team-b", 5..10));
        assert_eq!(stores.metric_days("team-b")?, [5, 6, 7, 8, 9]);
        Ok(())
    }

    /// Logs on even days, metrics on odd days: over `max_disk`, days go oldest first whatever
    /// their kind, and only as many as needed.
    #[tokio::test]
    async fn max_disk_removes_the_oldest_first_across_logs_and_metrics() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let stores = Stores::open(dir.path())?;
        let now = at(10, 1);
        stores.write_logs("t", &[0, 2, 4]).await?;
        stores.write_metrics("t", &[1, 3, 5], now)?;
        let logs_day_0 = disk_bytes(&dir.path().join("logs/t").join(date_of(0).to_string()));
        let metrics_day_1 = disk_bytes(&dir.path().join("metrics/t").join(date_of(1).to_string()));
        let used = disk_bytes(dir.path());
        let max_disk = used - logs_day_0 - metrics_day_1;
        let janitor = stores.janitor(config(&format!("[retention]\nmax_disk = \"{max_disk}\"\n")));
        let report = janitor.run_at(now);
        assert_eq!(
            deleted(&report),
            [
                (
                    DataKind::Logs,
                    "t".to_owned(),
                    date_of(0),
                    DeletionReason::Disk
                ),
                (
                    DataKind::Metrics,
                    "t".to_owned(),
                    date_of(1),
                    DeletionReason::Disk
                ),
            ]
        );
        assert_eq!(report.deleted[0].bytes_freed, logs_day_0);
        assert_eq!(report.deleted[1].bytes_freed, metrics_day_1);
        assert!(disk_bytes(dir.path()) <= max_disk);
        assert_eq!(stores.messages("t")?, ["t day 2", "t day 4"]);
        assert_eq!(stores.metric_days("t")?, [3, 5]);
        assert!(
            janitor.run_at(now).deleted.is_empty(),
            "under the limit now"
        );
        Ok(())
    }

    /// A log partition held by a search and a series partition being written are skipped,
    /// then deleted by a later run once released.
    #[tokio::test]
    async fn a_partition_in_use_is_skipped_and_deleted_once_released() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let stores = Stores::open(dir.path())?;
        let now = at(10, 1);
        stores.write_logs("t", &[0, 9]).await?;
        stores.write_metrics("t", &[9], now)?;
        // A late sample of day 0: its partition is being written until merged.
        stores.series.append("t", &push(&[0]));
        stores.series.seal()?;
        let janitor = stores.janitor(config("[retention]\nmax_age = \"72h\"\n"));
        let held = stores.logs.partitions_for(&["t".to_owned()], None, None)?;
        let report = janitor.run_at(now);
        assert!(report.deleted.is_empty());
        let skipped: Vec<(DataKind, Date)> = report
            .skipped_in_use
            .iter()
            .map(|partition| (partition.kind, partition.day))
            .collect();
        assert_eq!(
            skipped,
            [
                (DataKind::Logs, date_of(0)),
                (DataKind::Metrics, date_of(0))
            ]
        );
        assert_eq!(stores.messages("t")?, ["t day 0", "t day 9"]);
        assert_eq!(
            held[0].reader.searcher().num_docs(),
            1,
            "the held partition still reads"
        );

        drop(held);
        stores.series.compact_at(now.as_millisecond())?;
        let report = janitor.run_at(now);
        assert_eq!(
            deleted(&report),
            [
                (
                    DataKind::Logs,
                    "t".to_owned(),
                    date_of(0),
                    DeletionReason::Age
                ),
                (
                    DataKind::Metrics,
                    "t".to_owned(),
                    date_of(0),
                    DeletionReason::Age
                ),
            ]
        );
        assert_eq!(stores.messages("t")?, ["t day 9"]);
        assert_eq!(stores.metric_days("t")?, [9]);
        assert_eq!(
            stores.logs.open_count(),
            1,
            "the deleted partition was closed"
        );
        Ok(())
    }

    /// A late record of a deleted day makes a new partition of that day, which a later run
    /// deletes again.
    #[tokio::test]
    async fn a_late_record_of_a_deleted_day_is_written_and_deleted_again() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let stores = Stores::open(dir.path())?;
        let now = at(10, 1);
        stores.write_logs("t", &[0]).await?;
        stores.write_metrics("t", &[0], now)?;
        let janitor = stores.janitor(config("[retention]\nmax_age = \"72h\"\n"));
        assert_eq!(janitor.run_at(now).deleted.len(), 2);
        stores.write_logs("t", &[0]).await?;
        stores.write_metrics("t", &[0], now)?;
        assert_eq!(stores.messages("t")?, ["t day 0"]);
        assert_eq!(stores.metric_days("t")?, [0]);
        assert_eq!(janitor.run_at(now).deleted.len(), 2);
        assert!(stores.messages("t")?.is_empty());
        assert!(stores.metric_days("t")?.is_empty());
        Ok(())
    }

    /// A stop between the rename and the removal leaves `<day>.deleting` directories: the
    /// stores ignore them, start-up removes them, and the store stays queryable.
    #[tokio::test]
    async fn a_leftover_deleting_directory_is_removed_at_start_up() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let now = at(10, 1);
        {
            let stores = Stores::open(dir.path())?;
            stores.write_logs("t", &[0, 1, 2]).await?;
            stores.write_metrics("t", &[0, 1, 2], now)?;
        }
        let mut interrupted = Vec::new();
        for kind in ["logs", "metrics"] {
            let day_dir = dir.path().join(kind).join("t").join(date_of(0).to_string());
            interrupted.push(move_aside_for_deletion(&day_dir)?.expect("the day exists"));
        }
        let stores = Stores::open(dir.path())?;
        assert_eq!(
            stores.messages("t")?,
            day_messages("t", 1..3),
            "ignored by the stores"
        );
        drop(stores);

        let mut removed = remove_leftovers(dir.path())?;
        removed.sort();
        assert_eq!(removed, interrupted);
        assert!(interrupted.iter().all(|path| !path.exists()));
        let stores = Stores::open(dir.path())?;
        assert_eq!(stores.messages("t")?, day_messages("t", 1..3));
        assert_eq!(stores.metric_days("t")?, [1, 2]);
        stores.write_logs("t", &[3]).await?;
        assert_eq!(stores.messages("t")?, day_messages("t", 1..4));
        Ok(())
    }

    #[tokio::test]
    async fn no_limit_deletes_nothing() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let stores = Stores::open(dir.path())?;
        stores.write_logs("t", &[0]).await?;
        let janitor = stores.janitor(config(""));
        assert!(janitor.run_at(at(1000, 0)).deleted.is_empty());
        assert_eq!(stores.messages("t")?, ["t day 0"]);
        Ok(())
    }
}
