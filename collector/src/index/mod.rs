//! The log index: partitions on disk, the writer thread that fills them, search with its
//! facet counts, record context, histograms, and the live tail of what is added.

pub mod context;
pub mod facets;
pub mod histogram;
pub mod partition;
pub mod schema;
pub mod search;
pub mod tail;
pub mod writer;
