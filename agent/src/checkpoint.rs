//! Durable read positions, keyed by stream (a file's content identity, not its path:
//! rotation renames files). An offset is saved only after the collector acknowledged the batch
//! that held the data up to it, together with a hash of the bytes just before it, so that a
//! restarted agent can check the file still holds what was read before it seeks there.
//!
//! The file is written atomically (temp file, fsync, rename, fsync of the directory). A corrupt
//! file is moved aside and reported; the agent then starts without checkpoints, which costs a
//! re-read that the collector deduplicates, never a crash loop.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fingerprint::FileFingerprint;

const FILE_NAME: &str = "checkpoints.json";
const FORMAT_VERSION: u32 = 1;

/// Where to resume one stream, and how to recognise its file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub stream_id: u64,
    /// The file's path when last seen (informational: files are matched by identity).
    pub path: PathBuf,
    pub dev: u64,
    pub inode: u64,
    pub birth_nanos: u64,
    pub first_line_hash: u64,
    /// Offset just after the last acknowledged record.
    pub offset: u64,
    /// xxh3 of the `guard_len` bytes before `offset`.
    pub guard_hash: u64,
    pub guard_len: u32,
}

impl Checkpoint {
    /// Tells whether this checkpoint belongs to the file with `fingerprint`.
    pub fn matches(&self, fingerprint: &FileFingerprint) -> bool {
        (self.dev, self.inode, self.birth_nanos, self.first_line_hash)
            == (
                fingerprint.dev,
                fingerprint.inode,
                fingerprint.birth_nanos,
                fingerprint.first_line_hash,
            )
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct CheckpointFile {
    version: u32,
    checkpoints: Vec<Checkpoint>,
}

/// The checkpoints of one agent, shared by the tailers (which register files and compute
/// guards) and the shipper (which reports acknowledged offsets).
#[derive(Debug)]
pub struct CheckpointStore {
    path: PathBuf,
    state: Mutex<State>,
    /// Holds an exclusive lock on the state directory while the store lives: two agents
    /// sharing one state directory would overwrite each other's checkpoints.
    _lock: File,
}

#[derive(Debug, Default)]
struct State {
    streams: HashMap<u64, StreamState>,
    /// Stream ids by their file's device and inode, and by the hash of its first line: a
    /// file opened among thousands is looked up, not compared with every stream.
    by_file: HashMap<(u64, u64), Vec<u64>>,
    by_content: HashMap<u64, Vec<u64>>,
    dirty: bool,
}

impl State {
    /// Adds or replaces the stream `stream.saved.stream_id`, keeping the indexes in step.
    fn insert(&mut self, stream: StreamState) {
        let stream_id = stream.saved.stream_id;
        self.remove(stream_id);
        self.by_file
            .entry((stream.saved.dev, stream.saved.inode))
            .or_default()
            .push(stream_id);
        self.by_content
            .entry(stream.saved.first_line_hash)
            .or_default()
            .push(stream_id);
        self.streams.insert(stream_id, stream);
    }

    /// Removes the stream `stream_id` and its index entries.
    fn remove(&mut self, stream_id: u64) -> Option<StreamState> {
        let stream = self.streams.remove(&stream_id)?;
        let saved = &stream.saved;
        unindex(&mut self.by_file, (saved.dev, saved.inode), stream_id);
        unindex(&mut self.by_content, saved.first_line_hash, stream_id);
        Some(stream)
    }

    /// The streams indexed under `key`.
    fn indexed<'a, K: std::hash::Hash + Eq>(
        &'a self,
        index: &'a HashMap<K, Vec<u64>>,
        key: &K,
    ) -> impl Iterator<Item = &'a Checkpoint> + 'a {
        index
            .get(key)
            .into_iter()
            .flatten()
            .filter_map(|stream_id| self.streams.get(stream_id))
            .map(|stream| &stream.saved)
    }
}

fn unindex<K: std::hash::Hash + Eq>(index: &mut HashMap<K, Vec<u64>>, key: K, stream_id: u64) {
    if let Some(stream_ids) = index.get_mut(&key) {
        stream_ids.retain(|indexed| *indexed != stream_id);
        if stream_ids.is_empty() {
            index.remove(&key);
        }
    }
}

#[derive(Debug)]
struct StreamState {
    saved: Checkpoint,
    /// The highest acknowledged end offset; ahead of `saved.offset` until its guard is known.
    acked_offset: u64,
}

/// What `CheckpointStore::open` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// No checkpoint file: this is the agent's first start.
    Nothing,
    /// A valid checkpoint file.
    Checkpoints,
    /// A damaged checkpoint file, now moved aside.
    Corrupt,
}

impl CheckpointStore {
    /// Opens the checkpoints in `state_dir`, creating the directory if needed.
    pub fn open(state_dir: &Path) -> Result<(CheckpointStore, Found)> {
        std::fs::create_dir_all(state_dir).map_err(|source| Error::StateDir {
            path: state_dir.to_owned(),
            source,
        })?;
        let lock = lock_state_dir(state_dir)?;
        let path = state_dir.join(FILE_NAME);
        let (checkpoints, found) = match std::fs::read(&path) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                (Vec::new(), Found::Nothing)
            }
            Err(source) => return Err(Error::ReadCheckpoints { path, source }),
            Ok(bytes) => match serde_json::from_slice::<CheckpointFile>(&bytes) {
                Ok(file) if file.version == FORMAT_VERSION => {
                    (file.checkpoints, Found::Checkpoints)
                }
                Ok(file) => {
                    move_aside(&path, &format!("unknown version {}", file.version));
                    (Vec::new(), Found::Corrupt)
                }
                Err(error) => {
                    move_aside(&path, &error.to_string());
                    (Vec::new(), Found::Corrupt)
                }
            },
        };
        let mut state = State::default();
        for saved in checkpoints {
            let acked_offset = saved.offset;
            state.insert(StreamState {
                saved,
                acked_offset,
            });
        }
        let store = CheckpointStore {
            path,
            state: Mutex::new(state),
            _lock: lock,
        };
        Ok((store, found))
    }

    /// The saved checkpoint of the file with `fingerprint`, if any.
    pub fn find(&self, fingerprint: &FileFingerprint) -> Option<Checkpoint> {
        let state = self.lock();
        state
            .indexed(&state.by_file, &(fingerprint.dev, fingerprint.inode))
            .find(|saved| saved.matches(fingerprint))
            .cloned()
    }

    /// The paths the checkpoints were saved for.
    pub fn paths(&self) -> std::collections::HashSet<PathBuf> {
        let state = self.lock();
        state
            .streams
            .values()
            .map(|stream| stream.saved.path.clone())
            .collect()
    }

    /// The saved checkpoints of files whose first line has `first_line_hash`, wherever
    /// they are now: a file moved to another device, or a copy of a truncated file.
    pub fn find_by_content(&self, first_line_hash: u64) -> Vec<Checkpoint> {
        let state = self.lock();
        state
            .indexed(&state.by_content, &first_line_hash)
            .cloned()
            .collect()
    }

    /// Starts tracking a stream at `checkpoint` (the position it is read from now). Older
    /// streams of the same file (same device and inode) are forgotten: the file now holds
    /// this stream.
    pub fn track(&self, checkpoint: Checkpoint) {
        let mut state = self.lock();
        let same_file = state
            .by_file
            .get(&(checkpoint.dev, checkpoint.inode))
            .cloned()
            .unwrap_or_default();
        for stream_id in same_file {
            state.remove(stream_id);
        }
        let acked_offset = checkpoint.offset;
        state.insert(StreamState {
            saved: checkpoint,
            acked_offset,
        });
        state.dirty = true;
    }

    /// Records that everything of `stream_id` before `end_offset` is acknowledged.
    pub fn record_ack(&self, stream_id: u64, end_offset: u64) {
        if let Some(stream) = self.lock().streams.get_mut(&stream_id) {
            stream.acked_offset = stream.acked_offset.max(end_offset);
        }
    }

    /// The acknowledged offset of `stream_id` if it is ahead of the saved one.
    pub fn unsaved_ack(&self, stream_id: u64) -> Option<u64> {
        let state = self.lock();
        let stream = state.streams.get(&stream_id)?;
        (stream.acked_offset > stream.saved.offset).then_some(stream.acked_offset)
    }

    /// Saves `offset` of `stream_id` with the guard of the bytes before it.
    pub fn advance(
        &self,
        stream_id: u64,
        offset: u64,
        guard_hash: u64,
        guard_len: u32,
        path: &Path,
    ) {
        let mut state = self.lock();
        if let Some(stream) = state.streams.get_mut(&stream_id)
            && offset > stream.saved.offset
        {
            stream.saved.offset = offset;
            stream.saved.guard_hash = guard_hash;
            stream.saved.guard_len = guard_len;
            path.clone_into(&mut stream.saved.path);
            state.dirty = true;
        }
    }

    /// Stops tracking a stream whose file is gone.
    pub fn forget(&self, stream_id: u64) {
        let mut state = self.lock();
        if state.remove(stream_id).is_some() {
            state.dirty = true;
        }
    }

    /// Writes the checkpoints if they changed. Returns whether a file was written.
    pub fn persist(&self) -> Result<bool> {
        let checkpoints = {
            let mut state = self.lock();
            if !state.dirty {
                return Ok(false);
            }
            state.dirty = false;
            let mut checkpoints: Vec<Checkpoint> = state
                .streams
                .values()
                .map(|stream| stream.saved.clone())
                .collect();
            checkpoints.sort_by_key(|checkpoint| checkpoint.stream_id);
            checkpoints
        };
        let file = CheckpointFile {
            version: FORMAT_VERSION,
            checkpoints,
        };
        let bytes = serde_json::to_vec_pretty(&file).expect("checkpoints serialize");
        write_atomically(&self.path, &bytes).map_err(|source| {
            self.lock().dirty = true;
            Error::WriteCheckpoints {
                path: self.path.clone(),
                source,
            }
        })?;
        Ok(true)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("checkpoint lock is not poisoned")
    }
}

fn lock_state_dir(state_dir: &Path) -> Result<File> {
    let path = state_dir.join("lock");
    let lock = File::create(&path).map_err(|source| Error::StateDir {
        path: path.clone(),
        source,
    })?;
    match rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(lock),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(Error::StateDirInUse {
            path: state_dir.to_owned(),
        }),
        Err(errno) => Err(Error::StateDir {
            path,
            source: errno.into(),
        }),
    }
}

fn move_aside(path: &Path, reason: &str) {
    let now = jiff::Timestamp::now().as_second();
    let aside = path.with_extension(format!("json.corrupt-{now}"));
    match std::fs::rename(path, &aside) {
        Ok(()) => {
            tracing::error!(path = %path.display(), moved_to = %aside.display(), %reason, "checkpoint file is damaged; moved it aside and starting without checkpoints")
        }
        Err(error) => {
            tracing::error!(path = %path.display(), %reason, %error, "checkpoint file is damaged and cannot be moved aside; starting without checkpoints")
        }
    }
}

/// Writes `bytes` to `path` so that a crash leaves either the old or the new content.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temp = path.with_extension("json.tmp");
    let mut file = File::create(&temp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temp, path)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint(stream_id: u64, offset: u64) -> Checkpoint {
        Checkpoint {
            stream_id,
            path: PathBuf::from("/var/log/dask/worker.log"),
            dev: 1,
            inode: stream_id + 100,
            birth_nanos: 5,
            first_line_hash: 7,
            offset,
            guard_hash: 0,
            guard_len: 0,
        }
    }

    #[test]
    fn acked_offsets_survive_a_restart_only_once_saved_with_their_guard() -> Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let (store, found) = CheckpointStore::open(dir.path())?;
            assert_eq!(found, Found::Nothing);
            store.track(checkpoint(1, 0));
            store.track(checkpoint(2, 0));
            store.record_ack(1, 500);
            store.record_ack(2, 300);
            assert_eq!(store.unsaved_ack(1), Some(500));
            store.advance(1, 500, 99, 64, Path::new("/var/log/dask/worker.log.1"));
            assert_eq!(store.unsaved_ack(1), None);
            assert!(store.persist()?);
            assert!(!store.persist()?, "nothing changed");
        }
        let (store, found) = CheckpointStore::open(dir.path())?;
        assert_eq!(found, Found::Checkpoints);
        let fingerprint = FileFingerprint {
            first_line_hash: 7,
            dev: 1,
            inode: 101,
            birth_nanos: 5,
            first_line_len: 10,
        };
        let saved = store.find(&fingerprint).expect("stream 1 is saved");
        assert_eq!(
            (saved.offset, saved.guard_hash, saved.guard_len),
            (500, 99, 64)
        );
        assert_eq!(saved.path, PathBuf::from("/var/log/dask/worker.log.1"));
        let unguarded = FileFingerprint {
            inode: 102,
            ..fingerprint
        };
        assert_eq!(
            store.find(&unguarded).map(|c| c.offset),
            Some(0),
            "ack without guard is not saved"
        );
        Ok(())
    }

    #[test]
    fn lookups_by_file_and_by_content_follow_track_and_forget() -> Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, _) = CheckpointStore::open(dir.path())?;
        let fingerprint = FileFingerprint {
            first_line_hash: 7,
            dev: 1,
            inode: 101,
            birth_nanos: 5,
            first_line_len: 10,
        };
        let stream_ids =
            |found: Vec<Checkpoint>| found.iter().map(|c| c.stream_id).collect::<Vec<_>>();
        store.track(checkpoint(1, 0));
        store.track(checkpoint(2, 0));
        assert_eq!(store.find(&fingerprint).map(|c| c.stream_id), Some(1));
        assert_eq!(stream_ids(store.find_by_content(7)).len(), 2);
        // The same file (device and inode) now holds another stream: the old one is gone
        // from every lookup.
        store.track(Checkpoint {
            stream_id: 9,
            first_line_hash: 8,
            ..checkpoint(1, 0)
        });
        assert!(store.find(&fingerprint).is_none());
        let rewritten = FileFingerprint {
            first_line_hash: 8,
            ..fingerprint
        };
        assert_eq!(store.find(&rewritten).map(|c| c.stream_id), Some(9));
        assert_eq!(stream_ids(store.find_by_content(7)), [2]);
        assert_eq!(stream_ids(store.find_by_content(8)), [9]);
        store.forget(9);
        assert!(store.find(&rewritten).is_none());
        assert!(store.find_by_content(8).is_empty());
        Ok(())
    }

    #[test]
    fn a_corrupt_file_is_moved_aside_not_fatal() -> Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join(FILE_NAME),
            b"{\"version\": 1, \"checkpoints\": [{\"stream_id\": ",
        )
        .expect("write");
        let (store, found) = CheckpointStore::open(dir.path())?;
        assert_eq!(found, Found::Corrupt);
        assert!(
            store
                .find(&FileFingerprint {
                    first_line_hash: 7,
                    dev: 1,
                    inode: 101,
                    birth_nanos: 5,
                    first_line_len: 10
                })
                .is_none()
        );
        let moved_aside = std::fs::read_dir(dir.path())
            .expect("list")
            .filter_map(|entry| entry.ok())
            .any(|entry| {
                entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with("checkpoints.json.corrupt-")
            });
        assert!(moved_aside);
        store.track(checkpoint(3, 10));
        assert!(store.persist()?, "a fresh file replaces the damaged one");
        drop(store);
        assert_eq!(CheckpointStore::open(dir.path())?.1, Found::Checkpoints);
        Ok(())
    }

    #[test]
    fn a_second_store_on_the_same_state_dir_is_refused() -> Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_first, _) = CheckpointStore::open(dir.path())?;
        let second = CheckpointStore::open(dir.path());
        assert!(
            matches!(second, Err(Error::StateDirInUse { .. })),
            "{second:?}"
        );
        Ok(())
    }

    #[test]
    fn forgotten_streams_are_not_saved() -> Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, _) = CheckpointStore::open(dir.path())?;
        store.track(checkpoint(4, 10));
        store.forget(4);
        store.persist()?;
        drop(store);
        let (store, _) = CheckpointStore::open(dir.path())?;
        assert!(
            store
                .find(&FileFingerprint {
                    first_line_hash: 7,
                    dev: 1,
                    inode: 104,
                    birth_nanos: 5,
                    first_line_len: 10
                })
                .is_none()
        );
        Ok(())
    }
}
