//! Decoded samples of sealed blocks, kept between queries within a byte budget, so that a
//! dashboard asking for the same day again does not decode it again; queries share them
//! (`Samples::shared`) rather than copy them. Blocks never change (a
//! merge writes a new block under a new name), so an entry stays right for as long as it is
//! asked for; entries of merged-away blocks simply stop being asked for and age out.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::series::error::SeriesResult;

/// A series' samples from one block.
pub(crate) type Columns = Arc<[(i64, f64)]>;

/// Bytes one sample takes decoded.
const SAMPLE_BYTES: usize = 16;

#[derive(Debug)]
pub(crate) struct ColumnCache {
    budget_bytes: usize,
    state: Mutex<CacheState>,
}

#[derive(Debug, Default)]
struct CacheState {
    /// (block path, series id) → columns and the tick of their last use.
    entries: HashMap<(PathBuf, u32), (Columns, u64)>,
    bytes: usize,
    tick: u64,
}

impl ColumnCache {
    pub(crate) fn new(budget_bytes: usize) -> ColumnCache {
        ColumnCache {
            budget_bytes,
            state: Mutex::new(CacheState::default()),
        }
    }

    /// The columns of `series_id` in the block at `path`, from the cache or from `read`.
    pub(crate) fn get_or_read(
        &self,
        path: &Path,
        series_id: u32,
        read: impl FnOnce() -> SeriesResult<Vec<(i64, f64)>>,
    ) -> SeriesResult<Columns> {
        let key = (path.to_owned(), series_id);
        {
            let mut state = self.lock();
            state.tick += 1;
            let tick = state.tick;
            if let Some((columns, last_use)) = state.entries.get_mut(&key) {
                *last_use = tick;
                return Ok(Arc::clone(columns));
            }
        }
        // Decoded outside the lock: other threads of the query go on meanwhile.
        let columns: Columns = read()?.into();
        let bytes = columns.len() * SAMPLE_BYTES;
        if bytes > self.budget_bytes / 4 {
            return Ok(columns);
        }
        let mut state = self.lock();
        let tick = state.tick;
        if state
            .entries
            .insert(key, (Arc::clone(&columns), tick))
            .is_none()
        {
            state.bytes += bytes;
        }
        if state.bytes > self.budget_bytes {
            state.evict_down_to(self.budget_bytes / 4 * 3);
        }
        Ok(columns)
    }

    /// Drops the columns of every block under `dir` (a partition deleted by retention).
    pub(crate) fn forget_under(&self, dir: &Path) {
        let mut state = self.lock();
        let mut freed = 0;
        state.entries.retain(|(path, _), (columns, _)| {
            let keep = !path.starts_with(dir);
            if !keep {
                freed += columns.len() * SAMPLE_BYTES;
            }
            keep
        });
        state.bytes -= freed;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl CacheState {
    /// Drops the least recently used entries until at most `target` bytes are held.
    fn evict_down_to(&mut self, target: usize) {
        let mut by_age: Vec<(u64, (PathBuf, u32))> = self
            .entries
            .iter()
            .map(|(key, (_, last_use))| (*last_use, key.clone()))
            .collect();
        by_age.sort_unstable_by_key(|(last_use, _)| *last_use);
        for (_, key) in by_age {
            if self.bytes <= target {
                break;
            }
            if let Some((columns, _)) = self.entries.remove(&key) {
                self.bytes -= columns.len() * SAMPLE_BYTES;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns(samples: usize) -> Vec<(i64, f64)> {
        (0..samples as i64).map(|ts| (ts, 1.0)).collect()
    }

    #[test]
    fn columns_are_read_once_and_the_least_recently_used_go_past_the_budget() -> SeriesResult<()> {
        // Room for four series of 100 samples.
        let cache = ColumnCache::new(4 * 100 * SAMPLE_BYTES);
        let block = Path::new("/data/b1.blk");
        let reads = std::cell::Cell::new(0);
        let read = |id: u32| {
            cache.get_or_read(block, id, || {
                reads.set(reads.get() + 1);
                Ok(columns(100))
            })
        };
        read(1)?;
        read(1)?;
        assert_eq!(reads.get(), 1, "the second query is served from the cache");
        for id in 2..=4 {
            read(id)?;
        }
        read(1)?; // 1 is now the most recently used
        read(5)?; // over budget: the oldest go until three quarters are left
        assert_eq!(reads.get(), 5);
        read(1)?;
        assert_eq!(reads.get(), 5, "the recently used series stayed");
        read(2)?;
        assert_eq!(reads.get(), 6, "the least recently used series went");
        Ok(())
    }
}
