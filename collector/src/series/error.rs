//! The series store's error type: each variant names the operation that failed and its input.

use std::path::PathBuf;

/// Errors of the series store.
#[derive(Debug, thiserror::Error)]
pub enum SeriesError {
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
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot delete {path}")]
    Delete {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("partition {path} was deleted by retention")]
    PartitionDeleted { path: PathBuf },
    #[error("block {path} is corrupt: {reason}")]
    CorruptBlock { path: PathBuf, reason: String },
    #[error("cannot compress series {series_id} for {path}: {reason}")]
    Compress {
        path: PathBuf,
        series_id: u32,
        reason: String,
    },
}

/// Result with `SeriesError`.
pub(crate) type SeriesResult<T> = std::result::Result<T, SeriesError>;
