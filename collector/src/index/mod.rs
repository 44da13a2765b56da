//! The log index: partitions on disk, the writer thread that fills them, search, record
//! context and histograms.

pub mod context;
pub mod histogram;
pub mod partition;
pub mod schema;
pub mod search;
pub mod writer;
