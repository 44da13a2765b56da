//! Follows the files of one `[[logs]]` table: finds them by glob, reads new bytes, splits
//! lines, groups them into records and hands records to the shipper.
//!
//! Runs on its own thread (file reads block). Sending blocks when the shipper is full, which
//! is the backpressure: reading pauses, nothing is dropped.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::LogsConfig;
use crate::fingerprint::FileFingerprint;
use crate::multiline::{AssembledRecord, RecordAssembler};
use crate::record::{LogRecord, StreamInfo};

/// Bytes read from one file before the others get a turn.
const READ_CHUNK_BYTES: usize = 64 * 1024;
const MAX_CHUNKS_PER_TURN: usize = 16;

/// Where a tailer's records come from: the node and cluster it runs on.
#[derive(Debug, Clone)]
pub struct NodeIdentity {
    pub cluster: String,
    pub node: String,
}

/// Tails every file matching one `[[logs]]` table.
pub struct Tailer {
    config: LogsConfig,
    globs: GlobSet,
    node: NodeIdentity,
    timezone: TimeZone,
    records: mpsc::Sender<LogRecord>,
    files: HashMap<(u64, u64), TailedFile>,
}

/// The channel to the shipper is closed: the agent is stopping.
#[derive(Debug)]
struct ShipperGone;

struct TailedFile {
    path: PathBuf,
    file: File,
    stream: Arc<StreamInfo>,
    /// Offset of the next byte to read.
    read_offset: u64,
    /// Bytes of a line whose newline has not arrived yet, and where that line starts.
    partial_line: Vec<u8>,
    partial_line_offset: u64,
    partial_line_truncated: bool,
    assembler: RecordAssembler,
    last_data_at: Instant,
    /// The path no longer leads to this file (renamed away or deleted).
    detached: bool,
}

impl Tailer {
    /// Creates a tailer for `config`; the configuration must have been validated.
    pub fn new(
        config: LogsConfig,
        node: NodeIdentity,
        timezone: TimeZone,
        records: mpsc::Sender<LogRecord>,
    ) -> Tailer {
        let mut builder = GlobSetBuilder::new();
        for pattern in &config.paths {
            let glob = GlobBuilder::new(pattern)
                .literal_separator(true)
                .build()
                .expect("globs are validated when the configuration is loaded");
            builder.add(glob);
        }
        Tailer {
            globs: builder.build().expect("a set of valid globs builds"),
            config,
            node,
            timezone,
            records,
            files: HashMap::new(),
        }
    }

    /// Tails until `shutdown`, then closes every open record and returns.
    pub fn run(mut self, shutdown: CancellationToken) {
        let poll_interval = self.config.poll_interval();
        tracing::info!(paths = ?self.config.paths, "tailing");
        while !shutdown.is_cancelled() {
            if self.poll_once().is_err() {
                return;
            }
            sleep_unless_cancelled(poll_interval, &shutdown);
        }
        for file in self.files.values_mut() {
            if let Some(record) = file.assembler.flush() {
                let _ = send(&self.records, file, record);
            }
        }
    }

    /// Finds new files, reads what was appended, and closes records of quiet files.
    fn poll_once(&mut self) -> Result<(), ShipperGone> {
        self.discover_files();
        let multiline_timeout = self.config.multiline_timeout();
        let keys: Vec<(u64, u64)> = self.files.keys().copied().collect();
        for key in keys {
            let file = self.files.get_mut(&key).expect("key listed above");
            if let Err(error) = read_new_data(file, &self.records, self.config.max_line_bytes) {
                match error {
                    ReadError::ShipperGone => return Err(ShipperGone),
                    ReadError::Io(error) => {
                        tracing::warn!(path = %file.path.display(), %error, "cannot read file, will retry");
                    }
                }
            }
            let quiet = file.last_data_at.elapsed() >= multiline_timeout;
            if quiet && let Some(record) = file.assembler.flush() {
                send(&self.records, file, record)?;
            }
            if quiet && file.detached {
                tracing::info!(path = %file.path.display(), "file is gone and read to its end, releasing it");
                self.files.remove(&key);
            }
        }
        Ok(())
    }

    fn discover_files(&mut self) {
        let mut seen = Vec::new();
        for path in expand_globs(&self.config.paths, &self.globs) {
            let Ok(metadata) = std::fs::metadata(&path) else {
                continue;
            };
            let key = (metadata.dev(), metadata.ino());
            seen.push(key);
            if self.files.contains_key(&key) {
                continue;
            }
            match self.open_file(&path) {
                Ok(Some(file)) => {
                    tracing::info!(path = %path.display(), stream = %format_args!("{:016x}", file.stream.id), "following new file");
                    self.files.insert(key, file);
                }
                Ok(None) => {} // no complete first line yet
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "cannot open file, will retry")
                }
            }
        }
        for (key, file) in &mut self.files {
            file.detached = !seen.contains(key) && !path_leads_to(&file.path, *key);
        }
    }

    fn open_file(&self, path: &Path) -> io::Result<Option<TailedFile>> {
        let file = File::open(path)?;
        let Some(fingerprint) = FileFingerprint::read(&file)? else {
            return Ok(None);
        };
        let stream = Arc::new(StreamInfo {
            id: fingerprint.stream_id(&self.node.cluster, &self.node.node),
            cluster: self.node.cluster.clone(),
            node: self.node.node.clone(),
            role: self.config.role,
            source: path.display().to_string(),
        });
        Ok(Some(TailedFile {
            path: path.to_owned(),
            file,
            stream,
            read_offset: 0,
            partial_line: Vec::new(),
            partial_line_offset: 0,
            partial_line_truncated: false,
            assembler: RecordAssembler::new(
                crate::format::LineParser::new(self.config.format, None, None)
                    .expect("preset formats need no regex"),
                self.timezone.clone(),
                self.config.max_line_bytes,
            ),
            last_data_at: Instant::now(),
            detached: false,
        }))
    }
}

enum ReadError {
    ShipperGone,
    Io(io::Error),
}

impl From<io::Error> for ReadError {
    fn from(error: io::Error) -> Self {
        ReadError::Io(error)
    }
}

impl From<ShipperGone> for ReadError {
    fn from(_: ShipperGone) -> Self {
        ReadError::ShipperGone
    }
}

/// Reads what was appended to `file` since the last call and sends the records it closes.
fn read_new_data(
    file: &mut TailedFile,
    records: &mpsc::Sender<LogRecord>,
    max_line_bytes: usize,
) -> Result<(), ReadError> {
    let mut chunk = vec![0u8; READ_CHUNK_BYTES];
    for _ in 0..MAX_CHUNKS_PER_TURN {
        let read = file.file.read(&mut chunk)?;
        if read == 0 {
            return Ok(());
        }
        file.last_data_at = Instant::now();
        let read_at = Timestamp::now();
        let mut line_start = 0;
        for newline in memchr_iter(&chunk[..read]) {
            append_partial(file, &chunk[line_start..newline], max_line_bytes);
            let line_offset = file.partial_line_offset;
            let line = std::mem::take(&mut file.partial_line);
            let truncated = std::mem::take(&mut file.partial_line_truncated);
            file.partial_line_offset = file.read_offset + newline as u64 + 1;
            line_start = newline + 1;
            let text = decode_line(&line);
            if let Some(record) = file
                .assembler
                .push_line(&text, line_offset, read_at, truncated)
            {
                send(records, file, record)?;
            }
        }
        append_partial(file, &chunk[line_start..read], max_line_bytes);
        file.read_offset += read as u64;
    }
    Ok(())
}

fn append_partial(file: &mut TailedFile, bytes: &[u8], max_line_bytes: usize) {
    let room = max_line_bytes.saturating_sub(file.partial_line.len());
    if bytes.len() > room {
        file.partial_line_truncated = true;
    }
    file.partial_line
        .extend_from_slice(&bytes[..bytes.len().min(room)]);
}

fn memchr_iter(bytes: &[u8]) -> impl Iterator<Item = usize> + '_ {
    bytes
        .iter()
        .enumerate()
        .filter_map(|(index, &byte)| (byte == b'\n').then_some(index))
}

/// Decodes a line without its line ending; invalid UTF-8 becomes U+FFFD.
fn decode_line(line: &[u8]) -> std::borrow::Cow<'_, str> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    String::from_utf8_lossy(line)
}

fn send(
    records: &mpsc::Sender<LogRecord>,
    file: &TailedFile,
    record: AssembledRecord,
) -> Result<(), ShipperGone> {
    let record = LogRecord {
        stream: Arc::clone(&file.stream),
        seq: record.offset_bytes,
        ts: record.ts,
        level: record.level,
        logger: record.logger,
        message: record.message,
        truncated: record.truncated,
    };
    records.blocking_send(record).map_err(|_| ShipperGone)
}

fn path_leads_to(path: &Path, key: (u64, u64)) -> bool {
    std::fs::metadata(path).is_ok_and(|metadata| (metadata.dev(), metadata.ino()) == key)
}

/// Lists the regular files matching `patterns`, walking only below each pattern's literal
/// directory prefix.
fn expand_globs(patterns: &[String], globs: &GlobSet) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for pattern in patterns {
        let (base, depth) = literal_base(pattern);
        walk(&base, depth, globs, &mut found);
    }
    found.sort();
    found.dedup();
    found
}

/// The directory before a pattern's first glob character, and how deep below it matches go.
fn literal_base(pattern: &str) -> (PathBuf, usize) {
    let mut base = PathBuf::new();
    let mut components = Path::new(pattern).components().peekable();
    while let Some(component) = components.peek() {
        let text = component.as_os_str().to_string_lossy();
        if text.contains(['*', '?', '[', '{']) {
            break;
        }
        base.push(component);
        components.next();
    }
    let rest: Vec<_> = components.collect();
    if rest.is_empty() {
        // No glob characters: the pattern is one file; walk its directory.
        let parent = base.parent().map(Path::to_path_buf).unwrap_or_default();
        return (parent, 1);
    }
    let depth = if pattern.contains("**") {
        usize::MAX
    } else {
        rest.len()
    };
    (base, depth)
}

fn walk(dir: &Path, depth: usize, globs: &GlobSet, found: &mut Vec<PathBuf>) {
    if depth == 0 {
        return;
    }
    let listing_dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let Ok(entries) = std::fs::read_dir(listing_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = if dir.as_os_str().is_empty() {
            PathBuf::from(entry.file_name())
        } else {
            entry.path()
        };
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        if file_type.is_dir() {
            walk(&path, depth - 1, globs, found);
        } else if globs.is_match(&path) && std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            found.push(path);
        }
    }
}

fn sleep_unless_cancelled(duration: Duration, shutdown: &CancellationToken) {
    let step = Duration::from_millis(50);
    let mut slept = Duration::ZERO;
    while slept < duration && !shutdown.is_cancelled() {
        let nap = step.min(duration - slept);
        std::thread::sleep(nap);
        slept += nap;
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn logs_config(paths: Vec<String>) -> LogsConfig {
        let text = format!("[[logs]]\npaths = {paths:?}\nmultiline_timeout = \"0s\"\n");
        crate::config::AgentConfig::parse(&text)
            .expect("valid")
            .logs
            .remove(0)
    }

    fn drain(receiver: &mut mpsc::Receiver<LogRecord>) -> Vec<LogRecord> {
        let mut records = Vec::new();
        while let Ok(record) = receiver.try_recv() {
            records.push(record);
        }
        records
    }

    #[test]
    fn reads_appends_and_splits_partial_lines_at_newlines() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("worker.log");
        let mut file = File::create(&path)?;
        let (sender, mut receiver) = mpsc::channel(100);
        let pattern = format!("{}/*.log", dir.path().display());
        let node = NodeIdentity {
            cluster: "c".into(),
            node: "n".into(),
        };
        let mut tailer = Tailer::new(logs_config(vec![pattern]), node, TimeZone::UTC, sender);

        file.write_all(
            b"2026-11-27 13:56:53,599 - distributed.worker - INFO - one\n2026-11-27 13:56:53,6",
        )?;
        tailer.poll_once().expect("shipper alive");
        file.write_all(b"00 - distributed.worker - WARNING - two\nprint\n")?;
        tailer.poll_once().expect("shipper alive");
        let records = drain(&mut receiver);
        let summary: Vec<(u64, &str, &str)> = records
            .iter()
            .map(|r| (r.seq, r.level.as_str(), r.message.as_str()))
            .collect();
        assert_eq!(
            summary,
            vec![
                (0, "INFO", "one"),
                (58, "WARNING", "two"),
                (119, "", "print")
            ]
        );
        assert_eq!(records[1].ts.to_string(), "2026-11-27T13:56:53.6Z");
        Ok(())
    }

    #[test]
    fn a_long_line_is_cut_and_reading_goes_on() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("a.log");
        let mut text = "x".repeat(200_000);
        text.push_str("\nnext line\n");
        std::fs::write(&path, "first\n".to_owned() + &text)?;
        let (sender, mut receiver) = mpsc::channel(100);
        let mut config = logs_config(vec![path.display().to_string()]);
        config.max_line_bytes = 1000;
        let node = NodeIdentity {
            cluster: "c".into(),
            node: "n".into(),
        };
        let mut tailer = Tailer::new(config, node, TimeZone::UTC, sender);
        tailer.poll_once().expect("shipper alive");
        let records = drain(&mut receiver);
        let lengths: Vec<(usize, bool)> = records
            .iter()
            .map(|r| (r.message.len(), r.truncated))
            .collect();
        assert_eq!(lengths, vec![(5, false), (1000, true), (9, false)]);
        Ok(())
    }

    #[test]
    fn literal_base_stops_at_the_first_glob_component() {
        assert_eq!(
            literal_base("/var/log/dask/*.log"),
            (PathBuf::from("/var/log/dask"), 1)
        );
        assert_eq!(
            literal_base("/var/log/*/w.log"),
            (PathBuf::from("/var/log"), 2)
        );
        assert_eq!(
            literal_base("/var/log/**/*.log").0,
            PathBuf::from("/var/log")
        );
        assert_eq!(
            literal_base("/var/log/one.log"),
            (PathBuf::from("/var/log"), 1)
        );
    }
}
