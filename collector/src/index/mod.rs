//! The log index: partitions on disk, the writer thread that fills them, search and its
//! facet counts.

pub mod facets;
pub mod partition;
pub mod schema;
pub mod search;
pub mod writer;
