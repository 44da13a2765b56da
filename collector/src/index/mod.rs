//! The log index: partitions on disk, the writer thread that fills them, search, the page walk
//! of exports, and cluster summaries.

pub mod clusters;
pub mod export;
pub mod partition;
pub mod schema;
pub mod search;
pub mod writer;
