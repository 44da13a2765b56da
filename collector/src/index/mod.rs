//! The log index: partitions on disk, the writer thread that fills them, search with its
//! facet counts, and the live tail of what is added.

pub mod facets;
pub mod partition;
pub mod schema;
pub mod search;
pub mod tail;
pub mod writer;
