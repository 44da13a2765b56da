//! End-to-end tests: the real collector and agent binaries on loopback, driven through files,
//! signals and the HTTP API. One test binary; one module per story.

// Real processes run in real time: there is no tokio clock to pause in these tests.
#![allow(clippy::disallowed_types)]

mod acceptance;
mod access;
mod check;
mod connections;
mod crash;
mod dask_metrics;
mod hostile;
mod live_tail;
mod logs;
mod metrics;
mod query_limits;
mod record_flags;
mod retention;
mod spool;
mod tailing;
mod tls;
mod ui;
mod wal;
mod wrap;
