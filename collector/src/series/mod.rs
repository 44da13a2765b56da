//! The series store: metric samples per (tenant, UTC day), a head in memory and sealed blocks
//! compressed with pco.
//!
//! The rule a reader must not miss: the store never fails an append; it drops what it has
//! already stored (by timestamp, per series) and counts it, so the WAL can be replayed into it
//! at any time. Only `seal` makes samples durable; release the WAL only up to a sealed point.
//!
//! Files: `store` (the API), `partition` (one tenant-day), `index` (labels → id file),
//! `block` (the block format), `column_cache` (decoded columns kept between queries),
//! `compaction` (merging blocks), `source` (queries), `senders` (who sent samples, and when),
//! `labels` (naming rules), `select` (the contract with the query engine).

mod block;
mod column_cache;
mod compaction;
mod error;
mod index;
pub(crate) mod labels;
mod partition;
pub mod select;
mod senders;
mod source;
mod store;

pub use error::SeriesError;
pub use store::{AppendOutcome, SeriesConfig, SeriesStats, SeriesStore};

#[cfg(test)]
mod tests;
