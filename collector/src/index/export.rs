//! Walking every hit of a search: successive pages joined by the search cursor, so that a
//! caller holds one page at a time however many records match.
//!
//! The rule a reader must not miss: each page is a fresh `search` after the previous page's
//! last key, so records committed while the walk runs appear if they sort after the cursor
//! and never appear twice.

use std::sync::Arc;

use crate::error::Result;
use crate::index::partition::LogStore;
use crate::index::search::{Hit, SearchRequest, search};

/// The pages of a search in `request.order`, each of at most `request.limit` hits, starting
/// after `request.after`. The first page is always yielded, even when empty, so that its
/// `next()` reports a bad query; after an error the walk ends.
pub struct SearchPages {
    store: Arc<LogStore>,
    request: SearchRequest,
    finished: bool,
}

impl SearchPages {
    /// Starts a walk; nothing is searched before the first `next()`.
    pub fn new(store: Arc<LogStore>, request: SearchRequest) -> SearchPages {
        SearchPages {
            store,
            request,
            finished: false,
        }
    }
}

impl Iterator for SearchPages {
    type Item = Result<Vec<Hit>>;

    fn next(&mut self) -> Option<Result<Vec<Hit>>> {
        if self.finished {
            return None;
        }
        match search(&self.store, &self.request) {
            Ok(page) => {
                match page.next {
                    Some(next) => self.request.after = Some(next),
                    None => self.finished = true,
                }
                Some(Ok(page.hits))
            }
            Err(error) => {
                self.finished = true;
                Some(Err(error))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::DEFAULT_MAX_OPEN_PARTITIONS;
    use crate::error::Error;
    use crate::index::search::SortOrder;
    use crate::index::writer::LogWriter;
    use crate::index::writer::tests::entry;

    fn request(query: &str, limit: usize) -> SearchRequest {
        SearchRequest {
            tenants: vec!["t".to_owned()],
            query: query.to_owned(),
            filters: Vec::new(),
            start: None,
            end: None,
            limit,
            order: SortOrder::Asc,
            after: None,
        }
    }

    #[tokio::test]
    async fn pages_hold_every_hit_once_in_order() -> Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(LogStore::open(dir.path(), DEFAULT_MAX_OPEN_PARTITIONS)?);
        let writer = LogWriter::start(Arc::clone(&store), Duration::from_millis(10), None)?;
        let base = 1_795_787_813_000_000;
        let entries = (0..10u64)
            .map(|seq| entry(base + (seq / 3) as i64, "w", 1, seq, "x"))
            .collect();
        writer.write("t".to_owned(), entries).await?;
        writer.shutdown().await;
        let pages: Vec<Vec<Hit>> =
            SearchPages::new(Arc::clone(&store), request("*", 4)).collect::<Result<_>>()?;
        assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [4, 4, 2]);
        let seqs: Vec<u64> = pages.iter().flatten().map(|hit| hit.key.seq).collect();
        assert_eq!(seqs, (0..10).collect::<Vec<_>>());
        let empty: Vec<_> = SearchPages::new(Arc::clone(&store), request("nothing", 4)).collect();
        assert!(matches!(empty.as_slice(), [Ok(hits)] if hits.is_empty()));
        let bad: Vec<_> = SearchPages::new(store, request("level:(", 4)).collect();
        assert!(matches!(bad.as_slice(), [Err(Error::BadQuery(_))]));
        Ok(())
    }
}
