//! File identity: device, inode and birth time say which file this is (they survive renames,
//! and a reused inode has a new birth time); a checksum of the first line (or of the first
//! 1024 bytes) says what it holds, so that a copy made by copytruncate, or a file moved to
//! another device, is recognised by content, and a file rewritten in place is noticed.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};

use xxhash_rust::xxh3::Xxh3;

/// How many leading bytes identify a file whose first line is longer.
pub const FINGERPRINT_MAX_BYTES: usize = 1024;

/// What identifies a file's content, and where it lives now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileFingerprint {
    /// xxh3 of the first line (through its newline), or of the first 1024 bytes.
    pub first_line_hash: u64,
    pub dev: u64,
    pub inode: u64,
    /// Birth time in nanoseconds, 0 where the file system does not record it.
    pub birth_nanos: u64,
    /// How many bytes the checksum covers.
    pub first_line_len: u64,
}

impl FileFingerprint {
    /// Reads the fingerprint of `file`. Returns `None` while the file has no complete first
    /// line yet: identifying it by a prefix that is still growing would change its identity.
    pub fn read(file: &File) -> io::Result<Option<FileFingerprint>> {
        let metadata = file.metadata()?;
        let mut head = [0u8; FINGERPRINT_MAX_BYTES];
        let filled = read_at_most(file, &mut head, 0)?;
        let identifying = match head[..filled].iter().position(|&byte| byte == b'\n') {
            Some(newline) => &head[..=newline],
            None if filled == FINGERPRINT_MAX_BYTES => &head[..],
            None => return Ok(None),
        };
        let birth_nanos = metadata
            .created()
            .ok()
            .and_then(|created| created.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |since_epoch| since_epoch.as_nanos() as u64);
        Ok(Some(FileFingerprint {
            first_line_hash: xxhash_rust::xxh3::xxh3_64(identifying),
            dev: metadata.dev(),
            inode: metadata.ino(),
            birth_nanos,
            first_line_len: identifying.len() as u64,
        }))
    }

    /// The stream id of this file on `node` of `cluster`.
    pub fn stream_id(&self, cluster: &str, node: &str) -> u64 {
        hash_parts(&[
            cluster.as_bytes(),
            node.as_bytes(),
            &self.first_line_hash.to_le_bytes(),
            &self.dev.to_le_bytes(),
            &self.inode.to_le_bytes(),
            &self.birth_nanos.to_le_bytes(),
        ])
    }
}

/// A stream id derived from an earlier one, for content that replaced it in the same file
/// (truncation, or a rewrite noticed at restart) or for a different file whose first line
/// happens to equal another's. Deterministic, so a restarted agent derives the same id.
pub fn derived_stream_id(previous_stream_id: u64, reason: &str, salt: u64) -> u64 {
    hash_parts(&[
        &previous_stream_id.to_le_bytes(),
        reason.as_bytes(),
        &salt.to_le_bytes(),
    ])
}

/// xxh3 of the `len` bytes that end at `end_offset` (fewer at the start of the file). A
/// checkpoint keeps it to check, before resuming, that the file still holds what was read.
pub fn guard_hash(file: &File, end_offset: u64, len: usize) -> io::Result<Option<u64>> {
    let start = end_offset.saturating_sub(len as u64);
    let mut buffer = vec![0u8; (end_offset - start) as usize];
    let filled = read_at_most(file, &mut buffer, start)?;
    if filled < buffer.len() {
        return Ok(None);
    }
    Ok(Some(xxhash_rust::xxh3::xxh3_64(&buffer)))
}

/// Tells whether two files have the same bytes over the first `len` bytes (both must have
/// that many): a copy of a file, as opposed to another file that starts the same way.
pub fn same_prefix(a: &File, b: &File, len: u64) -> io::Result<bool> {
    let mut offset = 0u64;
    let mut buffer_a = vec![0u8; 64 * 1024];
    let mut buffer_b = vec![0u8; 64 * 1024];
    while offset < len {
        let want = usize::try_from(len - offset)
            .unwrap_or(usize::MAX)
            .min(buffer_a.len());
        let read_a = read_at_most(a, &mut buffer_a[..want], offset)?;
        let read_b = read_at_most(b, &mut buffer_b[..want], offset)?;
        if read_a != want || read_b != want || buffer_a[..want] != buffer_b[..want] {
            return Ok(false);
        }
        offset += want as u64;
    }
    Ok(true)
}

fn read_at_most(file: &File, buffer: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        let read = file.read_at(&mut buffer[filled..], offset + filled as u64)?;
        if read == 0 {
            break;
        }
        filled += read;
    }
    Ok(filled)
}

fn hash_parts(parts: &[&[u8]]) -> u64 {
    let mut hasher = Xxh3::new();
    for part in parts {
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hasher.digest()
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn waits_for_a_complete_first_line() -> io::Result<()> {
        let mut file = tempfile::tempfile()?;
        assert_eq!(FileFingerprint::read(&file)?, None);
        file.write_all(b"2026-11-27 13:56:53,599 - distributed")?;
        assert_eq!(FileFingerprint::read(&file)?, None);
        file.write_all(b".worker - INFO - hi\n")?;
        let first = FileFingerprint::read(&file)?.expect("a complete first line");
        file.write_all(b"more lines do not change identity\n")?;
        assert_eq!(FileFingerprint::read(&file)?, Some(first));
        Ok(())
    }

    #[test]
    fn a_copy_is_another_stream_with_the_same_first_line_and_prefix() -> io::Result<()> {
        let mut original = tempfile::tempfile()?;
        let mut copy = tempfile::tempfile()?;
        let mut other = tempfile::tempfile()?;
        original.write_all(b"first line\nsecond line\n")?;
        copy.write_all(b"first line\nsecond line\nthird\n")?;
        other.write_all(b"first line\nanother second line\n")?;
        let [original_fp, copy_fp, other_fp] = [&original, &copy, &other]
            .map(|file| FileFingerprint::read(file).ok().flatten().expect("a line"));
        assert_eq!(original_fp.first_line_hash, copy_fp.first_line_hash);
        assert_ne!(original_fp.stream_id("c", "n"), copy_fp.stream_id("c", "n"));
        assert_ne!(
            original_fp.stream_id("c", "n"),
            original_fp.stream_id("c", "other-node")
        );
        assert!(same_prefix(&original, &copy, 23)?);
        assert!(!same_prefix(&original, &other, 23)?);
        assert!(
            !same_prefix(&original, &copy, 30)?,
            "the original is shorter"
        );
        assert_eq!(other_fp.first_line_hash, original_fp.first_line_hash);
        Ok(())
    }

    #[test]
    fn guard_hash_covers_the_bytes_before_the_offset() -> io::Result<()> {
        let mut file = tempfile::tempfile()?;
        file.write_all(b"abcdefgh")?;
        let guard = guard_hash(&file, 6, 4)?;
        assert_eq!(guard, Some(xxhash_rust::xxh3::xxh3_64(b"cdef")));
        assert_eq!(
            guard_hash(&file, 2, 4)?,
            Some(xxhash_rust::xxh3::xxh3_64(b"ab"))
        );
        assert_eq!(
            guard_hash(&file, 20, 4)?,
            None,
            "the file is shorter than the offset"
        );
        Ok(())
    }

    #[test]
    fn derived_ids_differ_from_their_origin_and_each_other() {
        let origin = 42;
        let truncated = derived_stream_id(origin, "truncated", 1);
        assert_ne!(truncated, origin);
        assert_ne!(truncated, derived_stream_id(origin, "truncated", 2));
        assert_eq!(truncated, derived_stream_id(origin, "truncated", 1));
    }
}
