//! Batches waiting for the collector's ack, oldest first: on disk under `state_dir/spool`
//! (tail mode), or in memory (wrap mode). A batch leaves the queue only when acknowledged, so
//! what was sealed survives a collector outage, and on disk an agent restart too.
//!
//! The rule a reader must not miss: the queue is bounded (bytes on disk, batches in memory);
//! when it is full the shipper stops taking records, which pauses reading (backpressure).
//! A damaged spool file is reported and removed, never sent and never a crash loop: its data
//! is read again from the file, whose checkpoint had not moved past it.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use afterglow_proto::v1::PushRequest;
use prost::Message;

use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"AGSPOOL1";
const EXTENSION: &str = "batch";

/// Where each stream of a batch ends: (stream id, offset after its last record).
pub type StreamEnds = Vec<(u64, u64)>;

/// The queue of sealed, unacknowledged batches.
pub struct BatchQueue {
    storage: Storage,
    index: BTreeMap<u64, QueuedBatch>,
    total_bytes: u64,
    limit: Limit,
    next_number: u64,
}

enum Storage {
    Memory(HashMap<u64, PushRequest>),
    Disk(PathBuf),
}

enum Limit {
    Batches(usize),
    Bytes(u64),
}

struct QueuedBatch {
    bytes: u64,
    stream_ends: StreamEnds,
}

impl BatchQueue {
    /// A queue in memory holding at most `max_batches`.
    pub fn in_memory(max_batches: usize) -> BatchQueue {
        BatchQueue {
            storage: Storage::Memory(HashMap::new()),
            index: BTreeMap::new(),
            total_bytes: 0,
            limit: Limit::Batches(max_batches.max(1)),
            next_number: 1,
        }
    }

    /// The spool in `dir`, holding at most `max_bytes`; batches left by an earlier run are
    /// kept and sent first.
    pub fn on_disk(dir: &Path, max_bytes: u64) -> Result<BatchQueue> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Spool {
            path: dir.to_owned(),
            source,
        })?;
        let mut queue = BatchQueue {
            storage: Storage::Disk(dir.to_owned()),
            index: BTreeMap::new(),
            total_bytes: 0,
            limit: Limit::Bytes(max_bytes),
            next_number: 1,
        };
        let entries = std::fs::read_dir(dir).map_err(|source| Error::Spool {
            path: dir.to_owned(),
            source,
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            let number = path
                .file_stem()
                .and_then(|stem| stem.to_str())
                .and_then(|stem| stem.parse::<u64>().ok());
            match (number, path.extension().and_then(|ext| ext.to_str())) {
                (Some(number), Some(EXTENSION)) => match read_batch_file(&path) {
                    Ok((_, stream_ends)) => {
                        let bytes = entry.metadata().map(|metadata| metadata.len()).unwrap_or(0);
                        queue.total_bytes += bytes;
                        queue
                            .index
                            .insert(number, QueuedBatch { bytes, stream_ends });
                    }
                    Err(reason) => {
                        tracing::error!(path = %path.display(), %reason, "damaged spool file removed; its lines are read again from their files");
                        let _ = std::fs::remove_file(&path);
                    }
                },
                // A batch being written when the agent stopped: never acknowledged, never whole.
                _ => {
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        queue.next_number = queue.index.keys().next_back().map_or(1, |last| last + 1);
        if !queue.index.is_empty() {
            tracing::info!(
                batches = queue.index.len(),
                bytes = queue.total_bytes,
                "spooled batches from an earlier run will be sent first"
            );
        }
        Ok(queue)
    }

    /// Seals `request` as the next batch: gives it its number and stores it. On error the
    /// queue is unchanged and the caller may try again.
    pub fn push(&mut self, request: &mut PushRequest, stream_ends: &StreamEnds) -> Result<u64> {
        let number = self.next_number;
        request.batch_number = number;
        let bytes = match &mut self.storage {
            Storage::Memory(batches) => {
                batches.insert(number, request.clone());
                request.encoded_len() as u64
            }
            Storage::Disk(dir) => write_batch_file(dir, number, request, stream_ends)?,
        };
        let stream_ends = stream_ends.clone();
        self.next_number += 1;
        self.total_bytes += bytes;
        self.index
            .insert(number, QueuedBatch { bytes, stream_ends });
        Ok(number)
    }

    /// The batch `number`, to send.
    pub fn get(&self, number: u64) -> Result<PushRequest> {
        match &self.storage {
            Storage::Memory(batches) => batches
                .get(&number)
                .cloned()
                .ok_or(Error::SpoolMissing { number }),
            Storage::Disk(dir) => {
                let path = batch_path(dir, number);
                read_batch_file(&path)
                    .map(|(request, _)| request)
                    .map_err(|reason| Error::SpoolDamaged { path, reason })
            }
        }
    }

    /// Drops an acknowledged batch and returns where its streams end.
    pub fn remove(&mut self, number: u64) -> StreamEnds {
        let Some(batch) = self.index.remove(&number) else {
            return Vec::new();
        };
        self.total_bytes -= batch.bytes;
        match &mut self.storage {
            Storage::Memory(batches) => {
                batches.remove(&number);
            }
            Storage::Disk(dir) => {
                let path = batch_path(dir, number);
                if let Err(error) = std::fs::remove_file(&path) {
                    tracing::warn!(path = %path.display(), %error, "cannot remove acknowledged spool file");
                }
            }
        }
        batch.stream_ends
    }

    /// The oldest queued batch numbered `from` or later.
    pub fn next_from(&self, from: u64) -> Option<u64> {
        self.index.range(from..).next().map(|(number, _)| *number)
    }

    /// The oldest queued batch.
    pub fn first(&self) -> Option<u64> {
        self.index.keys().next().copied()
    }

    /// Tells whether the queue is at its bound: take no more records.
    pub fn is_full(&self) -> bool {
        match self.limit {
            Limit::Batches(max) => self.index.len() >= max,
            Limit::Bytes(max) => self.total_bytes >= max,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Bytes the queued batches take.
    pub fn bytes(&self) -> u64 {
        self.total_bytes
    }
}

fn batch_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:020}.{EXTENSION}"))
}

/// Writes a batch file atomically (temp file, rename): a crash leaves it whole or absent. Not
/// fsynced: it survives a crash of the agent, and after a crash of the machine the lines are
/// read again from their files (checkpoints only move on acknowledgement).
fn write_batch_file(
    dir: &Path,
    number: u64,
    request: &PushRequest,
    stream_ends: &StreamEnds,
) -> Result<u64> {
    let mut body = Vec::with_capacity(request.encoded_len() + 8 + stream_ends.len() * 16);
    body.extend_from_slice(&(stream_ends.len() as u64).to_le_bytes());
    for (stream, end) in stream_ends {
        body.extend_from_slice(&stream.to_le_bytes());
        body.extend_from_slice(&end.to_le_bytes());
    }
    request.encode(&mut body).expect("a Vec grows as needed");
    let checksum = xxhash_rust::xxh3::xxh3_64(&body);
    let path = batch_path(dir, number);
    let temp = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let mut file = File::create(&temp)?;
        file.write_all(MAGIC)?;
        file.write_all(&checksum.to_le_bytes())?;
        file.write_all(&body)?;
        drop(file);
        std::fs::rename(&temp, &path)
    };
    write().map_err(|source| Error::Spool {
        path: path.clone(),
        source,
    })?;
    Ok((MAGIC.len() + 8 + body.len()) as u64)
}

fn read_batch_file(path: &Path) -> Result<(PushRequest, StreamEnds), String> {
    let bytes = std::fs::read(path).map_err(|error| error.to_string())?;
    let header = MAGIC.len() + 8;
    if bytes.len() < header + 8 || &bytes[..MAGIC.len()] != MAGIC {
        return Err("not a spool file".to_owned());
    }
    let checksum = u64::from_le_bytes(bytes[MAGIC.len()..header].try_into().expect("8 bytes"));
    let body = &bytes[header..];
    if xxhash_rust::xxh3::xxh3_64(body) != checksum {
        return Err("checksum mismatch".to_owned());
    }
    let count = u64::from_le_bytes(body[..8].try_into().expect("8 bytes")) as usize;
    let ends_len = count
        .checked_mul(16)
        .filter(|len| 8 + len <= body.len())
        .ok_or_else(|| "bad stream count".to_owned())?;
    let stream_ends = body[8..8 + ends_len]
        .chunks_exact(16)
        .map(|pair| {
            let stream = u64::from_le_bytes(pair[..8].try_into().expect("8 bytes"));
            let end = u64::from_le_bytes(pair[8..].try_into().expect("8 bytes"));
            (stream, end)
        })
        .collect();
    let request = PushRequest::decode(&body[8 + ends_len..]).map_err(|error| error.to_string())?;
    Ok((request, stream_ends))
}

#[cfg(test)]
mod tests {
    use afterglow_proto::v1::LogRecord;

    use super::*;

    fn push(queue: &mut BatchQueue, message: &str, stream_ends: StreamEnds) -> Result<u64> {
        queue.push(&mut request(message), &stream_ends)
    }

    fn request(message: &str) -> PushRequest {
        PushRequest {
            logs: vec![LogRecord {
                message: message.to_owned(),
                ..LogRecord::default()
            }],
            ..PushRequest::default()
        }
    }

    #[test]
    fn a_disk_spool_keeps_unacknowledged_batches_across_a_restart() -> Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let mut queue = BatchQueue::on_disk(dir.path(), 1 << 20)?;
            assert_eq!(push(&mut queue, "one", vec![(7, 10)])?, 1);
            assert_eq!(push(&mut queue, "two", vec![(7, 20)])?, 2);
            assert_eq!(push(&mut queue, "three", vec![(7, 30)])?, 3);
            assert_eq!(queue.remove(1), vec![(7, 10)]);
        }
        let mut queue = BatchQueue::on_disk(dir.path(), 1 << 20)?;
        assert_eq!((queue.first(), queue.len()), (Some(2), 2));
        let resent = queue.get(2)?;
        assert_eq!(
            (resent.batch_number, resent.logs[0].message.as_str()),
            (2, "two")
        );
        assert_eq!(queue.next_from(3), Some(3));
        assert_eq!(push(&mut queue, "four", Vec::new())?, 4, "numbers continue");
        assert_eq!(queue.remove(2), vec![(7, 20)]);
        Ok(())
    }

    #[test]
    fn a_damaged_spool_file_is_removed_not_sent() -> Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let mut queue = BatchQueue::on_disk(dir.path(), 1 << 20)?;
            push(&mut queue, "good", Vec::new())?;
            push(&mut queue, "torn", Vec::new())?;
        }
        let torn = batch_path(dir.path(), 2);
        let bytes = std::fs::read(&torn).expect("read");
        std::fs::write(&torn, &bytes[..bytes.len() - 3]).expect("truncate");
        std::fs::write(dir.path().join("00000000000000000003.tmp"), b"half").expect("write");
        let queue = BatchQueue::on_disk(dir.path(), 1 << 20)?;
        assert_eq!((queue.first(), queue.len()), (Some(1), 1));
        assert!(!torn.exists());
        assert!(!dir.path().join("00000000000000000003.tmp").exists());
        Ok(())
    }

    #[test]
    fn the_queue_is_full_at_its_bound() -> Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut disk = BatchQueue::on_disk(dir.path(), 100)?;
        assert!(!disk.is_full());
        push(&mut disk, &"x".repeat(200), Vec::new())?;
        assert!(disk.is_full());
        disk.remove(1);
        assert!(!disk.is_full() && disk.bytes() == 0);
        let mut memory = BatchQueue::in_memory(2);
        push(&mut memory, "a", Vec::new())?;
        push(&mut memory, "b", Vec::new())?;
        assert!(memory.is_full());
        assert_eq!(memory.get(2)?.logs[0].message, "b");
        Ok(())
    }
}
