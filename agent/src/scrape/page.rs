//! One scrape as wire data: a parsed page's families with the target's labels added, the
//! synthetic per-target series (`up`, `scrape_duration_seconds`, `scrape_samples_scraped`),
//! and staleness markers for the series the previous scrape had and this one lacks.
//!
//! The rule a reader must not miss: a scraped label that collides with a target label is kept
//! as `exported_<name>` (as Prometheus does without `honor_labels`), so a page can never pose
//! as another cluster, node or worker.

use std::collections::HashMap;

use afterglow_proto::v1::{Label, MetricFamily, MetricSeries, MetricType, Sample};
use xxhash_rust::xxh3::Xxh3;

use crate::prom::{Family, MetricKind, ParsedPage};

/// The bit pattern Prometheus writes as a staleness marker: the series ended here.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// A series' name and sorted labels, as shipped.
#[derive(Debug, Clone, PartialEq)]
struct SeriesId {
    metric: String,
    labels: Vec<Label>,
}

/// The series a target's previous scrape shipped, to mark the ones that disappear as stale.
#[derive(Debug, Default)]
pub struct Staleness {
    previous: HashMap<u64, SeriesId>,
}

/// What a scrape found, for the synthetic series.
#[derive(Debug, Clone, Copy)]
pub struct ScrapeReport {
    pub up: bool,
    pub duration_seconds: f64,
}

impl Staleness {
    /// Builds the families of one scrape at `ts_ms`: the page's (none when the scrape
    /// failed), the synthetic series, and a staleness marker for every series of the previous
    /// scrape that is missing now. `target_labels` must be sorted by name.
    pub fn scrape_families(
        &mut self,
        page: Option<ParsedPage>,
        target_labels: &[Label],
        report: ScrapeReport,
        ts_ms: i64,
        seq: u64,
    ) -> Vec<MetricFamily> {
        let scraped_families: Vec<MetricFamily> = page
            .map(|page| page.families)
            .unwrap_or_default()
            .into_iter()
            .map(|family| wire_family(family, target_labels, ts_ms, seq))
            .collect();
        let scraped: usize = scraped_families
            .iter()
            .map(|family| family.series.len())
            .sum();
        // The synthetic series go first: a collector at its series limit keeps the first ones,
        // and `up` matters most.
        let mut families = Vec::with_capacity(scraped_families.len() + 4);
        for (name, value) in [
            ("up", if report.up { 1.0 } else { 0.0 }),
            ("scrape_duration_seconds", report.duration_seconds),
            ("scrape_samples_scraped", scraped as f64),
        ] {
            families.push(MetricFamily {
                stream_index: 0,
                name: name.to_owned(),
                r#type: MetricType::Gauge.into(),
                help: String::new(),
                series: vec![MetricSeries {
                    metric: name.to_owned(),
                    labels: target_labels.to_vec(),
                    samples: vec![Sample {
                        ts_unix_millis: ts_ms,
                        value,
                    }],
                    seq,
                }],
            });
        }
        families.extend(scraped_families);
        let mut current = HashMap::with_capacity(self.previous.len());
        for series in families.iter().flat_map(|family| &family.series) {
            // Series with their own timestamps are not marked stale, as in Prometheus.
            if series
                .samples
                .iter()
                .all(|sample| sample.ts_unix_millis == ts_ms)
            {
                current.insert(
                    series_key(&series.metric, &series.labels),
                    SeriesId {
                        metric: series.metric.clone(),
                        labels: series.labels.clone(),
                    },
                );
            }
        }
        let ended = stale_family(
            self.previous
                .drain()
                .filter(|(key, _)| !current.contains_key(key))
                .map(|(_, id)| id),
            ts_ms,
            seq,
        );
        families.extend(ended);
        self.previous = current;
        families
    }

    /// Marks every series of the previous scrape stale at `ts_ms`: the target is gone.
    pub fn end_all(&mut self, ts_ms: i64, seq: u64) -> Vec<MetricFamily> {
        stale_family(self.previous.drain().map(|(_, id)| id), ts_ms, seq)
            .into_iter()
            .collect()
    }
}

/// One family holding a staleness marker for each of `ended`, or none if it is empty.
fn stale_family(
    ended: impl Iterator<Item = SeriesId>,
    ts_ms: i64,
    seq: u64,
) -> Option<MetricFamily> {
    let series: Vec<MetricSeries> = ended
        .map(|id| MetricSeries {
            metric: id.metric,
            labels: id.labels,
            samples: vec![Sample {
                ts_unix_millis: ts_ms,
                value: f64::from_bits(STALE_NAN_BITS),
            }],
            seq,
        })
        .collect();
    (!series.is_empty()).then(|| MetricFamily {
        stream_index: 0,
        name: String::new(),
        r#type: MetricType::Unspecified.into(),
        help: String::new(),
        series,
    })
}

fn series_key(metric: &str, labels: &[Label]) -> u64 {
    let mut hasher = Xxh3::new();
    hasher.update(metric.as_bytes());
    for label in labels {
        hasher.update(&[0xff]);
        hasher.update(label.name.as_bytes());
        hasher.update(&[0xfe]);
        hasher.update(label.value.as_bytes());
    }
    hasher.digest()
}

fn wire_family(family: Family, target_labels: &[Label], ts_ms: i64, seq: u64) -> MetricFamily {
    let series = family
        .samples
        .into_iter()
        .map(|sample| MetricSeries {
            metric: sample.name,
            labels: merge_labels(sample.labels, target_labels),
            samples: vec![Sample {
                ts_unix_millis: sample.timestamp_ms.unwrap_or(ts_ms),
                value: sample.value,
            }],
            seq,
        })
        .collect();
    MetricFamily {
        stream_index: 0,
        name: family.name,
        r#type: wire_type(family.kind).into(),
        help: family.help.unwrap_or_default(),
        series,
    }
}

/// The scraped labels plus the target's, sorted by name; a scraped label named like a target
/// label becomes `exported_<name>`.
fn merge_labels(scraped: Vec<(String, String)>, target_labels: &[Label]) -> Vec<Label> {
    let mut labels = Vec::with_capacity(scraped.len() + target_labels.len());
    for (name, value) in scraped {
        let name = if target_labels.iter().any(|label| label.name == name) {
            format!("exported_{name}")
        } else {
            name
        };
        labels.push(Label { name, value });
    }
    labels.extend_from_slice(target_labels);
    labels.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    labels
}

fn wire_type(kind: MetricKind) -> MetricType {
    match kind {
        MetricKind::Counter => MetricType::Counter,
        MetricKind::Gauge => MetricType::Gauge,
        MetricKind::Histogram => MetricType::Histogram,
        MetricKind::Summary => MetricType::Summary,
        MetricKind::Untyped | MetricKind::Unknown => MetricType::Untyped,
        MetricKind::Info => MetricType::Info,
        MetricKind::StateSet => MetricType::Stateset,
        MetricKind::GaugeHistogram => MetricType::GaugeHistogram,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prom::{Format, parse};

    fn target() -> Vec<Label> {
        ["cluster", "instance", "node"]
            .iter()
            .map(|name| Label {
                name: (*name).to_owned(),
                value: format!("the-{name}"),
            })
            .collect()
    }

    fn ok() -> ScrapeReport {
        ScrapeReport {
            up: true,
            duration_seconds: 0.25,
        }
    }

    /// A series as `(metric, labels, value bits)`.
    type Flat = (String, Vec<(String, String)>, u64);

    fn names_and_values(families: &[MetricFamily]) -> Vec<Flat> {
        families
            .iter()
            .flat_map(|family| &family.series)
            .map(|series| {
                (
                    series.metric.clone(),
                    series
                        .labels
                        .iter()
                        .map(|label| (label.name.clone(), label.value.clone()))
                        .collect(),
                    series.samples[0].value.to_bits(),
                )
            })
            .collect()
    }

    #[test]
    fn target_labels_are_added_sorted_and_a_colliding_scraped_label_is_renamed() {
        let page = parse(
            "# TYPE x gauge\nx{node=\"fake\",a=\"1\"} 3\n",
            Format::Text004,
        );
        let families = Staleness::default().scrape_families(Some(page), &target(), ok(), 1000, 7);
        assert_eq!(families[0].name, "up", "synthetic series first");
        let series = &families[3].series[0];
        let names: Vec<&str> = series
            .labels
            .iter()
            .map(|label| label.name.as_str())
            .collect();
        assert_eq!(names, ["a", "cluster", "exported_node", "instance", "node"]);
        assert_eq!(series.labels[4].value, "the-node");
        assert_eq!(series.labels[2].value, "fake");
        assert_eq!(series.seq, 7);
        assert_eq!(families[3].r#type, i32::from(MetricType::Gauge));
    }

    #[test]
    fn synthetic_series_count_the_scraped_samples() {
        let page = parse("a 1\nb 2\nc{x=\"y\"} 3\n", Format::Text004);
        let families = Staleness::default().scrape_families(Some(page), &target(), ok(), 1000, 1);
        let all = names_and_values(&families);
        let value = |name: &str| {
            all.iter()
                .find(|(metric, _, _)| metric == name)
                .map(|(_, _, bits)| f64::from_bits(*bits))
        };
        assert_eq!(value("up"), Some(1.0));
        assert_eq!(value("scrape_samples_scraped"), Some(3.0));
        assert_eq!(value("scrape_duration_seconds"), Some(0.25));
    }

    #[test]
    fn a_series_missing_from_the_next_scrape_gets_one_staleness_marker() {
        let mut staleness = Staleness::default();
        let first = parse("a 1\nb 2\n", Format::Text004);
        staleness.scrape_families(Some(first), &target(), ok(), 1000, 1);
        let second = parse("a 1\n", Format::Text004);
        let families = staleness.scrape_families(Some(second), &target(), ok(), 16000, 2);
        let stale: Vec<_> = names_and_values(&families)
            .into_iter()
            .filter(|(_, _, bits)| *bits == STALE_NAN_BITS)
            .collect();
        assert_eq!(stale.len(), 1);
        assert_eq!(stale[0].0, "b");
        // Marked once: the third scrape does not repeat it.
        let third = parse("a 1\n", Format::Text004);
        let families = staleness.scrape_families(Some(third), &target(), ok(), 31000, 3);
        assert!(
            names_and_values(&families)
                .iter()
                .all(|(_, _, bits)| *bits != STALE_NAN_BITS)
        );
    }

    #[test]
    fn a_failed_scrape_marks_the_page_stale_and_reports_down() {
        let mut staleness = Staleness::default();
        let page = parse("a 1\n", Format::Text004);
        staleness.scrape_families(Some(page), &target(), ok(), 1000, 1);
        let down = ScrapeReport {
            up: false,
            duration_seconds: 10.0,
        };
        let families = staleness.scrape_families(None, &target(), down, 16000, 2);
        let all = names_and_values(&families);
        assert!(
            all.contains(&(
                "up".to_owned(),
                target()
                    .into_iter()
                    .map(|label| (label.name, label.value))
                    .collect(),
                0f64.to_bits()
            ))
        );
        assert!(
            all.iter()
                .any(|(metric, _, bits)| metric == "a" && *bits == STALE_NAN_BITS)
        );
    }

    #[test]
    fn a_removed_target_ends_every_series_including_up() {
        let mut staleness = Staleness::default();
        let page = parse("a 1\n", Format::Text004);
        staleness.scrape_families(Some(page), &target(), ok(), 1000, 1);
        let families = staleness.end_all(16000, 2);
        let mut ended: Vec<String> = names_and_values(&families)
            .into_iter()
            .map(|(metric, _, bits)| {
                assert_eq!(bits, STALE_NAN_BITS);
                metric
            })
            .collect();
        ended.sort();
        assert_eq!(
            ended,
            [
                "a",
                "scrape_duration_seconds",
                "scrape_samples_scraped",
                "up"
            ]
        );
        assert!(staleness.end_all(31000, 3).is_empty());
    }

    #[test]
    fn samples_with_their_own_timestamp_keep_it_and_are_not_marked_stale() {
        let mut staleness = Staleness::default();
        let page = parse("a 1 500\n", Format::Text004);
        let families = staleness.scrape_families(Some(page), &target(), ok(), 1000, 1);
        assert_eq!(families[3].series[0].samples[0].ts_unix_millis, 500);
        let families =
            staleness.scrape_families(Some(parse("", Format::Text004)), &target(), ok(), 16000, 2);
        assert!(
            names_and_values(&families)
                .iter()
                .all(|(_, _, bits)| *bits != STALE_NAN_BITS)
        );
    }
}
