//! The collector's write-ahead log: every batch is appended and fsynced here before
//! it is acked, and only then handed to the index writer, in WAL order. Batches that arrive
//! while an fsync runs share the next one (group commit).
//!
//! The rule a reader must not miss: the index writer learns batches in exactly the order they
//! are in the WAL, so "committed up to position P" is one number, and every segment before
//! P's is safe to delete.

mod segment;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

pub use segment::{Frame, Recovered, WalPosition, read_range, recover, release_before};

use crate::batch::Batch;
use crate::error::{Error, Result};
use crate::index::writer::LogWriter;

/// A segment is closed and a new one started once it is this large.
const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// Most bytes written under one fsync; the rest wait for the next.
const GROUP_BYTES: usize = 16 * 1024 * 1024;
/// Batches waiting for the WAL thread before ingest waits.
const QUEUED_BATCHES: usize = 32;

/// When the WAL is fsynced (`[wal] fsync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Before every ack: an acked batch survives a power cut.
    Always,
    /// At most this long after a write; acks come after the write only, so a power cut (not a
    /// process crash) can lose up to this much acked data.
    Interval(Duration),
}

/// One batch to append.
struct Append {
    tenant: String,
    /// The batch as the agent sent it, encoded.
    encoded: Vec<u8>,
    /// The same batch as the stores take it, handed to the index writer once it is durable.
    batch: Batch,
    durable: oneshot::Sender<Result<()>>,
}

enum Command {
    Append(Append),
    Sync,
    Shutdown(oneshot::Sender<()>),
}

/// Appends batches to the WAL; cheap to clone.
#[derive(Clone)]
pub struct Wal {
    commands: mpsc::Sender<Command>,
    counters: Arc<WalCounters>,
}

/// What the WAL has done since start.
#[derive(Debug, Default)]
pub struct WalCounters {
    /// Batches logged.
    pub batches: AtomicU64,
    /// fsync calls on segments.
    pub fsyncs: AtomicU64,
}

impl Wal {
    /// Starts the WAL thread writing segments from `first_segment` on in `dir`, handing
    /// durable batches to `index`. Must be called inside a tokio runtime.
    pub fn start(
        dir: &Path,
        first_segment: u64,
        policy: FsyncPolicy,
        index: LogWriter,
    ) -> Result<Wal> {
        std::fs::create_dir_all(dir).map_err(|source| Error::CreateDir {
            path: dir.to_owned(),
            source,
        })?;
        let (commands, receiver) = mpsc::channel(QUEUED_BATCHES);
        let counters = Arc::new(WalCounters::default());
        let thread = WalThread {
            counters: Arc::clone(&counters),
            dir: dir.to_owned(),
            policy,
            index,
            segment: None,
            next_segment: first_segment,
            buffer: Vec::new(),
            unsynced: false,
        };
        std::thread::Builder::new()
            .name("afterglow-wal".to_owned())
            .spawn(move || thread.run(receiver))
            .map_err(Error::SpawnWriter)?;
        if let FsyncPolicy::Interval(interval) = policy {
            let ticks = commands.clone();
            tokio::spawn(async move {
                let mut interval = tokio::time::interval(interval);
                loop {
                    interval.tick().await;
                    if ticks.send(Command::Sync).await.is_err() {
                        return;
                    }
                }
            });
        }
        Ok(Wal { commands, counters })
    }

    /// What the WAL has done since start.
    pub fn counters(&self) -> &WalCounters {
        &self.counters
    }

    /// Queues a batch (waiting while the queue is full) and returns the answer that arrives
    /// once it is durable. Batches are logged in the order they are queued.
    pub async fn append(
        &self,
        tenant: String,
        encoded: Vec<u8>,
        batch: Batch,
    ) -> Result<oneshot::Receiver<Result<()>>> {
        let (durable, answer) = oneshot::channel();
        self.commands
            .send(Command::Append(Append {
                tenant,
                encoded,
                batch,
                durable,
            }))
            .await
            .map_err(|_| Error::WriterStopped)?;
        Ok(answer)
    }

    /// Logs what is queued, syncs and stops the WAL thread.
    pub async fn shutdown(&self) {
        let (done, finished) = oneshot::channel();
        if self.commands.send(Command::Shutdown(done)).await.is_ok() {
            let _ = finished.await;
        }
    }
}

/// The segment being written.
struct OpenSegment {
    number: u64,
    path: PathBuf,
    file: File,
    /// Bytes known to be written in full; a failed write is cut back to this.
    length: u64,
}

struct WalThread {
    counters: Arc<WalCounters>,
    dir: PathBuf,
    policy: FsyncPolicy,
    index: LogWriter,
    segment: Option<OpenSegment>,
    next_segment: u64,
    buffer: Vec<u8>,
    /// Written since the last fsync (interval policy).
    unsynced: bool,
}

impl WalThread {
    fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut group = Vec::new();
        while let Some(command) = commands.blocking_recv() {
            let mut shutdown = None;
            let mut sync_due = false;
            let mut bytes = 0;
            let mut next = Some(command);
            while let Some(command) = next.take() {
                match command {
                    Command::Append(append) => {
                        bytes += append.encoded.len();
                        group.push(append);
                    }
                    Command::Sync => sync_due = true,
                    Command::Shutdown(done) => {
                        shutdown = Some(done);
                        break;
                    }
                }
                if bytes < GROUP_BYTES {
                    next = commands.try_recv().ok();
                }
            }
            if !group.is_empty() {
                self.log_group(&mut group);
            }
            if self.unsynced && (sync_due || shutdown.is_some()) {
                self.sync();
            }
            if let Some(done) = shutdown {
                let _ = done.send(());
                return;
            }
        }
        self.sync();
    }

    /// Writes a group of batches, syncs if the policy says so, then answers each and hands it
    /// to the index writer in order.
    fn log_group(&mut self, group: &mut Vec<Append>) {
        let result = self.write_group(group);
        let positions = match result {
            Ok(positions) => positions,
            Err(error) => {
                tracing::error!(%error, "cannot write the WAL; the batches are refused and will be resent");
                let reason = error.to_string();
                let storage_full = error.is_storage_full();
                for append in group.drain(..) {
                    let _ = append.durable.send(Err(Error::WalWrite {
                        reason: reason.clone(),
                        storage_full,
                    }));
                }
                return;
            }
        };
        for (append, end) in group.drain(..).zip(positions) {
            let _ = append.durable.send(Ok(()));
            if self
                .index
                .submit_blocking(append.tenant, append.batch, Some(end))
                .is_err()
            {
                tracing::error!(
                    "the index writer has stopped; the WAL keeps the batch for the next start"
                );
            }
        }
    }

    fn write_group(&mut self, group: &[Append]) -> Result<Vec<WalPosition>> {
        if self
            .segment
            .as_ref()
            .is_none_or(|segment| segment.length >= SEGMENT_BYTES)
        {
            self.roll()?;
        }
        let segment = self.segment.as_mut().expect("rolled above");
        self.buffer.clear();
        let mut positions = Vec::with_capacity(group.len());
        for append in group {
            segment::encode_frame(&mut self.buffer, &append.tenant, &append.encoded);
            positions.push(WalPosition {
                segment: segment.number,
                offset: segment.length + self.buffer.len() as u64,
            });
        }
        let written = segment.file.write_all(&self.buffer).and_then(|()| {
            if self.policy == FsyncPolicy::Always {
                self.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
                segment.file.sync_data()
            } else {
                Ok(())
            }
        });
        match written {
            Ok(()) => {
                segment.length += self.buffer.len() as u64;
                self.counters
                    .batches
                    .fetch_add(group.len() as u64, Ordering::Relaxed);
                self.unsynced = self.policy != FsyncPolicy::Always;
                Ok(positions)
            }
            Err(source) => {
                // Whatever reached the file after the last good frame is cut off, and the
                // segment is closed: after a failed fsync its pages cannot be trusted.
                let cut = segment.file.set_len(segment.length);
                if let Err(error) = cut {
                    tracing::error!(segment = %segment.path.display(), %error, "cannot cut a failed write off the WAL segment; recovery at the next start will");
                }
                self.segment = None;
                Err(Error::Wal {
                    path: self.dir.clone(),
                    source,
                })
            }
        }
    }

    /// Closes the current segment and starts the next one, its header synced.
    fn roll(&mut self) -> Result<()> {
        self.sync();
        let number = self.next_segment;
        let path = segment::segment_path(&self.dir, number);
        let wal_error = |source| Error::Wal {
            path: path.clone(),
            source,
        };
        let mut file = File::options()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(wal_error)?;
        self.next_segment += 1;
        let header = file
            .write_all(segment::MAGIC)
            .and_then(|()| file.sync_all())
            .and_then(|()| File::open(&self.dir)?.sync_all());
        if let Err(source) = header {
            let _ = std::fs::remove_file(&path);
            return Err(wal_error(source));
        }
        self.segment = Some(OpenSegment {
            number,
            path,
            file,
            length: segment::MAGIC.len() as u64,
        });
        Ok(())
    }

    fn sync(&mut self) {
        if let Some(segment) = &self.segment {
            self.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
            if let Err(error) = segment.file.sync_data() {
                tracing::error!(segment = %segment.path.display(), %error, "cannot fsync the WAL; closing the segment");
                self.segment = None;
            }
        }
        self.unsynced = false;
    }
}

#[cfg(test)]
mod tests {
    use afterglow_proto::v1::{LogRecord, PushRequest, Stream};
    use prost::Message;

    use super::*;
    use crate::config::DEFAULT_MAX_OPEN_PARTITIONS;
    use crate::index::partition::LogStore;
    use crate::index::search::{SearchRequest, SortOrder, search};
    use crate::index::writer::WalReplay;

    fn batch(number: u64, stream: u64) -> PushRequest {
        PushRequest {
            batch_number: number,
            streams: vec![Stream {
                id: stream,
                cluster: "c".to_owned(),
                node: format!("n{stream}"),
                role: 0,
                source: "/w.log".to_owned(),
            }],
            logs: vec![LogRecord {
                stream_index: 0,
                seq: number,
                ts_unix_nanos: 1_795_787_813_599_000_000,
                level: "INFO".to_owned(),
                logger: "distributed.worker".to_owned(),
                message: format!("stream {stream} record {number}"),
                truncated: false,
                ts_inferred: false,
            }],
            metric_families: Vec::new(),
        }
    }

    async fn append(wal: &Wal, batch: PushRequest) -> oneshot::Receiver<Result<()>> {
        let encoded = batch.encode_to_vec();
        let batch = Batch::from_request(batch).expect("valid");
        wal.append("t".to_owned(), encoded, batch)
            .await
            .expect("the WAL runs")
    }

    fn count(store: &LogStore) -> usize {
        let request = SearchRequest {
            tenants: vec!["t".to_owned()],
            query: String::new(),
            filters: Vec::new(),
            start: None,
            end: None,
            limit: 10_000,
            order: SortOrder::Asc,
            after: None,
        };
        search(store, &request).expect("search works").hits.len()
    }

    /// Starts a writer that replays `wal_dir` and a WAL after it, as the collector does.
    fn start(
        store: &Arc<LogStore>,
        wal_dir: &Path,
        commit_interval: Duration,
    ) -> Result<(LogWriter, Wal)> {
        let recovered = recover(wal_dir)?;
        let writer = LogWriter::start(
            Arc::clone(store),
            commit_interval,
            Some(WalReplay {
                dir: wal_dir.to_owned(),
                end: recovered.end,
            }),
        )?;
        let wal = Wal::start(
            wal_dir,
            recovered.next_segment,
            FsyncPolicy::Always,
            writer.clone(),
        )?;
        Ok((writer, wal))
    }

    async fn wait_until(mut done: impl FnMut() -> bool) {
        for _ in 0..500 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the condition did not hold within 5 s");
    }

    #[tokio::test]
    async fn concurrent_batches_share_fsyncs_are_all_acked_and_a_clean_stop_leaves_no_wal()
    -> Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(LogStore::open(
            &dir.path().join("logs"),
            DEFAULT_MAX_OPEN_PARTITIONS,
        )?);
        let (writer, wal) = start(&store, &dir.path().join("wal"), Duration::from_millis(50))?;
        let mut tasks = Vec::new();
        for stream in 1..=4 {
            let wal = wal.clone();
            tasks.push(tokio::spawn(async move {
                let mut answers = Vec::new();
                for number in 1..=100 {
                    answers.push(append(&wal, batch(number, stream)).await);
                }
                for answer in answers {
                    answer.await.expect("answered").expect("durable");
                }
            }));
        }
        for task in tasks {
            task.await.expect("task finishes");
        }
        let batches = wal.counters().batches.load(Ordering::Relaxed);
        let fsyncs = wal.counters().fsyncs.load(Ordering::Relaxed);
        assert_eq!(batches, 400);
        assert!(fsyncs < batches, "{fsyncs} fsyncs for {batches} batches");
        wait_until(|| count(&store) == 400).await;
        wal.shutdown().await;
        writer.shutdown().await;
        assert_eq!(
            segment::segment_numbers(&dir.path().join("wal"))?,
            [0; 0],
            "a clean stop leaves no WAL"
        );
        Ok(())
    }

    #[tokio::test]
    async fn acked_batches_never_committed_are_replayed_at_start_and_segments_go_once_committed()
    -> Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        let wal_dir = dir.path().join("wal");
        {
            // A commit interval far beyond the test: the batches are acked from the WAL alone.
            // This index is then thrown away, as a crash throws away uncommitted records.
            let store = Arc::new(LogStore::open(
                &dir.path().join("lost-index"),
                DEFAULT_MAX_OPEN_PARTITIONS,
            )?);
            let writer = LogWriter::start(Arc::clone(&store), Duration::from_secs(3600), None)?;
            let wal = Wal::start(&wal_dir, 1, FsyncPolicy::Always, writer.clone())?;
            for number in 1..=3 {
                append(&wal, batch(number, 1))
                    .await
                    .await
                    .expect("answered")?;
            }
            assert_eq!(count(&store), 0, "acked, not yet committed");
            // Stopping the WAL thread without committing the index is what a crash leaves.
            wal.shutdown().await;
        }
        let store = Arc::new(LogStore::open(
            &dir.path().join("logs"),
            DEFAULT_MAX_OPEN_PARTITIONS,
        )?);
        let (writer, wal) = start(&store, &wal_dir, Duration::from_millis(20))?;
        wait_until(|| count(&store) == 3).await;
        assert_eq!(segment::segment_numbers(&wal_dir)?, [1]);
        append(&wal, batch(4, 1)).await.await.expect("answered")?;
        wait_until(|| count(&store) == 4).await;
        wait_until(|| segment::segment_numbers(&wal_dir).is_ok_and(|numbers| numbers == [2])).await;
        wal.shutdown().await;
        writer.shutdown().await;
        Ok(())
    }
}
