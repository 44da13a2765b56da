//! Turning a pushed `MetricSeries` into the labels the store keys it by: its labels plus
//! `__name__`, sorted, checked against the Prometheus naming rules.
//!
//! The rules a reader must not miss: a label with an empty value is the same as no label
//! (Prometheus semantics), so it is dropped rather than stored. And the agent is not trusted
//! with the collector's own names: a pushed `tenant` label is renamed `exported_tenant` (as
//! Prometheus renames a scraped label that collides with a target label, `honor_labels =
//! false`), so that the `tenant` a query shows is always the collector's; a pushed label
//! named `__…` (reserved, `__name__` included: the name is `metric`) is dropped.

use afterglow_proto::v1::{MetricSeries, PushRequest};

use crate::series::select::{Labels, METRIC_NAME, TENANT_LABEL};

/// What Prometheus puts before a scraped label's name that collides with one it sets.
const EXPORTED_PREFIX: &str = "exported_";

/// How many pushed labels the store renames and drops (`series_labels`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Relabeled {
    /// `tenant` labels, stored as `exported_tenant`.
    pub(crate) renamed: u64,
    /// `__…` labels, not stored.
    pub(crate) dropped: u64,
}

/// Tells whether a pushed label `name` is reserved to the collector and dropped.
fn is_reserved_label_name(name: &str) -> bool {
    name.starts_with("__")
}

/// Counts the labels of `batch` that `series_labels` renames or drops, once per series.
pub(crate) fn relabels_in(batch: &PushRequest) -> Relabeled {
    let mut relabeled = Relabeled::default();
    for label in batch
        .metric_families
        .iter()
        .flat_map(|family| &family.series)
        .flat_map(|series| &series.labels)
    {
        if is_reserved_label_name(&label.name) {
            relabeled.dropped += 1;
        } else if label.name == TENANT_LABEL && !label.value.is_empty() {
            relabeled.renamed += 1;
        }
    }
    relabeled
}

/// Tells whether `name` is a valid metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub(crate) fn is_valid_metric_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == b'_' || first == b':')
        && bytes.all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b':')
}

/// Tells whether `name` is a valid label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub(crate) fn is_valid_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == b'_')
        && bytes.all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
}

/// The stored labels of `series`, or `None` when its metric name or a label name is invalid,
/// a label name repeats, or there are more than `u16::MAX` labels. `__…` labels are dropped and
/// `tenant` is renamed `exported_tenant` (`exported_exported_tenant` if that is taken, and so
/// on, as Prometheus does).
pub(crate) fn series_labels(series: &MetricSeries) -> Option<Labels> {
    if !is_valid_metric_name(&series.metric) {
        return None;
    }
    let mut labels: Labels = Vec::with_capacity(series.labels.len() + 1);
    labels.push((METRIC_NAME.to_owned(), series.metric.clone()));
    for label in &series.labels {
        if !is_valid_label_name(&label.name) || label.name.len() > usize::from(u16::MAX) {
            return None;
        }
        if !label.value.is_empty() && !is_reserved_label_name(&label.name) {
            labels.push((label.name.clone(), label.value.clone()));
        }
    }
    labels.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    if labels.windows(2).any(|pair| pair[0].0 == pair[1].0) || labels.len() > usize::from(u16::MAX)
    {
        return None;
    }
    if let Some(at) = labels.iter().position(|(name, _)| name == TENANT_LABEL) {
        let (_, value) = labels.remove(at);
        let mut name = format!("{EXPORTED_PREFIX}{TENANT_LABEL}");
        while labels.iter().any(|(taken, _)| *taken == name) {
            name.insert_str(0, EXPORTED_PREFIX);
        }
        labels.push((name, value));
        labels.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    }
    Some(labels)
}

#[cfg(test)]
mod tests {
    use afterglow_proto::v1::Label;

    use super::*;

    fn series(metric: &str, labels: &[(&str, &str)]) -> MetricSeries {
        MetricSeries {
            metric: metric.to_owned(),
            labels: labels
                .iter()
                .map(|(name, value)| Label {
                    name: (*name).to_owned(),
                    value: (*value).to_owned(),
                })
                .collect(),
            samples: Vec::new(),
            seq: 0,
        }
    }

    #[test]
    fn names_follow_the_prometheus_rules() {
        assert!(is_valid_metric_name("dask:tasks_total"));
        assert!(is_valid_metric_name("_x1"));
        assert!(!is_valid_metric_name("1x"));
        assert!(!is_valid_metric_name(""));
        assert!(!is_valid_metric_name("a-b"));
        assert!(is_valid_label_name("le"));
        assert!(!is_valid_label_name("a:b"));
        assert!(!is_valid_label_name("0"));
    }

    #[test]
    fn labels_are_sorted_with_name_and_empty_values_dropped() {
        let labels = series_labels(&series(
            "up",
            &[("worker", "w-1"), ("cluster", "c"), ("x", "")],
        ))
        .expect("valid series");
        let names: Vec<&str> = labels.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["__name__", "cluster", "worker"]);
    }

    /// An agent's `tenant` label must not pass for the collector's.
    #[test]
    fn a_pushed_tenant_is_renamed_and_reserved_labels_are_dropped() {
        let names_and_values = |pushed: &[(&str, &str)]| -> Vec<(String, String)> {
            series_labels(&series("up", pushed)).expect("valid series")
        };
        let pair = |name: &str, value: &str| (name.to_owned(), value.to_owned());
        assert_eq!(
            names_and_values(&[("tenant", "team-b"), ("a", "1")]),
            [
                pair("__name__", "up"),
                pair("a", "1"),
                pair("exported_tenant", "team-b")
            ]
        );
        assert_eq!(
            names_and_values(&[("exported_tenant", "x"), ("tenant", "team-b")]),
            [
                pair("__name__", "up"),
                pair("exported_exported_tenant", "team-b"),
                pair("exported_tenant", "x"),
            ]
        );
        assert_eq!(
            names_and_values(&[
                ("__name__", "fake"),
                ("__tenant_id__", "team-b"),
                ("a", "1")
            ]),
            [pair("__name__", "up"), pair("a", "1")]
        );
        let pushed = PushRequest {
            metric_families: vec![afterglow_proto::v1::MetricFamily {
                series: vec![
                    series("up", &[("tenant", "team-b"), ("__x", "1")]),
                    series("up", &[("tenant", ""), ("__y", "1"), ("__z", "2")]),
                ],
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(
            relabels_in(&pushed),
            Relabeled {
                renamed: 1,
                dropped: 3
            }
        );
    }

    #[test]
    fn duplicate_or_bad_names_are_invalid() {
        assert!(series_labels(&series("up", &[("a", "1"), ("a", "2")])).is_none());
        assert!(series_labels(&series("up", &[("tenant", "1"), ("tenant", "2")])).is_none());
        assert!(series_labels(&series("up", &[("a-b", "1")])).is_none());
        assert!(series_labels(&series("up{", &[])).is_none());
    }
}
