//! The writer: one thread owns every partition's tantivy `IndexWriter`, adds the batches the
//! WAL hands it (in WAL order), and commits at most every `commit_interval`; it also appends
//! their metric samples to the series store and seals the store's head every
//! `SERIES_SEAL_INTERVAL`. WAL segments before both the committed and the sealed position
//! are deleted.
//!
//! The rules a reader must not miss: per (partition, stream) the highest committed `seq` is
//! stored in the same commit as the records (the commit payload), and a record at or below
//! it is dropped, so resends and WAL replays are harmless. When adding or committing fails,
//! the writer rolls back and falls behind: it stops adding and, at the next tick, re-reads the
//! WAL from the last committed position. Start-up replay is the same catch-up.
//!
//! Retention deletes a cluster's records from a partition through this thread too
//! (`delete_clusters`), since it owns the partition's only `IndexWriter`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tantivy::{DateTime, IndexWriter, TantivyDocument, Term};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::batch::Batch;
use crate::error::{Error, Result};
use crate::index::partition::{LogStore, PartitionKey};
use crate::index::partition_cache::OpenPartition;
use crate::index::schema::{LogSchema, stream_text};
use crate::series::SeriesStore;
use crate::wal::{self, WalPosition};

/// Memory for one partition writer's in-progress segment.
const WRITER_MEMORY_BYTES: usize = 32 * 1024 * 1024;
/// A partition of today (UTC) not written to for this long has its writer closed (its memory
/// freed).
const IDLE_WRITER_TIMEOUT: Duration = Duration::from_secs(600);
/// A partition of an earlier day (a backlog caught up) not written to for this long has its
/// writer closed: it is rarely written again, and retention cannot delete it while open.
const PAST_DAY_IDLE_WRITER_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the series store's head is sealed into a block: the WAL is kept at least this
/// long (the head is rebuilt from it after a crash).
const SERIES_SEAL_INTERVAL: Duration = Duration::from_secs(30);
/// Batches queued for the writer thread before the WAL waits.
const QUEUED_BATCHES: usize = 8;

/// One log record as the collector stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    pub ts_micros: i64,
    pub cluster: String,
    pub node: String,
    pub role: String,
    pub source: String,
    pub level: String,
    pub logger: String,
    pub message: String,
    pub stream: u64,
    pub seq: u64,
    /// The agent cut `message` at its size limit.
    pub truncated: bool,
    /// The line had no timestamp of its own: `ts_micros` was given by the agent.
    pub ts_inferred: bool,
}

/// What happened to the records of a `write`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteOutcome {
    /// Records added to the index.
    pub added: usize,
    /// Records dropped because their (stream, seq) was already stored.
    pub duplicates: usize,
}

enum Command {
    /// Records from the WAL (`end` is where their frame ends), or from `write` (no position;
    /// committed at once and answered).
    Write {
        tenant: String,
        batch: Batch,
        end: Option<WalPosition>,
        answer: Option<oneshot::Sender<Result<WriteOutcome>>>,
    },
    Commit,
    /// Deletes the records of `clusters` from partition `key`, commits, and merges its
    /// segments.
    DeleteClusters {
        key: PartitionKey,
        clusters: Vec<String>,
        answer: oneshot::Sender<Result<()>>,
    },
    Shutdown(oneshot::Sender<()>),
}

/// The WAL the writer replays from at start-up and after a failure.
pub struct WalReplay {
    pub dir: PathBuf,
    /// Where the WAL's last good frame ends (from `wal::recover`).
    pub end: Option<WalPosition>,
}

/// Sends batches to the writer thread.
#[derive(Clone)]
pub struct LogWriter {
    commands: mpsc::Sender<Command>,
}

impl LogWriter {
    /// Starts the writer thread over `store`, committing every `commit_interval`; with a
    /// `wal`, it first replays what the WAL holds. Must be called inside a tokio runtime (a
    /// task sends the commit ticks).
    pub fn start(
        store: Arc<LogStore>,
        commit_interval: Duration,
        wal: Option<WalReplay>,
    ) -> Result<LogWriter> {
        LogWriter::start_with_series(store, commit_interval, wal, None)
    }

    /// Like `start`, also appending the batches' metric samples to `series`.
    pub fn start_with_series(
        store: Arc<LogStore>,
        commit_interval: Duration,
        wal: Option<WalReplay>,
        series: Option<Arc<SeriesStore>>,
    ) -> Result<LogWriter> {
        let (commands, receiver) = mpsc::channel(QUEUED_BATCHES);
        let received = wal.as_ref().and_then(|wal| wal.end);
        let thread = WriterThread {
            store,
            writers: HashMap::new(),
            wal_dir: wal.map(|wal| wal.dir),
            received,
            committed: None,
            behind: received.is_some(),
            series,
            sealed: None,
            last_seal: Instant::now(),
        };
        std::thread::Builder::new()
            .name("afterglow-index-writer".to_owned())
            .spawn(move || thread.run(receiver))
            .map_err(Error::SpawnWriter)?;
        let ticks = commands.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(commit_interval);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                if ticks.send(Command::Commit).await.is_err() {
                    return;
                }
            }
        });
        Ok(LogWriter { commands })
    }

    /// Queues a durable batch of `tenant` whose WAL frame ends at `end`, waiting while the
    /// queue is full. For the WAL thread (it blocks).
    pub fn submit_blocking(
        &self,
        tenant: String,
        batch: Batch,
        end: Option<WalPosition>,
    ) -> Result<()> {
        self.commands
            .blocking_send(Command::Write {
                tenant,
                batch,
                end,
                answer: None,
            })
            .map_err(|_| Error::WriterStopped)
    }

    /// Adds `entries` of `tenant` without a WAL, commits, and says what was added.
    pub async fn write(&self, tenant: String, entries: Vec<LogEntry>) -> Result<WriteOutcome> {
        let (answer, outcome) = oneshot::channel();
        self.commands
            .send(Command::Write {
                tenant,
                batch: Batch {
                    logs: entries,
                    metrics: None,
                },
                end: None,
                answer: Some(answer),
            })
            .await
            .map_err(|_| Error::WriterStopped)?;
        outcome.await.map_err(|_| Error::WriterStopped)?
    }

    /// Deletes the records of `clusters` from partition `key` and answers once that is
    /// committed (the commit payload, the high-water marks, unchanged) and the partition's
    /// segments are merged, so their bytes are freed. For a blocking thread (it blocks).
    pub fn delete_clusters_blocking(&self, key: PartitionKey, clusters: Vec<String>) -> Result<()> {
        let (answer, outcome) = oneshot::channel();
        self.commands
            .blocking_send(Command::DeleteClusters {
                key,
                clusters,
                answer,
            })
            .map_err(|_| Error::WriterStopped)?;
        outcome.blocking_recv().map_err(|_| Error::WriterStopped)?
    }

    /// Commits what is pending and stops the writer thread.
    pub async fn shutdown(&self) {
        let (done, finished) = oneshot::channel();
        if self.commands.send(Command::Shutdown(done)).await.is_ok() {
            let _ = finished.await;
        }
    }
}

struct PartitionWriter {
    /// Held while the writer is: a partition in use is never closed.
    partition: OpenPartition,
    writer: IndexWriter<TantivyDocument>,
    committed: HighWaterMarks,
    pending: HighWaterMarks,
    dirty: bool,
    last_write_at: Instant,
}

/// The highest stored `seq` per stream, as kept in a partition's commit payload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Payload", into = "Payload")]
struct HighWaterMarks {
    streams: HashMap<u64, u64>,
}

/// `HighWaterMarks` as JSON: stream ids as 16 hex digits, as the API shows them.
#[derive(Serialize, Deserialize)]
struct Payload {
    streams: HashMap<String, u64>,
}

impl TryFrom<Payload> for HighWaterMarks {
    type Error = String;

    fn try_from(payload: Payload) -> Result<HighWaterMarks, String> {
        let streams = payload
            .streams
            .into_iter()
            .map(|(id, seq)| {
                u64::from_str_radix(&id, 16)
                    .map(|id| (id, seq))
                    .map_err(|_| format!("stream id {id:?} is not hexadecimal"))
            })
            .collect::<Result<_, _>>()?;
        Ok(HighWaterMarks { streams })
    }
}

impl From<HighWaterMarks> for Payload {
    fn from(marks: HighWaterMarks) -> Payload {
        let streams = marks
            .streams
            .into_iter()
            .map(|(id, seq)| (format!("{id:016x}"), seq))
            .collect();
        Payload { streams }
    }
}

impl HighWaterMarks {
    fn get(&self, stream: u64) -> Option<u64> {
        self.streams.get(&stream).copied()
    }

    fn set(&mut self, stream: u64, seq: u64) {
        self.streams.insert(stream, seq);
    }
}

struct WriterThread {
    store: Arc<LogStore>,
    writers: HashMap<PartitionKey, PartitionWriter>,
    wal_dir: Option<PathBuf>,
    /// Where the last batch handed over ends in the WAL.
    received: Option<WalPosition>,
    /// Everything up to here is committed (`None`: from the WAL's start).
    committed: Option<WalPosition>,
    /// The index lacks batches after `committed` that are in the WAL: stop adding and
    /// re-read them at the next tick.
    behind: bool,
    series: Option<Arc<SeriesStore>>,
    /// Every metric sample up to here is sealed in the series store (`None`: from the WAL's
    /// start).
    sealed: Option<WalPosition>,
    last_seal: Instant,
}

impl WriterThread {
    fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        while let Some(command) = commands.blocking_recv() {
            match command {
                Command::Write {
                    tenant,
                    batch,
                    end,
                    answer,
                } => {
                    if end.is_some() {
                        self.received = end;
                    }
                    if self.behind && end.is_some() {
                        continue;
                    }
                    let added = self.add(&tenant, batch);
                    if added.is_err() {
                        self.fall_behind();
                    }
                    if let Some(answer) = answer {
                        let _ = answer.send(added.and_then(|outcome| {
                            self.commit_all()?;
                            Ok(outcome)
                        }));
                    }
                }
                Command::Commit => {
                    let _ = self.commit_all();
                }
                Command::DeleteClusters {
                    key,
                    clusters,
                    answer,
                } => {
                    let _ = answer.send(self.delete_clusters(&key, &clusters));
                }
                Command::Shutdown(done) => {
                    // The WAL thread has stopped: once everything is committed, no segment
                    // is needed any more.
                    let sealed_all = self.series.is_none() || {
                        self.seal_series(true);
                        self.sealed == self.received
                    };
                    if self.commit_all().is_ok()
                        && sealed_all
                        && let (Some(dir), Some(committed)) = (&self.wal_dir, self.committed)
                    {
                        let after_all = WalPosition {
                            segment: committed.segment + 1,
                            offset: 0,
                        };
                        if let Err(error) = wal::release_before(dir, after_all) {
                            tracing::warn!(%error, "cannot delete the committed WAL");
                        }
                    }
                    // Dropping a writer waits for its merges and releases the index lock.
                    self.writers.clear();
                    let _ = done.send(());
                    return;
                }
            }
        }
        let _ = self.commit_all();
    }

    fn add(&mut self, tenant: &str, batch: Batch) -> Result<WriteOutcome> {
        const MICROS_PER_DAY: i64 = 86_400_000_000;
        // The series store drops what it already has, so a batch seen twice (a catch-up after
        // a failed commit) costs nothing there.
        if let (Some(series), Some(metrics)) = (&self.series, &batch.metrics) {
            let outcome = series.append(tenant, metrics);
            if outcome.invalid + outcome.failed > 0 {
                tracing::warn!(
                    tenant,
                    invalid = outcome.invalid,
                    failed = outcome.failed,
                    "metric samples not stored"
                );
            }
        }
        let mut outcome = WriteOutcome::default();
        let schema = self.store.schema().clone();
        let now = Instant::now();
        let mut arrived = Vec::new();
        let listening = self.store.arrivals().listening();
        // Records of a batch mostly share their day: the key is made once per day seen.
        let mut day_key: Option<(i64, PartitionKey)> = None;
        for entry in batch.logs {
            let day = entry.ts_micros.div_euclid(MICROS_PER_DAY);
            if day_key.as_ref().is_none_or(|(known, _)| *known != day) {
                day_key = Some((day, PartitionKey::for_record(tenant, entry.ts_micros)));
            }
            let key = &day_key.as_ref().expect("set above").1;
            let writer = self.writer_for(key)?;
            if writer
                .pending
                .get(entry.stream)
                .is_some_and(|stored| entry.seq <= stored)
            {
                outcome.duplicates += 1;
                continue;
            }
            let document = document(&schema, &entry);
            writer
                .writer
                .add_document(document)
                .map_err(|source| Error::Index {
                    path: key.tenant.clone().into(),
                    source,
                })?;
            writer.pending.set(entry.stream, entry.seq);
            writer.dirty = true;
            writer.last_write_at = now;
            outcome.added += 1;
            if listening {
                arrived.push(entry);
            }
        }
        self.store
            .arrivals()
            .announce(tenant, outcome.added, arrived);
        Ok(outcome)
    }

    fn writer_for(&mut self, key: &PartitionKey) -> Result<&mut PartitionWriter> {
        if !self.writers.contains_key(key) {
            let partition = self.store.get_or_create(key)?;
            let index_error = |source| Error::Index {
                path: format!("{}/{}", key.tenant, key.day).into(),
                source,
            };
            let writer = partition
                .index
                .writer_with_num_threads(1, WRITER_MEMORY_BYTES)
                .map_err(index_error)?;
            let metas = partition.index.load_metas().map_err(index_error)?;
            let committed = match metas.payload.as_deref() {
                Some(payload) => {
                    serde_json::from_str(payload).map_err(|source| Error::CommitPayload {
                        partition: format!("{}/{}", key.tenant, key.day),
                        source,
                    })?
                }
                None => HighWaterMarks::default(),
            };
            self.writers.insert(
                key.clone(),
                PartitionWriter {
                    partition,
                    writer,
                    pending: committed.clone(),
                    committed,
                    dirty: false,
                    last_write_at: Instant::now(),
                },
            );
        }
        Ok(self.writers.get_mut(key).expect("inserted above"))
    }

    /// Deletes the records of `clusters` from partition `key`: commits the deletion (with the
    /// partition's records added so far, and their high-water marks), then merges all its
    /// segments into one, waiting for it, so the deleted records leave the disk. A writer
    /// opened for this alone is closed again, so that the partition is not held open.
    fn delete_clusters(&mut self, key: &PartitionKey, clusters: &[String]) -> Result<()> {
        let was_open = self.writers.contains_key(key);
        let cluster_field = self.store.schema().cluster;
        let deleted = self.writer_for(key).and_then(|writer| {
            for cluster in clusters {
                writer
                    .writer
                    .delete_term(Term::from_field_text(cluster_field, cluster));
            }
            commit_partition(writer)?;
            let index_error = |source| Error::Index {
                path: format!("{}/{}", key.tenant, key.day).into(),
                source,
            };
            let segments = writer
                .partition
                .index
                .searchable_segment_ids()
                .map_err(index_error)?;
            if !segments.is_empty() {
                // The deletion is committed either way: a merge that fails (one of tantivy's
                // own may hold a segment) only leaves the bytes for a later merge to free.
                if let Err(error) = writer.writer.merge(&segments).wait() {
                    tracing::warn!(tenant = %key.tenant, day = %key.day, %error, "cannot merge a partition after deleting records; its bytes are freed by a later merge");
                }
                writer.partition.reload().map_err(index_error)?;
            }
            Ok(())
        });
        if !was_open && self.writers.get(key).is_some_and(|writer| !writer.dirty) {
            // Dropping the writer waits for its merges and releases the partition.
            self.writers.remove(key);
        }
        deleted
    }

    /// Re-reads the WAL after the committed position when behind, commits every partition
    /// with new records, and deletes the WAL segments that are wholly committed.
    fn commit_all(&mut self) -> Result<()> {
        if self.behind {
            self.catch_up()?;
        }
        let mut failure = None;
        for (key, writer) in &mut self.writers {
            if !writer.dirty {
                continue;
            }
            if let Err(error) = commit_partition(writer) {
                tracing::error!(tenant = %key.tenant, day = %key.day, %error, "commit failed; the WAL keeps the records and they are added again");
                failure = Some(error.to_string());
            }
        }
        if let Some(reason) = failure {
            self.fall_behind();
            return Err(Error::CommitFailed(reason));
        }
        self.store.arrivals().mark_committed();
        let today = jiff::Timestamp::now()
            .to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .date();
        self.writers.retain(|key, writer| {
            let timeout = if key.day < today {
                PAST_DAY_IDLE_WRITER_TIMEOUT
            } else {
                IDLE_WRITER_TIMEOUT
            };
            writer.dirty || writer.last_write_at.elapsed() < timeout
        });
        let mut advanced = self.received > self.committed;
        self.committed = self.received;
        advanced |= self.seal_series(false);
        let releasable = match &self.series {
            Some(_) => self.committed.min(self.sealed),
            None => self.committed,
        };
        if advanced
            && let (Some(dir), Some(position)) = (&self.wal_dir, releasable)
            && let Err(error) = wal::release_before(dir, position)
        {
            tracing::warn!(%error, "cannot delete committed WAL segments; trying again after the next commit");
        }
        Ok(())
    }

    /// Seals the series store's head when `SERIES_SEAL_INTERVAL` has passed (or `now`), then
    /// merges its small blocks; says whether the sealed position moved.
    fn seal_series(&mut self, now: bool) -> bool {
        let Some(series) = &self.series else {
            return false;
        };
        if !now && self.last_seal.elapsed() < SERIES_SEAL_INTERVAL {
            return false;
        }
        self.last_seal = Instant::now();
        // Every batch received so far has been appended: sealing makes all of it durable.
        let position = self.received;
        if let Err(error) = series.seal() {
            tracing::error!(%error, "cannot seal the series store's head; the WAL keeps the samples and sealing is tried again");
            return false;
        }
        if let Err(error) = series.compact() {
            tracing::warn!(%error, "cannot merge series blocks; trying again after the next seal");
        }
        let moved = position > self.sealed;
        self.sealed = position;
        moved
    }

    /// Adds the WAL's batches after the committed position up to the last one received.
    fn catch_up(&mut self) -> Result<()> {
        let (Some(dir), Some(through)) = (self.wal_dir.clone(), self.received) else {
            self.behind = false;
            return Ok(());
        };
        let mut batches = 0;
        let mut totals = WriteOutcome::default();
        let mut failure = None;
        wal::read_range(&dir, self.committed, through, |frame| {
            if failure.is_some() {
                return;
            }
            batches += 1;
            let batch = match Batch::from_request(frame.batch) {
                Ok(batch) => batch,
                Err(problem) => {
                    tracing::warn!(segment = frame.end.segment, offset = frame.end.offset, %problem, "skipping an invalid batch in the WAL");
                    return;
                }
            };
            match self.add(&frame.tenant, batch) {
                Ok(outcome) => {
                    totals.added += outcome.added;
                    totals.duplicates += outcome.duplicates;
                }
                Err(error) => failure = Some(error),
            }
        })?;
        if let Some(error) = failure {
            self.fall_behind();
            return Err(error);
        }
        tracing::info!(
            batches,
            added = totals.added,
            already_stored = totals.duplicates,
            "replayed the WAL into the index"
        );
        self.behind = false;
        Ok(())
    }

    /// Undoes uncommitted additions everywhere; the WAL has them and `catch_up` adds them
    /// again.
    fn fall_behind(&mut self) {
        for writer in self.writers.values_mut() {
            if writer.dirty {
                if let Err(error) = writer.writer.rollback() {
                    tracing::error!(%error, "rollback failed");
                }
                writer.pending = writer.committed.clone();
                writer.dirty = false;
            }
        }
        self.behind = self.wal_dir.is_some();
    }
}

/// The tantivy document of one record.
pub fn document(schema: &LogSchema, entry: &LogEntry) -> TantivyDocument {
    let mut document = TantivyDocument::new();
    document.add_date(schema.ts, DateTime::from_timestamp_micros(entry.ts_micros));
    document.add_text(schema.cluster, &entry.cluster);
    document.add_text(schema.node, &entry.node);
    document.add_text(schema.role, &entry.role);
    document.add_text(schema.source, &entry.source);
    document.add_text(schema.level, &entry.level);
    document.add_text(schema.logger, &entry.logger);
    document.add_text(schema.message, &entry.message);
    document.add_text(schema.stream, stream_text(entry.stream));
    document.add_u64(schema.seq, entry.seq);
    document.add_bool(schema.truncated, entry.truncated);
    document.add_bool(schema.ts_inferred, entry.ts_inferred);
    document
}

fn commit_partition(writer: &mut PartitionWriter) -> Result<()> {
    let key = &writer.partition.key;
    let index_error = |source| Error::Index {
        path: format!("{}/{}", key.tenant, key.day).into(),
        source,
    };
    let payload = serde_json::to_string(&writer.pending).expect("high-water marks serialize");
    let result = writer.writer.prepare_commit().and_then(|mut prepared| {
        prepared.set_payload(&payload);
        prepared.commit()
    });
    match result {
        Ok(_) => {
            writer.committed = writer.pending.clone();
            writer.dirty = false;
            writer.partition.reload().map_err(index_error)
        }
        Err(source) => {
            let _ = writer.writer.rollback();
            writer.pending = writer.committed.clone();
            writer.dirty = false;
            Err(index_error(source))
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::DEFAULT_MAX_OPEN_PARTITIONS;
    use crate::index::search::{SearchRequest, SortOrder, search};

    /// A worker record for tests, with its source named after its node.
    pub(crate) fn entry(
        ts_micros: i64,
        node: &str,
        stream: u64,
        seq: u64,
        message: &str,
    ) -> LogEntry {
        LogEntry {
            ts_micros,
            cluster: "c".to_owned(),
            node: node.to_owned(),
            role: "worker".to_owned(),
            source: format!("/logs/{node}.log"),
            level: "INFO".to_owned(),
            logger: "distributed.worker".to_owned(),
            message: message.to_owned(),
            stream,
            seq,
            truncated: false,
            ts_inferred: false,
        }
    }

    fn all(store: &LogStore) -> Vec<String> {
        let request = SearchRequest {
            tenants: vec!["t".to_owned()],
            query: String::new(),
            filters: Vec::new(),
            start: None,
            end: None,
            limit: 1000,
            order: SortOrder::Asc,
            after: None,
        };
        let page = search(store, &request).expect("search works");
        page.hits.into_iter().map(|hit| hit.message).collect()
    }

    #[tokio::test]
    async fn resent_records_are_dropped_also_after_a_restart() -> Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        let day = 1_795_787_813_000_000;
        let first = vec![
            entry(day, "a", 1, 0, "one"),
            entry(day + 1, "a", 1, 10, "two"),
        ];
        {
            let store = Arc::new(LogStore::open(dir.path(), DEFAULT_MAX_OPEN_PARTITIONS)?);
            let writer = LogWriter::start(Arc::clone(&store), Duration::from_millis(20), None)?;
            let outcome = writer.write("t".to_owned(), first.clone()).await?;
            assert_eq!(
                outcome,
                WriteOutcome {
                    added: 2,
                    duplicates: 0
                }
            );
            assert_eq!(all(&store), ["one", "two"], "searchable once acked");
            writer.shutdown().await;
        }
        let store = Arc::new(LogStore::open(dir.path(), DEFAULT_MAX_OPEN_PARTITIONS)?);
        let writer = LogWriter::start(Arc::clone(&store), Duration::from_millis(20), None)?;
        let mut resent = first;
        resent.push(entry(day + 2, "a", 1, 20, "three"));
        let outcome = writer.write("t".to_owned(), resent).await?;
        assert_eq!(
            outcome,
            WriteOutcome {
                added: 1,
                duplicates: 2
            }
        );
        assert_eq!(all(&store), ["one", "two", "three"]);
        writer.shutdown().await;
        Ok(())
    }

    #[test]
    fn high_water_marks_are_stored_with_hex_stream_ids_and_read_back() {
        let mut marks = HighWaterMarks::default();
        marks.set(0xab, 7);
        let payload = serde_json::to_string(&marks).expect("serializes");
        assert_eq!(payload, r#"{"streams":{"00000000000000ab":7}}"#);
        let back: HighWaterMarks = serde_json::from_str(&payload).expect("parses");
        assert_eq!(back, marks);
        let bad = serde_json::from_str::<HighWaterMarks>(r#"{"streams":{"xyz":1}}"#);
        assert!(bad.is_err(), "a stream id that is not hex is an error");
    }

    #[tokio::test]
    async fn records_of_one_stream_across_midnight_go_to_two_partitions() -> Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(LogStore::open(dir.path(), DEFAULT_MAX_OPEN_PARTITIONS)?);
        let writer = LogWriter::start(Arc::clone(&store), Duration::from_millis(20), None)?;
        let midnight = 1_795_824_000_000_000; // 2026-11-28T00:00:00Z
        let entries = vec![
            entry(midnight - 1, "a", 1, 0, "before"),
            entry(midnight, "a", 1, 5, "after"),
        ];
        writer.write("t".to_owned(), entries.clone()).await?;
        assert_eq!(store.keys_for(&["t".to_owned()], None, None).len(), 2);
        assert_eq!(writer.write("t".to_owned(), entries).await?.duplicates, 2);
        assert_eq!(all(&store), ["before", "after"]);
        writer.shutdown().await;
        Ok(())
    }
}
