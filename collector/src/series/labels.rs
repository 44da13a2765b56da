//! Turning a pushed `MetricSeries` into the labels the store keys it by: its labels plus
//! `__name__`, sorted, checked against the Prometheus naming rules.
//!
//! The rule a reader must not miss: a label with an empty value is the same as no label
//! (Prometheus semantics), so it is dropped rather than stored.

use afterglow_proto::v1::MetricSeries;

use crate::series::select::{Labels, METRIC_NAME};

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
/// a label name repeats (`__name__` included), or there are more than `u16::MAX` labels.
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
        if !label.value.is_empty() {
            labels.push((label.name.clone(), label.value.clone()));
        }
    }
    labels.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    if labels.windows(2).any(|pair| pair[0].0 == pair[1].0) || labels.len() > usize::from(u16::MAX)
    {
        return None;
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

    #[test]
    fn duplicate_or_bad_names_are_invalid() {
        assert!(series_labels(&series("up", &[("a", "1"), ("a", "2")])).is_none());
        assert!(series_labels(&series("up", &[("__name__", "x")])).is_none());
        assert!(series_labels(&series("up", &[("a-b", "1")])).is_none());
        assert!(series_labels(&series("up{", &[])).is_none());
    }
}
