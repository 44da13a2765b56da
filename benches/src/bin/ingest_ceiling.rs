//! The ingest benchmark's ceiling (`benches/ingest/run.sh`): the corpus indexed by tantivy
//! alone, in one process, with the collector's schema, documents and writer settings, and
//! nothing of agents, gRPC or acks.
//!
//! Usage: `ingest_ceiling INDEX_DIR CLUSTER NODE:ROLE:FILE...`
//!
//! Every file is one stream of one agent node. It is read 64 KiB at a time, as the agent's
//! tailer reads, and turned into records by the agent's own code: `LineSplitter` (lines, lossy
//! UTF-8) and `RecordAssembler` (Dask format, UTC, the agent's 1 MiB record limit). Turns go
//! round-robin over the files, one read each, so that the streams interleave as they do in the
//! collector. Each record becomes the collector's `LogEntry` (stream id computed as the agent
//! computes it) and its document (`afterglow_collector::index::writer::document`), added to one
//! partition opened by the collector's `LogStore` (mmap directory, zstd doc store) with the
//! collector's writer settings: 1 indexing thread, 32 MiB, a commit every 500 ms (without the
//! collector's small JSON payload), the reader reloaded after each commit. The clock stops once
//! the final commit is reloaded, that is once every record is searchable; the number of
//! searchable documents is checked against the records made.
//!
//! Prints one JSON object on stdout. `cpu_s` is the process's CPU time (user + system, every
//! thread: this one, tantivy's indexing thread, its merge threads) over the timed interval.
//! `parse_cpu_s` is this thread's CPU time spent reading, splitting and assembling records:
//! work the agent does in the real system, so `cpu_s - parse_cpu_s` is the indexing work to
//! compare with the collector's.

use std::error::Error;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use afterglow_agent::fingerprint::FileFingerprint;
use afterglow_agent::format::{LineFormat, LineParser};
use afterglow_agent::lines::{Line, LineSplitter};
use afterglow_agent::multiline::{AssembledRecord, LineTime, RecordAssembler};
use afterglow_benches::MAX_RECORD_BYTES;
use afterglow_collector::config::DEFAULT_MAX_OPEN_PARTITIONS;
use afterglow_collector::index::partition::{LogStore, PartitionKey};
use afterglow_collector::index::writer::{LogEntry, document};
use afterglow_collector::ingest::DEFAULT_TENANT;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use rustix::time::{ClockId, clock_gettime};
use tantivy::{IndexReader, IndexWriter, TantivyDocument};

const USAGE: &str = "usage: ingest_ceiling INDEX_DIR CLUSTER NODE:ROLE:FILE...";
/// Bytes read from one file per turn, as the agent's tailer reads.
const CHUNK_BYTES: usize = 64 * 1024;
/// The collector's writer settings (`collector/src/index/writer.rs`, `[index]` defaults).
const WRITER_THREADS: usize = 1;
const WRITER_MEMORY_BYTES: usize = 32 * 1024 * 1024;
/// Seconds between commits.
const COMMIT_INTERVAL_S: f64 = 0.5;

/// One corpus file, read as one agent stream.
struct Source {
    file: File,
    splitter: LineSplitter,
    assembler: RecordAssembler,
    stream: u64,
    node: String,
    role: String,
    path: String,
    at_end: bool,
}

impl Source {
    /// Opens `NODE:ROLE:FILE` of `cluster`.
    fn open(spec: &str, cluster: &str) -> Result<Source, Box<dyn Error>> {
        let mut parts = spec.splitn(3, ':');
        let (Some(node), Some(role), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(format!("{spec:?} is not NODE:ROLE:FILE; {USAGE}").into());
        };
        let file = File::open(path).map_err(|error| format!("{path}: {error}"))?;
        let fingerprint = FileFingerprint::read(&file)?
            .ok_or_else(|| format!("{path}: no complete first line"))?;
        let parser = LineParser::new(LineFormat::Dask, None, None)?;
        Ok(Source {
            file,
            splitter: LineSplitter::new(0, MAX_RECORD_BYTES),
            assembler: RecordAssembler::new(parser, TimeZone::UTC, MAX_RECORD_BYTES),
            stream: fingerprint.stream_id(cluster, node),
            node: node.to_owned(),
            role: role.to_owned(),
            path: path.to_owned(),
            at_end: false,
        })
    }

    /// Reads the next chunk and appends the records it completes to `records` (at the end of
    /// the file, the last record too). Returns the bytes read.
    fn read_records(
        &mut self,
        buffer: &mut [u8],
        records: &mut Vec<AssembledRecord>,
    ) -> io::Result<usize> {
        let read = self.file.read(buffer)?;
        let time = LineTime::Live {
            read_at: Timestamp::now(),
        };
        let assembler = &mut self.assembler;
        let mut on_line = |line: Line<'_>| {
            assembler.push_line(&line.text, line.offset, time, line.truncated, records);
        };
        if read == 0 {
            self.splitter.finish(on_line);
            let end = self.splitter.complete_lines_end();
            self.assembler.flush(end, records);
            self.at_end = true;
        } else {
            self.splitter.push(&buffer[..read], |line| {
                on_line(line);
                true
            });
            self.assembler.end_read(records);
        }
        Ok(read)
    }

    /// The collector's entry for one of this stream's records.
    fn entry(&self, cluster: &str, record: AssembledRecord) -> LogEntry {
        LogEntry {
            ts_micros: record.ts.as_microsecond(),
            cluster: cluster.to_owned(),
            node: self.node.clone(),
            role: self.role.clone(),
            source: self.path.clone(),
            level: record.level.to_string(),
            logger: record.logger.to_string(),
            message: record.message,
            stream: self.stream,
            seq: record.offset_bytes,
            truncated: false,
            ts_inferred: false,
        }
    }
}

/// Commits what was added and reloads the reader, as the collector does: from here on it is
/// searchable.
fn commit(writer: &mut IndexWriter<TantivyDocument>, reader: &IndexReader) -> tantivy::Result<()> {
    writer.commit()?;
    reader.reload()
}

/// The time of `clock` in seconds: `Monotonic` for wall time, `ProcessCPUTime` or
/// `ThreadCPUTime` for CPU time (user + system).
fn seconds(clock: ClockId) -> f64 {
    let time = clock_gettime(clock);
    time.tv_sec as f64 + time.tv_nsec as f64 * 1e-9
}

/// This process's peak resident set (`VmHWM`), in MiB.
fn peak_rss_mib() -> Result<f64, Box<dyn Error>> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .ok_or("no VmHWM in /proc/self/status")?
        .trim()
        .parse()?;
    Ok(kib / 1024.0)
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [index_dir, cluster, specs @ ..] = args.as_slice() else {
        return Err(USAGE.into());
    };
    if specs.is_empty() {
        return Err(USAGE.into());
    }
    let mut sources = specs
        .iter()
        .map(|spec| Source::open(spec, cluster))
        .collect::<Result<Vec<_>, _>>()?;
    let store = LogStore::open(Path::new(index_dir), DEFAULT_MAX_OPEN_PARTITIONS)?;
    let key = PartitionKey::for_record(DEFAULT_TENANT, Timestamp::now().as_microsecond());
    let partition = store.get_or_create(&key)?;
    let mut writer = partition
        .index
        .writer_with_num_threads(WRITER_THREADS, WRITER_MEMORY_BYTES)?;

    let started = seconds(ClockId::Monotonic);
    let cpu_at_start = seconds(ClockId::ProcessCPUTime);
    let mut buffer = vec![0; CHUNK_BYTES];
    let mut records = Vec::new();
    let (mut bytes, mut record_count, mut commits, mut parse_cpu_s) = (0, 0, 0, 0.0);
    let mut last_commit = started;
    while sources.iter().any(|source| !source.at_end) {
        for source in sources.iter_mut().filter(|source| !source.at_end) {
            let parse_started = seconds(ClockId::ThreadCPUTime);
            bytes += source.read_records(&mut buffer, &mut records)?;
            parse_cpu_s += seconds(ClockId::ThreadCPUTime) - parse_started;
            record_count += records.len();
            for record in records.drain(..) {
                writer.add_document(document(store.schema(), &source.entry(cluster, record)))?;
            }
            // Every COMMIT_INTERVAL_S from the last commit's start, as the collector's ticks.
            let now = seconds(ClockId::Monotonic);
            if now - last_commit >= COMMIT_INTERVAL_S {
                last_commit = now;
                commit(&mut writer, &partition.reader)?;
                commits += 1;
            }
        }
    }
    commit(&mut writer, &partition.reader)?;
    commits += 1;
    let wall_s = seconds(ClockId::Monotonic) - started;
    let cpu_s = seconds(ClockId::ProcessCPUTime) - cpu_at_start;

    let searchable = partition.reader.searcher().num_docs();
    if searchable != record_count as u64 {
        return Err(
            format!("{searchable} documents searchable, {record_count} records made").into(),
        );
    }
    writer.wait_merging_threads()?;
    let peak_rss_mib = peak_rss_mib()?;
    eprintln!(
        "ceiling: {bytes} bytes, {record_count} records in {wall_s:.2} s wall, {cpu_s:.2} CPU-s \
         ({parse_cpu_s:.2} parsing), {:.2} MB/s per CPU-s, {commits} commits",
        bytes as f64 / 1e6 / cpu_s
    );
    println!(
        "{{\"bytes\": {bytes}, \"records\": {record_count}, \"wall_s\": {wall_s:.4}, \
         \"cpu_s\": {cpu_s:.4}, \"parse_cpu_s\": {parse_cpu_s:.4}, \"commits\": {commits}, \
         \"peak_rss_mib\": {peak_rss_mib:.1}}}"
    );
    Ok(())
}
