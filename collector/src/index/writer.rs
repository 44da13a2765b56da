//! The log index writer: one thread owns every partition's tantivy `IndexWriter`, adds
//! records, and commits at most every `commit_interval`. A batch's `durable` answer is sent
//! only after the commit that holds all of its records.
//!
//! The rule a reader must not miss: per (partition, stream) the highest committed `seq` is
//! stored in the same commit as the records (the commit payload), and a record at or below
//! it is dropped. Resends after a reconnect or crash are therefore harmless.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tantivy::{DateTime, IndexWriter, TantivyDocument};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::index::partition::{LogStore, Partition, PartitionKey};
use crate::index::schema::LogSchema;

/// Memory for one partition writer's in-progress segment.
const WRITER_MEMORY_BYTES: usize = 32 * 1024 * 1024;
/// A partition not written to for this long has its writer closed (its memory freed).
const IDLE_WRITER_TIMEOUT: Duration = Duration::from_secs(600);
/// Batches queued for the writer thread before ingest waits.
const QUEUED_BATCHES: usize = 64;

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
}

/// What happened to a batch once it is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteOutcome {
    /// Records added to the index.
    pub added: usize,
    /// Records dropped because their (stream, seq) was already stored.
    pub duplicates: usize,
}

enum Command {
    Write {
        tenant: String,
        entries: Vec<LogEntry>,
        durable: oneshot::Sender<Result<WriteOutcome>>,
    },
    Commit,
    Shutdown(oneshot::Sender<()>),
}

/// Sends batches to the writer thread.
#[derive(Clone)]
pub struct LogWriter {
    commands: mpsc::Sender<Command>,
}

impl LogWriter {
    /// Starts the writer thread over `store`, committing every `commit_interval`. Must be
    /// called inside a tokio runtime (a task sends the commit ticks).
    pub fn start(store: Arc<LogStore>, commit_interval: Duration) -> Result<LogWriter> {
        let (commands, receiver) = mpsc::channel(QUEUED_BATCHES);
        let thread = WriterThread {
            store,
            writers: HashMap::new(),
            waiting: Vec::new(),
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

    /// Queues `entries` of `tenant` (waiting while the queue is full) and returns the answer
    /// that arrives once they are committed or dropped as duplicates. Batches are added in
    /// the order they are queued: queue one stream's batches from one task.
    pub async fn submit(
        &self,
        tenant: String,
        entries: Vec<LogEntry>,
    ) -> Result<oneshot::Receiver<Result<WriteOutcome>>> {
        let (durable, outcome) = oneshot::channel();
        self.commands
            .send(Command::Write {
                tenant,
                entries,
                durable,
            })
            .await
            .map_err(|_| Error::WriterStopped)?;
        Ok(outcome)
    }

    /// Queues `entries` of `tenant` and waits until they are durable.
    pub async fn write(&self, tenant: String, entries: Vec<LogEntry>) -> Result<WriteOutcome> {
        let outcome = self.submit(tenant, entries).await?;
        outcome.await.map_err(|_| Error::WriterStopped)?
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
    partition: Arc<Partition>,
    writer: IndexWriter<TantivyDocument>,
    committed: HighWaterMarks,
    pending: HighWaterMarks,
    dirty: bool,
    last_write_at: Instant,
}

/// The highest stored `seq` per stream, as kept in a partition's commit payload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct HighWaterMarks {
    /// Stream id (16 hex digits) → highest committed seq.
    streams: HashMap<String, u64>,
}

impl HighWaterMarks {
    fn get(&self, stream: u64) -> Option<u64> {
        self.streams.get(&format!("{stream:016x}")).copied()
    }

    fn set(&mut self, stream: u64, seq: u64) {
        self.streams.insert(format!("{stream:016x}"), seq);
    }
}

struct WriterThread {
    store: Arc<LogStore>,
    writers: HashMap<PartitionKey, PartitionWriter>,
    waiting: Vec<(oneshot::Sender<Result<WriteOutcome>>, WriteOutcome)>,
}

impl WriterThread {
    fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        while let Some(command) = commands.blocking_recv() {
            match command {
                Command::Write {
                    tenant,
                    entries,
                    durable,
                } => match self.add(&tenant, entries) {
                    Ok(outcome) => self.waiting.push((durable, outcome)),
                    Err(error) => {
                        tracing::error!(%error, "cannot add records to the index");
                        self.rollback_all();
                        let _ = durable.send(Err(error));
                    }
                },
                Command::Commit => self.commit_all(),
                Command::Shutdown(done) => {
                    self.commit_all();
                    // Dropping a writer waits for its merges and releases the index lock.
                    self.writers.clear();
                    let _ = done.send(());
                    return;
                }
            }
        }
        self.commit_all();
    }

    fn add(&mut self, tenant: &str, entries: Vec<LogEntry>) -> Result<WriteOutcome> {
        let mut outcome = WriteOutcome::default();
        let schema = self.store.schema().clone();
        for entry in entries {
            let key = PartitionKey::for_record(tenant, entry.ts_micros);
            let writer = self.writer_for(&key)?;
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
            writer.last_write_at = Instant::now();
            outcome.added += 1;
        }
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

    /// Commits every partition with new records, then answers every waiting batch.
    fn commit_all(&mut self) {
        let mut failure = None;
        for (key, writer) in &mut self.writers {
            if !writer.dirty {
                continue;
            }
            match commit_partition(writer) {
                Ok(()) => {}
                Err(error) => {
                    tracing::error!(tenant = %key.tenant, day = %key.day, %error, "commit failed; the batches will be resent");
                    failure = Some(error.to_string());
                }
            }
        }
        for (durable, outcome) in self.waiting.drain(..) {
            let answer = match &failure {
                None => Ok(outcome),
                Some(reason) => Err(Error::CommitFailed(reason.clone())),
            };
            let _ = durable.send(answer);
        }
        self.writers.retain(|_, writer| {
            writer.dirty || writer.last_write_at.elapsed() < IDLE_WRITER_TIMEOUT
        });
    }

    /// Undoes uncommitted additions everywhere, after an error left a batch half-added.
    fn rollback_all(&mut self) {
        for writer in self.writers.values_mut() {
            if writer.dirty {
                if let Err(error) = writer.writer.rollback() {
                    tracing::error!(%error, "rollback failed");
                }
                writer.pending = writer.committed.clone();
                writer.dirty = false;
            }
        }
        for (durable, _) in self.waiting.drain(..) {
            let _ = durable.send(Err(Error::CommitFailed(
                "an earlier batch in the same commit failed".to_owned(),
            )));
        }
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
    document.add_u64(schema.stream, entry.stream);
    document.add_u64(schema.seq, entry.seq);
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
            writer.partition.reader.reload().map_err(index_error)
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
        }
    }

    fn all(store: &LogStore) -> Vec<String> {
        let request = SearchRequest {
            tenants: vec!["t".to_owned()],
            query: String::new(),
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
            let store = Arc::new(LogStore::open(dir.path())?);
            let writer = LogWriter::start(Arc::clone(&store), Duration::from_millis(20))?;
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
        let store = Arc::new(LogStore::open(dir.path())?);
        let writer = LogWriter::start(Arc::clone(&store), Duration::from_millis(20))?;
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

    #[tokio::test]
    async fn records_of_one_stream_across_midnight_go_to_two_partitions() -> Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(LogStore::open(dir.path())?);
        let writer = LogWriter::start(Arc::clone(&store), Duration::from_millis(20))?;
        let midnight = 1_795_824_000_000_000; // 2026-11-28T00:00:00Z
        let entries = vec![
            entry(midnight - 1, "a", 1, 0, "before"),
            entry(midnight, "a", 1, 5, "after"),
        ];
        writer.write("t".to_owned(), entries.clone()).await?;
        assert_eq!(store.partitions_for(&["t".to_owned()], None, None).len(), 2);
        assert_eq!(writer.write("t".to_owned(), entries).await?.duplicates, 2);
        assert_eq!(all(&store), ["before", "after"]);
        writer.shutdown().await;
        Ok(())
    }
}
