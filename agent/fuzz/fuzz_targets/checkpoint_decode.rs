//! Fuzzes the checkpoint file decoder: any bytes as `checkpoints.json` must open (as valid or
//! as corrupt, moved aside), never panic; what opens is used, saved and must reopen the same.

#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use afterglow_agent::checkpoint::{CheckpointStore, Found};
use libfuzzer_sys::fuzz_target;

/// One state directory per fuzzing process, in memory when `/dev/shm` exists.
fn state_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("afterglow-fuzz-checkpoint-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the state directory");
        dir
    })
}

fn clear(dir: &Path) {
    for entry in std::fs::read_dir(dir)
        .expect("list the state directory")
        .flatten()
    {
        let _ = std::fs::remove_file(entry.path());
    }
}

fuzz_target!(|data: &[u8]| {
    let dir = state_dir();
    clear(dir);
    std::fs::write(dir.join("checkpoints.json"), data).expect("write the checkpoint file");
    let (store, found) = CheckpointStore::open(dir).expect("open never fails on content");
    if found != Found::Checkpoints {
        assert!(store.paths().is_empty());
        return;
    }
    // Use what was loaded as the tailer and the shipper would.
    let paths = store.paths();
    let mut stream_ids = Vec::new();
    for path in &paths {
        let _ = store.find_by_content(path.as_os_str().len() as u64);
    }
    for first_line_hash in [0, u64::MAX] {
        for checkpoint in store.find_by_content(first_line_hash) {
            stream_ids.push(checkpoint.stream_id);
        }
    }
    for &stream_id in &stream_ids {
        store.record_ack(stream_id, u64::MAX);
        let _ = store.unsaved_ack(stream_id);
        store.advance(
            stream_id,
            u64::MAX,
            0,
            u32::MAX,
            Path::new("/var/log/fuzz.log"),
        );
    }
    if let Some(&first) = stream_ids.first() {
        store.forget(first);
    }
    let _ = store.persist();
    let saved_paths = store.paths();
    drop(store);
    let (reopened, found_again) = CheckpointStore::open(dir).expect("reopen");
    assert_eq!(found_again, Found::Checkpoints, "what was saved reads back");
    assert_eq!(reopened.paths(), saved_paths);
});
