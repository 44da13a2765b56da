//! How many samples one query holds in memory, against its limit (`[query] max_samples`).
//! The rule a reader must not miss: memory is counted *before* or *while* it is taken, never
//! only once a whole result is built, so that a query over the limit stops within a chunk of
//! it, not after building everything it asked for.
//!
//! The count is of live samples: the evaluator (`engine.rs`) lowers it back to what was held
//! before a node, plus the node's output, once the node's inputs are dropped. One count is
//! shared by the threads a query is split over and by its subqueries' grids.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::promql::error::QueryError;

/// Points counted at once while a vector grows point by point (`Growing`): small enough that
/// what exists uncounted is negligible (64 KiB), large enough that the count is not touched
/// per point.
const CHUNK: usize = 4096;

/// The samples one query holds, and the most it may.
#[derive(Debug)]
pub(crate) struct SampleLimit {
    max_samples: usize,
    held: AtomicUsize,
    /// The most ever counted at once (a refused hold included).
    peak: AtomicUsize,
}

impl SampleLimit {
    pub(crate) fn new(max_samples: usize) -> SampleLimit {
        SampleLimit {
            max_samples,
            held: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }
    }

    /// The most samples the query may hold.
    pub(crate) fn max_samples(&self) -> usize {
        self.max_samples
    }

    /// How many samples are held now.
    pub(crate) fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// The most samples counted at once so far, a refused hold included.
    pub(crate) fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// How many more may be held.
    pub(crate) fn remaining(&self) -> usize {
        self.max_samples.saturating_sub(self.held())
    }

    /// Counts `count` more samples; fails once the query holds more than its limit.
    pub(crate) fn hold(&self, count: usize) -> Result<(), QueryError> {
        let before = self
            .held
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| {
                Some(held.saturating_add(count))
            })
            .expect("the update always returns a value");
        let now = before.saturating_add(count);
        self.peak.fetch_max(now, Ordering::Relaxed);
        if now > self.max_samples {
            return Err(QueryError::TooManySamples);
        }
        Ok(())
    }

    /// Sets the count to `held`: what was freed is no longer counted.
    pub(crate) fn release_to(&self, held: usize) {
        self.held.store(held, Ordering::Relaxed);
    }
}

/// Counts the points of one vector as it grows, a chunk at a time: at most a chunk of points
/// exists uncounted.
pub(crate) struct Growing<'a> {
    limit: &'a SampleLimit,
    uncounted: usize,
}

impl<'a> Growing<'a> {
    pub(crate) fn new(limit: &'a SampleLimit) -> Growing<'a> {
        Growing {
            limit,
            uncounted: 0,
        }
    }

    /// Counts one more point; fails past the limit.
    pub(crate) fn add_one(&mut self) -> Result<(), QueryError> {
        self.uncounted += 1;
        if self.uncounted == CHUNK {
            self.uncounted = 0;
            self.limit.hold(CHUNK)?;
        }
        Ok(())
    }

    /// Counts the points not counted yet.
    pub(crate) fn finish(self) -> Result<(), QueryError> {
        self.limit.hold(self.uncounted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holding_past_the_limit_fails_and_releasing_frees_room() {
        let limit = SampleLimit::new(10);
        assert!(limit.hold(10).is_ok());
        assert!(matches!(limit.hold(1), Err(QueryError::TooManySamples)));
        limit.release_to(4);
        assert_eq!(limit.remaining(), 6);
        assert!(limit.hold(6).is_ok());
        assert!(matches!(
            limit.hold(usize::MAX),
            Err(QueryError::TooManySamples)
        ));
    }

    #[test]
    fn a_growing_vector_is_counted_by_chunks_as_it_grows() {
        let limit = SampleLimit::new(CHUNK * 3);
        let mut growing = Growing::new(&limit);
        for _ in 0..CHUNK + 1 {
            growing.add_one().expect("under the limit");
        }
        assert_eq!(limit.held(), CHUNK, "a chunk at a time");
        growing.finish().expect("under the limit");
        assert_eq!(limit.held(), CHUNK + 1, "exactly the points once done");

        let mut growing = Growing::new(&limit);
        let added = (0..CHUNK * 3)
            .take_while(|_| growing.add_one().is_ok())
            .count();
        assert!(
            added < CHUNK * 2,
            "the limit trips within a chunk of it: {added} more added"
        );
    }
}
