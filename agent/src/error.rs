//! The agent library's error type: each variant names the operation that failed and its input.

use std::ffi::OsString;
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
    #[error("cannot read the `[tls]` files for the collector at {url}")]
    ReadTlsFiles {
        url: String,
        #[source]
        source: std::io::Error,
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
    #[error("state directory {path} is in use by another agent; give each agent its own state_dir")]
    StateDirInUse { path: PathBuf },
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
    #[error("spool {path}")]
    Spool {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("spooled batch {number} is missing")]
    SpoolMissing { number: u64 },
    #[error("spool file {path} is damaged: {reason}")]
    SpoolDamaged { path: PathBuf, reason: String },
    #[error("cannot start tailer thread")]
    SpawnTailer(#[source] std::io::Error),
    #[error("no command to run")]
    NoCommand,
    #[error("cannot start {program:?}")]
    SpawnChild {
        program: OsString,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot wait for the child process")]
    WaitChild(#[source] std::io::Error),
    #[error("cannot listen for SIGINT and SIGTERM")]
    ListenSignals(#[source] std::io::Error),
}

/// Result with the agent's `Error`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
