//! Label-set operations of the engine (drop the name, keep or delete some labels, format as
//! Prometheus prints them). Label sets stay sorted by name with unique names.

use crate::series::select::{Labels, METRIC_NAME};

/// Returns the value of label `name`, if present.
pub(crate) fn get<'a>(labels: &'a Labels, name: &str) -> Option<&'a str> {
    labels
        .binary_search_by(|(label, _)| label.as_str().cmp(name))
        .ok()
        .map(|at| labels[at].1.as_str())
}

/// Returns the labels without `__name__`.
pub(crate) fn drop_name(labels: &Labels) -> Labels {
    without(labels, &[METRIC_NAME])
}

/// Returns the labels whose names are not in `names`.
pub(crate) fn without(labels: &Labels, names: &[&str]) -> Labels {
    labels
        .iter()
        .filter(|(name, _)| !names.contains(&name.as_str()))
        .cloned()
        .collect()
}

/// Returns the labels whose names are in `names`.
pub(crate) fn keep(labels: &Labels, names: &[String]) -> Labels {
    labels
        .iter()
        .filter(|(name, _)| names.iter().any(|kept| kept == name))
        .cloned()
        .collect()
}

/// Sets `name` to `value` (an empty value deletes the label, as in Prometheus).
pub(crate) fn set(labels: &mut Labels, name: &str, value: &str) {
    match labels.binary_search_by(|(label, _)| label.as_str().cmp(name)) {
        Ok(at) if value.is_empty() => {
            labels.remove(at);
        }
        Ok(at) => labels[at].1 = value.to_owned(),
        Err(_) if value.is_empty() => {}
        Err(at) => labels.insert(at, (name.to_owned(), value.to_owned())),
    }
}

/// Formats labels as Prometheus's `labels.String()`: `{a="1", b="2"}`.
pub(crate) fn format(labels: &Labels) -> String {
    let inner: Vec<String> = labels
        .iter()
        .map(|(name, value)| format!("{name}={value:?}"))
        .collect();
    format!("{{{}}}", inner.join(", "))
}
