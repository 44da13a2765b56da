//! `GET /api/v1/clusters` and `GET /api/v1/clusters/{name}`: the Dask clusters of the caller's
//! tenants, their nodes by role, record counts by level, and whether they are still sending.
//! A cluster is every (cluster, node, role) that sent log records or metric samples: one that
//! sends only metrics is listed too, its first and last seen taken from its samples.
//!
//! The rule a reader must not miss: a node is alive while it sends, by either path: its newest
//! record's `ts` (the time written in the log line, not the time the collector received it) is
//! within `ALIVE_WINDOW` of the collector's clock, or an agent scraped one of its targets
//! (`up{cluster, node}`) within that window. A cluster is alive while any node is. A quiet
//! cluster that is still scraped is alive; one whose hosts' clocks are off by more than the
//! window and which is not scraped shows as gone until its recent lines arrive.

use std::collections::{BTreeMap, HashSet};

use axum::Json;
use axum::extract::{Path, Query, State};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::api::access::Reader;
use crate::api::logs::format_ts;
use crate::api::{ApiError, AppState, within_budget};
use crate::index::clusters::{ClusterActivity, NodeActivity, cluster_activity};
use crate::promql::{self, QueryOptions, Value};
use crate::series::select::{SampleSender, SelectError, TenantLabel};

/// A cluster (or node) is alive when its newest record is at most this old.
pub const ALIVE_WINDOW: SignedDuration = SignedDuration::from_secs(5 * 60);

/// The JSON answer of `/api/v1/clusters`.
#[derive(Debug, Serialize)]
pub struct ClusterListResponse {
    /// Newest `last_seen` first.
    clusters: Vec<ClusterJson>,
}

/// One cluster as JSON.
#[derive(Debug, Serialize)]
pub struct ClusterJson {
    name: String,
    tenant: String,
    first_seen: String,
    last_seen: String,
    alive: bool,
    /// Node names by role, e.g. `{"scheduler": ["scheduler-0"], "worker": ["node-1"]}`.
    nodes: BTreeMap<String, Vec<String>>,
    records_by_level: BTreeMap<String, u64>,
    /// What it sent: `["logs"]`, `["metrics"]` or both.
    sends: Vec<&'static str>,
}

/// The JSON answer of `/api/v1/clusters/{name}`: the summary plus one entry per node.
#[derive(Debug, Serialize)]
pub struct ClusterDetailJson {
    #[serde(flatten)]
    summary: ClusterJson,
    /// Sorted by role, then node.
    node_detail: Vec<NodeJson>,
}

/// One node of a cluster as JSON.
#[derive(Debug, Serialize)]
pub struct NodeJson {
    node: String,
    role: String,
    first_seen: String,
    last_seen: String,
    alive: bool,
    records_by_level: BTreeMap<String, u64>,
    /// What it sent: `["logs"]`, `["metrics"]` or both.
    sends: Vec<&'static str>,
}

/// Query parameters of `/api/v1/clusters/{name}`.
#[derive(Debug, Default, Deserialize)]
pub struct ClusterParams {
    /// Needed only when several readable tenants have a cluster of that name.
    tenant: Option<String>,
}

fn is_alive(last_ts_micros: i64, now: Timestamp) -> bool {
    let oldest_alive_micros = now
        .checked_sub(ALIVE_WINDOW)
        .unwrap_or(Timestamp::MIN)
        .as_microsecond();
    last_ts_micros >= oldest_alive_micros
}

/// The (tenant, cluster, node) whose targets an agent scraped within `ALIVE_WINDOW` of `now`.
type Scraped = HashSet<(String, String, String)>;

/// What sends now, by records or by scrapes, and who sent metric samples at all.
struct Liveness {
    now: Timestamp,
    scraped: Scraped,
    sampled: Sampled,
}

/// The (tenant, cluster, node, role) with metric samples.
type Sampled = HashSet<(String, String, String, String)>;

/// What a node (or a cluster, when any of its nodes did) sent.
fn sends(records: bool, samples: bool) -> Vec<&'static str> {
    [(records, "logs"), (samples, "metrics")]
        .into_iter()
        .filter_map(|(sent, what)| sent.then_some(what))
        .collect()
}

impl Liveness {
    fn node(&self, tenant: &str, cluster: &str, node: &NodeActivity) -> bool {
        is_alive(node.last_ts_micros, self.now)
            || self
                .scraped
                .contains(&(tenant.to_owned(), cluster.to_owned(), node.node.clone()))
    }

    fn node_sampled(&self, tenant: &str, cluster: &str, node: &NodeActivity) -> bool {
        self.sampled.contains(&(
            tenant.to_owned(),
            cluster.to_owned(),
            node.node.clone(),
            node.role.clone(),
        ))
    }

    fn cluster(&self, cluster: &ClusterActivity) -> bool {
        is_alive(cluster.last_ts_micros, self.now)
            || cluster
                .nodes
                .iter()
                .any(|node| self.node(&cluster.tenant, &cluster.cluster, node))
    }
}

/// Asks the series store, per readable tenant, which (cluster, node) have an `up` sample within
/// `ALIVE_WINDOW` of `now`.
fn scraped_recently(
    state: &AppState,
    tenants: &[String],
    now: Timestamp,
) -> Result<Scraped, promql::QueryError> {
    let query = format!(
        "count by (cluster, node) (count_over_time(up[{}s]))",
        ALIVE_WINDOW.as_secs()
    );
    let mut scraped = Scraped::new();
    for tenant in tenants {
        let source = (state.series)(vec![tenant.clone()], TenantLabel::Omitted);
        let value = promql::instant_query(
            source.as_ref(),
            &query,
            now.as_millisecond(),
            &QueryOptions::default(),
        )?;
        if let Value::Vector(samples) = value {
            for sample in samples {
                let label = |name: &str| {
                    sample
                        .labels
                        .iter()
                        .find(|(label, _)| label == name)
                        .map(|(_, value)| value.clone())
                        .unwrap_or_default()
                };
                scraped.insert((tenant.clone(), label("cluster"), label("node")));
            }
        }
    }
    Ok(scraped)
}

/// Who sent metric samples, per readable tenant, from the series store (block directories and
/// the head: no sample is decoded).
fn sample_senders(
    state: &AppState,
    tenants: &[String],
) -> Result<Vec<(String, SampleSender)>, SelectError> {
    let mut all = Vec::new();
    for tenant in tenants {
        let source = (state.series)(vec![tenant.clone()], TenantLabel::Omitted);
        all.extend(
            source
                .sample_senders()?
                .into_iter()
                .map(|sender| (tenant.clone(), sender)),
        );
    }
    Ok(all)
}

/// `clusters` (from records) with the (tenant, sender)s of metric samples added: a node or a
/// cluster that sent samples only appears, and first and last seen cover samples too. Series
/// without a `cluster` label belong to no cluster. Sorted as `cluster_activity` sorts.
fn add_sample_senders(
    clusters: Vec<ClusterActivity>,
    senders: Vec<(String, SampleSender)>,
) -> (Vec<ClusterActivity>, Sampled) {
    let mut by_name: BTreeMap<(String, String), ClusterActivity> = clusters
        .into_iter()
        .map(|cluster| ((cluster.tenant.clone(), cluster.cluster.clone()), cluster))
        .collect();
    let mut sampled = Sampled::new();
    for (tenant, sender) in senders {
        if sender.cluster.is_empty() {
            continue;
        }
        let first_ts_micros = sender.first_ms.saturating_mul(1000);
        let last_ts_micros = sender.last_ms.saturating_mul(1000);
        let cluster = by_name
            .entry((tenant.clone(), sender.cluster.clone()))
            .or_insert_with(|| ClusterActivity {
                tenant: tenant.clone(),
                cluster: sender.cluster.clone(),
                first_ts_micros: i64::MAX,
                last_ts_micros: i64::MIN,
                records_by_level: BTreeMap::new(),
                nodes: Vec::new(),
            });
        cluster.first_ts_micros = cluster.first_ts_micros.min(first_ts_micros);
        cluster.last_ts_micros = cluster.last_ts_micros.max(last_ts_micros);
        let at = match cluster
            .nodes
            .iter()
            .position(|node| node.node == sender.node && node.role == sender.role)
        {
            Some(at) => at,
            None => {
                cluster.nodes.push(NodeActivity {
                    node: sender.node.clone(),
                    role: sender.role.clone(),
                    first_ts_micros: i64::MAX,
                    last_ts_micros: i64::MIN,
                    records_by_level: BTreeMap::new(),
                });
                cluster.nodes.len() - 1
            }
        };
        let node = &mut cluster.nodes[at];
        node.first_ts_micros = node.first_ts_micros.min(first_ts_micros);
        node.last_ts_micros = node.last_ts_micros.max(last_ts_micros);
        sampled.insert((tenant, sender.cluster, sender.node, sender.role));
    }
    let mut clusters: Vec<ClusterActivity> = by_name.into_values().collect();
    for cluster in &mut clusters {
        cluster
            .nodes
            .sort_by(|a, b| (&a.role, &a.node).cmp(&(&b.role, &b.node)));
    }
    clusters.sort_by(|a, b| {
        b.last_ts_micros
            .cmp(&a.last_ts_micros)
            .then_with(|| (&a.tenant, &a.cluster).cmp(&(&b.tenant, &b.cluster)))
    });
    (clusters, sampled)
}

impl ClusterJson {
    fn new(cluster: &ClusterActivity, liveness: &Liveness) -> ClusterJson {
        let mut nodes: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for node in &cluster.nodes {
            nodes
                .entry(node.role.clone())
                .or_default()
                .push(node.node.clone());
        }
        ClusterJson {
            name: cluster.cluster.clone(),
            tenant: cluster.tenant.clone(),
            first_seen: format_ts(cluster.first_ts_micros),
            last_seen: format_ts(cluster.last_ts_micros),
            alive: liveness.cluster(cluster),
            nodes,
            records_by_level: cluster.records_by_level.clone(),
            sends: sends(
                !cluster.records_by_level.is_empty(),
                cluster
                    .nodes
                    .iter()
                    .any(|node| liveness.node_sampled(&cluster.tenant, &cluster.cluster, node)),
            ),
        }
    }
}

impl NodeJson {
    fn new(cluster: &ClusterActivity, node: &NodeActivity, liveness: &Liveness) -> NodeJson {
        NodeJson {
            node: node.node.clone(),
            role: node.role.clone(),
            first_seen: format_ts(node.first_ts_micros),
            last_seen: format_ts(node.last_ts_micros),
            alive: liveness.node(&cluster.tenant, &cluster.cluster, node),
            records_by_level: node.records_by_level.clone(),
            sends: sends(
                !node.records_by_level.is_empty(),
                liveness.node_sampled(&cluster.tenant, &cluster.cluster, node),
            ),
        }
    }
}

/// The clusters of the caller's tenants, and what of them sends now.
async fn load_clusters(
    state: &AppState,
    tenants: Vec<String>,
) -> Result<(Vec<ClusterActivity>, Liveness), ApiError> {
    let work_state = state.clone();
    within_budget(state, "cluster summary", move || {
        let state = work_state;
        let from_records = cluster_activity(&state.store, &tenants)?;
        // A broken block must not hide every cluster: the clusters' records still show.
        let senders = sample_senders(&state, &tenants).unwrap_or_else(|error| {
            tracing::warn!(%error, "cannot tell which clusters sent metrics; listing clusters from their records only");
            Vec::new()
        });
        let (clusters, sampled) = add_sample_senders(from_records, senders);
        let now = Timestamp::now();
        // Liveness from scrapes is a hint: without it, records alone decide.
        let scraped = scraped_recently(&state, &tenants, now).unwrap_or_else(|error| {
            tracing::warn!(%error, "cannot tell which clusters are scraped; liveness from records only");
            Scraped::new()
        });
        Ok((
            clusters,
            Liveness {
                now,
                scraped,
                sampled,
            },
        ))
    })
    .await
}

/// `GET /api/v1/clusters`
pub async fn list(
    State(state): State<AppState>,
    reader: Reader,
) -> Result<Json<ClusterListResponse>, ApiError> {
    let (clusters, liveness) = load_clusters(&state, reader.tenants).await?;
    Ok(Json(ClusterListResponse {
        clusters: clusters
            .iter()
            .map(|cluster| ClusterJson::new(cluster, &liveness))
            .collect(),
    }))
}

/// `GET /api/v1/clusters/{name}?tenant=`
pub async fn detail(
    State(state): State<AppState>,
    reader: Reader,
    Path(name): Path<String>,
    Query(params): Query<ClusterParams>,
) -> Result<Json<ClusterDetailJson>, ApiError> {
    let (clusters, liveness) = load_clusters(&state, reader.tenants).await?;
    let mut named: Vec<ClusterActivity> = clusters
        .into_iter()
        .filter(|cluster| cluster.cluster == name)
        .filter(|cluster| {
            params
                .tenant
                .as_ref()
                .is_none_or(|tenant| &cluster.tenant == tenant)
        })
        .collect();
    if named.len() > 1 {
        let tenants: Vec<&str> = named
            .iter()
            .map(|cluster| cluster.tenant.as_str())
            .collect();
        return Err(ApiError::bad_request(format!(
            "cluster {name:?} exists in tenants {}: add `tenant=`",
            tenants.join(", ")
        )));
    }
    let cluster = named
        .pop()
        .ok_or_else(|| ApiError::not_found(format!("no cluster named {name:?}")))?;
    Ok(Json(ClusterDetailJson {
        summary: ClusterJson::new(&cluster, &liveness),
        node_detail: cluster
            .nodes
            .iter()
            .map(|node| NodeJson::new(&cluster, node, &liveness))
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use axum::http::StatusCode;

    use super::*;
    use crate::api::test_support::{get, state_reading};
    use crate::config::DEFAULT_MAX_OPEN_PARTITIONS;
    use crate::index::partition::LogStore;
    use crate::index::writer::{LogEntry, LogWriter};

    fn entry(ts: Timestamp, cluster: &str, node: &str, role: &str, level: &str) -> LogEntry {
        LogEntry {
            ts_micros: ts.as_microsecond(),
            cluster: cluster.to_owned(),
            node: node.to_owned(),
            role: role.to_owned(),
            source: format!("/var/log/dask/{node}.log"),
            level: level.to_owned(),
            logger: "distributed".to_owned(),
            message: "m".to_owned(),
            stream: 1,
            seq: 0,
            truncated: false,
            ts_inferred: false,
        }
    }

    /// `live` sends records now; `gone` stopped an hour ago; `hidden` belongs to another tenant.
    async fn state_with_clusters(dir: &std::path::Path, now: Timestamp) -> AppState {
        let store =
            Arc::new(LogStore::open(dir, DEFAULT_MAX_OPEN_PARTITIONS).expect("store opens"));
        let writer = LogWriter::start(Arc::clone(&store), Duration::from_millis(10), None)
            .expect("writer starts");
        let hour_ago = now - SignedDuration::from_hours(1);
        let two_hours_ago = now - SignedDuration::from_hours(2);
        let mut live = vec![
            entry(two_hours_ago, "live", "scheduler-0", "scheduler", "INFO"),
            entry(now, "live", "scheduler-0", "scheduler", "INFO"),
            entry(hour_ago, "live", "node-2", "worker", "WARNING"),
            entry(hour_ago, "live", "node-1", "worker", "INFO"),
            entry(now, "live", "node-1", "worker", "ERROR"),
            entry(now, "live", "node-1", "worker", "ERROR"),
        ];
        let gone = vec![
            entry(two_hours_ago, "gone", "sched", "scheduler", "INFO"),
            entry(hour_ago, "gone", "w", "worker", "INFO"),
        ];
        for (seq, record) in live.iter_mut().enumerate() {
            record.seq = seq as u64;
        }
        let mut all = live;
        all.extend(gone.into_iter().enumerate().map(|(seq, mut record)| {
            record.stream = 2;
            record.seq = seq as u64;
            record
        }));
        writer
            .write("default".to_owned(), all)
            .await
            .expect("written");
        writer
            .write(
                "other-team".to_owned(),
                vec![entry(now, "hidden", "x", "worker", "INFO")],
            )
            .await
            .expect("written");
        writer.shutdown().await;
        state_reading(store, &["default"])
    }

    #[tokio::test]
    async fn list_has_readable_clusters_newest_first_with_roles_levels_and_liveness() {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = Timestamp::now();
        let state = state_with_clusters(dir.path(), now).await;
        let (status, json) = get(&state, "/api/v1/clusters").await;
        assert_eq!(status, StatusCode::OK);
        let clusters = json["clusters"].as_array().expect("clusters");
        let names: Vec<&str> = clusters
            .iter()
            .map(|cluster| cluster["name"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(
            names,
            ["live", "gone"],
            "no other tenant's cluster, newest first"
        );
        let live = &clusters[0];
        assert_eq!(live["alive"], true);
        assert_eq!(clusters[1]["alive"], false, "last record an hour old");
        assert_eq!(
            live["nodes"],
            serde_json::json!({"scheduler": ["scheduler-0"], "worker": ["node-1", "node-2"]})
        );
        assert_eq!(
            live["records_by_level"],
            serde_json::json!({"ERROR": 2, "INFO": 3, "WARNING": 1})
        );
        assert_eq!(live["last_seen"], format_ts(now.as_microsecond()));
        assert_eq!(
            live["first_seen"],
            format_ts((now - SignedDuration::from_hours(2)).as_microsecond())
        );
    }

    #[tokio::test]
    async fn detail_has_one_entry_per_node() {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = Timestamp::now();
        let state = state_with_clusters(dir.path(), now).await;
        let (status, json) = get(&state, "/api/v1/clusters/live").await;
        assert_eq!(status, StatusCode::OK);
        insta::assert_json_snapshot!(json, {
            ".first_seen" => "[ts]",
            ".last_seen" => "[ts]",
            ".node_detail[].first_seen" => "[ts]",
            ".node_detail[].last_seen" => "[ts]",
        });
        let node_2 = &json["node_detail"][2];
        assert_eq!(node_2["node"], "node-2");
        assert_eq!(node_2["alive"], false);
        assert_eq!(
            node_2["last_seen"],
            format_ts((now - SignedDuration::from_hours(1)).as_microsecond())
        );
    }

    #[tokio::test]
    async fn unknown_or_other_tenants_cluster_is_404() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = state_with_clusters(dir.path(), Timestamp::now()).await;
        for name in ["nosuch", "hidden"] {
            let (status, json) = get(&state, &format!("/api/v1/clusters/{name}")).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{name}");
            assert!(json["error"].as_str().unwrap_or_default().contains(name));
        }
    }

    #[tokio::test]
    async fn a_name_in_several_tenants_needs_the_tenant() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut state = state_with_clusters(dir.path(), Timestamp::now()).await;
        state.access = Arc::new(crate::auth::Access::anonymous_reading(&[
            "default",
            "other-team",
        ]));
        let store = state.store.clone();
        let writer = LogWriter::start(store, Duration::from_millis(10), None).expect("starts");
        writer
            .write(
                "other-team".to_owned(),
                vec![LogEntry {
                    seq: 1,
                    ..entry(Timestamp::now(), "live", "y", "worker", "INFO")
                }],
            )
            .await
            .expect("written");
        writer.shutdown().await;
        let (status, _) = get(&state, "/api/v1/clusters/live").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, json) = get(&state, "/api/v1/clusters/live?tenant=other-team").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(json["nodes"], serde_json::json!({"worker": ["y"]}));
    }

    /// A cluster whose newest record is an hour old is alive while its targets are scraped:
    /// `gone`'s worker `w` has an `up` sample a minute ago (its scheduler none), and another
    /// tenant's scrapes of a `gone` cluster of its own do not count.
    #[tokio::test]
    async fn a_quiet_cluster_still_scraped_is_alive() {
        use crate::promql::tests::MemorySource;
        use crate::series::select::SeriesSource;

        let dir = tempfile::tempdir().expect("tempdir");
        let now = Timestamp::now();
        let mut state = state_with_clusters(dir.path(), now).await;
        let up = |node: &str| -> Vec<(String, String)> {
            [
                ("__name__", "up"),
                ("cluster", "gone"),
                ("node", node),
                ("role", "worker"),
            ]
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
        };
        let minute_ago = (now - SignedDuration::from_mins(1)).as_millisecond();
        let mut ours = MemorySource::default();
        ours.add(&up("w"), &[(minute_ago, 1.0)]);
        let mut theirs = MemorySource::default();
        theirs.add(&up("sched"), &[(minute_ago, 1.0)]);
        let (ours, theirs): (Arc<dyn SeriesSource>, Arc<dyn SeriesSource>) =
            (Arc::new(ours), Arc::new(theirs));
        state.series = Arc::new(move |tenants: Vec<String>, _| {
            if tenants == ["default"] {
                Arc::clone(&ours)
            } else {
                Arc::clone(&theirs)
            }
        });
        let (_, list) = get(&state, "/api/v1/clusters").await;
        assert_eq!(list["clusters"][1]["name"], "gone");
        assert_eq!(list["clusters"][1]["alive"], true, "its worker is scraped");
        let (_, detail) = get(&state, "/api/v1/clusters/gone").await;
        let alive: Vec<(&str, bool)> = detail["node_detail"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|node| {
                (
                    node["node"].as_str().unwrap_or_default(),
                    node["alive"].as_bool().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(alive, [("sched", false), ("w", true)]);
    }

    /// A cluster that sent metric samples only (an agent that scrapes and tails no file) is
    /// listed with its nodes, first and last seen from its samples; a node that sent samples
    /// only joins a cluster with records; another tenant's metrics-only cluster stays hidden.
    /// A node whose newest sample is 20 minutes old and which is not scraped is gone.
    #[tokio::test]
    async fn a_cluster_that_sends_metrics_only_is_listed() {
        use crate::promql::tests::MemorySource;
        use crate::series::select::SeriesSource;

        let dir = tempfile::tempdir().expect("tempdir");
        let now = Timestamp::now();
        let mut state = state_with_clusters(dir.path(), now).await;
        let series = |name: &str, cluster: &str, node: &str, role: &str| -> Vec<(String, String)> {
            [
                ("__name__", name),
                ("cluster", cluster),
                ("node", node),
                ("role", role),
            ]
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
        };
        let ms = |ago_mins: i64| (now - SignedDuration::from_mins(ago_mins)).as_millisecond();
        let mut ours = MemorySource::default();
        ours.add(
            &series("up", "scraped-only", "sched-host", "scheduler"),
            &[(ms(30), 1.0), (ms(1), 1.0)],
        );
        ours.add(
            &series("dask_worker_tasks", "scraped-only", "10.0.0.7", "worker"),
            &[(ms(40), 3.0), (ms(20), 4.0)],
        );
        ours.add(&series("up", "live", "10.0.0.9", "worker"), &[(ms(3), 1.0)]);
        let mut theirs = MemorySource::default();
        theirs.add(
            &series("up", "their-metrics", "x", "scheduler"),
            &[(ms(1), 1.0)],
        );
        let (ours, theirs): (Arc<dyn SeriesSource>, Arc<dyn SeriesSource>) =
            (Arc::new(ours), Arc::new(theirs));
        state.series = Arc::new(move |tenants: Vec<String>, _| {
            if tenants == ["default"] {
                Arc::clone(&ours)
            } else {
                Arc::clone(&theirs)
            }
        });
        let (status, list) = get(&state, "/api/v1/clusters").await;
        assert_eq!(status, StatusCode::OK);
        let names: Vec<&str> = list["clusters"]
            .as_array()
            .expect("clusters")
            .iter()
            .map(|cluster| cluster["name"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(
            names,
            ["live", "scraped-only", "gone"],
            "newest first, no other tenant's cluster"
        );
        let scraped_only = &list["clusters"][1];
        assert_eq!(
            scraped_only["nodes"],
            serde_json::json!({"scheduler": ["sched-host"], "worker": ["10.0.0.7"]})
        );
        assert_eq!(scraped_only["first_seen"], format_ts(ms(40) * 1000));
        assert_eq!(scraped_only["last_seen"], format_ts(ms(1) * 1000));
        assert_eq!(scraped_only["alive"], true, "scraped a minute ago");
        assert_eq!(scraped_only["records_by_level"], serde_json::json!({}));
        assert_eq!(scraped_only["sends"], serde_json::json!(["metrics"]));
        let live = &list["clusters"][0];
        assert_eq!(live["sends"], serde_json::json!(["logs", "metrics"]));
        assert_eq!(
            live["nodes"]["worker"],
            serde_json::json!(["10.0.0.9", "node-1", "node-2"])
        );
        assert_eq!(list["clusters"][2]["sends"], serde_json::json!(["logs"]));

        let (status, detail) = get(&state, "/api/v1/clusters/scraped-only").await;
        assert_eq!(status, StatusCode::OK);
        let nodes: Vec<(&str, &str, bool, &serde_json::Value)> = detail["node_detail"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|node| {
                (
                    node["node"].as_str().unwrap_or_default(),
                    node["last_seen"].as_str().unwrap_or_default(),
                    node["alive"].as_bool().unwrap_or_default(),
                    &node["sends"],
                )
            })
            .collect();
        let (sched_last, worker_last) = (format_ts(ms(1) * 1000), format_ts(ms(20) * 1000));
        let metrics = serde_json::json!(["metrics"]);
        assert_eq!(
            nodes,
            [
                ("sched-host", sched_last.as_str(), true, &metrics),
                ("10.0.0.7", worker_last.as_str(), false, &metrics),
            ]
        );
        let (status, _) = get(&state, "/api/v1/clusters/their-metrics").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "another tenant's");
    }
}
