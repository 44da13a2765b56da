//! End-to-end tests: the real collector and agent binaries on loopback, driven through files,
//! signals and the HTTP API. One test binary; one module per story.

mod check;
mod logs;
mod tailing;
mod ui;
mod wrap;
