//! A batch as the collector's stores take it: log entries for the index and metric families
//! for the series store, checked once when it arrives (a problem names the field, e.g.
//! `logs[3].stream_index 9 is out of range`) and again when it is replayed from the WAL.

use afterglow_proto::v1::{PushRequest, Role};

use crate::index::writer::LogEntry;
use crate::series::labels::{is_valid_label_name, is_valid_metric_name};

/// One agent batch, split by store.
#[derive(Debug, Default)]
pub struct Batch {
    pub logs: Vec<LogEntry>,
    /// The batch's `streams` and `metric_families` (its `logs` moved out), when it has
    /// families.
    pub metrics: Option<PushRequest>,
}

impl Batch {
    /// Checks `request` and splits it, moving its strings.
    pub fn from_request(mut request: PushRequest) -> Result<Batch, String> {
        for (index, stream) in request.streams.iter().enumerate() {
            if stream.cluster.is_empty() || stream.node.is_empty() {
                return Err(format!(
                    "streams[{index}]: cluster and node must not be empty"
                ));
            }
        }
        let stream_count = request.streams.len();
        let out_of_range = |field: String, stream_index: u32| {
            format!(
                "{field}.stream_index {stream_index} is out of range: the batch names {stream_count} streams"
            )
        };
        let mut logs = Vec::with_capacity(request.logs.len());
        for (index, mut record) in std::mem::take(&mut request.logs).into_iter().enumerate() {
            let stream = usize::try_from(record.stream_index)
                .ok()
                .and_then(|at| request.streams.get(at))
                .ok_or_else(|| out_of_range(format!("logs[{index}]"), record.stream_index))?;
            record.level.make_ascii_uppercase();
            logs.push(LogEntry {
                ts_micros: record.ts_unix_nanos.div_euclid(1000),
                cluster: stream.cluster.clone(),
                node: stream.node.clone(),
                role: role_name(stream.role).to_owned(),
                source: stream.source.clone(),
                level: record.level,
                logger: record.logger,
                message: record.message,
                stream: stream.id,
                seq: record.seq,
                truncated: record.truncated,
                ts_inferred: record.ts_inferred,
            });
        }
        for (index, family) in request.metric_families.iter().enumerate() {
            let at = format!("metric_families[{index}]");
            if usize::try_from(family.stream_index).map_or(true, |i| i >= stream_count) {
                return Err(out_of_range(at, family.stream_index));
            }
            for (series_index, series) in family.series.iter().enumerate() {
                if !is_valid_metric_name(&series.metric) {
                    return Err(format!(
                        "{at}.series[{series_index}].metric {:?} is not a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)",
                        series.metric
                    ));
                }
                for (label_index, label) in series.labels.iter().enumerate() {
                    if !is_valid_label_name(&label.name) {
                        return Err(format!(
                            "{at}.series[{series_index}].labels[{label_index}].name {:?} is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)",
                            label.name
                        ));
                    }
                }
            }
        }
        let metrics = (!request.metric_families.is_empty()).then_some(request);
        Ok(Batch { logs, metrics })
    }
}

fn role_name(role: i32) -> &'static str {
    match Role::try_from(role) {
        Ok(Role::Scheduler) => "scheduler",
        Ok(Role::Worker) => "worker",
        Ok(Role::Nanny) => "nanny",
        Ok(Role::Client) => "client",
        Ok(Role::Other | Role::Unspecified) | Err(_) => "other",
    }
}

#[cfg(test)]
mod tests {
    use afterglow_proto::v1::{Label, LogRecord, MetricFamily, MetricSeries, Stream};

    use super::*;

    fn request() -> PushRequest {
        PushRequest {
            batch_number: 1,
            streams: vec![Stream {
                id: 7,
                cluster: "c".to_owned(),
                node: "n".to_owned(),
                role: Role::Worker.into(),
                source: "/w.log".to_owned(),
            }],
            logs: vec![LogRecord {
                stream_index: 0,
                seq: 3,
                ts_unix_nanos: 1_500,
                level: "info".to_owned(),
                ..Default::default()
            }],
            metric_families: vec![MetricFamily {
                stream_index: 0,
                name: "up".to_owned(),
                series: vec![MetricSeries {
                    metric: "up".to_owned(),
                    labels: vec![Label {
                        name: "instance".to_owned(),
                        value: "h:1".to_owned(),
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn a_batch_splits_into_entries_and_families() {
        let batch = Batch::from_request(request()).expect("valid");
        assert_eq!(batch.logs.len(), 1);
        assert_eq!(batch.logs[0].level, "INFO");
        assert_eq!(batch.logs[0].role, "worker");
        assert_eq!(batch.logs[0].ts_micros, 1);
        let metrics = batch.metrics.expect("has families");
        assert!(metrics.logs.is_empty());
        assert_eq!(metrics.metric_families.len(), 1);
        assert_eq!(metrics.streams.len(), 1);
    }

    #[test]
    fn problems_name_the_field() {
        let mut bad = request();
        bad.logs[0].stream_index = 4;
        assert_eq!(
            Batch::from_request(bad).expect_err("invalid"),
            "logs[0].stream_index 4 is out of range: the batch names 1 streams"
        );
        let mut bad = request();
        bad.metric_families[0].stream_index = 2;
        assert!(
            Batch::from_request(bad)
                .expect_err("invalid")
                .starts_with("metric_families[0].stream_index 2")
        );
        let mut bad = request();
        bad.metric_families[0].series[0].metric = "1up".to_owned();
        assert!(
            Batch::from_request(bad)
                .expect_err("invalid")
                .contains("series[0].metric \"1up\"")
        );
        let mut bad = request();
        bad.metric_families[0].series[0].labels[0].name = "a-b".to_owned();
        assert!(
            Batch::from_request(bad)
                .expect_err("invalid")
                .contains("labels[0].name \"a-b\"")
        );
        let mut bad = request();
        bad.streams[0].node.clear();
        assert!(Batch::from_request(bad).is_err());
    }
}
