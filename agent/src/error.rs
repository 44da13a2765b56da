//! The agent library's error type: each variant names the operation that failed and its input.

use std::path::PathBuf;

/// Errors of the agent library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("collector url {url:?} is not usable")]
    CollectorUrl {
        url: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("cannot read token file {path}")]
    ReadTokenFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create state directory {path}")]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read checkpoint file {path}")]
    ReadCheckpoints {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write checkpoint file {path}")]
    WriteCheckpoints {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start tailer thread")]
    SpawnTailer(#[source] std::io::Error),
}

/// Result with the agent's `Error`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
