//! Who sent samples and when: per (cluster, node, role) of a tenant's series, the times of the
//! first and last sample, for the cluster list of a cluster that sends metrics only.
//!
//! The rule a reader must not miss: no column is decoded here. A block's directory holds each
//! series' first and last timestamp, and the head's are in memory. What a partition's blocks
//! say is kept with the ids of those blocks and reused until a seal or a merge changes them,
//! so a call reads only the directories of blocks it has not seen.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::sync::{Arc, Mutex};

use crate::series::block::{self, BlockInfo};
use crate::series::error::SeriesResult;
use crate::series::index::{INDEX_FILE, SeriesIndex};
use crate::series::partition::{Partition, PartitionKey, open_block};
use crate::series::select::{Labels, SampleSender};
use crate::series::store::SeriesStore;

/// (cluster, node, role) → (first, last) sample time in unix ms.
type SenderTimes = BTreeMap<(String, String, String), (i64, i64)>;

/// Per partition: the ids of its blocks, and what those blocks say.
type ByPartition = HashMap<PartitionKey, (Vec<u64>, Arc<SenderTimes>)>;

/// What the blocks of each partition say, with the ids of those blocks.
#[derive(Debug, Default)]
pub(crate) struct SenderCache {
    by_partition: Mutex<ByPartition>,
    /// Partitions whose block directories were read since start-up.
    summarized: std::sync::atomic::AtomicU64,
}

impl SenderCache {
    fn get(&self, key: &PartitionKey, block_ids: &[u64]) -> Option<Arc<SenderTimes>> {
        match self.lock().get(key) {
            Some((ids, times)) if ids == block_ids => Some(Arc::clone(times)),
            _ => None,
        }
    }

    fn put(&self, key: PartitionKey, block_ids: Vec<u64>, times: Arc<SenderTimes>) {
        self.summarized
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.lock().insert(key, (block_ids, times));
    }

    /// Drops what partition `key` said (deleted by retention).
    pub(crate) fn forget(&self, key: &PartitionKey) {
        self.lock().remove(key);
    }

    /// How many times a partition's block directories were read since start-up.
    #[cfg(test)]
    pub(crate) fn summarized(&self) -> u64 {
        self.summarized.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ByPartition> {
        self.by_partition
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The value of label `name` of `labels` (sorted by name), `""` without one.
fn label<'a>(labels: &'a Labels, name: &str) -> &'a str {
    labels
        .binary_search_by(|(label, _)| label.as_str().cmp(name))
        .map_or("", |at| labels[at].1.as_str())
}

fn sender_of(labels: &Labels) -> (String, String, String) {
    (
        label(labels, "cluster").to_owned(),
        label(labels, "node").to_owned(),
        label(labels, "role").to_owned(),
    )
}

fn widen(times: &mut SenderTimes, sender: (String, String, String), first_ms: i64, last_ms: i64) {
    let entry = times.entry(sender).or_insert((i64::MAX, i64::MIN));
    entry.0 = entry.0.min(first_ms);
    entry.1 = entry.1.max(last_ms);
}

/// What one partition holds, taken under its mutex.
struct Snapshot {
    block_ids: Vec<u64>,
    /// The blocks, opened, when the cache does not know them.
    blocks_to_read: Option<Vec<(Arc<BlockInfo>, File)>>,
    /// The live index's labels by id, when the partition is written to.
    live_labels: Option<Vec<Arc<Labels>>>,
    /// (series id, first, last) of the head.
    head: Vec<(u32, i64, i64)>,
    cached: Option<Arc<SenderTimes>>,
}

impl SeriesStore {
    /// Per (cluster, node, role) of the series of `tenants`, the first and last sample time,
    /// by (cluster, node, role).
    pub(crate) fn sample_senders(&self, tenants: &[String]) -> SeriesResult<Vec<SampleSender>> {
        let mut all = SenderTimes::new();
        for partition in self.partitions_in_range(tenants, i64::MIN / 2, i64::MAX / 2) {
            let snapshot = self.snapshot(&partition)?;
            let from_blocks = match snapshot.cached {
                Some(times) => times,
                None => {
                    let times = Arc::new(self.read_block_senders(
                        &partition,
                        snapshot.blocks_to_read.unwrap_or_default(),
                        snapshot.live_labels.as_deref(),
                    )?);
                    self.sender_cache.put(
                        partition.key.clone(),
                        snapshot.block_ids,
                        Arc::clone(&times),
                    );
                    times
                }
            };
            for (sender, (first_ms, last_ms)) in from_blocks.iter() {
                widen(&mut all, sender.clone(), *first_ms, *last_ms);
            }
            if let Some(labels) = &snapshot.live_labels {
                for (id, first_ms, last_ms) in snapshot.head {
                    if let Some(labels) = labels.get(id as usize) {
                        widen(&mut all, sender_of(labels), first_ms, last_ms);
                    }
                }
            }
        }
        Ok(all.into_iter().map(SampleSender::from_entry).collect())
    }

    /// Takes what `partition` holds in one step, opening its blocks unless the cache knows
    /// them (a merge may delete a block's file once the mutex is released).
    fn snapshot(&self, partition: &Partition) -> SeriesResult<Snapshot> {
        let state = partition.lock();
        let block_ids: Vec<u64> = state.blocks.iter().map(|info| info.id).collect();
        let cached = self.sender_cache.get(&partition.key, &block_ids);
        let blocks_to_read = match cached {
            Some(_) => None,
            None => Some(
                state
                    .blocks
                    .iter()
                    .map(|info| Ok((Arc::clone(info), open_block(info)?)))
                    .collect::<SeriesResult<Vec<_>>>()?,
            ),
        };
        let (live_labels, head) = match &state.live {
            Some(live) => (
                Some(
                    live.index
                        .iter()
                        .map(|(_, labels)| Arc::clone(labels))
                        .collect(),
                ),
                live.head
                    .iter()
                    .zip(0..)
                    .filter_map(|(head, id)| {
                        Some((id, *head.timestamps.first()?, *head.timestamps.last()?))
                    })
                    .collect(),
            ),
            None => (None, Vec::new()),
        };
        Ok(Snapshot {
            block_ids,
            blocks_to_read,
            live_labels,
            head,
            cached,
        })
    }

    /// What the directories of `blocks` say, with labels from the live index when there is
    /// one, else from the index file (it names every series a block holds).
    fn read_block_senders(
        &self,
        partition: &Partition,
        blocks: Vec<(Arc<BlockInfo>, File)>,
        live_labels: Option<&[Arc<Labels>]>,
    ) -> SeriesResult<SenderTimes> {
        let mut times = SenderTimes::new();
        if blocks.is_empty() {
            return Ok(times);
        }
        let file_index: Option<Arc<SeriesIndex>> = match live_labels {
            Some(_) => None,
            None => Some(self.index_cache.load(&partition.dir.join(INDEX_FILE))?),
        };
        let labels_of = |id: u32| -> Option<&Arc<Labels>> {
            match (live_labels, &file_index) {
                (Some(labels), _) => labels.get(id as usize),
                (None, Some(index)) => index.labels_of(id),
                (None, None) => None,
            }
        };
        for (info, file) in &blocks {
            let directory = block::read_directory(file, &info.path)?;
            for entry in &directory.entries {
                if let Some(labels) = labels_of(entry.series_id) {
                    widen(&mut times, sender_of(labels), entry.min_ts, entry.max_ts);
                }
            }
        }
        Ok(times)
    }
}
