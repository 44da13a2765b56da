//! A partition's series index: labels → dense `u32` id, held in memory and persisted in the
//! append-only file `series.idx`.
//!
//! The rule a reader must not miss: entries are written only by a seal, and fsynced before any
//! block that refers to their ids, so every id a block names is in the index. Loading stops at
//! the first torn or corrupt entry (a crash mid-write); the next write starts over at that
//! point. An entry written again by a retried seal (its id already read) is skipped.
//!
//! An entry is `payload length: u32 LE`, `CRC-32 of the payload: u32 LE`, then the payload:
//! `id: u32`, `label count: u16`, and per label `name length: u16`, name, `value length: u32`,
//! value (labels sorted by name, `__name__` included).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::series::error::{SeriesError, SeriesResult};
use crate::series::select::Labels;

/// The file name of a partition's series index.
pub(crate) const INDEX_FILE: &str = "series.idx";
/// Entry header: payload length and checksum.
const ENTRY_HEADER_BYTES: usize = 8;

/// Labels → id of one partition.
#[derive(Debug, Default)]
pub(crate) struct SeriesIndex {
    by_labels: HashMap<Arc<Labels>, u32>,
    labels: Vec<Arc<Labels>>,
    /// Entries (ids `0..persisted`) durable in the file.
    persisted: usize,
    /// Length of the file's good prefix, where the next entry goes.
    file_len: u64,
}

/// Series indexes of partitions not being written to, kept between queries within a budget
/// of their file sizes; the least recently used goes first. An entry is used only while its
/// file has the length it was read at (a late sample can make a finished partition grow).
#[derive(Debug)]
pub(crate) struct IndexCache {
    budget_bytes: u64,
    entries: Mutex<Vec<CachedIndex>>,
    uses: AtomicU64,
}

/// `(path, file length, index, last use)`.
type CachedIndex = (PathBuf, u64, Arc<SeriesIndex>, u64);

impl IndexCache {
    pub(crate) fn new(budget_bytes: u64) -> IndexCache {
        IndexCache {
            budget_bytes,
            entries: Mutex::new(Vec::new()),
            uses: AtomicU64::new(0),
        }
    }

    /// The index at `path`, from the cache when its file has not changed.
    pub(crate) fn load(&self, path: &Path) -> SeriesResult<Arc<SeriesIndex>> {
        let file_len = match std::fs::metadata(path) {
            Ok(metadata) => metadata.len(),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => 0,
            Err(source) => {
                return Err(SeriesError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let now = self.uses.fetch_add(1, Ordering::Relaxed);
        {
            let mut entries = self.lock();
            if let Some(entry) = entries
                .iter_mut()
                .find(|(cached, len, _, _)| cached == path && *len == file_len)
            {
                entry.3 = now;
                return Ok(Arc::clone(&entry.2));
            }
        }
        // Read outside the lock: other queries go on meanwhile.
        let index = Arc::new(SeriesIndex::load(path)?);
        let mut entries = self.lock();
        entries.retain(|(cached, _, _, _)| cached != path);
        entries.push((path.to_owned(), file_len, Arc::clone(&index), now));
        while entries.iter().map(|entry| entry.1).sum::<u64>() > self.budget_bytes {
            let Some(oldest) = (0..entries.len()).min_by_key(|&at| entries[at].3) else {
                break;
            };
            entries.swap_remove(oldest);
        }
        Ok(index)
    }

    /// Drops the index at `path` (its partition was deleted by retention).
    pub(crate) fn forget(&self, path: &Path) {
        self.lock().retain(|(cached, _, _, _)| cached != path);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<CachedIndex>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Entries of a seal that are not in the file yet.
pub(crate) struct PendingEntries {
    /// Where they go in the file.
    pub(crate) at: u64,
    pub(crate) bytes: Vec<u8>,
    /// The index's length once they are written.
    pub(crate) persisted_after: usize,
}

impl SeriesIndex {
    /// Reads the index at `path`; a missing file is an empty index.
    pub(crate) fn load(path: &Path) -> SeriesResult<SeriesIndex> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => {
                return Err(SeriesError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let mut index = SeriesIndex::default();
        let mut offset = 0;
        while let Some((id, labels, entry_len)) = decode_entry(&bytes[offset..]) {
            let expected = index.labels.len();
            if (id as usize) < expected {
                // Written again by a retried seal.
            } else if id as usize == expected && !index.by_labels.contains_key(&labels) {
                index.insert(labels);
            } else {
                break;
            }
            offset += entry_len;
        }
        if offset < bytes.len() {
            tracing::warn!(path = %path.display(), good_bytes = offset, file_bytes = bytes.len(), "series index has a torn or corrupt tail, ignoring it");
        }
        index.persisted = index.labels.len();
        index.file_len = offset as u64;
        Ok(index)
    }

    /// The id of `labels`, when known.
    pub(crate) fn get(&self, labels: &Labels) -> Option<u32> {
        self.by_labels.get(labels).copied()
    }

    /// Adds `labels` (not known yet) and returns its new id.
    pub(crate) fn insert(&mut self, labels: Labels) -> u32 {
        debug_assert!(!self.by_labels.contains_key(&labels));
        let id = u32::try_from(self.labels.len()).expect("fewer than 2^32 series per partition");
        let labels = Arc::new(labels);
        self.by_labels.insert(Arc::clone(&labels), id);
        self.labels.push(labels);
        id
    }

    /// The number of series.
    pub(crate) fn len(&self) -> usize {
        self.labels.len()
    }

    /// The labels of series `id`, when known.
    pub(crate) fn labels_of(&self, id: u32) -> Option<&Arc<Labels>> {
        self.labels.get(id as usize)
    }

    /// Every series: (id, labels).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &Arc<Labels>)> {
        (0..).zip(self.labels.iter())
    }

    /// The entries not yet in the file, encoded; `None` when there are none.
    pub(crate) fn pending(&self) -> Option<PendingEntries> {
        if self.persisted == self.labels.len() {
            return None;
        }
        let mut bytes = Vec::new();
        for (id, labels) in self.iter().skip(self.persisted) {
            encode_entry(&mut bytes, id, labels);
        }
        Some(PendingEntries {
            at: self.file_len,
            bytes,
            persisted_after: self.labels.len(),
        })
    }

    /// Records that `entries` are durable.
    pub(crate) fn mark_persisted(&mut self, entries: &PendingEntries) {
        debug_assert_eq!(entries.at, self.file_len);
        self.persisted = entries.persisted_after;
        self.file_len = entries.at + entries.bytes.len() as u64;
    }
}

/// Writes `entries` into the index file at `path` (cutting whatever lies past their start: a
/// torn tail or a failed earlier attempt) and fsyncs it.
pub(crate) fn write_pending(path: &Path, entries: &PendingEntries) -> SeriesResult<()> {
    let io_error = |source| SeriesError::Write {
        path: path.to_owned(),
        source,
    };
    let file: File = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io_error)?;
    file.set_len(entries.at).map_err(io_error)?;
    file.write_all_at(&entries.bytes, entries.at)
        .map_err(io_error)?;
    file.sync_all().map_err(io_error)
}

fn encode_entry(buffer: &mut Vec<u8>, id: u32, labels: &Labels) {
    let start = buffer.len();
    buffer.extend_from_slice(&[0; ENTRY_HEADER_BYTES]);
    buffer.extend_from_slice(&id.to_le_bytes());
    let count = u16::try_from(labels.len()).expect("validated: fewer than 2^16 labels");
    buffer.extend_from_slice(&count.to_le_bytes());
    for (name, value) in labels {
        let name_len = u16::try_from(name.len()).expect("validated: label names are short");
        buffer.extend_from_slice(&name_len.to_le_bytes());
        buffer.extend_from_slice(name.as_bytes());
        let value_len = u32::try_from(value.len()).expect("label values are below 4 GiB");
        buffer.extend_from_slice(&value_len.to_le_bytes());
        buffer.extend_from_slice(value.as_bytes());
    }
    let payload = &buffer[start + ENTRY_HEADER_BYTES..];
    let payload_len = u32::try_from(payload.len()).expect("an entry is below 4 GiB");
    let checksum = crc32fast::hash(payload);
    buffer[start..start + 4].copy_from_slice(&payload_len.to_le_bytes());
    buffer[start + 4..start + 8].copy_from_slice(&checksum.to_le_bytes());
}

/// Decodes the entry at the start of `bytes`: (id, labels, entry length), or `None` when it is
/// torn or corrupt.
fn decode_entry(bytes: &[u8]) -> Option<(u32, Labels, usize)> {
    let header = bytes.get(..ENTRY_HEADER_BYTES)?;
    let payload_len = u32::from_le_bytes(header[..4].try_into().ok()?) as usize;
    let checksum = u32::from_le_bytes(header[4..8].try_into().ok()?);
    let payload = bytes.get(ENTRY_HEADER_BYTES..ENTRY_HEADER_BYTES + payload_len)?;
    if crc32fast::hash(payload) != checksum {
        return None;
    }
    let mut reader = Reader(payload);
    let id = u32::from_le_bytes(reader.take(4)?.try_into().ok()?);
    let count = u16::from_le_bytes(reader.take(2)?.try_into().ok()?);
    let mut labels = Vec::with_capacity(count.into());
    for _ in 0..count {
        let name_len = u16::from_le_bytes(reader.take(2)?.try_into().ok()?);
        let name = String::from_utf8(reader.take(name_len.into())?.to_vec()).ok()?;
        let value_len = u32::from_le_bytes(reader.take(4)?.try_into().ok()?);
        let value = String::from_utf8(reader.take(value_len as usize)?.to_vec()).ok()?;
        labels.push((name, value));
    }
    Some((id, labels, ENTRY_HEADER_BYTES + payload_len))
}

/// Reads a byte slice front to back.
pub(crate) struct Reader<'a>(pub(crate) &'a [u8]);

impl<'a> Reader<'a> {
    /// The next `len` bytes, or `None` when fewer are left.
    pub(crate) fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        if self.0.len() < len {
            return None;
        }
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        Some(head)
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    pub(crate) fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    pub(crate) fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    pub(crate) fn i64(&mut self) -> Option<i64> {
        Some(i64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(name: &str, worker: &str) -> Labels {
        vec![
            ("__name__".to_owned(), name.to_owned()),
            ("worker".to_owned(), worker.to_owned()),
        ]
    }

    #[test]
    fn entries_round_trip_and_torn_tail_is_cut() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join(INDEX_FILE);
        let mut index = SeriesIndex::default();
        index.insert(labels("up", "w-1"));
        index.insert(labels("up", "w-2"));
        let pending = index.pending().expect("two new entries");
        write_pending(&path, &pending)?;
        index.mark_persisted(&pending);
        assert!(index.pending().is_none());

        // A third entry torn in the middle.
        index.insert(labels("up", "w-3"));
        let pending = index.pending().expect("one new entry");
        let torn = PendingEntries {
            at: pending.at,
            bytes: pending.bytes[..pending.bytes.len() - 3].to_vec(),
            persisted_after: 0,
        };
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)?
            .write_all_at(&torn.bytes, torn.at)?;

        let mut reloaded = SeriesIndex::load(&path)?;
        assert_eq!(reloaded.len(), 2);
        assert_eq!(reloaded.get(&labels("up", "w-2")), Some(1));
        assert_eq!(reloaded.get(&labels("up", "w-3")), None);
        // The next write replaces the torn tail.
        let id = reloaded.insert(labels("up", "w-4"));
        let pending = reloaded.pending().expect("one new entry");
        write_pending(&path, &pending)?;
        let again = SeriesIndex::load(&path)?;
        assert_eq!(again.len(), 3);
        assert_eq!(again.get(&labels("up", "w-4")), Some(id));
        assert_eq!(std::fs::metadata(&path)?.len(), again.file_len);
        Ok(())
    }

    #[test]
    fn entry_written_twice_by_a_retried_seal_is_skipped() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join(INDEX_FILE);
        let mut index = SeriesIndex::default();
        index.insert(labels("up", "w-1"));
        let pending = index.pending().expect("one new entry");
        let mut twice = pending.bytes.clone();
        twice.extend_from_slice(&pending.bytes);
        std::fs::write(&path, &twice)?;
        let reloaded = SeriesIndex::load(&path)?;
        assert_eq!(reloaded.len(), 1);
        assert_eq!(reloaded.file_len, twice.len() as u64);
        Ok(())
    }

    #[test]
    fn the_cache_reuses_an_unchanged_index_rereads_a_grown_one_and_keeps_to_its_budget()
    -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let (first, second) = (dir.path().join("a.idx"), dir.path().join("b.idx"));
        let mut index = SeriesIndex::default();
        index.insert(labels("up", "w-1"));
        let pending = index.pending().expect("one new entry");
        write_pending(&first, &pending)?;
        write_pending(&second, &pending)?;
        index.mark_persisted(&pending);
        let one_file = std::fs::metadata(&first)?.len();

        let cache = IndexCache::new(one_file);
        let loaded = cache.load(&first)?;
        assert!(Arc::ptr_eq(&loaded, &cache.load(&first)?), "read once");
        // A late sample adds a series: the file grows and is read again.
        index.insert(labels("up", "w-2"));
        write_pending(&first, &index.pending().expect("one new entry"))?;
        let grown = cache.load(&first)?;
        assert_eq!(grown.len(), 2);
        // Room for one file only: reading the second evicts the first.
        cache.load(&second)?;
        assert_eq!(cache.lock().len(), 1);
        assert!(
            !Arc::ptr_eq(&grown, &cache.load(&first)?),
            "evicted, read again"
        );
        Ok(())
    }
}
