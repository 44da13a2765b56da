//! Batches waiting for the collector's ack, oldest first: on disk under `state_dir/spool`
//! (tail mode), or in memory (wrap mode). A batch leaves the queue only when acknowledged, so
//! what was sealed survives a collector outage, and on disk an agent restart too.
//!
//! The rule a reader must not miss: the queue is bounded (bytes on disk, batches in memory);
//! when it is full the shipper stops taking records, which pauses reading (backpressure).
//! On disk, batches are appended to segment files, each record checksummed; a torn or damaged
//! tail is cut off and reported, never sent and never a crash loop: its lines are read again
//! from their files, whose checkpoints had not moved past them.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use afterglow_proto::v1::PushRequest;
use bytes::Bytes;
use prost::Message;

use crate::error::{Error, Result};

const EXTENSION: &str = "seg";
const ACKED_FILE: &str = "acked";
/// A segment is closed and a new one started past this size.
const SEGMENT_BYTES: u64 = 16 * 1024 * 1024;
/// Sealed batches not sent yet are also kept in memory up to this size, so that sending does
/// not read back what was just written.
const CACHE_BYTES: u64 = 512 * 1024;
/// Record header: body length (u32), checksum (u64), batch number (u64).
const HEADER_BYTES: usize = 4 + 8 + 8;

/// Where each stream of a batch ends: (stream id, offset after its last record).
pub type StreamEnds = Vec<(u64, u64)>;

/// A full batch ready to be queued: its `PushRequest` encoded without the batch number, which
/// the queue appends (a protobuf field may come last).
#[derive(Debug)]
pub struct SealedBatch {
    pub encoded: Vec<u8>,
    pub records: usize,
    pub stream_ends: StreamEnds,
}

/// The queue of sealed, unacknowledged batches.
pub struct BatchQueue {
    disk: Option<DiskSpool>,
    /// Encoded batches in memory: all of them without a disk, the unsent recent ones with one.
    cache: HashMap<u64, Bytes>,
    cache_bytes: u64,
    index: BTreeMap<u64, QueuedBatch>,
    total_bytes: u64,
    limit: Limit,
    next_number: u64,
}

enum Limit {
    Batches(usize),
    Bytes(u64),
}

struct QueuedBatch {
    bytes: u64,
    records: usize,
    stream_ends: StreamEnds,
    /// Segment id and the record's offset and length in it.
    location: Option<(u64, u64, u32)>,
}

struct DiskSpool {
    dir: PathBuf,
    /// Holds the highest batch number acknowledged (batches are acknowledged in order), so
    /// that records still in a segment file are not sent again after a restart.
    acked_file: File,
    acked_through: u64,
    /// The segment being appended to: id, file, size.
    active: Option<(u64, File, u64)>,
    /// Unacknowledged batches per segment.
    live: BTreeMap<u64, usize>,
}

impl BatchQueue {
    /// A queue in memory holding at most `max_batches`.
    pub fn in_memory(max_batches: usize) -> BatchQueue {
        BatchQueue {
            disk: None,
            cache: HashMap::new(),
            cache_bytes: 0,
            index: BTreeMap::new(),
            total_bytes: 0,
            limit: Limit::Batches(max_batches.max(1)),
            next_number: 1,
        }
    }

    /// The spool in `dir`, holding at most `max_bytes`; batches left by an earlier run are
    /// kept and sent first.
    pub fn on_disk(dir: &Path, max_bytes: u64) -> Result<BatchQueue> {
        let spool_error = |source| Error::Spool {
            path: dir.to_owned(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(spool_error)?;
        let acked_file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(ACKED_FILE))
            .map_err(spool_error)?;
        let mut acked_bytes = [0u8; 8];
        let acked_through = match acked_file.read_exact_at(&mut acked_bytes, 0) {
            Ok(()) => u64::from_le_bytes(acked_bytes),
            Err(_) => 0,
        };
        let mut queue = BatchQueue {
            disk: Some(DiskSpool {
                dir: dir.to_owned(),
                acked_file,
                acked_through,
                active: None,
                live: BTreeMap::new(),
            }),
            cache: HashMap::new(),
            cache_bytes: 0,
            index: BTreeMap::new(),
            total_bytes: 0,
            limit: Limit::Bytes(max_bytes),
            next_number: 1,
        };
        let mut segments: Vec<(u64, PathBuf)> = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(spool_error)?.flatten() {
            let path = entry.path();
            let id = path
                .file_stem()
                .and_then(|stem| stem.to_str())
                .and_then(|stem| stem.parse::<u64>().ok());
            match (id, path.extension().and_then(|ext| ext.to_str())) {
                (Some(id), Some(EXTENSION)) => segments.push((id, path)),
                _ if path.file_name().is_some_and(|name| name == ACKED_FILE) => {}
                // Anything else is not ours to keep (a spool of an older format).
                _ => {
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        segments.sort();
        for (id, path) in segments {
            queue.load_segment(id, &path);
        }
        let acked_through = queue.disk.as_ref().map_or(0, |disk| disk.acked_through);
        queue.next_number = queue
            .index
            .keys()
            .next_back()
            .map_or(acked_through, |last| (*last).max(acked_through))
            + 1;
        if !queue.index.is_empty() {
            tracing::info!(
                batches = queue.index.len(),
                bytes = queue.total_bytes,
                "spooled batches from an earlier run will be sent first"
            );
        }
        Ok(queue)
    }

    /// Indexes the records of one segment, cutting off a torn or damaged tail.
    fn load_segment(&mut self, id: u64, path: &Path) {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::error!(path = %path.display(), %error, "cannot read spool segment; removing it");
                let _ = std::fs::remove_file(path);
                return;
            }
        };
        let acked_through = self.disk.as_ref().map_or(0, |disk| disk.acked_through);
        let mut offset = 0usize;
        let mut live = 0;
        while offset < bytes.len() {
            match parse_record(&bytes[offset..]) {
                Ok((number, _, record_len)) if number <= acked_through => offset += record_len,
                // Numbers only grow: a second record of one batch is damage, and keeping both
                // would count its bytes twice for one `remove` (found by `scripts/fuzz
                // spool_decode`: the queue never emptied and its segment was never deleted).
                Ok((number, _, _)) if self.index.contains_key(&number) => {
                    self.cut_tail(path, offset, &format!("batch {number} is spooled twice"));
                    break;
                }
                Ok((number, body, record_len)) => match decode_body(body) {
                    Ok((request, stream_ends)) => {
                        let location = Some((id, offset as u64, record_len as u32));
                        self.total_bytes += record_len as u64;
                        self.index.insert(
                            number,
                            QueuedBatch {
                                bytes: record_len as u64,
                                records: request.logs.len(),
                                stream_ends,
                                location,
                            },
                        );
                        live += 1;
                        offset += record_len;
                    }
                    Err(reason) => {
                        self.cut_tail(path, offset, &reason);
                        break;
                    }
                },
                Err(reason) => {
                    self.cut_tail(path, offset, &reason);
                    break;
                }
            }
        }
        let disk = self.disk.as_mut().expect("loading a disk spool");
        if live == 0 {
            let _ = std::fs::remove_file(path);
        } else {
            disk.live.insert(id, live);
        }
    }

    fn cut_tail(&self, path: &Path, good_len: usize, reason: &str) {
        tracing::error!(path = %path.display(), good_bytes = good_len, %reason, "spool segment has a damaged tail; cutting it off (its lines are read again from their files)");
        if let Ok(file) = OpenOptions::new().write(true).open(path) {
            let _ = file.set_len(good_len as u64);
        }
    }

    /// Queues `batch` as the next batch: gives it its number and stores it. On error the
    /// queue is unchanged and the caller may try again.
    pub fn push(&mut self, batch: &SealedBatch) -> Result<u64> {
        let number = self.next_number;
        let (bytes, location, encoded) = match &mut self.disk {
            None => {
                let mut encoded = Vec::with_capacity(batch.encoded.len() + 11);
                encoded.extend_from_slice(&batch.encoded);
                append_batch_number(number, &mut encoded);
                (encoded.len() as u64, None, Bytes::from(encoded))
            }
            Some(disk) => {
                let (record, request_start) = encode_record(number, batch);
                let location = disk.append(&record)?;
                let bytes = record.len() as u64;
                (
                    bytes,
                    Some(location),
                    Bytes::from(record).slice(request_start..),
                )
            }
        };
        if self.disk.is_none() || self.cache_bytes + bytes <= CACHE_BYTES {
            self.cache.insert(number, encoded);
            self.cache_bytes += bytes;
        }
        self.next_number += 1;
        self.total_bytes += bytes;
        self.index.insert(
            number,
            QueuedBatch {
                bytes,
                records: batch.records,
                stream_ends: batch.stream_ends.clone(),
                location,
            },
        );
        Ok(number)
    }

    /// The encoded batch `number` and its record count, to send. On disk, a batch is read
    /// back only when it is no longer in memory (sent before a reconnect, or spooled by an
    /// earlier run).
    pub fn get(&mut self, number: u64) -> Result<(Bytes, usize)> {
        let batch = self
            .index
            .get(&number)
            .ok_or(Error::SpoolMissing { number })?;
        let records = batch.records;
        let Some(disk) = &self.disk else {
            return self
                .cache
                .get(&number)
                .map(|encoded| (encoded.clone(), records))
                .ok_or(Error::SpoolMissing { number });
        };
        if let Some(encoded) = self.cache.remove(&number) {
            self.cache_bytes -= batch.bytes;
            return Ok((encoded, records));
        }
        let (segment, offset, len) = batch.location.ok_or(Error::SpoolMissing { number })?;
        let path = disk.segment_path(segment);
        let damaged = |reason: String| Error::SpoolDamaged {
            path: path.clone(),
            reason,
        };
        // Read into spare capacity: a zeroed buffer would cost a pass over every batch.
        let mut record = Vec::with_capacity(len as usize);
        File::open(&path)
            .and_then(|mut file| {
                file.seek(SeekFrom::Start(offset))?;
                file.take(u64::from(len)).read_to_end(&mut record)
            })
            .map_err(|error| damaged(error.to_string()))?;
        let (_, body, _) = parse_record(&record).map_err(damaged)?;
        let request_start = HEADER_BYTES + body.len() - request_bytes(body).map_err(damaged)?;
        Ok((Bytes::from(record).slice(request_start..), records))
    }

    /// Drops an acknowledged batch and returns where its streams end.
    pub fn remove(&mut self, number: u64) -> StreamEnds {
        let Some(batch) = self.index.remove(&number) else {
            return Vec::new();
        };
        self.total_bytes -= batch.bytes;
        if self.cache.remove(&number).is_some() {
            self.cache_bytes -= batch.bytes;
        }
        if let (Some(disk), Some((segment, _, _))) = (&mut self.disk, batch.location) {
            disk.record_ack(number);
            disk.release(segment);
        }
        batch.stream_ends
    }

    /// The oldest queued batch numbered `from` or later.
    pub fn next_from(&self, from: u64) -> Option<u64> {
        self.index.range(from..).next().map(|(number, _)| *number)
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

impl DiskSpool {
    fn segment_path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id:020}.{EXTENSION}"))
    }

    /// Appends one record to the active segment, starting a new one when it is full.
    /// Not fsynced: it survives a crash of the agent, and after a crash of the machine the
    /// lines are read again from their files (checkpoints only move on acknowledgement).
    fn append(&mut self, record: &[u8]) -> Result<(u64, u64, u32)> {
        let needs_new = self
            .active
            .as_ref()
            .is_none_or(|(_, _, size)| *size >= SEGMENT_BYTES);
        if needs_new {
            self.close_active();
            let id = self.live.keys().next_back().map_or(1, |last| last + 1);
            let path = self.segment_path(id);
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|source| Error::Spool { path, source })?;
            self.live.insert(id, 0);
            self.active = Some((id, file, 0));
        }
        let (id, file, size) = self.active.as_mut().expect("opened above");
        let offset = *size;
        if let Err(source) = file.write_all(record) {
            // A partial record would be cut off at the next start; stop using this segment.
            let id = *id;
            self.active = None;
            return Err(Error::Spool {
                path: self.segment_path(id),
                source,
            });
        }
        *size += record.len() as u64;
        *self.live.get_mut(id).expect("active segment is live") += 1;
        Ok((*id, offset, record.len() as u32))
    }

    /// Remembers that every batch through `number` is acknowledged. Not fsynced: after a
    /// crash of the machine, acknowledged batches may be sent again, which the collector
    /// drops as duplicates.
    fn record_ack(&mut self, number: u64) {
        if number > self.acked_through {
            self.acked_through = number;
            if let Err(error) = self.acked_file.write_all_at(&number.to_le_bytes(), 0) {
                tracing::warn!(%error, "cannot record acknowledged spool batches");
            }
        }
    }

    /// One batch of `segment` is acknowledged; a segment with none left is deleted.
    fn release(&mut self, segment: u64) {
        let Some(live) = self.live.get_mut(&segment) else {
            return;
        };
        *live = live.saturating_sub(1);
        let active = self
            .active
            .as_ref()
            .is_some_and(|(id, _, _)| *id == segment);
        if *live == 0 && !active {
            self.live.remove(&segment);
            let path = self.segment_path(segment);
            if let Err(error) = std::fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), %error, "cannot remove acknowledged spool segment");
            }
        }
    }

    /// Stops appending to the active segment; deletes it if everything in it is acked.
    fn close_active(&mut self) {
        if let Some((id, _, _)) = self.active.take()
            && self.live.get(&id) == Some(&0)
        {
            self.live.remove(&id);
            let _ = std::fs::remove_file(self.segment_path(id));
        }
    }
}

/// `[len u32][xxh3 of body u64][batch number u64][body]`, body = stream ends + request.
/// Returns the record and where the encoded request starts in it.
fn encode_record(number: u64, batch: &SealedBatch) -> (Vec<u8>, usize) {
    let body_len = 8 + batch.stream_ends.len() * 16 + batch.encoded.len() + 11;
    let mut record = Vec::with_capacity(HEADER_BYTES + body_len);
    record.extend_from_slice(&[0; HEADER_BYTES]);
    record.extend_from_slice(&(batch.stream_ends.len() as u64).to_le_bytes());
    for (stream, end) in &batch.stream_ends {
        record.extend_from_slice(&stream.to_le_bytes());
        record.extend_from_slice(&end.to_le_bytes());
    }
    let request_start = record.len();
    record.extend_from_slice(&batch.encoded);
    append_batch_number(number, &mut record);
    let body = &record[HEADER_BYTES..];
    let header = [
        &(body.len() as u32).to_le_bytes()[..],
        &xxhash_rust::xxh3::xxh3_64(body).to_le_bytes(),
        &number.to_le_bytes(),
    ]
    .concat();
    record[..HEADER_BYTES].copy_from_slice(&header);
    (record, request_start)
}

/// Appends field 1 of `PushRequest`, the batch number.
fn append_batch_number(number: u64, encoded: &mut Vec<u8>) {
    prost::encoding::uint64::encode(1, &number, encoded);
}

/// Splits one record off the front of `bytes`: (batch number, body, record length).
fn parse_record(bytes: &[u8]) -> Result<(u64, &[u8], usize), String> {
    if bytes.len() < HEADER_BYTES {
        return Err("torn record header".to_owned());
    }
    let len = u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes")) as usize;
    let checksum = u64::from_le_bytes(bytes[4..12].try_into().expect("8 bytes"));
    let number = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
    let body = bytes
        .get(HEADER_BYTES..HEADER_BYTES + len)
        .ok_or("torn record body")?;
    if xxhash_rust::xxh3::xxh3_64(body) != checksum {
        return Err("checksum mismatch".to_owned());
    }
    Ok((number, body, HEADER_BYTES + len))
}

/// The length of the encoded request at the end of a record body.
fn request_bytes(body: &[u8]) -> Result<usize, String> {
    let count_bytes = body.get(..8).ok_or("short body")?;
    let count = u64::from_le_bytes(count_bytes.try_into().expect("8 bytes")) as usize;
    count
        .checked_mul(16)
        .and_then(|len| body.len().checked_sub(8 + len))
        .ok_or_else(|| "bad stream count".to_owned())
}

fn decode_body(body: &[u8]) -> Result<(PushRequest, StreamEnds), String> {
    let count_bytes = body.get(..8).ok_or("short body")?;
    let count = u64::from_le_bytes(count_bytes.try_into().expect("8 bytes")) as usize;
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
        let request = PushRequest {
            logs: vec![LogRecord {
                message: message.to_owned(),
                ..LogRecord::default()
            }],
            ..PushRequest::default()
        };
        queue.push(&SealedBatch {
            encoded: request.encode_to_vec(),
            records: 1,
            stream_ends,
        })
    }

    /// Batch `number` as it would be sent.
    fn get(queue: &mut BatchQueue, number: u64) -> Result<PushRequest> {
        let (encoded, records) = queue.get(number)?;
        let request = PushRequest::decode(encoded).expect("a whole PushRequest");
        assert_eq!(request.logs.len(), records);
        Ok(request)
    }

    fn segment_files(dir: &Path) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .expect("list")
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == EXTENSION))
            .collect();
        files.sort();
        files
    }

    #[test]
    fn a_disk_spool_keeps_unacknowledged_batches_across_a_restart() -> Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let mut queue = BatchQueue::on_disk(dir.path(), 1 << 20)?;
            assert_eq!(push(&mut queue, "one", vec![(7, 10)])?, 1);
            assert_eq!(push(&mut queue, "two", vec![(7, 20)])?, 2);
            assert_eq!(push(&mut queue, "three", vec![(7, 30)])?, 3);
            assert_eq!(get(&mut queue, 1)?.logs[0].message, "one", "from memory");
            assert_eq!(queue.remove(1), vec![(7, 10)]);
        }
        let mut queue = BatchQueue::on_disk(dir.path(), 1 << 20)?;
        assert_eq!((queue.next_from(0), queue.len()), (Some(2), 2));
        let resent = get(&mut queue, 2)?;
        assert_eq!(
            (resent.batch_number, resent.logs[0].message.as_str()),
            (2, "two"),
            "read back from disk"
        );
        assert_eq!(queue.next_from(3), Some(3));
        assert_eq!(push(&mut queue, "four", Vec::new())?, 4, "numbers continue");
        assert_eq!(queue.remove(2), vec![(7, 20)]);
        Ok(())
    }

    /// Found by `scripts/fuzz spool_decode`: a segment holding batch 1 twice loaded both
    /// records under one number, so acknowledging it left the second record's bytes counted
    /// for ever (the queue never emptied) and the segment was never deleted.
    #[test]
    fn fuzz_a_batch_spooled_twice_is_cut_off_not_counted_twice() -> Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        let batch = SealedBatch {
            encoded: PushRequest::default().encode_to_vec(),
            records: 0,
            stream_ends: Vec::new(),
        };
        let (record, _) = encode_record(1, &batch);
        let segment = dir.path().join("00000000000000000001.seg");
        std::fs::write(&segment, [record.as_slice(), record.as_slice()].concat()).expect("write");
        let mut queue = BatchQueue::on_disk(dir.path(), 1 << 20)?;
        assert_eq!((queue.len(), queue.bytes()), (1, record.len() as u64));
        let length = std::fs::metadata(&segment).expect("stat").len();
        assert_eq!(length, record.len() as u64, "the duplicate is cut off");
        queue.get(1)?;
        queue.remove(1);
        assert_eq!((queue.is_empty(), queue.bytes()), (true, 0));
        assert!(
            segment_files(dir.path()).is_empty(),
            "the segment is deleted"
        );
        Ok(())
    }

    #[test]
    fn a_torn_segment_tail_is_cut_off_not_sent() -> Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let mut queue = BatchQueue::on_disk(dir.path(), 1 << 20)?;
            push(&mut queue, "good", Vec::new())?;
            push(&mut queue, "torn", Vec::new())?;
        }
        let segment = segment_files(dir.path()).pop().expect("a segment");
        let length = std::fs::metadata(&segment).expect("stat").len();
        OpenOptions::new()
            .write(true)
            .open(&segment)
            .expect("open")
            .set_len(length - 3)
            .expect("truncate");
        std::fs::write(dir.path().join("00000000000000000007.batch"), b"old format")
            .expect("write");
        let mut queue = BatchQueue::on_disk(dir.path(), 1 << 20)?;
        assert_eq!((queue.next_from(0), queue.len()), (Some(1), 1));
        assert_eq!(get(&mut queue, 1)?.logs[0].message, "good");
        assert_eq!(
            segment_files(dir.path()),
            [segment],
            "only the segment is left"
        );
        assert_eq!(push(&mut queue, "after", Vec::new())?, 2);
        Ok(())
    }

    #[test]
    fn acknowledged_segments_are_deleted() -> Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut queue = BatchQueue::on_disk(dir.path(), 1 << 30)?;
        let big = "x".repeat(1 << 20);
        let numbers: Vec<u64> = (0..40)
            .map(|_| push(&mut queue, &big, Vec::new()))
            .collect::<Result<_>>()?;
        assert!(segment_files(dir.path()).len() >= 2, "segments rotate");
        for number in numbers {
            queue.remove(number);
        }
        assert!(
            segment_files(dir.path()).len() <= 1,
            "only the active segment may remain"
        );
        assert_eq!(queue.bytes(), 0);
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
        assert_eq!(get(&mut memory, 2)?.logs[0].message, "b");
        assert_eq!(
            get(&mut memory, 2)?.logs[0].message,
            "b",
            "memory keeps it for resends"
        );
        Ok(())
    }
}
