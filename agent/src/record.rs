//! What the agent ships: log records, each pointing at the stream (source on a node) it
//! belongs to. A stream's constant fields live once in `StreamInfo`, shared by its records.

use std::sync::Arc;

use jiff::Timestamp;

use crate::config::Role;

/// One source on one node, with the identity the collector deduplicates by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    /// Stable id: the same file on the same node always gets the same id.
    pub id: u64,
    /// The stream whose checkpoint this stream's acknowledged offsets advance: its own id,
    /// or the file's for the pipes of a container runtime file.
    pub checkpoint_id: u64,
    pub cluster: String,
    pub node: String,
    pub role: Role,
    /// The file's path when it was first seen.
    pub source: String,
}

/// One log record ready to ship.
#[derive(Debug, Clone)]
pub struct LogRecord {
    pub stream: Arc<StreamInfo>,
    /// Strictly increasing within the stream: the byte offset of the record's first line.
    pub seq: u64,
    /// Where reading would resume after this record: its checkpoint once acknowledged.
    pub end_offset: u64,
    pub ts: Timestamp,
    pub level: Arc<str>,
    pub logger: Arc<str>,
    pub message: String,
    pub truncated: bool,
    /// The record's first line has no timestamp of its own: `ts` was inferred from the
    /// records around it in its stream, or from when it was read.
    pub ts_inferred: bool,
}

/// Records handed from a reader to the shipper together, so that the handoff costs once per
/// chunk, not once per record.
pub type RecordChunk = Vec<LogRecord>;

/// Most records in one chunk.
pub const CHUNK_RECORDS: usize = 256;

/// The families of one scrape of one target, ready to ship as one batch part. Each series'
/// labels are sorted and include the target identity labels; `stream_index` is set by the
/// shipper.
#[derive(Debug, Clone)]
pub struct Scrape {
    /// The target: `source` is its URL (or `dask-worker/<name>`), `id` stable for the target.
    pub stream: Arc<StreamInfo>,
    pub families: Vec<afterglow_proto::v1::MetricFamily>,
}
