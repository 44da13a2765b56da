//! Process plumbing that the agent and the collector share, so that both binaries behave the
//! same way for an operator when they read their configuration files: `${VAR}` references
//! (`env`), and strict parsing that reports every problem at once (`strict`). Nothing here
//! knows either binary's configuration: it works on TOML text and generic values.

pub mod env;
pub mod strict;

pub use env::{expand_env_vars, process_environment};
pub use strict::parse_validated;
