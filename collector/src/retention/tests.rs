//! Tests of the janitor over real log and series stores in temporary directories, with the
//! clock passed in.

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
            filters: Vec::new(),
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
        let found = self
            .series
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
            Arc::default(),
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
        settings.max_age_for_cluster("team-a", "c", DataKind::Logs),
        Some(72 * HOUR)
    );
    assert_eq!(
        settings.max_age_for_cluster("team-a", "c", DataKind::Metrics),
        Some(72 * HOUR)
    );
    assert_eq!(
        settings.max_age_for_cluster("team-b", "c", DataKind::Logs),
        Some(1000 * HOUR)
    );
    let without_catch_all =
        config("[retention]\nmax_age = \"720h\"\nlogs_max_age = \"336h\"\n").settings();
    assert_eq!(
        without_catch_all.max_age_for_cluster("x", "c", DataKind::Logs),
        Some(336 * HOUR)
    );
    assert_eq!(
        without_catch_all.max_age_for_cluster("x", "c", DataKind::Metrics),
        Some(720 * HOUR)
    );
    assert!(config("").settings().keeps_everything());
    assert_eq!(
        config("")
            .settings()
            .max_age_for_cluster("x", "c", DataKind::Logs),
        None
    );
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

/// A new configuration's `[retention]` applies at once, without waiting for the next
/// interval, and what the janitor deletes is counted in `/metrics`.
#[tokio::test]
async fn a_reloaded_configuration_applies_at_once_and_deletions_are_counted() -> anyhow::Result<()>
{
    let dir = tempfile::tempdir()?;
    let stores = Stores::open(dir.path())?;
    stores.write_logs("t", &[0, 1, 2]).await?;
    let metrics = Arc::new(CollectorMetrics::new());
    let janitor = Arc::new(Janitor::new(
        stores.data_dir.clone(),
        Arc::clone(&stores.logs),
        Arc::clone(&stores.series),
        config("[retention]\ninterval = \"24h\"\n"),
        Arc::clone(&metrics),
    ));
    let keep_all = crate::CollectorConfig::parse("[retention]\ninterval = \"24h\"\n")
        .expect("a valid configuration");
    let (reloads, receiver) = watch::channel(Arc::new(keep_all));
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(run_periodically(
        Arc::clone(&janitor),
        Some(receiver),
        shutdown.clone(),
    ));
    assert_eq!(stores.messages("t")?, day_messages("t", 0..3));

    // Days 0-2 of November 2026 are weeks before the real clock the task uses.
    let ten_days =
        crate::CollectorConfig::parse("[retention]\ninterval = \"24h\"\nlogs_max_age = \"240h\"\n")
            .expect("a valid configuration");
    reloads.send_replace(Arc::new(ten_days));
    // Counted after each deletion: three counted means the run is done with the three days.
    let deleted_line =
        "afterglow_collector_retention_partitions_deleted_total{kind=\"logs\",reason=\"age\"} 3";
    tokio::time::timeout(Duration::from_secs(10), async {
        while !metrics.encode().lines().any(|line| line == deleted_line) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the days are deleted long before the 24 h interval");
    assert!(stores.messages("t")?.is_empty());
    assert_eq!(janitor.settings().logs_max_age, Some(HOUR * 240));
    shutdown.cancel();
    task.await?;
    Ok(())
}

/// A record of `cluster` at noon of `day` (plus `offset_micros`), "<cluster> day <day>".
fn cluster_record(cluster: &str, day: i64, offset_micros: i64) -> crate::index::writer::LogEntry {
    let mut record = entry(
        noon_ms(day) * 1000 + offset_micros,
        "a",
        offset_micros as u64 + 1,
        day as u64,
        &format!("{cluster} day {day}"),
    );
    record.cluster = cluster.to_owned();
    record
}

/// A batch with one sample of `up{cluster=...}` per day in `days`, valued the day.
fn cluster_push(cluster: &str, days: &[i64]) -> PushRequest {
    let mut batch = push(days);
    batch.streams[0].cluster = cluster.to_owned();
    batch.metric_families[0].series[0].labels = vec![afterglow_proto::v1::Label {
        name: "cluster".to_owned(),
        value: cluster.to_owned(),
    }];
    batch
}

/// Stores records and samples of each of `clusters` (in that order within a day) on `days`
/// for `tenant` through `writer`, sealed and merged as at `now`.
async fn write_clusters(
    stores: &Stores,
    writer: &LogWriter,
    tenant: &str,
    clusters: &[&str],
    days: &[i64],
    now: Timestamp,
) -> anyhow::Result<()> {
    let mut records = Vec::new();
    for &day in days {
        for (at, cluster) in clusters.iter().enumerate() {
            records.push(cluster_record(cluster, day, at as i64));
        }
    }
    writer.write(tenant.to_owned(), records).await?;
    for cluster in clusters {
        stores.series.append(tenant, &cluster_push(cluster, days));
    }
    stores.series.seal()?;
    stores.series.compact_at(now.as_millisecond())?;
    Ok(())
}

/// `(cluster, day)` of `tenant`'s `up` samples, sorted.
fn metric_clusters(stores: &Stores, tenant: &str) -> anyhow::Result<Vec<(String, i64)>> {
    let found = stores
        .series
        .source(vec![tenant.to_owned()])
        .select(&[], i64::MIN, i64::MAX)?;
    let mut pairs: Vec<(String, i64)> = found
        .iter()
        .flat_map(|series| {
            let cluster = series
                .labels
                .iter()
                .find(|(name, _)| name == "cluster")
                .map(|(_, value)| value.clone())
                .unwrap_or_default();
            series
                .samples
                .iter()
                .map(move |&(_, value)| (cluster.clone(), value as i64))
        })
        .collect();
    pairs.sort();
    Ok(pairs)
}

/// Runs `janitor` at `now` on a blocking thread, as `run_periodically` does: it waits for the
/// index writer.
async fn run_blocking(janitor: &Arc<Janitor>, now: Timestamp) -> anyhow::Result<RetentionReport> {
    let janitor = Arc::clone(janitor);
    Ok(tokio::task::spawn_blocking(move || janitor.run_at(now)).await?)
}

fn cluster_deleted(report: &RetentionReport) -> Vec<(DataKind, Date, String, u64)> {
    report
        .cluster_deletions
        .iter()
        .map(|deletion| {
            (
                deletion.partition.kind,
                deletion.partition.day,
                deletion.cluster.clone(),
                deletion.deleted,
            )
        })
        .collect()
}

#[test]
fn with_clusters_the_first_matching_rule_wins() {
    let settings = config(
        "[retention]\nmax_age = \"720h\"\n[[retention.rules]]\ntenant = \"team-a\"\ncluster = \"ci-*\"\nmax_age = \"24h\"\n[[retention.rules]]\ncluster = \"ci-*\"\nmax_age = \"48h\"\n[[retention.rules]]\ntenant = \"team-a\"\nmax_age = \"96h\"\n[[retention.rules]]\ntenant = \"team-c\"\nmax_age = \"12h\"\n[[retention.rules]]\ntenant = \"team-c\"\ncluster = \"*\"\nmax_age = \"1h\"\n",
    )
    .settings();
    let limit =
        |tenant: &str, cluster: &str| settings.max_age_for_cluster(tenant, cluster, DataKind::Logs);
    // Tenant and cluster, before cluster only, before tenant only, before `max_age`.
    assert_eq!(limit("team-a", "ci-1"), Some(24 * HOUR));
    assert_eq!(limit("team-b", "ci-1"), Some(48 * HOUR));
    assert_eq!(limit("team-a", "prod"), Some(96 * HOUR));
    assert_eq!(limit("team-b", "prod"), Some(720 * HOUR));
    // A rule after a broader one that matches never applies.
    assert_eq!(limit("team-c", "ci-1"), Some(48 * HOUR));
    assert_eq!(limit("team-c", "prod"), Some(12 * HOUR));
    assert_eq!(
        settings.shortest_max_age_for("team-a", DataKind::Logs),
        Some(24 * HOUR)
    );
    assert_eq!(
        settings.shortest_max_age_for("team-c", DataKind::Logs),
        Some(12 * HOUR),
        "the rule after team-c's catch-all never applies"
    );
    // A partition's clusters share one limit unless a cluster rule comes first.
    assert_eq!(
        settings.max_age_for("team-a", DataKind::Logs),
        PartitionMaxAge::PerCluster
    );
    let tenant_first = config(
        "[retention]\nmax_age = \"720h\"\n[[retention.rules]]\ntenant = \"team-a\"\nmax_age = \"96h\"\n[[retention.rules]]\ncluster = \"ci-*\"\nmax_age = \"48h\"\n",
    )
    .settings();
    assert_eq!(
        tenant_first.max_age_for("team-a", DataKind::Metrics),
        PartitionMaxAge::Uniform(Some(96 * HOUR))
    );
    assert_eq!(
        tenant_first.max_age_for("team-b", DataKind::Metrics),
        PartitionMaxAge::PerCluster
    );
}

/// Clusters `ci-1` and `prod` share tenant `t`'s days; `ci-*` keeps 3 days, the rest 30: the
/// old day loses `ci-1`'s records and series and keeps `prod`'s, the new day keeps both, and
/// a second run does nothing.
#[tokio::test]
async fn a_cluster_rule_inside_a_shared_partition_drops_only_that_cluster() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let stores = Stores::open(dir.path())?;
    let now = at(10, 1);
    let writer = LogWriter::start(Arc::clone(&stores.logs), Duration::from_millis(10), None)?;
    write_clusters(&stores, &writer, "t", &["ci-1", "prod"], &[5, 9], now).await?;
    let metrics = Arc::new(CollectorMetrics::new());
    let janitor = Arc::new(
        Janitor::new(
            stores.data_dir.clone(),
            Arc::clone(&stores.logs),
            Arc::clone(&stores.series),
            config(
                "[retention]\nmax_age = \"720h\"\n[[retention.rules]]\ncluster = \"ci-*\"\nmax_age = \"72h\"\n",
            ),
            Arc::clone(&metrics),
        )
        .with_log_writer(writer.clone()),
    );

    let report = run_blocking(&janitor, now).await?;
    assert!(report.deleted.is_empty(), "{:?}", report.deleted);
    assert_eq!(
        cluster_deleted(&report),
        [
            (DataKind::Logs, date_of(5), "ci-1".to_owned(), 1),
            (DataKind::Metrics, date_of(5), "ci-1".to_owned(), 1),
        ]
    );
    assert_eq!(
        stores.messages("t")?,
        ["prod day 5", "ci-1 day 9", "prod day 9"]
    );
    assert_eq!(
        metric_clusters(&stores, "t")?,
        [
            ("ci-1".to_owned(), 9),
            ("prod".to_owned(), 5),
            ("prod".to_owned(), 9)
        ]
    );
    let day_5 = PartitionKey {
        tenant: "t".to_owned(),
        day: date_of(5),
    };
    assert_eq!(stores.logs.live_clusters(&day_5)?, [("prod".to_owned(), 1)]);
    let segments = stores
        .logs
        .partition(&day_5)?
        .index
        .searchable_segment_ids()?;
    assert_eq!(
        segments.len(),
        1,
        "merged, the deleted record's bytes freed"
    );
    let searcher = stores.logs.partition(&day_5)?.reader.searcher();
    let segment = &searcher.segment_readers()[0];
    assert_eq!(
        (segment.num_docs(), segment.num_deleted_docs()),
        (1, 0),
        "the deleted record is gone from the files, not only marked deleted"
    );
    let text = metrics.encode();
    for line in [
        "afterglow_collector_retention_records_deleted_total{reason=\"cluster_age\"} 1",
        "afterglow_collector_retention_series_deleted_total{reason=\"cluster_age\"} 1",
    ] {
        assert!(text.lines().any(|found| found == line), "{line} in\n{text}");
    }

    // Nothing left to do: no rewrite, no commit.
    let metric_blocks =
        std::fs::read_dir(dir.path().join("metrics/t").join(date_of(5).to_string()))?
            .flatten()
            .map(|entry| entry.file_name())
            .collect::<std::collections::BTreeSet<_>>();
    let again = run_blocking(&janitor, now).await?;
    assert!(again.deleted.is_empty() && again.cluster_deletions.is_empty());
    let metric_blocks_after =
        std::fs::read_dir(dir.path().join("metrics/t").join(date_of(5).to_string()))?
            .flatten()
            .map(|entry| entry.file_name())
            .collect::<std::collections::BTreeSet<_>>();
    assert_eq!(metric_blocks, metric_blocks_after);

    // A reopened store finds the same.
    writer.shutdown().await;
    drop((janitor, stores));
    let reopened = Stores::open(dir.path())?;
    assert_eq!(
        reopened.messages("t")?,
        ["prod day 5", "ci-1 day 9", "prod day 9"]
    );
    assert_eq!(metric_clusters(&reopened, "t")?.len(), 3);
    Ok(())
}

/// A day whose every cluster is expired goes whole, as by an age limit.
#[tokio::test]
async fn a_partition_whose_every_cluster_is_expired_is_deleted_whole() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let stores = Stores::open(dir.path())?;
    let now = at(10, 1);
    let writer = LogWriter::start(Arc::clone(&stores.logs), Duration::from_millis(10), None)?;
    write_clusters(&stores, &writer, "t", &["ci-1", "ci-2"], &[5, 9], now).await?;
    writer.shutdown().await;
    let writer = LogWriter::start(Arc::clone(&stores.logs), Duration::from_millis(10), None)?;
    let janitor = Arc::new(
        stores
            .janitor(config(
                "[retention]\nmax_age = \"720h\"\n[[retention.rules]]\ncluster = \"ci-*\"\nmax_age = \"72h\"\n",
            ))
            .with_log_writer(writer.clone()),
    );
    let report = run_blocking(&janitor, now).await?;
    assert!(report.cluster_deletions.is_empty());
    assert_eq!(
        deleted(&report),
        [
            (
                DataKind::Logs,
                "t".to_owned(),
                date_of(5),
                DeletionReason::Age
            ),
            (
                DataKind::Metrics,
                "t".to_owned(),
                date_of(5),
                DeletionReason::Age
            ),
        ]
    );
    assert_eq!(stores.days_on_disk("logs", "t"), [date_of(9).to_string()]);
    assert_eq!(
        stores.days_on_disk("metrics", "t"),
        [date_of(9).to_string()]
    );
    assert_eq!(stores.messages("t")?, ["ci-1 day 9", "ci-2 day 9"]);
    assert_eq!(
        metric_clusters(&stores, "t")?,
        [("ci-1".to_owned(), 9), ("ci-2".to_owned(), 9)]
    );
    writer.shutdown().await;
    Ok(())
}

/// Over real stores: `team-a`'s `ci-*` keeps 1 day, other tenants' `ci-*` 3, the rest of
/// `team-a` 5, everything else 30; each (tenant, cluster) keeps the days of its own limit.
#[tokio::test]
async fn cluster_rules_apply_tenant_and_cluster_then_cluster_then_tenant() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let stores = Stores::open(dir.path())?;
    let now = at(10, 1);
    let writer = LogWriter::start(Arc::clone(&stores.logs), Duration::from_millis(10), None)?;
    let days = [4, 5, 7, 8, 9];
    for tenant in ["team-a", "team-b"] {
        write_clusters(&stores, &writer, tenant, &["ci-1", "prod"], &days, now).await?;
    }
    // A new writer: the old one holds the days it wrote open, so none could go whole.
    writer.shutdown().await;
    let writer = LogWriter::start(Arc::clone(&stores.logs), Duration::from_millis(10), None)?;
    let janitor = Arc::new(
        stores
            .janitor(config(
                "[retention]\nmax_age = \"720h\"\n[[retention.rules]]\ntenant = \"team-a\"\ncluster = \"ci-*\"\nmax_age = \"24h\"\n[[retention.rules]]\ncluster = \"ci-*\"\nmax_age = \"72h\"\n[[retention.rules]]\ntenant = \"team-a\"\nmax_age = \"120h\"\n",
            ))
            .with_log_writer(writer.clone()),
    );
    let report = run_blocking(&janitor, now).await?;
    let whole: Vec<(DataKind, String, Date)> = deleted(&report)
        .into_iter()
        .map(|(kind, tenant, day, _)| (kind, tenant, day))
        .collect();
    assert_eq!(
        whole,
        [
            (DataKind::Logs, "team-a".to_owned(), date_of(4)),
            (DataKind::Metrics, "team-a".to_owned(), date_of(4))
        ],
        "every cluster of team-a's day 4 is expired"
    );
    let kept = |cluster: &str, days: &[i64]| -> Vec<(String, i64)> {
        days.iter().map(|&day| (cluster.to_owned(), day)).collect()
    };
    // Day d ends at the start of day d + 1: with `now` 1 h into day 10, 24 h keeps day 9,
    // 72 h days 7-9, 120 h days 5-9.
    let team_a: Vec<(String, i64)> = [kept("ci-1", &[9]), kept("prod", &[5, 7, 8, 9])].concat();
    let team_b: Vec<(String, i64)> = [kept("ci-1", &[7, 8, 9]), kept("prod", &days)].concat();
    assert_eq!(metric_clusters(&stores, "team-a")?, team_a);
    assert_eq!(metric_clusters(&stores, "team-b")?, team_b);
    let logged = |tenant: &str| -> anyhow::Result<Vec<(String, i64)>> {
        let mut pairs: Vec<(String, i64)> = stores
            .messages(tenant)?
            .iter()
            .map(|message| {
                let (cluster, day) = message.split_once(" day ").expect("<cluster> day <day>");
                (cluster.to_owned(), day.parse().expect("a day"))
            })
            .collect();
        pairs.sort();
        Ok(pairs)
    };
    assert_eq!(logged("team-a")?, team_a);
    assert_eq!(logged("team-b")?, team_b);
    writer.shutdown().await;
    Ok(())
}

/// A stop after the rewritten block is durable but before the blocks it replaces are
/// removed: reopening removes them, so the dropped cluster's samples do not come back.
#[tokio::test]
async fn a_stop_mid_rewrite_does_not_bring_a_dropped_cluster_back() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let now = at(10, 1);
    let day_dir = dir.path().join("metrics/t").join(date_of(5).to_string());
    let old_blocks: Vec<(PathBuf, Vec<u8>)> = {
        let stores = Stores::open(dir.path())?;
        for cluster in ["ci-1", "prod"] {
            stores.series.append("t", &cluster_push(cluster, &[5]));
            stores.series.seal()?;
        }
        // The day ended: merged into one block, no longer written.
        stores.series.compact_at(now.as_millisecond())?;
        let mut old_blocks = Vec::new();
        for entry in std::fs::read_dir(&day_dir)?.flatten() {
            if entry.file_name().to_string_lossy().ends_with(".blk") {
                old_blocks.push((entry.path(), std::fs::read(entry.path())?));
            }
        }
        assert_eq!(old_blocks.len(), 1);
        let janitor = stores.janitor(config(
            "[retention]\nmax_age = \"720h\"\n[[retention.rules]]\ncluster = \"ci-*\"\nmax_age = \"72h\"\n",
        ));
        let report = janitor.run_at(now);
        assert_eq!(
            cluster_deleted(&report),
            [(DataKind::Metrics, date_of(5), "ci-1".to_owned(), 1)]
        );
        assert_eq!(metric_clusters(&stores, "t")?, [("prod".to_owned(), 5)]);
        old_blocks
    };
    for (path, bytes) in &old_blocks {
        std::fs::write(path, bytes)?;
    }
    let reopened = Stores::open(dir.path())?;
    assert_eq!(metric_clusters(&reopened, "t")?, [("prod".to_owned(), 5)]);
    assert!(old_blocks.iter().all(|(path, _)| !path.exists()));
    Ok(())
}
