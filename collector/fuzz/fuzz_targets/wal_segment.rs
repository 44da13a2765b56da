//! Fuzzes WAL recovery and replay: a segment holding any bytes (raw, after the magic, or
//! frames with valid checksums around any payload) is cut at its last good frame, never
//! panics, recovers to the same place twice, and replays exactly the frames it kept.

#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use afterglow_collector::wal::{WalPosition, read_range, recover};
use libfuzzer_sys::fuzz_target;

const MAGIC: &[u8; 8] = b"AGWAL01\n";
const SEGMENT: &str = "00000000000000000001.wal";

fn wal_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        base.join(format!("afterglow-fuzz-wal-{}", std::process::id()))
    })
}

/// Pieces of `[payload length: u16 LE][payload]`, each framed as the WAL frames a batch,
/// with the right checksum: the fuzzer reaches the payload decoder.
fn framed(mut data: &[u8]) -> Vec<u8> {
    let mut segment = MAGIC.to_vec();
    while let [len_low, len_high, rest @ ..] = data {
        let len = usize::from(u16::from_le_bytes([*len_low, *len_high])).min(rest.len());
        let (payload, after) = rest.split_at(len);
        segment.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        segment.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        segment.extend_from_slice(payload);
        data = after;
    }
    segment
}

fuzz_target!(|data: &[u8]| {
    let [mode, rest @ ..] = data else {
        return;
    };
    let segment = match mode % 3 {
        0 => rest.to_vec(),
        1 => [&MAGIC[..], rest].concat(),
        _ => framed(rest),
    };
    let dir = wal_dir();
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("create the WAL directory");
    let path = dir.join(SEGMENT);
    std::fs::write(&path, &segment).expect("write the segment");

    let recovered = recover(dir).expect("recovery never fails on content");
    assert_eq!(recovered.next_segment, 2);
    let kept = std::fs::metadata(&path).map(|meta| meta.len()).ok();
    match (recovered.end, kept) {
        (Some(end), Some(len)) => {
            assert_eq!(end.segment, 1);
            assert_eq!(end.offset, len, "cut exactly after the last good frame");
        }
        (None, Some(len)) => assert_eq!(len, MAGIC.len() as u64, "a segment without frames"),
        (None, None) => assert!(
            !segment.starts_with(MAGIC),
            "only a headerless segment goes"
        ),
        (Some(_), None) => panic!("frames recovered from a deleted segment"),
    }
    assert!(kept.unwrap_or(0) <= segment.len() as u64);

    let again = recover(dir).expect("recover again");
    assert_eq!(again.end, recovered.end, "recovery is idempotent");

    let through = recovered.end.unwrap_or(WalPosition {
        segment: u64::MAX,
        offset: u64::MAX,
    });
    let mut last_end = None;
    read_range(dir, None, through, |frame| {
        assert!(last_end < Some(frame.end), "frames replay in order");
        last_end = Some(frame.end);
    })
    .expect("replay what recovery kept");
    assert_eq!(last_end, recovered.end, "replay ends where recovery did");
});
