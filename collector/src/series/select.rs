//! What a query asks of the series store and what it gets back: label matchers over a time
//! range, and series with their samples. The PromQL engine and the Prometheus HTTP API see the
//! store only through `SeriesSource`, already scoped to the caller's tenants.

use std::ops::Range;
use std::sync::Arc;

use regex::Regex;

/// A series' labels, sorted by name, unique names, including `__name__` (the metric name).
pub type Labels = Vec<(String, String)>;

/// The name of the label that holds the metric name.
pub const METRIC_NAME: &str = "__name__";

/// The exact bit pattern Prometheus uses for a staleness marker (a NaN that is not the usual
/// NaN). Stored and returned unchanged; the query engine treats it as "the series ended".
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// Tells whether `value` is a staleness marker.
pub fn is_stale_marker(value: f64) -> bool {
    value.to_bits() == STALE_NAN_BITS
}

/// How a matcher compares a label's value. A series without the label has the value `""`.
#[derive(Debug, Clone)]
pub enum MatchOp {
    Equal,
    NotEqual,
    /// Fully anchored, as Prometheus anchors `=~`.
    Regex(Regex),
    NotRegex(Regex),
}

/// One `name op "value"` of a selector.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
}

impl Matcher {
    /// `name="value"`.
    pub fn equal(name: &str, value: &str) -> Matcher {
        Matcher {
            name: name.to_owned(),
            op: MatchOp::Equal,
            value: value.to_owned(),
        }
    }

    /// A regex matcher anchored at both ends, as PromQL's `=~` (or `!~` when `negate`).
    pub fn regex(name: &str, pattern: &str, negate: bool) -> Result<Matcher, regex::Error> {
        let regex = Regex::new(&format!("^(?s:{pattern})$"))?;
        Ok(Matcher {
            name: name.to_owned(),
            op: if negate {
                MatchOp::NotRegex(regex)
            } else {
                MatchOp::Regex(regex)
            },
            value: pattern.to_owned(),
        })
    }

    /// Tells whether a series whose label `self.name` has `value` (`""` when absent) matches.
    pub fn matches(&self, value: &str) -> bool {
        match &self.op {
            MatchOp::Equal => value == self.value,
            MatchOp::NotEqual => value != self.value,
            MatchOp::Regex(regex) => regex.is_match(value),
            MatchOp::NotRegex(regex) => !regex.is_match(value),
        }
    }

    /// Tells whether a series with `labels` matches.
    pub fn matches_labels(&self, labels: &Labels) -> bool {
        let value = labels
            .binary_search_by(|(name, _)| name.as_str().cmp(&self.name))
            .map_or("", |at| labels[at].1.as_str());
        self.matches(value)
    }
}

/// One series and its samples inside the asked range.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSamples {
    pub labels: Labels,
    /// `(unix ms, value)`, ascending by time, one sample per timestamp. Staleness markers
    /// included.
    pub samples: Samples,
}

/// A run of samples, shared with the store's cache when they come from one block (a query
/// then copies nothing), owned otherwise; reads as a slice.
#[derive(Debug, Clone)]
pub struct Samples {
    data: Arc<[(i64, f64)]>,
    range: Range<usize>,
}

impl Samples {
    /// `data[range]`, shared.
    pub fn shared(data: Arc<[(i64, f64)]>, range: Range<usize>) -> Samples {
        debug_assert!(range.end <= data.len());
        Samples { data, range }
    }

    /// Keeps the samples for which `keep` holds; copies only when one is dropped.
    pub fn retain(&mut self, mut keep: impl FnMut(&(i64, f64)) -> bool) {
        if self.iter().all(&mut keep) {
            return;
        }
        let kept: Vec<(i64, f64)> = self.iter().copied().filter(|sample| keep(sample)).collect();
        *self = Samples::from(kept);
    }
}

impl Default for Samples {
    fn default() -> Samples {
        Samples::from(Vec::new())
    }
}

impl std::ops::Deref for Samples {
    type Target = [(i64, f64)];

    fn deref(&self) -> &[(i64, f64)] {
        &self.data[self.range.clone()]
    }
}

impl From<Vec<(i64, f64)>> for Samples {
    fn from(samples: Vec<(i64, f64)>) -> Samples {
        let range = 0..samples.len();
        Samples {
            data: samples.into(),
            range,
        }
    }
}

impl FromIterator<(i64, f64)> for Samples {
    fn from_iter<I: IntoIterator<Item = (i64, f64)>>(samples: I) -> Samples {
        Samples::from(samples.into_iter().collect::<Vec<_>>())
    }
}

impl PartialEq<Vec<(i64, f64)>> for Samples {
    fn eq(&self, other: &Vec<(i64, f64)>) -> bool {
        **self == **other
    }
}

impl PartialEq for Samples {
    fn eq(&self, other: &Samples) -> bool {
        **self == **other
    }
}

/// The series with one (cluster, node, role): when their first and last samples were taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleSender {
    /// The `cluster` label, `""` without one (as for `node` and `role`).
    pub cluster: String,
    pub node: String,
    pub role: String,
    /// Unix ms.
    pub first_ms: i64,
    pub last_ms: i64,
}

impl SampleSender {
    /// From a map entry: (cluster, node, role) → (first, last) sample, in Unix ms.
    pub fn from_entry(
        ((cluster, node, role), (first_ms, last_ms)): ((String, String, String), (i64, i64)),
    ) -> SampleSender {
        SampleSender {
            cluster,
            node,
            role,
            first_ms,
            last_ms,
        }
    }
}

/// Why a selection failed.
#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    /// The selection would hold more samples than it may.
    #[error(
        "the query selects more than {max_samples} samples: narrow the selector or the time range"
    )]
    TooManySamples { max_samples: usize },
    #[error("{0}")]
    Storage(String),
}

/// Read access to stored series, scoped to some tenants. Time ranges are inclusive, in unix
/// milliseconds. A list of matcher sets means "any of them" (the `match[]` of the HTTP API);
/// an empty list means every series.
pub trait SeriesSource: Send + Sync {
    /// Series matching every matcher of `matchers`, with their samples in `[start_ms, end_ms]`;
    /// series with no sample in the range are left out.
    fn select(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<SeriesSamples>, SelectError>;

    /// `select`, failing with `SelectError::TooManySamples` rather than giving more than
    /// `max_samples` samples in all. A source that reads from disk stops reading there.
    fn select_within(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
        max_samples: usize,
    ) -> Result<Vec<SeriesSamples>, SelectError> {
        let found = self.select(matchers, start_ms, end_ms)?;
        let samples: usize = found.iter().map(|one| one.samples.len()).sum();
        if samples > max_samples {
            return Err(SelectError::TooManySamples { max_samples });
        }
        Ok(found)
    }

    /// Label sets of the series with a sample in the range that match any matcher set.
    fn series(
        &self,
        matcher_sets: &[Vec<Matcher>],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Labels>, SelectError>;

    /// Per (cluster, node, role) of every series, the first and last sample time, sorted by
    /// (cluster, node, role). This default reads every sample; a source that reads from disk
    /// answers from what it knows without decoding samples.
    fn sample_senders(&self) -> Result<Vec<SampleSender>, SelectError> {
        let mut senders: std::collections::BTreeMap<(String, String, String), (i64, i64)> =
            std::collections::BTreeMap::new();
        for series in self.select(&[], i64::MIN, i64::MAX)? {
            let (Some(first), Some(last)) = (series.samples.first(), series.samples.last()) else {
                continue;
            };
            let value = |name: &str| {
                series
                    .labels
                    .iter()
                    .find(|(label, _)| label == name)
                    .map_or_else(String::new, |(_, value)| value.clone())
            };
            let times = senders
                .entry((value("cluster"), value("node"), value("role")))
                .or_insert((i64::MAX, i64::MIN));
            times.0 = times.0.min(first.0);
            times.1 = times.1.max(last.0);
        }
        Ok(senders.into_iter().map(SampleSender::from_entry).collect())
    }

    /// Sorted, unique label names of those series.
    fn label_names(
        &self,
        matcher_sets: &[Vec<Matcher>],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<String>, SelectError> {
        let names: std::collections::BTreeSet<String> = self
            .series(matcher_sets, start_ms, end_ms)?
            .into_iter()
            .flatten()
            .map(|(name, _)| name)
            .collect();
        Ok(names.into_iter().collect())
    }

    /// Sorted, unique values of label `name` of those series.
    fn label_values(
        &self,
        name: &str,
        matcher_sets: &[Vec<Matcher>],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<String>, SelectError> {
        let values: std::collections::BTreeSet<String> = self
            .series(matcher_sets, start_ms, end_ms)?
            .into_iter()
            .flatten()
            .filter(|(label, _)| label == name)
            .map(|(_, value)| value)
            .collect();
        Ok(values.into_iter().collect())
    }
}

/// The label that names a series' tenant, for callers who read several tenants. The store
/// never keeps it: ingest renames a pushed `tenant` label to `exported_tenant`.
pub const TENANT_LABEL: &str = "tenant";

/// Whether the series a source gives carry the `TENANT_LABEL` of their tenant (as Cortex and
/// Mimir add `__tenant_id__` to a query over several tenants).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantLabel {
    /// Each series has `tenant="<its tenant>"`, and matchers on `tenant` pick tenants.
    Added,
    /// Series have no `tenant` label (a caller of one tenant).
    Omitted,
}

/// Makes the `SeriesSource` of a request, scoped to the tenants the caller may read.
pub type SourceFactory = std::sync::Arc<
    dyn Fn(Vec<String>, TenantLabel) -> std::sync::Arc<dyn SeriesSource> + Send + Sync,
>;

/// A source with no series: for states that serve logs only (tests of the log API).
#[cfg(test)]
pub(crate) struct NoSeries;

#[cfg(test)]
impl SeriesSource for NoSeries {
    fn select(&self, _: &[Matcher], _: i64, _: i64) -> Result<Vec<SeriesSamples>, SelectError> {
        Ok(Vec::new())
    }

    fn series(&self, _: &[Vec<Matcher>], _: i64, _: i64) -> Result<Vec<Labels>, SelectError> {
        Ok(Vec::new())
    }
}

/// A factory that always gives `NoSeries`.
#[cfg(test)]
pub(crate) fn no_series() -> SourceFactory {
    std::sync::Arc::new(|_, _| std::sync::Arc::new(NoSeries))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_samples_read_as_their_range_and_retain_copies_only_when_it_drops_one() {
        let data: Arc<[(i64, f64)]> =
            vec![(1, 1.0), (2, f64::from_bits(STALE_NAN_BITS)), (3, 3.0)].into();
        let mut whole = Samples::shared(Arc::clone(&data), 0..3);
        let mut tail = Samples::shared(Arc::clone(&data), 2..3);
        assert_eq!(*tail, [(3, 3.0)]);
        tail.retain(|&(_, value)| !is_stale_marker(value));
        assert!(
            Arc::ptr_eq(&tail.data, &data),
            "nothing dropped: still shared"
        );
        whole.retain(|&(_, value)| !is_stale_marker(value));
        assert_eq!(whole, vec![(1, 1.0), (3, 3.0)]);
        assert!(!Arc::ptr_eq(&whole.data, &data), "a sample dropped: copied");
        assert_eq!(
            Samples::shared(data, 0..1),
            vec![(1, 1.0)].into_iter().collect::<Samples>()
        );
    }
}
