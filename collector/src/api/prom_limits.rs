//! What every PromQL query is held to: the defaults of its options (`[metrics]
//! query_timeout`, `lookback_delta`, `[query] max_samples`) and a place among the
//! `[query] max_concurrent` queries evaluated at once. Refusals are counted in
//! `afterglow_collector_queries_refused_total{reason}`.
//!
//! The rule a reader must not miss: the place is held by the blocking work itself (evaluation
//! and encoding the answer), not by the request's future, so a client that hangs up does not
//! free a place while its query still runs.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::CollectorConfig;
use crate::promql::{DEFAULT_MAX_CONCURRENT, QueryOptions};
use crate::telemetry::CollectorMetrics;

/// How long a query waits for a place before it is answered 503: long enough for a
/// dashboard's burst of panels to queue behind each other, short enough that a client is
/// told the collector is busy rather than left hanging.
pub const QUERY_PLACE_WAIT: Duration = Duration::from_secs(5);

/// Why a query was refused, as counted: `max_samples` or `max_concurrent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryRefusal {
    MaxSamples,
    MaxConcurrent,
}

impl QueryRefusal {
    /// The label value it is counted under.
    pub fn as_str(self) -> &'static str {
        match self {
            QueryRefusal::MaxSamples => "max_samples",
            QueryRefusal::MaxConcurrent => "max_concurrent",
        }
    }
}

/// The limits of PromQL queries, shared by every request.
#[derive(Debug)]
pub struct PromLimits {
    /// The options a query starts from; its `timeout` parameter may only lower the timeout.
    pub defaults: QueryOptions,
    places: Arc<Semaphore>,
    max_concurrent: usize,
}

impl PromLimits {
    /// Limits with `defaults` and `max_concurrent` queries at once.
    pub fn new(defaults: QueryOptions, max_concurrent: usize) -> PromLimits {
        PromLimits {
            defaults,
            places: Arc::new(Semaphore::new(max_concurrent)),
            max_concurrent,
        }
    }

    /// The limits `config` sets.
    pub fn from_config(config: &CollectorConfig) -> PromLimits {
        let lookback = config.metrics.lookback_delta();
        PromLimits::new(
            QueryOptions {
                lookback_delta_ms: i64::try_from(lookback.as_millis()).unwrap_or(i64::MAX),
                max_samples: config.query.max_samples,
                timeout: config.metrics.query_timeout(),
            },
            config.query.max_concurrent,
        )
    }

    /// The most queries evaluated at once.
    pub fn max_concurrent(&self) -> usize {
        self.max_concurrent
    }

    /// A place to evaluate one query, waiting up to `QUERY_PLACE_WAIT` for one; `None` (and
    /// counted) when every place stayed taken.
    pub async fn place(&self, metrics: &CollectorMetrics) -> Option<OwnedSemaphorePermit> {
        let waited =
            tokio::time::timeout(QUERY_PLACE_WAIT, Arc::clone(&self.places).acquire_owned()).await;
        match waited {
            Ok(Ok(permit)) => Some(permit),
            // Timed out, or closed (never: nothing closes it).
            _ => {
                metrics.query_refused(QueryRefusal::MaxConcurrent.as_str());
                None
            }
        }
    }
}

impl Default for PromLimits {
    /// Prometheus's query options with this collector's default limits.
    fn default() -> PromLimits {
        PromLimits::new(QueryOptions::default(), DEFAULT_MAX_CONCURRENT)
    }
}
