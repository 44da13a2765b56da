//! Follows the files of one `[[logs]]` table: finds them (file system notifications, and a
//! full scan as a fallback), reads what is appended, groups lines into records and hands them
//! to the shipper; handles rotation by rename, copytruncate, truncation and deletion, and
//! resumes from acknowledged checkpoints after a restart.
//!
//! The rule a reader must not miss: a file's stream id comes from its content (first line),
//! never from its path, and a stream's `seq` (byte offset) only grows. When a file's content
//! is replaced in place, the new content gets a *derived* stream id, because the collector
//! drops any record whose `seq` is not above the highest it stored for the stream.
//!
//! Runs on its own thread (file reads block). Sending blocks when the shipper is full, which
//! is the backpressure: reading pauses, nothing is dropped.

mod paths;
mod reader;
mod records;

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::checkpoint::{Checkpoint, CheckpointStore};
use crate::config::{LogsConfig, StartAt};
use crate::fingerprint::{FileFingerprint, derived_stream_id, guard_hash};
use crate::format::LineFormat;
use crate::metrics::AgentMetrics;
use crate::multiline::{LineTime, RecordAssembler};
use crate::record::{CHUNK_RECORDS, LogRecord, RecordChunk, StreamInfo};
use paths::PathMatcher;
use reader::{LineReader, RECENT_BYTES};
use records::{Closed, FileRecords};

/// Bytes read from one file before the others get a turn.
const READ_BUDGET_BYTES: usize = 4 * 1024 * 1024;
/// How many bytes before a checkpoint's offset must be unchanged to resume there.
const GUARD_BYTES: usize = 64;
/// How often the thread looks at its clock (quiet files, shutdown) without any event.
const TICK: Duration = Duration::from_millis(100);
/// With notifications working, a full scan runs this many poll intervals apart.
const SCANS_PER_POLL_WITH_NOTIFY: u32 = 10;
/// How long a record that ends where a read ended, and looks complete, waits for more lines
/// before it is sent (at most the table's `multiline_timeout`). Python writes a log record
/// and its traceback in one write, so such a record is almost always whole already; a
/// record that looks unfinished waits the whole `multiline_timeout`.
const SETTLED_RECORD_GRACE: Duration = Duration::from_millis(50);
/// A line read from a file that was read to its end before and whose newest byte is younger
/// than this is live: it gets the time it was read, not its neighbours'.
const LIVE_LINE_AGE: jiff::SignedDuration = jiff::SignedDuration::from_secs(1);

/// Where a tailer's records come from: the node and cluster it runs on.
#[derive(Debug, Clone)]
pub struct NodeIdentity {
    pub cluster: String,
    pub node: String,
}

/// What a tailer needs besides its `[[logs]]` table.
pub struct TailerContext {
    pub node: NodeIdentity,
    pub timezone: TimeZone,
    pub records: mpsc::Sender<RecordChunk>,
    pub checkpoints: Arc<CheckpointStore>,
    pub metrics: Arc<AgentMetrics>,
    /// No checkpoint file existed: `start_at` applies to the files found now.
    pub first_start: bool,
}

/// Tails every file matching one `[[logs]]` table.
pub struct Tailer {
    config: LogsConfig,
    /// The table's durations, parsed once.
    multiline_timeout: Duration,
    /// `SETTLED_RECORD_GRACE`, at most `multiline_timeout`.
    settled_record_grace: Duration,
    /// When the first open record of the files processed since the loop last woke is due:
    /// every file with an open record is processed on each wake, so this is the earliest of
    /// all, found without another pass over every file.
    next_flush_at: Option<Instant>,
    release_after: Duration,
    close_inactive: Duration,
    paths: PathMatcher,
    context: TailerContext,
    files: HashMap<FileKey, TailedFile>,
    path_index: HashMap<PathBuf, FileKey>,
    /// Streams whose file was truncated: a copy of the file (copytruncate) continues them.
    retired: Vec<RetiredStream>,
    /// Files holding a copy of a followed file, not read: key → (path, stream copied).
    copies: HashMap<FileKey, (PathBuf, u64)>,
    /// The last stream of each file whose content was replaced in place.
    /// Keyed by device, inode and birth time: a new file reusing an inode is not the same file.
    lineage: HashMap<(u64, u64, u64), u64>,
    /// Files whose descriptor is open now; at most `max_open_files`.
    open_keys: HashSet<FileKey>,
    /// Followed files by the hash of their first line, to find the original of a copy.
    by_first_line: HashMap<u64, Vec<FileKey>>,
    /// New files that found no free descriptor, in the order a full scan would take them.
    /// They are opened as descriptors free up, on the next ticks: a full scan per batch of
    /// `max_open_files` (listing and looking at every known file again) made 10,000 new
    /// files take half a minute.
    waiting_for_descriptor: VecDeque<(PathBuf, Discovery)>,
    /// The last discovery found no free descriptor.
    discovery_deferred: bool,
    /// What this tailer last added to the shared gauges.
    reported_pending_deletion: i64,
    reported_bytes_behind: i64,
}

/// Device and inode.
type FileKey = (u64, u64);

/// Which new files a discovery pass may start following.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Discovery {
    /// Only files that resume their own checkpoint.
    OwnCheckpointOnly,
    /// Any file.
    Any,
}

/// The channel to the shipper is closed: the agent is stopping.
#[derive(Debug)]
struct ShipperGone;

struct TailedFile {
    path: PathBuf,
    fingerprint: FileFingerprint,
    stream: Arc<StreamInfo>,
    reader: LineReader,
    records: FileRecords,
    last_data_at: Instant,
    /// The last read reached the end of the file.
    at_end: bool,
    /// The file's modification time when it was last looked at.
    modified: Option<Timestamp>,
    /// Since when the path no longer leads to this file (renamed away or deleted).
    detached_since: Option<Instant>,
    acked_offset: u64,
    size: u64,
    /// Modification time when the descriptor was closed for being idle.
    modified_when_closed: Option<std::time::SystemTime>,
}

impl TailedFile {
    /// Tells whether the descriptor may be closed without losing anything: read to its end,
    /// no record waiting for continuation lines, and still at its path.
    fn can_close(&self) -> bool {
        self.reader.file().is_some()
            && self.detached_since.is_none()
            && self.at_end
            && !self.records.has_open_record()
    }

    /// When the open record is sent if no more lines come: after `grace` if it ends where
    /// the file's complete lines end and looks complete, otherwise after `timeout`. `None`
    /// without an open record.
    fn flush_due_at(&self, timeout: Duration, grace: Duration) -> Option<Instant> {
        if !self.records.has_open_record() {
            return None;
        }
        let line_unfinished = self.reader.read_offset() > self.reader.complete_lines_end();
        let wait = if line_unfinished || self.records.open_record_looks_unfinished() {
            timeout
        } else {
            grace
        };
        Some(self.last_data_at + wait)
    }

    /// How the lines of a read starting now were written: live if the last read reached the
    /// end of the file and its newest byte is under `LIVE_LINE_AGE` old (so the new lines
    /// were appended since, a moment ago); otherwise a backlog.
    fn line_time(&self, read_at: Timestamp) -> LineTime {
        match self.modified {
            Some(modified) if self.at_end && read_at.duration_since(modified) < LIVE_LINE_AGE => {
                LineTime::Live { read_at }
            }
            modified => LineTime::Backlog {
                file_modified: modified.unwrap_or(read_at),
            },
        }
    }
}

struct RetiredStream {
    stream: Arc<StreamInfo>,
    first_line_hash: u64,
    /// End of the last complete line read: where a copy continues.
    resume_offset: u64,
    /// The last bytes read and where they ended, to recognise a copy.
    recent: Vec<u8>,
    read_offset: u64,
    retired_at: Instant,
}

impl Tailer {
    /// Creates a tailer for `config`, which must have been validated.
    pub fn new(config: LogsConfig, context: TailerContext) -> Tailer {
        Tailer {
            paths: PathMatcher::new(&config.paths, &config.exclude),
            multiline_timeout: config.multiline_timeout(),
            settled_record_grace: SETTLED_RECORD_GRACE.min(config.multiline_timeout()),
            next_flush_at: None,
            release_after: config.release_after(),
            close_inactive: config.close_inactive(),
            config,
            context,
            files: HashMap::new(),
            path_index: HashMap::new(),
            retired: Vec::new(),
            copies: HashMap::new(),
            lineage: HashMap::new(),
            open_keys: HashSet::new(),
            by_first_line: HashMap::new(),
            waiting_for_descriptor: VecDeque::new(),
            discovery_deferred: false,
            reported_pending_deletion: 0,
            reported_bytes_behind: 0,
        }
    }

    /// Tails until `shutdown`, then closes every open record and returns.
    pub fn run(mut self, shutdown: CancellationToken) {
        let (wake_sender, wakes) = std_mpsc::channel::<Vec<PathBuf>>();
        let watcher = self.watch(wake_sender);
        let full_scan_interval = match &watcher {
            Some(_) => self.config.poll_interval() * SCANS_PER_POLL_WITH_NOTIFY,
            None => self.config.poll_interval(),
        };
        tracing::info!(paths = ?self.config.paths, notifications = watcher.is_some(), ?full_scan_interval, "tailing");
        let mut next_full_scan = Instant::now();
        while !shutdown.is_cancelled() {
            let mut changed = HashSet::new();
            let wake_at = [self.next_descriptor_free_at(), self.next_flush_at.take()]
                .into_iter()
                .flatten()
                .fold(next_full_scan, Instant::min);
            let timeout = TICK.min(wake_at.saturating_duration_since(Instant::now()));
            if let Ok(paths) = wakes.recv_timeout(timeout) {
                changed.extend(paths);
                while let Ok(paths) = wakes.try_recv() {
                    changed.extend(paths);
                }
            }
            let result = if Instant::now() >= next_full_scan {
                let result = self.full_scan();
                next_full_scan = Instant::now() + full_scan_interval;
                result
            } else {
                self.handle_changes(&changed)
                    .and_then(|()| self.discover_waiting())
            };
            if result.is_err() {
                return;
            }
        }
        let keys: Vec<FileKey> = self.files.keys().copied().collect();
        for key in keys {
            let file = self.files.get_mut(&key).expect("key listed above");
            if send_flushed(&self.context.records, file, false).is_err() {
                return;
            }
        }
    }

    /// Starts file system notifications for the directories the globs cover. Returns `None`
    /// (and the full scan becomes the only way to notice changes) where they are unavailable,
    /// for example when inotify's limits are exhausted.
    fn watch(&self, wakes: std_mpsc::Sender<Vec<PathBuf>>) -> Option<notify::RecommendedWatcher> {
        if !self.config.watch {
            return None;
        }
        let handler = move |event: notify::Result<notify::Event>| {
            // Opening, reading and closing files (our own reads too) say nothing new; waking
            // on them would make the agent chase its own tail.
            if let Ok(event) = event
                && !matches!(event.kind, notify::EventKind::Access(_))
            {
                let _ = wakes.send(event.paths);
            }
        };
        let mut watcher = match notify::recommended_watcher(handler) {
            Ok(watcher) => watcher,
            Err(error) => {
                tracing::warn!(%error, "file notifications unavailable; polling instead");
                return None;
            }
        };
        for (dir, recursive) in self.paths.watch_dirs() {
            let mode = if recursive {
                RecursiveMode::Recursive
            } else {
                RecursiveMode::NonRecursive
            };
            if let Err(error) = watcher.watch(&dir, mode) {
                tracing::warn!(dir = %dir.display(), %error, "cannot watch directory; polling instead");
                return None;
            }
        }
        Some(watcher)
    }

    /// Looks at every followed file and every file the globs match now.
    fn full_scan(&mut self) -> Result<(), ShipperGone> {
        let keys: Vec<FileKey> = self.files.keys().copied().collect();
        for key in keys {
            self.process_file(key)?;
        }
        let listed = self.paths.list_files();
        let mut seen = HashSet::new();
        // The listing is the whole truth about new files: it replaces what waited.
        self.waiting_for_descriptor.clear();
        self.discovery_deferred = false;
        // Files that resume their own checkpoint first, so that a copy of one of them is
        // recognised as a copy whatever the order of names.
        let any_new = listed
            .iter()
            .any(|path| !self.path_index.contains_key(path));
        let checkpointed_paths = if any_new {
            self.context.checkpoints.paths()
        } else {
            HashSet::new()
        };
        for phase in [Discovery::OwnCheckpointOnly, Discovery::Any] {
            for path in &listed {
                let followed = self.path_index.contains_key(path);
                if phase == Discovery::OwnCheckpointOnly
                    && !followed
                    && !checkpointed_paths.contains(path)
                {
                    continue;
                }
                // Without a free descriptor, new files wait for one, in this order.
                if self.discovery_deferred && !followed {
                    self.waiting_for_descriptor.push_back((path.clone(), phase));
                    continue;
                }
                if let Some(key) = self.discover_as(path, phase)? {
                    seen.insert(key);
                }
                if self.discovery_deferred && !followed {
                    self.waiting_for_descriptor.push_back((path.clone(), phase));
                }
            }
        }
        self.copies.retain(|key, _| seen.contains(key));
        // `start_at` is for the files there at the first start; later files are new.
        self.context.first_start = false;
        let release_after = self.release_after;
        self.retired
            .retain(|retired| retired.retired_at.elapsed() < release_after);
        self.report_gauges();
        Ok(())
    }

    /// Handles notified paths, and the files waiting on a timer (open records, detached).
    fn handle_changes(&mut self, changed: &HashSet<PathBuf>) -> Result<(), ShipperGone> {
        let mut keys: HashSet<FileKey> = changed
            .iter()
            .filter_map(|path| self.path_index.get(path).copied())
            .collect();
        keys.extend(
            self.files
                .iter()
                .filter(|(_, file)| file.records.has_open_record() || file.detached_since.is_some())
                .map(|(key, _)| *key),
        );
        for key in keys {
            self.process_file(key)?;
        }
        for path in changed {
            if !self.path_index.contains_key(path) && self.paths.matches(path) && path.is_file() {
                self.discovery_deferred = false;
                self.discover(path)?;
                if self.discovery_deferred {
                    self.waiting_for_descriptor
                        .push_back((path.clone(), Discovery::Any));
                }
            }
        }
        if !changed.is_empty() {
            self.report_gauges();
        }
        Ok(())
    }

    /// Opens the new files that waited for a descriptor, as many as descriptors are free.
    fn discover_waiting(&mut self) -> Result<(), ShipperGone> {
        if self.waiting_for_descriptor.is_empty() {
            return Ok(());
        }
        self.discovery_deferred = false;
        while let Some((path, phase)) = self.waiting_for_descriptor.pop_front() {
            if self.path_index.contains_key(&path) {
                continue;
            }
            self.discover_as(&path, phase)?;
            if self.discovery_deferred {
                self.waiting_for_descriptor.push_front((path, phase));
                break;
            }
        }
        self.report_gauges();
        Ok(())
    }

    /// When a descriptor may be free for a waiting new file: when the first open record of
    /// an open file is due (a file is closed only once its records are sent). `None` when
    /// no file waits, or no open record is due.
    fn next_descriptor_free_at(&self) -> Option<Instant> {
        if self.waiting_for_descriptor.is_empty() {
            return None;
        }
        self.open_keys
            .iter()
            .filter_map(|key| self.files.get(key))
            .filter_map(|file| file.flush_due_at(self.multiline_timeout, self.settled_record_grace))
            .min()
    }

    /// Reads new data of one followed file and applies its timers.
    fn process_file(&mut self, key: FileKey) -> Result<(), ShipperGone> {
        let multiline_timeout = self.multiline_timeout;
        let settled_record_grace = self.settled_record_grace;
        let release_after = self.release_after;
        let Some(file) = self.files.get_mut(&key) else {
            return Ok(());
        };
        if file.reader.file().is_none() && !self.reopen_if_changed(key)? {
            // Still closed (or released): acknowledgements may have arrived meanwhile.
            if self.files.contains_key(&key) {
                self.save_acked_offset(key);
            }
            return Ok(());
        }
        let file = self.files.get_mut(&key).expect("followed");
        let open_file = file.reader.file().expect("opened above");
        let metadata = open_file.metadata().ok();
        let size = metadata.as_ref().map_or(0, |metadata| metadata.len());
        let modified = metadata
            .and_then(|metadata| metadata.modified().ok())
            .and_then(|modified| Timestamp::try_from(modified).ok());
        // Truncated, or truncated and written to the same length or past it again between two
        // looks (copytruncate under load): the bytes just read are no longer where they were.
        let replaced = size < file.reader.read_offset()
            || !holds_bytes_at(
                open_file,
                file.reader.recent_bytes(),
                file.reader.read_offset(),
            );
        if replaced {
            tracing::info!(path = %file.path.display(), size, read_offset = file.reader.read_offset(), "file was truncated, reading it again from its start");
            let path = file.path.clone();
            self.retire(key)?;
            self.discover(&path)?;
            return Ok(());
        }
        file.size = size;
        file.modified = modified;
        read_new_lines(file, &self.context)?;
        if file.detached_since.is_none() && !path_leads_to(&file.path, key) {
            tracing::info!(path = %file.path.display(), "file was renamed away or deleted; reading it to its end");
            file.detached_since = Some(Instant::now());
            // The path may lead to a new file now: let discovery look at it.
            let path = file.path.clone();
            if self.path_index.get(&path) == Some(&key) {
                self.path_index.remove(&path);
            }
        }
        let flush_due = file
            .flush_due_at(multiline_timeout, settled_record_grace)
            .is_some_and(|due| Instant::now() >= due);
        if flush_due {
            send_flushed(&self.context.records, file, false)?;
        }
        let quiet = file.last_data_at.elapsed() >= multiline_timeout;
        self.save_acked_offset(key);
        let file = self.files.get(&key).expect("still followed");
        // The loop wakes when this record is due, not at its next tick: a complete record
        // waits only its grace.
        if let Some(due) = file.flush_due_at(multiline_timeout, settled_record_grace) {
            self.next_flush_at = Some(self.next_flush_at.map_or(due, |next| next.min(due)));
        }
        if let Some(detached_since) = file.detached_since {
            let drained = file.at_end && !file.records.has_open_record() && quiet;
            let quiet_long_enough =
                file.last_data_at.elapsed() >= multiline_timeout.max(Duration::from_secs(1));
            if (drained && quiet_long_enough) || detached_since.elapsed() >= release_after {
                return self.release(key);
            }
        }
        self.close_if_idle(key);
        Ok(())
    }

    /// Opens a file closed for being idle again if it changed, as far as its path shows.
    /// Returns whether it is open now; releases it if its path no longer leads to it.
    fn reopen_if_changed(&mut self, key: FileKey) -> Result<bool, ShipperGone> {
        let file = self.files.get(&key).expect("followed");
        let metadata = match std::fs::metadata(&file.path) {
            Ok(metadata) if (metadata.dev(), metadata.ino()) == key => metadata,
            _ => {
                tracing::info!(path = %file.path.display(), "idle file is gone; releasing it");
                self.release(key)?;
                return Ok(false);
            }
        };
        let same_size_and_time = metadata.len() == file.reader.read_offset()
            && metadata.modified().ok() == file.modified_when_closed;
        // A rewrite to the same length within the clock's tick keeps size and time: the
        // bytes before the read offset tell (one short read, on full scans only).
        let unchanged = same_size_and_time
            && open_same_file(&file.path, key).is_some_and(|peek| {
                holds_bytes_at(&peek, file.reader.recent_bytes(), file.reader.read_offset())
            });
        if unchanged || !self.make_room(key) {
            return Ok(false);
        }
        let file = self.files.get_mut(&key).expect("followed");
        let reopened = match open_same_file(&file.path, key) {
            Some(reopened) => file.reader.reopen(reopened),
            None => Err(io::Error::other("the path now leads to another file")),
        };
        match reopened {
            Ok(()) => {
                self.note_opened(key);
                Ok(true)
            }
            Err(error) => {
                tracing::warn!(path = %file.path.display(), %error, "cannot reopen idle file, will retry");
                Ok(false)
            }
        }
    }

    /// Closes the descriptor of a file read to its end and quiet for `close_inactive`; it is
    /// opened again when it changes. This bounds descriptors however many files match.
    fn close_if_idle(&mut self, key: FileKey) {
        let close_inactive = self.close_inactive;
        let file = self.files.get(&key).expect("followed");
        if file.can_close() && file.last_data_at.elapsed() >= close_inactive {
            self.close_descriptor(key);
        }
    }

    /// Makes sure one more descriptor may be opened: below `max_open_files`, or by closing
    /// the longest-quiet file that can be closed (not `for_key`). Returns false when every
    /// open file is still needed; the caller tries again later.
    fn make_room(&mut self, for_key: FileKey) -> bool {
        if self.open_keys.len() < self.config.max_open_files {
            return true;
        }
        // Only open files can be closed: look at those, not at every file followed.
        let quietest = self
            .open_keys
            .iter()
            .filter(|key| **key != for_key)
            .filter_map(|key| Some((*key, self.files.get(key)?)))
            .filter(|(_, file)| file.can_close())
            .min_by_key(|(_, file)| file.last_data_at)
            .map(|(key, _)| key);
        match quietest {
            Some(key) => {
                self.close_descriptor(key);
                true
            }
            None => false,
        }
    }

    fn close_descriptor(&mut self, key: FileKey) {
        let file = self.files.get_mut(&key).expect("followed");
        file.modified_when_closed = file
            .reader
            .file()
            .and_then(|open_file| open_file.metadata().ok())
            .and_then(|metadata| metadata.modified().ok());
        file.reader.close();
        self.note_closed(key);
    }

    fn note_opened(&mut self, key: FileKey) {
        let newly_open = self.open_keys.insert(key);
        debug_assert!(newly_open, "a file is opened once");
        self.context.metrics.files_open.inc();
    }

    fn note_closed(&mut self, key: FileKey) {
        let was_open = self.open_keys.remove(&key);
        debug_assert!(was_open, "only an open file is closed");
        self.context.metrics.files_open.dec();
    }

    /// Computes the guard for the newest acknowledged offset and saves the checkpoint.
    fn save_acked_offset(&mut self, key: FileKey) {
        let file = self.files.get_mut(&key).expect("followed");
        let Some(acked) = self.context.checkpoints.unsaved_ack(file.stream.id) else {
            return;
        };
        file.acked_offset = acked;
        let guard = match file.reader.file() {
            Some(open_file) => guard_hash(open_file, acked, GUARD_BYTES),
            // Closed while idle: the bytes before the read offset are still in memory.
            None => Ok(recent_guard(
                file.reader.recent_bytes(),
                file.reader.read_offset(),
                acked,
            )),
        };
        match guard {
            Ok(Some(guard)) => {
                let guard_len = acked.min(GUARD_BYTES as u64) as u32;
                self.context.checkpoints.advance(
                    file.stream.id,
                    acked,
                    guard,
                    guard_len,
                    &file.path,
                );
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(path = %file.path.display(), %error, "cannot read checkpoint guard")
            }
        }
    }

    /// Stops following a detached file after closing its open record.
    fn release(&mut self, key: FileKey) -> Result<(), ShipperGone> {
        let file = self.stop_following(key)?;
        tracing::info!(path = %file.path.display(), "released file that is gone");
        Ok(())
    }

    /// Ends the stream of a file whose content was replaced in place; a copy of the old
    /// content (copytruncate) may still continue it.
    fn retire(&mut self, key: FileKey) -> Result<(), ShipperGone> {
        let file = self.stop_following(key)?;
        self.lineage
            .insert((key.0, key.1, file.fingerprint.birth_nanos), file.stream.id);
        self.retired.push(RetiredStream {
            stream: Arc::clone(&file.stream),
            first_line_hash: file.fingerprint.first_line_hash,
            resume_offset: file.reader.complete_lines_end(),
            recent: file.reader.recent_bytes().to_vec(),
            read_offset: file.reader.read_offset(),
            retired_at: Instant::now(),
        });
        // A copy skipped while the original was followed may now hold the only rest of it.
        let retired = self.retired.last().expect("pushed above");
        let continuations: Vec<(FileKey, PathBuf)> = self
            .copies
            .iter()
            .filter(|(_, (path, stream))| {
                *stream == file.stream.id
                    && File::open(path).is_ok_and(|copy| {
                        holds_bytes_at(&copy, &retired.recent, retired.read_offset)
                    })
            })
            .map(|(key, (path, _))| (*key, path.clone()))
            .collect();
        for (key, path) in continuations {
            self.copies.remove(&key);
            self.discover(&path)?;
        }
        Ok(())
    }

    /// Closes a followed file's open record, drops the file and forgets its checkpoint: the
    /// file no longer holds the stream where a restarted agent would look for it.
    fn stop_following(&mut self, key: FileKey) -> Result<TailedFile, ShipperGone> {
        let mut file = self.files.remove(&key).expect("followed");
        self.path_index.retain(|_, indexed| *indexed != key);
        let first_line_hash = file.fingerprint.first_line_hash;
        if let Some(keys) = self.by_first_line.get_mut(&first_line_hash) {
            keys.retain(|indexed| *indexed != key);
            if keys.is_empty() {
                self.by_first_line.remove(&first_line_hash);
            }
        }
        if file.reader.file().is_some() {
            self.note_closed(key);
        }
        // The file is let go for good: nothing of it may wait any longer.
        send_flushed(&self.context.records, &mut file, true)?;
        self.context.checkpoints.forget(file.stream.id);
        Ok(file)
    }

    /// Starts following the file at `path` if it is new. Returns its key if it exists.
    fn discover(&mut self, path: &Path) -> Result<Option<FileKey>, ShipperGone> {
        self.discover_as(path, Discovery::Any)
    }

    fn discover_as(
        &mut self,
        path: &Path,
        phase: Discovery,
    ) -> Result<Option<FileKey>, ShipperGone> {
        // A followed file at its path: `process_file` notices when the path changes hands.
        if let Some(&key) = self.path_index.get(path) {
            return Ok(Some(key));
        }
        let Ok(metadata) = std::fs::metadata(path) else {
            return Ok(None);
        };
        let key = (metadata.dev(), metadata.ino());
        if let Some(file) = self.files.get_mut(&key) {
            if file.path != path {
                // Renamed within the globs: the same file, still followed.
                self.path_index.remove(&file.path);
                path.clone_into(&mut file.path);
                self.path_index.insert(path.to_owned(), key);
            }
            file.detached_since = None;
            return Ok(Some(key));
        }
        if self.copies.contains_key(&key) {
            return Ok(Some(key));
        }
        if !self.make_room(key) {
            self.discovery_deferred = true;
            return Ok(Some(key));
        }
        match self.open(path, phase) {
            Ok(Some(opened)) => {
                tracing::info!(path = %path.display(), stream = %format_args!("{:016x}", opened.stream.id), offset = opened.reader.read_offset(), "following file");
                self.note_opened(key);
                self.path_index.insert(path.to_owned(), key);
                self.by_first_line
                    .entry(opened.fingerprint.first_line_hash)
                    .or_default()
                    .push(key);
                self.files.insert(key, opened);
                self.process_file(key)?;
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "cannot open file, will retry")
            }
        }
        Ok(Some(key))
    }

    /// Opens a new file and decides which stream it is and where to start reading.
    /// Returns `None` while it has no complete first line, or when it is a copy of a file
    /// already followed.
    fn open(&mut self, path: &Path, phase: Discovery) -> io::Result<Option<TailedFile>> {
        let file = File::open(path)?;
        let Some(fingerprint) = FileFingerprint::read(&file)? else {
            return Ok(None);
        };
        let size = file.metadata()?.len();
        let Some((stream_id, offset)) = self.identify(path, &file, &fingerprint, size, phase)?
        else {
            return Ok(None);
        };
        let guard = match offset {
            0 => (0, 0),
            _ => {
                let guard = guard_hash(&file, offset, GUARD_BYTES)?.unwrap_or_default();
                (guard, offset.min(GUARD_BYTES as u64) as u32)
            }
        };
        self.context.checkpoints.track(Checkpoint {
            stream_id,
            path: path.to_owned(),
            dev: fingerprint.dev,
            inode: fingerprint.inode,
            birth_nanos: fingerprint.birth_nanos,
            first_line_hash: fingerprint.first_line_hash,
            offset,
            guard_hash: guard.0,
            guard_len: guard.1,
        });
        let base_id = fingerprint.stream_id(&self.context.node.cluster, &self.context.node.node);
        if stream_id != base_id {
            // This file's stream cannot be found again from the file alone (it is derived or
            // continued): save it now, before any of its records is sent.
            if let Err(error) = self.context.checkpoints.persist() {
                tracing::error!(%error, "cannot save the checkpoint of a continued stream");
            }
        }
        let stream = Arc::new(StreamInfo {
            id: stream_id,
            checkpoint_id: stream_id,
            cluster: self.context.node.cluster.clone(),
            node: self.context.node.node.clone(),
            role: self.config.role_for(path),
            source: path.display().to_string(),
        });
        let new_assembler = || {
            RecordAssembler::new(
                self.config.line_parser().expect("validated when loaded"),
                self.context.timezone.clone(),
                self.config.max_line_bytes,
            )
        };
        let records = match self.config.format {
            LineFormat::Cri => FileRecords::cri(&stream, self.config.max_line_bytes, new_assembler),
            _ => FileRecords::plain(Arc::clone(&stream), new_assembler()),
        };
        Ok(Some(TailedFile {
            path: path.to_owned(),
            fingerprint,
            stream,
            reader: LineReader::new(file, offset, self.config.max_line_bytes)?,
            records,
            last_data_at: Instant::now(),
            at_end: false,
            modified: None,
            detached_since: None,
            acked_offset: offset,
            size,
            modified_when_closed: None,
        }))
    }

    /// Which stream a newly opened file continues or starts, and from which offset; `None`
    /// for a copy of a file already followed.
    fn identify(
        &mut self,
        path: &Path,
        file: &File,
        fingerprint: &FileFingerprint,
        size: u64,
        phase: Discovery,
    ) -> io::Result<Option<(u64, u64)>> {
        let key = (fingerprint.dev, fingerprint.inode);
        let holds_checkpoint = |saved: &Checkpoint| -> io::Result<bool> {
            if saved.offset == 0 {
                return Ok(true);
            }
            Ok(size >= saved.offset
                && guard_hash(file, saved.offset, saved.guard_len as usize)?
                    == Some(saved.guard_hash))
        };
        // 1. A checkpoint of this very file: resume if the bytes before it are unchanged.
        let own_checkpoint = self.context.checkpoints.find(fingerprint);
        if let Some(saved) = &own_checkpoint
            && holds_checkpoint(saved)?
        {
            return Ok(Some((saved.stream_id, saved.offset)));
        }
        if phase == Discovery::OwnCheckpointOnly {
            return Ok(None);
        }
        // 1b. A checkpoint of the same content elsewhere whose stream no file continues: the
        // file was moved, or this is the copy of a file truncated while the agent was down.
        // Only bytes past the first line are evidence of the same content.
        for saved in self
            .context
            .checkpoints
            .find_by_content(fingerprint.first_line_hash)
        {
            let continued = self
                .files
                .values()
                .any(|followed| followed.stream.id == saved.stream_id);
            let evidence = saved.offset > fingerprint.first_line_len;
            if !continued && evidence && holds_checkpoint(&saved)? {
                tracing::info!(path = %path.display(), offset = saved.offset, "file continues a checkpointed stream of another file");
                return Ok(Some((saved.stream_id, saved.offset)));
            }
        }
        // 2. A copy of a file whose original was truncated (copytruncate): continue there.
        if let Some(position) = self.retired.iter().position(|retired| {
            retired.first_line_hash == fingerprint.first_line_hash
                && holds_bytes_at(file, &retired.recent, retired.read_offset)
        }) {
            let retired = self.retired.swap_remove(position);
            tracing::info!(path = %path.display(), offset = retired.resume_offset, "continuing a truncated file's stream in its copy");
            return Ok(Some((retired.stream.id, retired.resume_offset)));
        }
        let base_id = fingerprint.stream_id(&self.context.node.cluster, &self.context.node.node);
        // 3. The same bytes as a followed file, as far as it was read: a copy of it.
        let same_first_line = self
            .by_first_line
            .get(&fingerprint.first_line_hash)
            .into_iter()
            .flatten()
            .filter_map(|key| self.files.get(key));
        for original in same_first_line {
            let reopened;
            let original_file = match original.reader.file() {
                Some(open_file) => open_file,
                None => {
                    let original_key = (original.fingerprint.dev, original.fingerprint.inode);
                    let Some(opened) = open_same_file(&original.path, original_key) else {
                        continue;
                    };
                    reopened = opened;
                    &reopened
                }
            };
            let compared = original.reader.read_offset().min(size);
            if crate::fingerprint::same_prefix(original_file, file, compared)? {
                tracing::info!(path = %path.display(), original = %original.path.display(), "file is a copy of a followed file; not reading it");
                self.copies
                    .insert(key, (path.to_owned(), original.stream.id));
                return Ok(None);
            }
        }
        // 4. New content in a file whose earlier content was replaced.
        if let Some(saved) = own_checkpoint {
            tracing::info!(path = %path.display(), "file changed where its checkpoint points; reading it as new content");
            return Ok(Some((
                derived_stream_id(saved.stream_id, "rewritten", fingerprint.first_line_hash),
                0,
            )));
        }
        if let Some(&previous) = self.lineage.get(&(key.0, key.1, fingerprint.birth_nanos)) {
            return Ok(Some((
                derived_stream_id(previous, "rewritten", fingerprint.first_line_hash),
                0,
            )));
        }
        // 5. A new file.
        let offset = match (self.config.start_at, self.context.first_start) {
            (StartAt::End, true) => last_line_end(file, size)?,
            _ => 0,
        };
        Ok(Some((base_id, offset)))
    }

    /// Adds this tailer's share of the pending-deletion and bytes-behind gauges.
    fn report_gauges(&mut self) {
        let pending_deletion = self
            .files
            .values()
            .filter(|file| file.detached_since.is_some())
            .count() as i64;
        let bytes_behind: i64 = self
            .files
            .values()
            .map(|file| file.size.saturating_sub(file.acked_offset) as i64)
            .sum();
        let metrics = &self.context.metrics;
        metrics
            .files_pending_deletion
            .inc_by(pending_deletion - self.reported_pending_deletion);
        metrics
            .bytes_behind
            .inc_by(bytes_behind - self.reported_bytes_behind);
        self.reported_pending_deletion = pending_deletion;
        self.reported_bytes_behind = bytes_behind;
    }
}

/// Reads what was appended to `file` (up to the read budget) and sends the records it closes.
fn read_new_lines(file: &mut TailedFile, context: &TailerContext) -> Result<(), ShipperGone> {
    let time = file.line_time(Timestamp::now());
    let metrics = &context.metrics;
    let shipper_gone = std::cell::Cell::new(false);
    let records = &mut file.records;
    // Sized once: a chunk grown record by record is reallocated eight times on its way.
    let new_chunk = || RecordChunk::with_capacity(CHUNK_RECORDS);
    let mut chunk = new_chunk();
    let mut on_closed = |closed: Closed| {
        chunk.push(log_record(closed));
        if chunk.len() >= CHUNK_RECORDS && !shipper_gone.get() {
            let full = std::mem::replace(&mut chunk, new_chunk());
            shipper_gone.set(send_chunk(&context.records, full).is_err());
        }
    };
    let (mut truncated_lines, mut invalid_utf8_lines) = (0, 0);
    let outcome = file.reader.read_lines(READ_BUDGET_BYTES, |line| {
        truncated_lines += u64::from(line.truncated);
        invalid_utf8_lines += u64::from(line.invalid_utf8);
        if let Err(error) = records.push(&line, time, &mut on_closed) {
            metrics.lines_malformed.inc();
            tracing::debug!(%error, "skipping a malformed container runtime line");
        }
        !shipper_gone.get()
    });
    records.end_read(&mut on_closed);
    if !shipper_gone.get() && !chunk.is_empty() {
        shipper_gone.set(send_chunk(&context.records, chunk).is_err());
    }
    match outcome {
        Ok(outcome) => {
            metrics.lines_read.inc_by(outcome.lines);
            metrics.lines_truncated.inc_by(truncated_lines);
            metrics.invalid_utf8_lines.inc_by(invalid_utf8_lines);
            metrics.bytes_read.inc_by(outcome.bytes);
            file.at_end = (outcome.bytes as usize) < READ_BUDGET_BYTES;
            if outcome.bytes > 0 {
                file.last_data_at = Instant::now();
            }
        }
        Err(error) => {
            tracing::warn!(path = %file.path.display(), %error, "cannot read file, will retry")
        }
    }
    if shipper_gone.get() {
        Err(ShipperGone)
    } else {
        Ok(())
    }
}

/// Closes the file's open records and sends them (`last`: the file is let go for good).
fn send_flushed(
    records: &mpsc::Sender<RecordChunk>,
    file: &mut TailedFile,
    last: bool,
) -> Result<(), ShipperGone> {
    let chunk: RecordChunk = file
        .records
        .flush(file.reader.complete_lines_end(), last)
        .into_iter()
        .map(log_record)
        .collect();
    if chunk.is_empty() {
        return Ok(());
    }
    send_chunk(records, chunk)
}

fn log_record(closed: Closed) -> LogRecord {
    let Closed {
        stream,
        record,
        end_offset,
    } = closed;
    LogRecord {
        stream,
        seq: record.offset_bytes,
        end_offset,
        ts: record.ts,
        level: record.level,
        logger: record.logger,
        message: record.message,
        truncated: record.truncated,
        ts_inferred: record.ts_inferred,
    }
}

fn send_chunk(records: &mpsc::Sender<RecordChunk>, chunk: RecordChunk) -> Result<(), ShipperGone> {
    records.blocking_send(chunk).map_err(|_| ShipperGone)
}

/// Opens `path` if it still leads to the file `key`.
fn open_same_file(path: &Path, key: FileKey) -> Option<File> {
    let file = File::open(path).ok()?;
    let metadata = file.metadata().ok()?;
    ((metadata.dev(), metadata.ino()) == key).then_some(file)
}

fn path_leads_to(path: &Path, key: FileKey) -> bool {
    std::fs::metadata(path).is_ok_and(|metadata| (metadata.dev(), metadata.ino()) == key)
}

/// The guard of `offset` from the bytes last read, if they end there and cover the guard.
fn recent_guard(recent: &[u8], read_offset: u64, offset: u64) -> Option<u64> {
    let needed = offset.min(GUARD_BYTES as u64) as usize;
    (offset == read_offset && recent.len() >= needed)
        .then(|| xxhash_rust::xxh3::xxh3_64(&recent[recent.len() - needed..]))
}

/// Tells whether `file` holds `bytes` just before `end_offset`.
fn holds_bytes_at(file: &File, bytes: &[u8], end_offset: u64) -> bool {
    debug_assert!(bytes.len() <= RECENT_BYTES);
    let Some(start) = end_offset.checked_sub(bytes.len() as u64) else {
        return false;
    };
    let mut found = vec![0u8; bytes.len()];
    file.read_exact_at(&mut found, start).is_ok() && found == bytes
}

/// The offset just after the last newline of a file of `size` bytes (0 if it has none).
fn last_line_end(file: &File, size: u64) -> io::Result<u64> {
    let mut end = size;
    let mut buffer = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(buffer.len() as u64);
        let window = &mut buffer[..(end - start) as usize];
        file.read_exact_at(window, start)?;
        if let Some(newline) = window.iter().rposition(|&byte| byte == b'\n') {
            return Ok(start + newline as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

#[cfg(test)]
mod tests;
