//! The log index: partitions on disk, the writer thread that fills them, and search.

pub mod partition;
pub mod schema;
pub mod search;
pub mod writer;
