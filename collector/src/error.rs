//! The collector library's error type: each variant names the operation that failed and its
//! input. Boundaries convert it once: `ingest.rs` to a gRPC status, `api/mod.rs` to HTTP.

use std::path::PathBuf;

/// Errors of the collector library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    NoDescriptorsLeft(#[from] crate::connections::NoDescriptorsLeft),
    #[error("cannot create directory {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot list directory {path}")]
    ReadDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot move {from} aside to {to}")]
    SetAside {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot delete partition {path}")]
    DeletePartition {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("partition {partition} was deleted by retention during the request; ask again")]
    PartitionDeleted { partition: String },
    #[error("index {path}: {source}")]
    Index {
        path: PathBuf,
        #[source]
        source: tantivy::TantivyError,
    },
    #[error("partition {partition} has an unreadable commit payload")]
    CommitPayload {
        partition: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("commit failed: {0}")]
    CommitFailed(String),
    #[error("the index writer has stopped")]
    WriterStopped,
    #[error("cannot start the index writer thread")]
    SpawnWriter(#[source] std::io::Error),
    #[error("WAL {path}: {source}")]
    Wal {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the WAL: {reason}")]
    WalWrite { reason: String, storage_full: bool },
    #[error("series store: {0}")]
    Series(#[from] crate::series::SeriesError),
    #[error("the query went over its time budget")]
    OverBudget,
    #[error("bad query: {0}")]
    BadQuery(String),
    #[error("cannot listen on {addr}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("{0} server failed")]
    Serve(
        &'static str,
        #[source] Box<dyn std::error::Error + Send + Sync>,
    ),
}

impl Error {
    /// Whether the error is a full disk (or quota), which only freeing space cures.
    pub fn is_storage_full(&self) -> bool {
        match self {
            Error::Wal { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
            ),
            Error::WalWrite { storage_full, .. } => *storage_full,
            _ => false,
        }
    }
}

/// Result with the collector's `Error`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
