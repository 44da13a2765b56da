//! Fuzzes the spool's segment decoder: a spool directory whose segment holds any bytes (or
//! records framed with a valid checksum around any body) must open, hand out every batch it
//! kept and release them all, never panic and never send a damaged record.

#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use afterglow_agent::spool::{BatchQueue, SealedBatch};
use libfuzzer_sys::fuzz_target;

/// Record header: body length (u32), checksum (u64), batch number (u64).
const HEADER_BYTES: usize = 20;

fn spool_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        base.join(format!("afterglow-fuzz-spool-{}", std::process::id()))
    })
}

/// Pieces of `[batch number: u8][body length: u16 LE][body]`, each framed as the spool frames
/// a record, with the right checksum: the fuzzer reaches the body decoder.
fn framed(mut data: &[u8]) -> Vec<u8> {
    let mut segment = Vec::new();
    while let [number, len_low, len_high, rest @ ..] = data {
        let len = usize::from(u16::from_le_bytes([*len_low, *len_high])).min(rest.len());
        let (body, after) = rest.split_at(len);
        segment.extend_from_slice(&(body.len() as u32).to_le_bytes());
        segment.extend_from_slice(&xxhash_rust::xxh3::xxh3_64(body).to_le_bytes());
        segment.extend_from_slice(&u64::from(*number).to_le_bytes());
        segment.extend_from_slice(body);
        data = after;
    }
    segment
}

fuzz_target!(|data: &[u8]| {
    let [mode, acked, rest @ ..] = data else {
        return;
    };
    let dir = spool_dir();
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("create the spool directory");
    if *acked != 0 {
        std::fs::write(dir.join("acked"), u64::from(*acked).to_le_bytes()).expect("write acked");
    }
    let segment = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        framed(rest)
    };
    std::fs::write(dir.join("00000000000000000001.seg"), &segment).expect("write segment");

    let max_bytes = if mode & 2 == 0 { u64::MAX } else { 64 };
    let mut queue = BatchQueue::on_disk(dir, max_bytes).expect("open never fails on content");
    let mut next = 0;
    let mut sent = 0;
    while let Some(number) = queue.next_from(next) {
        assert!(
            number > u64::from(*acked),
            "an acknowledged batch is not sent again"
        );
        let (encoded, _records) = queue.get(number).expect("a kept batch reads back");
        assert!(encoded.len() <= segment.len());
        let _ = queue.remove(number);
        next = number + 1;
        sent += 1;
    }
    assert!(sent <= segment.len() / HEADER_BYTES);
    assert!(queue.is_empty());
    assert_eq!(queue.bytes(), 0);
    // The queue goes on numbering after what it found.
    let number = queue
        .push(&SealedBatch {
            encoded: Vec::new(),
            records: 0,
            stream_ends: vec![(1, 2)],
        })
        .expect("push to an open spool");
    assert!(number >= next.max(u64::from(*acked) + 1));
});
