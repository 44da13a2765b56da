//! Process plumbing that the agent and the collector share, so that both binaries behave the
//! same way for an operator: for now, `${VAR}` references in configuration files (`env`).
//! Nothing here knows either binary's configuration: it works on TOML text and values.

pub mod env;

pub use env::{expand_env_vars, process_environment};
