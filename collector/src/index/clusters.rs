//! Cluster summaries: which clusters, nodes and roles sent records, when, and how many per level,
//! computed from the fast columns `cluster`, `node`, `role`, `level` and `ts` of each partition.
//!
//! The rule a reader must not miss: no stored document is ever loaded here. Per segment the
//! collector counts by term ordinals and turns ordinals into strings once, at harvest. A
//! partition's summary is kept with its change stamp and reused until the partition changes,
//! so a call reads only the partitions written since the last one (usually today's).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tantivy::columnar::{Column, StrColumn};
use tantivy::query::AllQuery;
use tantivy::{DateTime, DocId, Score, SegmentOrdinal, SegmentReader};

use crate::error::Result;
use crate::index::partition::{LogStore, PartitionKey};
use crate::index::record::ColumnCache;

/// What one (node, role) of a cluster sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeActivity {
    pub node: String,
    pub role: String,
    /// `ts` of the oldest record, in microseconds.
    pub first_ts_micros: i64,
    /// `ts` of the newest record, in microseconds.
    pub last_ts_micros: i64,
    /// Records per level, e.g. `{"ERROR": 3, "INFO": 120}`.
    pub records_by_level: BTreeMap<String, u64>,
}

/// What one cluster of one tenant sent, over all its partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterActivity {
    pub tenant: String,
    pub cluster: String,
    pub first_ts_micros: i64,
    pub last_ts_micros: i64,
    pub records_by_level: BTreeMap<String, u64>,
    /// Sorted by role, then node.
    pub nodes: Vec<NodeActivity>,
}

/// Summarizes every cluster of `tenants`, newest `last_ts_micros` first (ties by tenant, name).
pub fn cluster_activity(store: &LogStore, tenants: &[String]) -> Result<Vec<ClusterActivity>> {
    // (tenant, cluster) -> (node, role) -> activity
    type ByCluster = BTreeMap<(String, String), BTreeMap<(String, String), Activity>>;
    let cache = store.activity_cache();
    let mut summaries = Vec::new();
    let mut stale = Vec::new();
    // Stamps are read before searching: a commit during the search leaves a newer stamp, and
    // the next call reads that partition again.
    for key in store.keys_for(tenants, None, None) {
        let stamp = store.change_stamp(&key);
        match cache.get(&key, stamp) {
            Some(summary) => summaries.push((key, summary)),
            None => stale.push((key, stamp)),
        }
    }
    let stale_keys: Vec<PartitionKey> = stale.iter().map(|(key, _)| key.clone()).collect();
    let collector = ActivityCollector {
        columns: store.columns(),
    };
    // By key, not by position: a partition deleted by retention meanwhile has no fruit.
    let stamps: HashMap<PartitionKey, u64> = stale.into_iter().collect();
    for (key, found) in store.search_keys(&stale_keys, (None, None), &AllQuery, &collector)? {
        let stamp = stamps[&key];
        let summary = Arc::new(found);
        cache.put(key.clone(), stamp, Arc::clone(&summary));
        summaries.push((key, summary));
    }
    let mut by_cluster: ByCluster = BTreeMap::new();
    for (partition_key, found) in summaries {
        for (key, activity) in found.iter() {
            by_cluster
                .entry((partition_key.tenant.clone(), key.cluster.clone()))
                .or_default()
                .entry((key.node.clone(), key.role.clone()))
                .or_insert_with(Activity::empty)
                .merge(activity.clone());
        }
    }
    let mut clusters: Vec<ClusterActivity> = by_cluster
        .into_iter()
        .map(|((tenant, cluster), nodes)| cluster_from_nodes(tenant, cluster, nodes))
        .collect();
    clusters.sort_by(|a, b| {
        b.last_ts_micros
            .cmp(&a.last_ts_micros)
            .then_with(|| (&a.tenant, &a.cluster).cmp(&(&b.tenant, &b.cluster)))
    });
    Ok(clusters)
}

fn cluster_from_nodes(
    tenant: String,
    cluster: String,
    nodes: BTreeMap<(String, String), Activity>,
) -> ClusterActivity {
    let mut total = Activity::empty();
    let mut node_list: Vec<NodeActivity> = nodes
        .into_iter()
        .map(|((node, role), activity)| {
            total.merge(activity.clone());
            NodeActivity {
                node,
                role,
                first_ts_micros: activity.first_ts_micros,
                last_ts_micros: activity.last_ts_micros,
                records_by_level: activity.records_by_level,
            }
        })
        .collect();
    node_list.sort_by(|a, b| (&a.role, &a.node).cmp(&(&b.role, &b.node)));
    ClusterActivity {
        tenant,
        cluster,
        first_ts_micros: total.first_ts_micros,
        last_ts_micros: total.last_ts_micros,
        records_by_level: total.records_by_level,
        nodes: node_list,
    }
}

/// One partition's activity per sender.
type Summary = Arc<Vec<(Sender, Activity)>>;

/// Each partition's summary with the change stamp it was computed at.
#[derive(Default)]
pub struct ActivityCache {
    by_key: Mutex<HashMap<PartitionKey, (u64, Summary)>>,
    /// Partitions summarized (read) since start-up.
    summarized: AtomicU64,
}

impl ActivityCache {
    fn get(&self, key: &PartitionKey, stamp: u64) -> Option<Summary> {
        match self.lock().get(key) {
            Some((cached_stamp, summary)) if *cached_stamp == stamp => Some(Arc::clone(summary)),
            _ => None,
        }
    }

    /// Drops the summary of partition `key` (deleted by retention).
    pub(crate) fn forget(&self, key: &PartitionKey) {
        self.lock().remove(key);
    }

    fn put(&self, key: PartitionKey, stamp: u64, summary: Summary) {
        self.summarized.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(key, (stamp, summary));
    }

    /// How many partitions were read to summarize them since start-up.
    pub fn summarized(&self) -> u64 {
        self.summarized.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PartitionKey, (u64, Summary)>> {
        self.by_key
            .lock()
            .expect("activity cache lock is not poisoned")
    }
}

/// Who sent a record: the grouping key of the collector.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Sender {
    cluster: String,
    node: String,
    role: String,
}

/// First and last `ts` and counts by level of some records.
#[derive(Debug, Clone)]
struct Activity {
    first_ts_micros: i64,
    last_ts_micros: i64,
    records_by_level: BTreeMap<String, u64>,
}

impl Activity {
    fn empty() -> Activity {
        Activity {
            first_ts_micros: i64::MAX,
            last_ts_micros: i64::MIN,
            records_by_level: BTreeMap::new(),
        }
    }

    fn merge(&mut self, other: Activity) {
        self.first_ts_micros = self.first_ts_micros.min(other.first_ts_micros);
        self.last_ts_micros = self.last_ts_micros.max(other.last_ts_micros);
        for (level, count) in other.records_by_level {
            *self.records_by_level.entry(level).or_default() += count;
        }
    }
}

/// Groups all matching records by (cluster, node, role), reading fast columns only.
struct ActivityCollector<'a> {
    columns: &'a ColumnCache,
}

/// A sender inside one segment, as term ordinals (`u64::MAX` when the column has no value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct SenderOrds {
    cluster: u64,
    node: u64,
    role: u64,
}

struct SegmentActivity {
    first_ts_micros: i64,
    last_ts_micros: i64,
    /// Indexed by the level's term ordinal; the last slot counts records without a level.
    records_by_level_ord: Vec<u64>,
}

struct ActivitySegmentCollector {
    ts: Column<DateTime>,
    cluster: Option<StrColumn>,
    node: Option<StrColumn>,
    role: Option<StrColumn>,
    level: Option<StrColumn>,
    level_slots: usize,
    by_sender: HashMap<SenderOrds, SegmentActivity>,
}

impl tantivy::collector::Collector for ActivityCollector<'_> {
    type Fruit = Vec<(Sender, Activity)>;
    type Child = ActivitySegmentCollector;

    fn for_segment(
        &self,
        _segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<ActivitySegmentCollector> {
        let columns = self.columns.get(reader)?;
        let level = columns.keyword("level").cloned();
        let level_slots = level
            .as_ref()
            .map_or(0, |column| column.num_terms())
            .saturating_add(1);
        Ok(ActivitySegmentCollector {
            ts: columns.ts.clone(),
            cluster: columns.keyword("cluster").cloned(),
            node: columns.keyword("node").cloned(),
            role: columns.keyword("role").cloned(),
            level,
            level_slots,
            by_sender: HashMap::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Self::Fruit>) -> tantivy::Result<Self::Fruit> {
        let mut merged: HashMap<Sender, Activity> = HashMap::new();
        for (sender, activity) in fruits.into_iter().flatten() {
            merged
                .entry(sender)
                .or_insert_with(Activity::empty)
                .merge(activity);
        }
        Ok(merged.into_iter().collect())
    }
}

fn first_ord(column: Option<&StrColumn>, doc: DocId) -> u64 {
    column
        .and_then(|column| column.term_ords(doc).next())
        .unwrap_or(u64::MAX)
}

fn ord_to_string(column: Option<&StrColumn>, ord: u64) -> String {
    let mut text = String::new();
    if let Some(column) = column
        && ord != u64::MAX
    {
        let _ = column.ord_to_str(ord, &mut text);
    }
    text
}

impl tantivy::collector::SegmentCollector for ActivitySegmentCollector {
    type Fruit = Vec<(Sender, Activity)>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        let Some(ts) = self.ts.first(doc) else {
            return;
        };
        let ts_micros = ts.into_timestamp_micros();
        let sender = SenderOrds {
            cluster: first_ord(self.cluster.as_ref(), doc),
            node: first_ord(self.node.as_ref(), doc),
            role: first_ord(self.role.as_ref(), doc),
        };
        let level_ord = first_ord(self.level.as_ref(), doc);
        let level_slots = self.level_slots;
        let activity = self
            .by_sender
            .entry(sender)
            .or_insert_with(|| SegmentActivity {
                first_ts_micros: i64::MAX,
                last_ts_micros: i64::MIN,
                records_by_level_ord: vec![0; level_slots],
            });
        activity.first_ts_micros = activity.first_ts_micros.min(ts_micros);
        activity.last_ts_micros = activity.last_ts_micros.max(ts_micros);
        let slot = usize::try_from(level_ord)
            .ok()
            .filter(|slot| *slot < level_slots - 1)
            .unwrap_or(level_slots - 1);
        activity.records_by_level_ord[slot] += 1;
    }

    fn harvest(self) -> Self::Fruit {
        let level_names: Vec<String> = (0..self.level_slots as u64 - 1)
            .map(|ord| ord_to_string(self.level.as_ref(), ord))
            .chain(std::iter::once(String::new()))
            .collect();
        self.by_sender
            .into_iter()
            .map(|(ords, segment_activity)| {
                let sender = Sender {
                    cluster: ord_to_string(self.cluster.as_ref(), ords.cluster),
                    node: ord_to_string(self.node.as_ref(), ords.node),
                    role: ord_to_string(self.role.as_ref(), ords.role),
                };
                let mut records_by_level = BTreeMap::new();
                for (slot, count) in segment_activity
                    .records_by_level_ord
                    .into_iter()
                    .enumerate()
                {
                    if count > 0 {
                        *records_by_level
                            .entry(level_names[slot].clone())
                            .or_default() += count;
                    }
                }
                let activity = Activity {
                    first_ts_micros: segment_activity.first_ts_micros,
                    last_ts_micros: segment_activity.last_ts_micros,
                    records_by_level,
                };
                (sender, activity)
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

    /// A partition's summary is read once and reused until the partition changes; a write
    /// makes the next call read that partition alone, and its counts include the write.
    #[tokio::test]
    async fn only_partitions_changed_since_the_last_summary_are_read_again() -> Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(LogStore::open(dir.path(), DEFAULT_MAX_OPEN_PARTITIONS)?);
        let writer = LogWriter::start(Arc::clone(&store), Duration::from_millis(10), None)?;
        let day_micros = 86_400_000_000;
        let base = 1_795_787_813_000_000;
        let day = |n: i64, seq: u64| entry(base + n * day_micros, "w-1", 1, seq, "a");
        writer
            .write("t".to_owned(), vec![day(0, 1), day(1, 2), day(2, 3)])
            .await?;
        let records =
            |clusters: &[ClusterActivity]| -> u64 { clusters[0].records_by_level.values().sum() };
        let tenants = ["t".to_owned()];
        assert_eq!(records(&cluster_activity(&store, &tenants)?), 3);
        assert_eq!(store.activity_cache().summarized(), 3);
        assert_eq!(records(&cluster_activity(&store, &tenants)?), 3);
        assert_eq!(store.activity_cache().summarized(), 3, "nothing changed");
        writer.write("t".to_owned(), vec![day(2, 4)]).await?;
        let clusters = cluster_activity(&store, &tenants)?;
        assert_eq!(records(&clusters), 4);
        assert_eq!(clusters[0].last_ts_micros, base + 2 * day_micros);
        assert_eq!(store.activity_cache().summarized(), 4, "day 2 alone");
        writer.shutdown().await;
        Ok(())
    }

    #[tokio::test]
    async fn counts_by_sender_and_level_across_segments_and_days() -> Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(LogStore::open(dir.path(), DEFAULT_MAX_OPEN_PARTITIONS)?);
        let writer = LogWriter::start(Arc::clone(&store), Duration::from_millis(10), None)?;
        let day_micros = 86_400_000_000;
        let base = 1_795_787_813_000_000;
        let mut error = entry(base + 5, "w-1", 1, 2, "failed");
        error.level = "ERROR".to_owned();
        // The last record is on the next UTC day: two partitions' counts are merged.
        writer
            .write("t".to_owned(), vec![entry(base, "w-1", 1, 1, "a"), error])
            .await?;
        writer
            .write(
                "t".to_owned(),
                vec![entry(base + day_micros, "w-1", 1, 3, "b")],
            )
            .await?;
        writer.shutdown().await;
        let clusters = cluster_activity(&store, &["t".to_owned()])?;
        assert_eq!(clusters.len(), 1);
        let cluster = &clusters[0];
        assert_eq!(
            (cluster.first_ts_micros, cluster.last_ts_micros),
            (base, base + day_micros)
        );
        assert_eq!(
            cluster.records_by_level,
            BTreeMap::from([("ERROR".to_owned(), 1), ("INFO".to_owned(), 2)])
        );
        assert_eq!(cluster.nodes.len(), 1);
        assert_eq!(cluster.nodes[0].records_by_level, cluster.records_by_level);
        assert!(cluster_activity(&store, &["other".to_owned()])?.is_empty());
        Ok(())
    }
}
