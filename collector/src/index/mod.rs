//! The log index: partitions on disk and the few kept open, the writer thread that fills them,
//! reading records back, the query language's tenants, fields, addresses and bounds, search
//! with its facet counts, record context, histograms, the page walk of exports, cluster
//! summaries, and the live tail of what is added.

pub mod clusters;
pub mod context;
pub mod export;
pub mod facets;
pub mod histogram;
pub mod partition;
pub mod partition_cache;
pub mod query;
pub mod query_addresses;
pub mod query_bounds;
pub mod query_fields;
pub mod record;
pub mod schema;
pub mod search;
pub mod tail;
pub mod writer;
