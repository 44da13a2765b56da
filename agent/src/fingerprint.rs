//! File identity: device and inode plus a checksum of the file's first line.
//! Both must match for two sightings to be the same file: inodes are reused after deletion,
//! and different files (two workers' logs) can start with the same line.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};

use xxhash_rust::xxh3::Xxh3;

/// How many leading bytes identify a file whose first line is longer.
const FINGERPRINT_MAX_BYTES: usize = 1024;

/// Identity of a file's content on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileFingerprint {
    pub dev: u64,
    pub inode: u64,
    /// xxh3 of the first line (through its newline), or of the first 1024 bytes.
    pub first_line_hash: u64,
}

impl FileFingerprint {
    /// Reads the fingerprint of `file`. Returns `None` while the file has no complete first
    /// line yet: identifying it by a prefix that is still growing would change its identity.
    pub fn read(file: &File) -> io::Result<Option<FileFingerprint>> {
        let metadata = file.metadata()?;
        let mut head = [0u8; FINGERPRINT_MAX_BYTES];
        let mut filled = 0;
        while filled < head.len() {
            let read = file.read_at(&mut head[filled..], filled as u64)?;
            if read == 0 {
                break;
            }
            filled += read;
        }
        let identifying = match head[..filled].iter().position(|&byte| byte == b'\n') {
            Some(newline) => &head[..=newline],
            None if filled == FINGERPRINT_MAX_BYTES => &head[..],
            None => return Ok(None),
        };
        Ok(Some(FileFingerprint {
            dev: metadata.dev(),
            inode: metadata.ino(),
            first_line_hash: xxhash_rust::xxh3::xxh3_64(identifying),
        }))
    }

    /// The stream id of this file on `node` of `cluster`.
    pub fn stream_id(&self, cluster: &str, node: &str) -> u64 {
        let mut hasher = Xxh3::new();
        for part in [cluster.as_bytes(), b"\0", node.as_bytes(), b"\0"] {
            hasher.update(part);
        }
        hasher.update(&self.dev.to_le_bytes());
        hasher.update(&self.inode.to_le_bytes());
        hasher.update(&self.first_line_hash.to_le_bytes());
        hasher.digest()
    }
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
    fn same_first_line_in_two_files_gives_two_streams() -> io::Result<()> {
        let mut a = tempfile::tempfile()?;
        let mut b = tempfile::tempfile()?;
        a.write_all(b"-----\n")?;
        b.write_all(b"-----\n")?;
        let a = FileFingerprint::read(&a)?.expect("a line");
        let b = FileFingerprint::read(&b)?.expect("a line");
        assert_ne!(a.stream_id("c", "n"), b.stream_id("c", "n"));
        assert_ne!(a.stream_id("c", "n"), a.stream_id("c", "other-node"));
        Ok(())
    }
}
