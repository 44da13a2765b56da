//! Cluster rules inside a partition: the clusters of a (tenant, day, kind) partition whose own
//! age limit has passed lose their records (through the index writer: delete, commit, merge)
//! or their series (a rewrite of the partition's blocks), while the other clusters keep theirs.
//!
//! The rule a reader must not miss: only what is present is deleted (live records, series with
//! samples), so a second run finds nothing to do; and when every cluster present is expired,
//! the caller deletes the partition whole instead, as an age limit does.

use jiff::Timestamp;

use super::{DataKind, Janitor, RetentionReport, RetentionSettings, StoredPartition, disk_bytes};
use crate::index::partition::PartitionKey;

/// What the cluster rules make of a partition.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum ClusterVerdict {
    /// Every cluster present (or, with none, the partition by the tenant's limit) is expired:
    /// delete it whole.
    AllExpired,
    /// Kept (maybe less the expired clusters' data, or skipped while in use).
    Kept,
}

/// Data of one cluster the janitor deleted from inside a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDeletion {
    pub partition: StoredPartition,
    pub cluster: String,
    /// Log records, or metric series, deleted.
    pub deleted: u64,
}

impl Janitor {
    /// Applies the cluster rules to `partition` as if the time were `now`.
    pub(super) fn apply_cluster_rules(
        &self,
        partition: &StoredPartition,
        settings: &RetentionSettings,
        now: Timestamp,
        report: &mut RetentionReport,
    ) -> ClusterVerdict {
        let expired = |max_age: Option<std::time::Duration>| {
            max_age.is_some_and(|max_age| super::day_end(partition.day) + max_age < now)
        };
        if !expired(settings.shortest_max_age_for(&partition.tenant, partition.kind)) {
            // No cluster can be expired yet: spare opening the partition.
            return ClusterVerdict::Kept;
        }
        let present = match self.clusters_present(partition) {
            Ok(Some(present)) => present,
            Ok(None) => {
                tracing::debug!(partition = %partition.dir.display(), "a partition with expired clusters is being written, trying again at the next run");
                return ClusterVerdict::Kept;
            }
            Err(error) => {
                tracing::warn!(partition = %partition.dir.display(), %error, "cannot list a partition's clusters, trying again at the next run");
                return ClusterVerdict::Kept;
            }
        };
        let limit_of = |cluster: &str| {
            settings.max_age_for_cluster(&partition.tenant, cluster, partition.kind)
        };
        if present.is_empty() {
            // An empty partition: the limit of a record of no cluster in particular.
            return if expired(limit_of("")) {
                ClusterVerdict::AllExpired
            } else {
                ClusterVerdict::Kept
            };
        }
        let expired_clusters: Vec<(String, u64)> = present
            .iter()
            .filter(|(cluster, _)| expired(limit_of(cluster)))
            .cloned()
            .collect();
        if expired_clusters.len() == present.len() {
            return ClusterVerdict::AllExpired;
        }
        if expired_clusters.is_empty() {
            return ClusterVerdict::Kept;
        }
        let names: Vec<String> = expired_clusters
            .iter()
            .map(|(name, _)| name.clone())
            .collect();
        let bytes_before = disk_bytes(&partition.dir);
        let deleted = match partition.kind {
            DataKind::Logs => {
                let Some(writer) = &self.log_writer else {
                    tracing::warn!(partition = %partition.dir.display(), "expired clusters' records are kept: the janitor has no index writer");
                    return ClusterVerdict::Kept;
                };
                let key = PartitionKey {
                    tenant: partition.tenant.clone(),
                    day: partition.day,
                };
                writer
                    .delete_clusters_blocking(key, names)
                    .map(|()| Some(expired_clusters.clone()))
                    .map_err(|error| error.to_string())
            }
            DataKind::Metrics => self
                .series
                .drop_clusters(&partition.tenant, partition.day, &names)
                .map(|dropped| dropped.map(|_| expired_clusters.clone()))
                .map_err(|error| error.to_string()),
        };
        let deleted = match deleted {
            Ok(Some(deleted)) => deleted,
            Ok(None) => {
                tracing::debug!(partition = %partition.dir.display(), "a partition with expired clusters is being written, trying again at the next run");
                return ClusterVerdict::Kept;
            }
            Err(error) => {
                tracing::warn!(partition = %partition.dir.display(), %error, "cannot delete expired clusters from a partition, trying again at the next run");
                return ClusterVerdict::Kept;
            }
        };
        let bytes_freed = bytes_before.saturating_sub(disk_bytes(&partition.dir));
        let kind = match partition.kind {
            DataKind::Logs => "logs",
            DataKind::Metrics => "metrics",
        };
        let mut items_total = 0;
        for (cluster, items) in deleted {
            tracing::info!(
                tenant = %partition.tenant,
                day = %partition.day,
                kind,
                cluster = %cluster,
                reason = "cluster_age",
                deleted = items,
                "retention deleted a cluster's data from a partition"
            );
            items_total += items;
            report.cluster_deletions.push(ClusterDeletion {
                partition: partition.clone(),
                cluster,
                deleted: items,
            });
        }
        self.metrics
            .retention_deleted_inside(kind, "cluster_age", items_total, bytes_freed);
        ClusterVerdict::Kept
    }

    /// The clusters present in `partition` with their records or series; `None` while it is
    /// being written (metrics).
    fn clusters_present(
        &self,
        partition: &StoredPartition,
    ) -> Result<Option<Vec<(String, u64)>>, String> {
        match partition.kind {
            DataKind::Logs => self
                .logs
                .live_clusters(&PartitionKey {
                    tenant: partition.tenant.clone(),
                    day: partition.day,
                })
                .map(Some)
                .map_err(|error| error.to_string()),
            DataKind::Metrics => self
                .series
                .clusters_in(&partition.tenant, partition.day)
                .map_err(|error| error.to_string()),
        }
    }
}
