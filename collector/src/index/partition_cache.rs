//! The log partitions held open at once: at most `max_open`, more only while in use;
//! past it, the least recently used partition not in use is closed.
//!
//! The rule a reader must not miss: a partition is closed only while no `OpenPartition` of it
//! is held. The writer reloads the reader of each partition it writes after every commit; were
//! that partition closed and opened again meanwhile, the new copy's reader would never see the
//! writer's later commits. A partition nobody writes is opened at its latest commit.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::Result;
use crate::index::partition::{Partition, PartitionKey};

/// The open partitions of a `LogStore`.
pub(crate) struct PartitionCache {
    shared: Arc<Shared>,
}

/// An open partition lent out by the cache: it stays open while any clone of this lives.
#[derive(Clone)]
pub struct OpenPartition {
    /// `None` only while being dropped.
    partition: Option<Arc<Partition>>,
    cache: Arc<Shared>,
}

struct Shared {
    max_open: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    open: HashMap<PartitionKey, Entry>,
    /// Counts lookups; an entry's `last_used` is the count at its latest lookup.
    lookups: u64,
}

struct Entry {
    partition: Arc<Partition>,
    last_used: u64,
}

impl PartitionCache {
    /// An empty cache that keeps at most `max_open` partitions open, more only while in use.
    pub(crate) fn new(max_open: usize) -> PartitionCache {
        PartitionCache {
            shared: Arc::new(Shared {
                max_open,
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// Returns partition `key`, opened by `open` when it is not open.
    pub(crate) fn get_or_open(
        &self,
        key: &PartitionKey,
        open: impl FnOnce() -> Result<Partition>,
    ) -> Result<OpenPartition> {
        let mut state = self.shared.lock();
        state.lookups += 1;
        let now = state.lookups;
        let partition = match state.open.get_mut(key) {
            Some(entry) => {
                entry.last_used = now;
                Arc::clone(&entry.partition)
            }
            None => {
                // Opened under the lock: a copy opened outside it could be older than one
                // the writer inserted, reloaded and released meanwhile.
                let partition = Arc::new(open()?);
                let entry = Entry {
                    partition: Arc::clone(&partition),
                    last_used: now,
                };
                state.open.insert(key.clone(), entry);
                partition
            }
        };
        let closed = state.close_unused_beyond(self.shared.max_open);
        drop(state);
        drop(closed);
        Ok(OpenPartition {
            partition: Some(partition),
            cache: Arc::clone(&self.shared),
        })
    }

    /// Closes partition `key` and runs `remove` under the cache's lock, unless something holds
    /// the partition (a search or the writer): `None` then, and `remove` is not run. While
    /// `remove` runs no one can open the partition.
    pub(crate) fn remove_unless_in_use<T>(
        &self,
        key: &PartitionKey,
        remove: impl FnOnce() -> T,
    ) -> Option<T> {
        let mut state = self.shared.lock();
        if state
            .open
            .get(key)
            .is_some_and(|entry| Arc::strong_count(&entry.partition) > 1)
        {
            return None;
        }
        let closed = state.open.remove(key);
        let removed = remove();
        drop(state);
        drop(closed);
        Some(removed)
    }

    /// How many partitions are open.
    pub(crate) fn open_count(&self) -> usize {
        self.shared.lock().open.len()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .expect("partition cache lock is not poisoned")
    }
}

impl State {
    /// Takes the least recently used partitions that are not in use out of the cache until at
    /// most `max_open` are open or every one left is in use; the caller drops them (closing
    /// them) after unlocking.
    fn close_unused_beyond(&mut self, max_open: usize) -> Vec<Arc<Partition>> {
        let mut closed = Vec::new();
        while self.open.len() > max_open {
            // Only the cache holds an unused partition: every holder got it from here.
            let unused = self
                .open
                .iter()
                .filter(|(_, entry)| Arc::strong_count(&entry.partition) == 1)
                .min_by_key(|(_, entry)| entry.last_used)
                .map(|(key, _)| key.clone());
            let Some(key) = unused else {
                break;
            };
            let entry = self.open.remove(&key).expect("found above");
            tracing::debug!(tenant = %key.tenant, day = %key.day, open = self.open.len(), "closing the least recently used log partition");
            closed.push(entry.partition);
        }
        closed
    }
}

impl Deref for OpenPartition {
    type Target = Partition;

    fn deref(&self) -> &Partition {
        self.partition.as_ref().expect("taken only by drop")
    }
}

impl Drop for OpenPartition {
    fn drop(&mut self) {
        // Let go first: a partition is closed only once nobody holds it.
        drop(self.partition.take());
        let closed = self.cache.lock().close_unused_beyond(self.cache.max_open);
        drop(closed);
    }
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;
    use tantivy::Index;

    use super::*;
    use crate::index::schema::LogSchema;

    fn key(day: i8) -> PartitionKey {
        PartitionKey {
            tenant: "t".to_owned(),
            day: date(2026, 11, day),
        }
    }

    fn in_ram(day: i8) -> Result<Partition> {
        let index = Index::create_in_ram(LogSchema::new().schema);
        let reader = index.reader().expect("an in-RAM index has a reader");
        let schema = LogSchema::new();
        Ok(Partition::new(
            key(day),
            index,
            reader,
            &schema,
            Default::default(),
        ))
    }

    fn open_days(cache: &PartitionCache) -> Vec<i8> {
        let state = cache.shared.lock();
        let mut days: Vec<i8> = state.open.keys().map(|key| key.day.day()).collect();
        days.sort_unstable();
        days
    }

    #[test]
    fn the_least_recently_used_partition_is_closed_first() -> Result<()> {
        let cache = PartitionCache::new(2);
        cache.get_or_open(&key(1), || in_ram(1))?;
        cache.get_or_open(&key(2), || in_ram(2))?;
        cache.get_or_open(&key(1), || unreachable!("day 1 is open"))?;
        cache.get_or_open(&key(3), || in_ram(3))?;
        assert_eq!(open_days(&cache), [1, 3]);
        Ok(())
    }

    #[test]
    fn a_partition_in_use_is_closed_only_once_released() -> Result<()> {
        let cache = PartitionCache::new(1);
        let first = cache.get_or_open(&key(1), || in_ram(1))?;
        let copy = first.clone();
        drop(first);
        cache.get_or_open(&key(2), || in_ram(2))?;
        assert_eq!(open_days(&cache), [1], "day 2 was closed once released");
        let second = cache.get_or_open(&key(2), || in_ram(2))?;
        assert_eq!(open_days(&cache), [1, 2], "both in use");
        drop(copy);
        assert_eq!(open_days(&cache), [2]);
        assert_eq!(second.key, key(2));
        Ok(())
    }

    #[test]
    fn a_partition_in_use_is_not_removed() -> Result<()> {
        let cache = PartitionCache::new(4);
        let held = cache.get_or_open(&key(1), || in_ram(1))?;
        cache.get_or_open(&key(2), || in_ram(2))?;
        assert_eq!(cache.remove_unless_in_use(&key(1), || "removed"), None);
        assert_eq!(
            cache.remove_unless_in_use(&key(2), || "removed"),
            Some("removed")
        );
        assert_eq!(open_days(&cache), [1]);
        drop(held);
        assert_eq!(
            cache.remove_unless_in_use(&key(1), || "removed"),
            Some("removed")
        );
        assert_eq!(open_days(&cache), Vec::<i8>::new());
        Ok(())
    }
}
