//! The WAL's files: segment names, the frame format, reading frames back, and cutting a torn
//! or corrupt tail at the last good frame.
//!
//! A segment is `NNNNNNNNNNNNNNNNNNNN.wal` (its number, 20 digits) and holds an 8-byte magic
//! then frames. A frame is `payload length: u32 LE`, `CRC-32 of the payload: u32 LE`, then the
//! payload: `tenant length: u16 LE`, the tenant, and the batch as the agent sent it (protobuf
//! `PushRequest`).

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use afterglow_proto::v1::PushRequest;
use prost::Message;

use crate::error::{Error, Result};

/// The first bytes of every segment; version 1 of the format.
pub(crate) const MAGIC: &[u8; 8] = b"AGWAL01\n";
/// A frame header: payload length and checksum.
const FRAME_HEADER_BYTES: usize = 8;
/// No real batch is larger (the gRPC limit is 64 MiB); a larger length is corruption.
const MAX_PAYLOAD_BYTES: u32 = 256 * 1024 * 1024;

/// Where a frame ends: the WAL is read and released in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct WalPosition {
    pub segment: u64,
    pub offset: u64,
}

/// One batch read back from the WAL.
#[derive(Debug)]
pub struct Frame {
    /// Where the frame ends.
    pub end: WalPosition,
    pub tenant: String,
    pub batch: PushRequest,
}

/// The file name of segment `number`.
pub(crate) fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:020}.wal"))
}

/// The numbers of the segments in `dir`, oldest first.
pub(crate) fn segment_numbers(dir: &Path) -> Result<Vec<u64>> {
    let entries = std::fs::read_dir(dir).map_err(|source| Error::ReadDir {
        path: dir.to_owned(),
        source,
    })?;
    let mut numbers: Vec<u64> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            name.to_str()?.strip_suffix(".wal")?.parse().ok()
        })
        .collect();
    numbers.sort_unstable();
    Ok(numbers)
}

/// Appends one frame holding `tenant` and `batch` (already encoded) to `buffer`.
pub(crate) fn encode_frame(buffer: &mut Vec<u8>, tenant: &str, batch: &[u8]) {
    let tenant_len = u16::try_from(tenant.len()).expect("tenant names are short");
    let payload_len = 2 + tenant.len() + batch.len();
    let payload_start = buffer.len() + FRAME_HEADER_BYTES;
    buffer.extend_from_slice(
        &u32::try_from(payload_len)
            .expect("batches are below 4 GiB")
            .to_le_bytes(),
    );
    buffer.extend_from_slice(&[0; 4]);
    buffer.extend_from_slice(&tenant_len.to_le_bytes());
    buffer.extend_from_slice(tenant.as_bytes());
    buffer.extend_from_slice(batch);
    let checksum = crc32fast::hash(&buffer[payload_start..]);
    buffer[payload_start - 4..payload_start].copy_from_slice(&checksum.to_le_bytes());
}

/// Why reading a segment stopped before its end.
#[derive(Debug)]
pub(crate) enum Damage {
    /// Fewer bytes than a frame header or its payload: a write cut short.
    Short,
    /// The checksum does not match, or the length is impossible.
    Corrupt(&'static str),
    /// The checksum matches but the payload does not decode.
    Undecodable(String),
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Damage::Short => f.write_str("a frame cut short"),
            Damage::Corrupt(what) => f.write_str(what),
            Damage::Undecodable(error) => write!(f, "a frame that does not decode: {error}"),
        }
    }
}

/// Reads the frames of one segment in order.
pub(crate) struct SegmentReader {
    number: u64,
    file: BufReader<File>,
    offset: u64,
    payload: Vec<u8>,
}

impl SegmentReader {
    /// Opens segment `number`; `Ok(None)` when it does not start with the magic (a segment
    /// created but never written).
    pub(crate) fn open(dir: &Path, number: u64) -> Result<Option<SegmentReader>> {
        let path = segment_path(dir, number);
        let io_error = |source| Error::Wal {
            path: path.clone(),
            source,
        };
        let mut file = BufReader::with_capacity(1 << 20, File::open(&path).map_err(io_error)?);
        let mut magic = [0; MAGIC.len()];
        match file.read_exact(&mut magic) {
            Ok(()) if &magic == MAGIC => {}
            Ok(()) | Err(_) => return Ok(None),
        }
        Ok(Some(SegmentReader {
            number,
            file,
            offset: MAGIC.len() as u64,
            payload: Vec::new(),
        }))
    }

    /// Where the last good frame read so far ends.
    pub(crate) fn position(&self) -> WalPosition {
        WalPosition {
            segment: self.number,
            offset: self.offset,
        }
    }

    /// Skips to `offset`, the end of a frame read earlier.
    pub(crate) fn seek(&mut self, offset: u64) -> std::io::Result<()> {
        self.file.seek(SeekFrom::Start(offset))?;
        self.offset = offset;
        Ok(())
    }

    /// The next frame; `Ok(None)` at a clean end; `Err(damage)` where the segment stops being
    /// readable (the position stays at the last good frame).
    pub(crate) fn next_frame(&mut self) -> Result<Option<Frame>, Damage> {
        let mut header = [0; FRAME_HEADER_BYTES];
        match read_full(&mut self.file, &mut header) {
            0 => return Ok(None),
            FRAME_HEADER_BYTES => {}
            _ => return Err(Damage::Short),
        }
        let [l0, l1, l2, l3, c0, c1, c2, c3] = header;
        let length = u32::from_le_bytes([l0, l1, l2, l3]);
        let checksum = u32::from_le_bytes([c0, c1, c2, c3]);
        if !(2..=MAX_PAYLOAD_BYTES).contains(&length) {
            return Err(Damage::Corrupt("an impossible frame length"));
        }
        // Only what the file holds is read: a length cut short by a crash (or corrupt) must not
        // allocate the 256 MiB a frame may claim (found by `scripts/fuzz wal_segment`).
        self.payload.clear();
        let read = (&mut self.file)
            .take(u64::from(length))
            .read_to_end(&mut self.payload);
        if !matches!(read, Ok(bytes) if bytes == self.payload.len() && bytes == length as usize) {
            return Err(Damage::Short);
        }
        if crc32fast::hash(&self.payload) != checksum {
            return Err(Damage::Corrupt("a checksum mismatch"));
        }
        let frame = decode_payload(&self.payload).map_err(Damage::Undecodable)?;
        self.offset += (FRAME_HEADER_BYTES + self.payload.len()) as u64;
        Ok(Some(Frame {
            end: self.position(),
            tenant: frame.0,
            batch: frame.1,
        }))
    }
}

/// Reads until `buffer` is full or the file ends; returns the bytes read.
fn read_full(file: &mut impl Read, buffer: &mut [u8]) -> usize {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    filled
}

fn decode_payload(payload: &[u8]) -> Result<(String, PushRequest), String> {
    let (tenant_len, rest) = payload.split_at(2);
    let tenant_len = usize::from(u16::from_le_bytes([tenant_len[0], tenant_len[1]]));
    if rest.len() < tenant_len {
        return Err("the tenant is longer than the frame".to_owned());
    }
    let (tenant, batch) = rest.split_at(tenant_len);
    let tenant = std::str::from_utf8(tenant)
        .map_err(|error| format!("the tenant is not UTF-8: {error}"))?
        .to_owned();
    let batch = PushRequest::decode(batch).map_err(|error| error.to_string())?;
    Ok((tenant, batch))
}

/// What checking the WAL at start-up found.
#[derive(Debug)]
pub struct Recovered {
    /// Where the last good frame ends; `None` when the WAL holds no frame.
    pub end: Option<WalPosition>,
    /// The number the next segment written gets.
    pub next_segment: u64,
}

/// Checks every segment in `dir` (creating it if needed): a segment whose frames stop being
/// readable before its end is cut at its last good frame, with a warning saying how much was
/// cut and why; a segment without even the magic is deleted. Never fails on bad content.
pub fn recover(dir: &Path) -> Result<Recovered> {
    std::fs::create_dir_all(dir).map_err(|source| Error::CreateDir {
        path: dir.to_owned(),
        source,
    })?;
    let numbers = segment_numbers(dir)?;
    let mut end = None;
    for &number in &numbers {
        let path = segment_path(dir, number);
        let wal_error = |source| Error::Wal {
            path: path.clone(),
            source,
        };
        let Some(mut reader) = SegmentReader::open(dir, number)? else {
            tracing::warn!(segment = %path.display(), "deleting a WAL segment without a header (created, never written)");
            std::fs::remove_file(&path).map_err(wal_error)?;
            continue;
        };
        let damage = loop {
            match reader.next_frame() {
                Ok(Some(frame)) => end = Some(frame.end),
                Ok(None) => break None,
                Err(damage) => break Some(damage),
            }
        };
        if let Some(damage) = damage {
            let good = reader.position().offset;
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(wal_error)?;
            let length = file.metadata().map_err(wal_error)?.len();
            file.set_len(good).map_err(wal_error)?;
            file.sync_all().map_err(wal_error)?;
            tracing::warn!(
                segment = %path.display(),
                kept_bytes = good,
                cut_bytes = length - good,
                "the WAL segment ends in {damage}; cut at the last good frame (those bytes were never acked when the tail was torn by a crash)"
            );
        }
    }
    Ok(Recovered {
        end,
        next_segment: numbers.last().map_or(1, |last| last + 1),
    })
}

/// Calls `each` for every frame after `after` (from the start when `None`) up to and
/// including the one ending at `through`, in order.
pub fn read_range(
    dir: &Path,
    after: Option<WalPosition>,
    through: WalPosition,
    mut each: impl FnMut(Frame),
) -> Result<()> {
    for number in segment_numbers(dir)? {
        if number > through.segment || after.is_some_and(|after| number < after.segment) {
            continue;
        }
        let Some(mut reader) = SegmentReader::open(dir, number)? else {
            continue;
        };
        if let Some(after) = after.filter(|after| after.segment == number) {
            reader.seek(after.offset).map_err(|source| Error::Wal {
                path: segment_path(dir, number),
                source,
            })?;
        }
        loop {
            match reader.next_frame() {
                Ok(Some(frame)) if frame.end <= through => each(frame),
                Ok(Some(_) | None) => break,
                Err(damage) => {
                    // Only a write that failed while running leaves this (the segment was
                    // closed after it); the frames after it are in the next segment.
                    tracing::warn!(segment = %segment_path(dir, number).display(), offset = reader.position().offset, "the WAL segment ends in {damage}; reading on in the next segment");
                    break;
                }
            }
        }
    }
    Ok(())
}

/// Deletes every segment older than `position`'s: all their frames are committed.
pub fn release_before(dir: &Path, position: WalPosition) -> Result<()> {
    for number in segment_numbers(dir)? {
        if number >= position.segment {
            break;
        }
        let path = segment_path(dir, number);
        std::fs::remove_file(&path).map_err(|source| Error::Wal { path, source })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(number: u64) -> PushRequest {
        PushRequest {
            batch_number: number,
            ..PushRequest::default()
        }
    }

    fn write_segment(dir: &Path, number: u64, batches: &[u64]) -> Vec<u8> {
        let mut bytes = MAGIC.to_vec();
        for &number in batches {
            encode_frame(&mut bytes, "t", &batch(number).encode_to_vec());
        }
        std::fs::write(segment_path(dir, number), &bytes).expect("written");
        bytes
    }

    fn all(dir: &Path, through: WalPosition) -> Vec<u64> {
        let mut numbers = Vec::new();
        read_range(dir, None, through, |frame| {
            numbers.push(frame.batch.batch_number);
        })
        .expect("readable");
        numbers
    }

    #[test]
    fn frames_read_back_in_order_across_segments_and_from_a_position() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_segment(dir.path(), 1, &[1, 2]);
        write_segment(dir.path(), 2, &[3]);
        let recovered = recover(dir.path()).expect("recovers");
        let end = recovered.end.expect("frames");
        assert_eq!(end.segment, 2);
        assert_eq!(recovered.next_segment, 3);
        assert_eq!(all(dir.path(), end), [1, 2, 3]);

        let mut after_first = None;
        read_range(dir.path(), None, end, |frame| {
            if frame.batch.batch_number == 1 {
                after_first = Some(frame.end);
            }
        })
        .expect("readable");
        let mut rest = Vec::new();
        read_range(dir.path(), after_first, end, |frame| {
            rest.push(frame.batch.batch_number);
        })
        .expect("readable");
        assert_eq!(rest, [2, 3]);
    }

    #[test]
    fn a_segment_cut_at_every_byte_recovers_to_its_whole_frames() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bytes = write_segment(dir.path(), 1, &[1, 2, 3]);
        for cut in 0..bytes.len() {
            std::fs::write(segment_path(dir.path(), 1), &bytes[..cut]).expect("written");
            let recovered = recover(dir.path()).expect("never fails on a torn tail");
            let kept = match recovered.end {
                Some(end) => all(dir.path(), end),
                None => Vec::new(),
            };
            let whole_frames = (1..=3)
                .filter(|&frames| {
                    let mut prefix = MAGIC.to_vec();
                    for number in 1..=frames {
                        encode_frame(&mut prefix, "t", &batch(number).encode_to_vec());
                    }
                    prefix.len() <= cut
                })
                .count();
            assert_eq!(kept.len(), whole_frames, "cut at byte {cut}");
            let expected_len = if cut < MAGIC.len() {
                None
            } else {
                Some(recovered.end.map_or(MAGIC.len() as u64, |end| end.offset))
            };
            let actual_len = std::fs::metadata(segment_path(dir.path(), 1))
                .ok()
                .map(|metadata| metadata.len());
            assert_eq!(
                actual_len, expected_len,
                "the file is cut at its last good frame"
            );
        }
    }

    #[test]
    fn a_flipped_byte_stops_the_segment_at_the_frame_before_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut bytes = write_segment(dir.path(), 1, &[1, 2, 3]);
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(segment_path(dir.path(), 1), &bytes).expect("written");
        let end = recover(dir.path()).expect("recovers").end.expect("frames");
        assert_eq!(all(dir.path(), end), [1, 2]);
    }

    /// Found by `scripts/fuzz wal_segment`: a frame header claiming up to 256 MiB over a few
    /// bytes made recovery allocate and zero all of it (100 segments a second, 230 MB RSS).
    #[test]
    fn fuzz_a_torn_frame_claiming_256_mib_allocates_only_what_the_file_holds() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&MAX_PAYLOAD_BYTES.to_le_bytes());
        bytes.extend_from_slice(&crc32fast::hash(b"torn").to_le_bytes());
        bytes.extend_from_slice(b"torn");
        std::fs::write(segment_path(dir.path(), 1), &bytes).expect("written");
        let mut reader = SegmentReader::open(dir.path(), 1)
            .expect("opens")
            .expect("has the magic");
        assert!(matches!(reader.next_frame(), Err(Damage::Short)));
        assert!(
            reader.payload.capacity() < 1024 * 1024,
            "{} bytes allocated for a 4-byte tail",
            reader.payload.capacity()
        );
        assert_eq!(reader.position().offset, MAGIC.len() as u64);
        let recovered = recover(dir.path()).expect("recovers");
        assert_eq!(recovered.end, None);
        let kept = std::fs::metadata(segment_path(dir.path(), 1)).expect("kept");
        assert_eq!(kept.len(), MAGIC.len() as u64, "cut after the magic");
    }

    #[test]
    fn release_deletes_only_older_segments() {
        let dir = tempfile::tempdir().expect("tempdir");
        for number in 1..=3 {
            write_segment(dir.path(), number, &[number]);
        }
        release_before(
            dir.path(),
            WalPosition {
                segment: 3,
                offset: 0,
            },
        )
        .expect("released");
        assert_eq!(segment_numbers(dir.path()).expect("listed"), [3]);
    }
}
