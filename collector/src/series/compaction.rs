//! Merging a partition's blocks: 8 blocks of one level become one block of the next level, and
//! a partition whose day has ended becomes a single block.
//!
//! The rule a reader must not miss: the merged block names the blocks it replaces and is made
//! durable before they are deleted; in memory it replaces them in one step under the
//! partition's mutex. A crash in between leaves both on disk, and `open` deletes the replaced
//! ones, so no sample is ever counted twice. Retention's rewrite of a partition without some
//! series (`rewrite_without`) replaces its blocks the same way.

use std::sync::Arc;

use crate::series::block::{self, BlockInfo, BlockWriter};
use crate::series::error::SeriesResult;
use crate::series::partition::{Partition, open_block};

/// Blocks of one level merged into one block of the next.
pub(crate) const BLOCKS_PER_LEVEL: usize = 8;

/// The blocks to merge next and the level of the result, if any.
fn choose(blocks: &[Arc<BlockInfo>], day_closed: bool) -> Option<(Vec<Arc<BlockInfo>>, u8)> {
    if day_closed {
        if blocks.len() < 2 {
            return None;
        }
        let top_level = blocks.iter().map(|info| info.level).max().unwrap_or(0);
        return Some((blocks.to_vec(), top_level.saturating_add(1)));
    }
    let mut levels: Vec<u8> = blocks.iter().map(|info| info.level).collect();
    levels.sort_unstable();
    levels.dedup();
    levels.into_iter().find_map(|level| {
        let same_level: Vec<Arc<BlockInfo>> = blocks
            .iter()
            .filter(|info| info.level == level)
            .take(BLOCKS_PER_LEVEL)
            .cloned()
            .collect();
        (same_level.len() == BLOCKS_PER_LEVEL).then(|| (same_level, level.saturating_add(1)))
    })
}

/// Merges the blocks of `partition` until nothing is left to merge.
pub(crate) fn compact_partition(partition: &Partition, day_closed: bool) -> SeriesResult<()> {
    loop {
        let (inputs, level, block_id) = {
            let mut state = partition.lock();
            let Some((inputs, level)) = choose(&state.blocks, day_closed) else {
                return Ok(());
            };
            let block_id = state.next_block_id;
            state.next_block_id += 1;
            (inputs, level, block_id)
        };
        let merged = merge(partition, &inputs, level, block_id, |_| true)?;
        replace(partition, &inputs, merged)?;
    }
}

/// Replaces every block of `partition` (which must not be written meanwhile: the caller holds
/// the store's maintenance lock and saw no live part) by one block without the series `drop`
/// says to drop; returns how many of those the blocks held.
pub(crate) fn rewrite_without(
    partition: &Partition,
    drop: impl Fn(u32) -> bool,
) -> SeriesResult<usize> {
    let (inputs, level, block_id) = {
        let mut state = partition.lock();
        let inputs = state.blocks.clone();
        let level = inputs.iter().map(|info| info.level).max().unwrap_or(0);
        let block_id = state.next_block_id;
        state.next_block_id += 1;
        (inputs, level.saturating_add(1), block_id)
    };
    let mut dropped: Vec<u32> = Vec::new();
    for info in &inputs {
        let file = open_block(info)?;
        let directory = block::read_directory(&file, &info.path)?;
        dropped.extend(
            directory
                .entries
                .iter()
                .map(|entry| entry.series_id)
                .filter(|&id| drop(id)),
        );
    }
    dropped.sort_unstable();
    dropped.dedup();
    if dropped.is_empty() {
        return Ok(0);
    }
    let merged = merge(partition, &inputs, level, block_id, |id| !drop(id))?;
    replace(partition, &inputs, merged)?;
    Ok(dropped.len())
}

/// Puts `merged` in place of `inputs`: in memory in one step, then deletes their files.
fn replace(
    partition: &Partition,
    inputs: &[Arc<BlockInfo>],
    merged: BlockInfo,
) -> SeriesResult<()> {
    {
        let mut state = partition.lock();
        state
            .blocks
            .retain(|info| !inputs.iter().any(|input| input.id == info.id));
        state.blocks.push(Arc::new(merged));
    }
    for input in inputs {
        std::fs::remove_file(&input.path).map_err(|source| {
            crate::series::error::SeriesError::Delete {
                path: input.path.clone(),
                source,
            }
        })?;
    }
    block::sync_dir(&partition.dir)
}

/// Writes block `block_id` of `level` holding every sample of `inputs` of the series `keep`
/// keeps.
fn merge(
    partition: &Partition,
    inputs: &[Arc<BlockInfo>],
    level: u8,
    block_id: u64,
    keep: impl Fn(u32) -> bool,
) -> SeriesResult<BlockInfo> {
    let mut opened = Vec::with_capacity(inputs.len());
    for info in inputs {
        let file = open_block(info)?;
        let directory = block::read_directory(&file, &info.path)?;
        opened.push((info, file, directory));
    }
    let mut series_ids: Vec<u32> = opened
        .iter()
        .flat_map(|(_, _, directory)| directory.entries.iter().map(|entry| entry.series_id))
        .collect();
    series_ids.retain(|&id| keep(id));
    series_ids.sort_unstable();
    series_ids.dedup();
    let mut writer = BlockWriter::create(&partition.dir, block_id)?;
    let mut samples: Vec<(i64, f64)> = Vec::new();
    for series_id in series_ids {
        samples.clear();
        for (info, file, directory) in &opened {
            if let Some(entry) = directory.find(series_id) {
                let (timestamps, values) = block::read_series(file, &info.path, entry)?;
                samples.extend(timestamps.into_iter().zip(values));
            }
        }
        if !samples.is_sorted_by(|a, b| a.0 < b.0) {
            samples.sort_by_key(|sample| sample.0);
            samples.dedup_by_key(|sample| sample.0);
        }
        let timestamps: Vec<i64> = samples.iter().map(|sample| sample.0).collect();
        let values: Vec<f64> = samples.iter().map(|sample| sample.1).collect();
        writer.add_series(series_id, &timestamps, &values)?;
    }
    writer.finish(level, inputs.iter().map(|info| info.id).collect())
}
