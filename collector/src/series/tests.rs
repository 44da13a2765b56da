//! Tests of the whole store over real files in temporary directories.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use afterglow_proto::v1::{Label, MetricFamily, MetricSeries, PushRequest, Sample, Stream};

use crate::series::select::{Labels, Matcher, STALE_NAN_BITS, SeriesSamples};
use crate::series::{SeriesConfig, SeriesStore};

/// 2026-11-27T00:00:00Z.
const DAY_START_MS: i64 = 1_795_737_600_000;
const HOUR_MS: i64 = 3_600_000;

type Spec<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [(i64, f64)]);

/// A batch with one stream and one family per series.
fn batch(series: &[Spec<'_>]) -> PushRequest {
    PushRequest {
        batch_number: 1,
        streams: vec![Stream {
            id: 1,
            cluster: "c".to_owned(),
            node: "n".to_owned(),
            role: 2,
            source: "http://n:8787/metrics".to_owned(),
        }],
        logs: Vec::new(),
        metric_families: series
            .iter()
            .map(|(metric, labels, samples)| MetricFamily {
                stream_index: 0,
                name: (*metric).to_owned(),
                r#type: 2,
                help: String::new(),
                series: vec![MetricSeries {
                    metric: (*metric).to_owned(),
                    labels: labels
                        .iter()
                        .map(|(name, value)| Label {
                            name: (*name).to_owned(),
                            value: (*value).to_owned(),
                        })
                        .collect(),
                    samples: samples
                        .iter()
                        .map(|&(ts_unix_millis, value)| Sample {
                            ts_unix_millis,
                            value,
                        })
                        .collect(),
                    seq: 1,
                }],
            })
            .collect(),
    }
}

fn open(dir: &Path) -> anyhow::Result<Arc<SeriesStore>> {
    Ok(Arc::new(SeriesStore::open(dir, SeriesConfig::default())?))
}

fn select_all(store: &Arc<SeriesStore>, tenant: &str) -> anyhow::Result<Vec<SeriesSamples>> {
    Ok(store
        .source(vec![tenant.to_owned()])
        .select(&[], i64::MIN, i64::MAX)?)
}

fn bits(samples: &[(i64, f64)]) -> Vec<(i64, u64)> {
    samples.iter().map(|&(ts, v)| (ts, v.to_bits())).collect()
}

fn label(labels: &Labels, name: &str) -> String {
    labels
        .iter()
        .find(|(label, _)| label == name)
        .map(|(_, value)| value.clone())
        .unwrap_or_default()
}

#[test]
fn append_then_select_round_trip_with_matchers() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path())?;
    let t = DAY_START_MS + HOUR_MS;
    let outcome = store.append(
        "default",
        &batch(&[
            (
                "dask_tasks",
                &[("state", "memory"), ("worker", "w-1")],
                &[(t, 1.0), (t + 15_000, 2.0)],
            ),
            (
                "dask_tasks",
                &[("state", "released"), ("worker", "w-2")],
                &[(t, 3.0)],
            ),
            ("dask_tasks", &[("state", "memory")], &[(t, 4.0)]),
            ("up", &[("worker", "w-1")], &[(t, 1.0)]),
        ]),
    );
    assert_eq!(outcome.added, 5);
    store.seal()?;
    store.append(
        "default",
        &batch(&[(
            "dask_tasks",
            &[("state", "memory"), ("worker", "w-1")],
            &[(t + 30_000, 5.0)],
        )]),
    );
    let source = store.source(vec!["default".to_owned()]);

    let memory = source.select(
        &[
            Matcher::equal("__name__", "dask_tasks"),
            Matcher::equal("state", "memory"),
        ],
        t,
        t + 60_000,
    )?;
    assert_eq!(memory.len(), 2);
    let with_worker = memory
        .iter()
        .find(|series| label(&series.labels, "worker") == "w-1")
        .expect("w-1 matched");
    assert_eq!(
        with_worker.samples,
        vec![(t, 1.0), (t + 15_000, 2.0), (t + 30_000, 5.0)]
    );

    // Regex, anchored.
    let regex = source.select(&[Matcher::regex("worker", "w-.", false)?], t, t)?;
    assert_eq!(regex.len(), 3);
    assert!(
        source
            .select(&[Matcher::regex("worker", "w", false)?], t, t)?
            .is_empty()
    );
    // `!=` matches series without the label.
    let not_w1 = source.select(
        &[
            Matcher::equal("__name__", "dask_tasks"),
            Matcher {
                op: crate::series::select::MatchOp::NotEqual,
                ..Matcher::equal("worker", "w-1")
            },
        ],
        t,
        t,
    )?;
    assert_eq!(not_w1.len(), 2);
    // A missing label equals "".
    let without_worker = source.select(&[Matcher::equal("worker", "")], t, t)?;
    assert_eq!(without_worker.len(), 1);
    assert_eq!(without_worker[0].samples, vec![(t, 4.0)]);
    // `!~` on a missing label.
    let not_regex = source.select(&[Matcher::regex("worker", ".+", true)?], t, t)?;
    assert_eq!(not_regex.len(), 1);
    // The range is inclusive and series without samples in it are left out.
    let late = source.select(&[], t + 15_000, t + 30_000)?;
    assert_eq!(late.len(), 1);
    assert_eq!(late[0].samples, vec![(t + 15_000, 2.0), (t + 30_000, 5.0)]);

    let names = source.label_names(&[], t, t)?;
    assert_eq!(names, ["__name__", "state", "worker"]);
    let values = source.label_values("worker", &[vec![Matcher::equal("state", "memory")]], t, t)?;
    assert_eq!(values, ["w-1"]);
    let series = source.series(
        &[
            vec![Matcher::equal("__name__", "up")],
            vec![Matcher::equal("state", "released")],
        ],
        t,
        t,
    )?;
    assert_eq!(series.len(), 2);
    Ok(())
}

#[test]
fn stale_marker_is_stored_bit_exact() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path())?;
    let t = DAY_START_MS;
    let stale = f64::from_bits(STALE_NAN_BITS);
    store.append(
        "default",
        &batch(&[("up", &[], &[(t, 1.0), (t + 1, stale), (t + 2, -0.0)])]),
    );
    let check = |store: &Arc<SeriesStore>| -> anyhow::Result<()> {
        let found = select_all(store, "default")?;
        assert_eq!(
            bits(&found[0].samples),
            vec![
                (t, 1f64.to_bits()),
                (t + 1, STALE_NAN_BITS),
                (t + 2, (-0.0f64).to_bits())
            ]
        );
        Ok(())
    };
    check(&store)?;
    store.seal()?;
    check(&store)?;
    drop(store);
    check(&open(dir.path())?)
}

#[test]
fn duplicates_and_out_of_order_samples_are_dropped() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path())?;
    let t = DAY_START_MS;
    let first = store.append(
        "default",
        &batch(&[("up", &[], &[(t, 1.0), (t + 10, 2.0), (t + 5, 9.0)])]),
    );
    assert_eq!((first.added, first.duplicates), (2, 1));
    store.seal()?;
    // At or before the newest stored timestamp (now in a block): dropped.
    let second = store.append(
        "default",
        &batch(&[("up", &[], &[(t + 10, 7.0), (t + 3, 7.0), (t + 20, 3.0)])]),
    );
    assert_eq!((second.added, second.duplicates), (1, 2));
    let found = select_all(&store, "default")?;
    assert_eq!(
        found[0].samples,
        vec![(t, 1.0), (t + 10, 2.0), (t + 20, 3.0)]
    );
    Ok(())
}

#[test]
fn invalid_series_are_skipped_and_counted() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path())?;
    let t = DAY_START_MS;
    let mut request = batch(&[
        ("1bad", &[], &[(t, 1.0)]),
        ("ok", &[("bad-name", "x")], &[(t, 1.0)]),
        ("ok", &[("a", "1"), ("a", "2")], &[(t, 1.0)]),
        ("ok", &[], &[(t, 1.0), (i64::MAX, 1.0)]),
        ("out_of_range_stream", &[], &[(t, 1.0), (t + 1, 1.0)]),
    ]);
    request.metric_families[4].stream_index = 3;
    let outcome = store.append("default", &request);
    assert_eq!((outcome.added, outcome.invalid), (1, 6));
    let outcome = store.append("../escape", &batch(&[("ok", &[], &[(t + 5, 1.0)])]));
    assert_eq!((outcome.added, outcome.invalid), (0, 1));
    Ok(())
}

#[test]
fn replay_after_reopen_adds_nothing() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let t = DAY_START_MS;
    let batches: Vec<PushRequest> = (0..5)
        .map(|step| {
            let ts = t + step * 15_000;
            batch(&[
                ("up", &[("worker", "w-1")], &[(ts, 1.0)]),
                ("load", &[], &[(ts, step as f64)]),
            ])
        })
        .collect();
    let store = open(dir.path())?;
    for request in &batches {
        assert_eq!(store.append("default", request).added, 2);
    }
    store.seal()?;
    let before = select_all(&store, "default")?;
    drop(store);

    let store = open(dir.path())?;
    for request in &batches {
        let outcome = store.append("default", request);
        assert_eq!((outcome.added, outcome.duplicates), (0, 2));
    }
    store.seal()?;
    assert_eq!(select_all(&store, "default")?, before);
    assert_eq!(store.stats().blocks, 1);
    Ok(())
}

#[test]
fn series_across_midnight_spans_two_partitions_and_select_merges_it() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path())?;
    let midnight = DAY_START_MS + 24 * HOUR_MS;
    store.append(
        "default",
        &batch(&[("up", &[], &[(midnight - 15_000, 1.0), (midnight - 1, 2.0)])]),
    );
    store.seal()?;
    store.append(
        "default",
        &batch(&[("up", &[], &[(midnight, 3.0), (midnight + 15_000, 4.0)])]),
    );
    let expected = vec![
        (midnight - 15_000, 1.0),
        (midnight - 1, 2.0),
        (midnight, 3.0),
        (midnight + 15_000, 4.0),
    ];
    assert_eq!(select_all(&store, "default")?[0].samples, expected);
    store.seal()?;
    assert!(dir.path().join("default/2026-11-27").is_dir());
    assert!(dir.path().join("default/2026-11-28").is_dir());
    assert_eq!(store.stats().partitions, 2);
    drop(store);
    let store = open(dir.path())?;
    let source = store.source(vec!["default".to_owned()]);
    assert_eq!(
        *source.select(&[], midnight - 1, midnight)?[0].samples,
        expected[1..3]
    );
    // Pruned to one day: only the first.
    assert_eq!(
        *source.select(&[], midnight - 20_000, midnight - 1)?[0].samples,
        expected[..2]
    );
    Ok(())
}

#[test]
fn seal_and_reopen_keeps_everything() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path())?;
    for step in 0..40 {
        let ts = DAY_START_MS + step * 15_000;
        store.append(
            "default",
            &batch(&[
                ("a", &[], &[(ts, step as f64)]),
                ("b", &[("x", "y")], &[(ts, 0.5)]),
            ]),
        );
        store.seal()?;
        store.compact_at(DAY_START_MS)?;
    }
    let stats = store.stats();
    assert_eq!(stats.head_samples, 0);
    assert!(stats.blocks < 16, "level merges keep blocks few: {stats:?}");
    let before = select_all(&store, "default")?;
    assert_eq!(before.len(), 2);
    assert_eq!(before[0].samples.len(), 40);
    drop(store);
    let store = open(dir.path())?;
    assert_eq!(select_all(&store, "default")?, before);
    // The day ended: one block.
    store.compact_at(DAY_START_MS + 26 * HOUR_MS)?;
    assert_eq!(store.stats().blocks, 1);
    assert_eq!(store.stats().live_partitions, 0);
    assert_eq!(select_all(&store, "default")?, before);
    Ok(())
}

#[test]
fn torn_series_index_tail_is_tolerated() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path())?;
    let t = DAY_START_MS;
    store.append("default", &batch(&[("up", &[], &[(t, 1.0)])]));
    store.seal()?;
    drop(store);
    let index_path = dir.path().join("default/2026-11-27/series.idx");
    let mut bytes = std::fs::read(&index_path)?;
    bytes.extend_from_slice(&[40, 0, 0, 0, 1, 2, 3]);
    std::fs::write(&index_path, &bytes)?;

    let store = open(dir.path())?;
    assert_eq!(select_all(&store, "default")?[0].samples, vec![(t, 1.0)]);
    store.append(
        "default",
        &batch(&[("up", &[], &[(t + 1, 2.0)]), ("new", &[], &[(t, 5.0)])]),
    );
    store.seal()?;
    drop(store);
    let store = open(dir.path())?;
    let found = select_all(&store, "default")?;
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].samples, vec![(t, 5.0)]);
    assert_eq!(found[1].samples, vec![(t, 1.0), (t + 1, 2.0)]);
    Ok(())
}

#[test]
fn crash_between_merge_rename_and_delete_gives_no_duplicates() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let partition_dir = dir.path().join("default/2026-11-27");
    let store = open(dir.path())?;
    for step in 0..3 {
        let ts = DAY_START_MS + step * 15_000;
        store.append("default", &batch(&[("up", &[], &[(ts, 1.0)])]));
        store.seal()?;
    }
    let before = select_all(&store, "default")?;
    let saved: Vec<(std::path::PathBuf, Vec<u8>)> = std::fs::read_dir(&partition_dir)?
        .map(|entry| entry.map(|entry| entry.path()))
        .filter(|path| {
            path.as_ref()
                .is_ok_and(|path| path.extension().is_some_and(|e| e == "blk"))
        })
        .map(|path| -> anyhow::Result<_> {
            let path = path?;
            let bytes = std::fs::read(&path)?;
            Ok((path, bytes))
        })
        .collect::<anyhow::Result<_>>()?;
    assert_eq!(saved.len(), 3);
    store.compact_at(DAY_START_MS + 48 * HOUR_MS)?;
    drop(store);
    // As if the process died after renaming the merged block, before deleting its inputs.
    for (path, bytes) in &saved {
        std::fs::write(path, bytes)?;
    }
    // And a block that was being written.
    std::fs::write(partition_dir.join("00000000000000ff.blk.tmp"), b"partial")?;

    let store = open(dir.path())?;
    assert_eq!(select_all(&store, "default")?, before);
    let left: Vec<String> = std::fs::read_dir(&partition_dir)?
        .map(|entry| entry.map(|entry| entry.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    assert_eq!(left.len(), 2, "the merged block and the index: {left:?}");
    Ok(())
}

#[test]
fn admit_refuses_new_series_past_the_limit_and_keeps_known_ones() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(SeriesStore::open(
        dir.path(),
        SeriesConfig {
            max_series_per_tenant: 3,
        },
    )?);
    let t = DAY_START_MS;
    let mut first = batch(&[("a", &[], &[(t, 1.0)]), ("b", &[], &[(t, 1.0)])]);
    assert_eq!(store.admit("default", &mut first), None);
    store.append("default", &first);

    let mut second = batch(&[
        ("a", &[], &[(t + 1, 1.0)]),
        ("c", &[], &[(t + 1, 1.0)]),
        ("d", &[], &[(t + 1, 1.0)]),
        ("e", &[], &[(t + 1, 1.0)]),
        ("c", &[], &[(t + 2, 1.0)]),
    ]);
    let message = store
        .admit("default", &mut second)
        .expect("d and e are refused");
    assert_eq!(
        message,
        "tenant default: 2 new series refused: the limit is 3 series per tenant per day ([metrics] max_series_per_tenant)"
    );
    let kept: Vec<&str> = second
        .metric_families
        .iter()
        .flat_map(|family| family.series.iter().map(|series| series.metric.as_str()))
        .collect();
    assert_eq!(kept, ["a", "c", "c"]);
    let outcome = store.append("default", &second);
    assert_eq!((outcome.added, outcome.refused), (3, 0));
    // Append enforces the limit too (a batch that skipped admit).
    let outcome = store.append("default", &batch(&[("z", &[], &[(t + 5, 1.0)])]));
    assert_eq!(outcome.refused, 1);
    // Another day starts from zero; another tenant has its own limit.
    let mut next_day = batch(&[("z", &[], &[(t + 24 * HOUR_MS, 1.0)])]);
    assert_eq!(store.admit("default", &mut next_day), None);
    let mut other = batch(&[("z", &[], &[(t, 1.0)])]);
    assert_eq!(store.admit("other", &mut other), None);
    Ok(())
}

#[test]
fn tenant_source_never_sees_other_tenants() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path())?;
    let t = DAY_START_MS;
    store.append("a", &batch(&[("up", &[("who", "a")], &[(t, 1.0)])]));
    store.append("b", &batch(&[("up", &[("who", "b")], &[(t, 2.0)])]));
    store.seal()?;
    store.append("b", &batch(&[("secret", &[], &[(t, 2.0)])]));
    let source = store.source(vec!["a".to_owned()]);
    let found = source.select(&[], i64::MIN, i64::MAX)?;
    assert_eq!(found.len(), 1);
    assert_eq!(label(&found[0].labels, "who"), "a");
    assert_eq!(source.label_values("who", &[], i64::MIN, i64::MAX)?, ["a"]);
    assert_eq!(
        source.label_values("__name__", &[], i64::MIN, i64::MAX)?,
        ["up"]
    );
    let both = store.source(vec!["a".to_owned(), "b".to_owned()]);
    assert_eq!(both.select(&[], i64::MIN, i64::MAX)?.len(), 3);
    assert!(
        store
            .source(Vec::new())
            .select(&[], i64::MIN, i64::MAX)?
            .is_empty()
    );
    Ok(())
}

/// A source over several tenants labels each series with its tenant (the same
/// labels in two tenants stay two series), `tenant` matchers pick tenants among the source's
/// only, and a pushed `tenant` label is stored as `exported_tenant`.
#[test]
fn a_labeled_source_names_each_series_tenant() -> anyhow::Result<()> {
    use crate::series::select::TenantLabel;
    let dir = tempfile::tempdir()?;
    let store = open(dir.path())?;
    let t = DAY_START_MS;
    store.append("a", &batch(&[("up", &[("tenant", "b")], &[(t, 1.0)])]));
    store.append("b", &batch(&[("up", &[], &[(t, 2.0)])]));
    store.seal()?;
    store.append("c", &batch(&[("up", &[], &[(t, 3.0)])]));
    let both = store.source_labeled(vec!["a".to_owned(), "b".to_owned()], TenantLabel::Added);
    let mut found: Vec<Labels> = both
        .select(&[], i64::MIN, i64::MAX)?
        .into_iter()
        .map(|series| series.labels)
        .collect();
    found.sort();
    let pair = |name: &str, value: &str| (name.to_owned(), value.to_owned());
    assert_eq!(
        found,
        [
            vec![
                pair("__name__", "up"),
                pair("exported_tenant", "b"),
                pair("tenant", "a")
            ],
            vec![pair("__name__", "up"), pair("tenant", "b")],
        ]
    );
    let only_b = both.select(&[Matcher::equal("tenant", "b")], i64::MIN, i64::MAX)?;
    assert_eq!(only_b.len(), 1);
    assert_eq!(bits(&only_b[0].samples), [(t, 2.0f64.to_bits())]);
    assert!(
        both.select(&[Matcher::equal("tenant", "c")], i64::MIN, i64::MAX)?
            .is_empty(),
        "a tenant outside the source is not read"
    );
    assert_eq!(
        both.label_values("tenant", &[], i64::MIN, i64::MAX)?,
        ["a", "b"]
    );
    // Without the label (a caller of one tenant), as before.
    let a = store
        .source(vec!["a".to_owned()])
        .select(&[], i64::MIN, i64::MAX)?;
    assert_eq!(
        a[0].labels,
        [pair("__name__", "up"), pair("exported_tenant", "b")]
    );
    Ok(())
}

/// A small deterministic generator (xorshift64*), so that failures reproduce from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

/// The store's behaviour as a model: per (series, day) the accepted samples; a sample is
/// accepted when it is after the newest of its series that day.
#[derive(Default)]
struct Model {
    samples: BTreeMap<(String, i64), BTreeMap<i64, u64>>,
}

impl Model {
    fn append(&mut self, name: &str, ts: i64, value: f64) {
        let day = ts.div_euclid(24 * HOUR_MS);
        let series = self.samples.entry((name.to_owned(), day)).or_default();
        if series
            .last_key_value()
            .is_none_or(|(&newest, _)| ts > newest)
        {
            series.insert(ts, value.to_bits());
        }
    }

    fn select(&self, start: i64, end: i64) -> BTreeMap<String, Vec<(i64, u64)>> {
        let mut found: BTreeMap<String, Vec<(i64, u64)>> = BTreeMap::new();
        for ((name, _), samples) in &self.samples {
            let in_range: Vec<(i64, u64)> = samples
                .range(start..=end)
                .map(|(&ts, &v)| (ts, v))
                .collect();
            if !in_range.is_empty() {
                found.entry(name.clone()).or_default().extend(in_range);
            }
        }
        found
    }
}

fn run_model_case(seed: u64) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut rng = Rng(seed | 1);
    let mut store = open(dir.path())?;
    let mut model = Model::default();
    // Batches appended since the last seal: the WAL a restart replays.
    let mut unsealed: Vec<PushRequest> = Vec::new();
    let names = ["a", "b", "c", "d"];
    let span_ms = 3 * 24 * HOUR_MS;
    let origin = DAY_START_MS - HOUR_MS;
    for _ in 0..60 {
        match rng.below(10) {
            0..=5 => {
                let mut specs = Vec::new();
                for _ in 0..=rng.below(4) {
                    let name = names[rng.below(4) as usize];
                    let mut samples = Vec::new();
                    for _ in 0..=rng.below(5) {
                        let ts = origin + (rng.below(span_ms as u64 / 60_000) as i64) * 60_000;
                        let value = match rng.below(4) {
                            0 => f64::from_bits(STALE_NAN_BITS),
                            1 => rng.below(1000) as f64,
                            _ => (rng.next() as f64) / 7.0,
                        };
                        samples.push((ts, value));
                    }
                    specs.push((name, samples));
                }
                let spec_refs: Vec<Spec<'_>> = specs
                    .iter()
                    .map(|(name, samples)| (*name, &[][..], samples.as_slice()))
                    .collect();
                let request = batch(&spec_refs);
                store.append("default", &request);
                for (name, samples) in &specs {
                    for &(ts, value) in samples {
                        model.append(name, ts, value);
                    }
                }
                unsealed.push(request);
            }
            6 => {
                store.seal()?;
                unsealed.clear();
            }
            7 => {
                let now = origin + rng.below(5 * 24) as i64 * HOUR_MS;
                store.compact_at(now)?;
            }
            8 => {
                drop(store);
                store = open(dir.path())?;
                for request in &unsealed {
                    store.append("default", request);
                }
            }
            _ => {
                let start = origin + rng.below(span_ms as u64) as i64;
                let end = start + rng.below(span_ms as u64) as i64;
                check_against_model(&store, &model, start, end, seed)?;
            }
        }
    }
    check_against_model(&store, &model, i64::MIN, i64::MAX, seed)
}

fn check_against_model(
    store: &Arc<SeriesStore>,
    model: &Model,
    start: i64,
    end: i64,
    seed: u64,
) -> anyhow::Result<()> {
    let found: BTreeMap<String, Vec<(i64, u64)>> = select_all_in(store, start, end)?
        .into_iter()
        .map(|series| (label(&series.labels, "__name__"), bits(&series.samples)))
        .collect();
    assert_eq!(
        found,
        model.select(start, end),
        "seed {seed}, range {start}..={end}"
    );
    Ok(())
}

fn select_all_in(
    store: &Arc<SeriesStore>,
    start: i64,
    end: i64,
) -> anyhow::Result<Vec<SeriesSamples>> {
    Ok(store.source(vec!["default".to_owned()]).select(
        &[Matcher::regex("__name__", ".+", false)?],
        start,
        end,
    )?)
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(40))]
    /// Each case draws a seed; the seed drives a run of appends, seals, compactions and
    /// restarts (see `run_model_case`) whose selects must equal the model's.
    #[test]
    fn random_appends_seals_compactions_and_restarts_match_a_model(seed in proptest::prelude::any::<u64>()) {
        run_model_case(seed).map_err(|error| proptest::test_runner::TestCaseError::fail(format!("{error:#}")))?;
    }
}

#[test]
fn queries_during_seals_and_merges_see_each_sample_once() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path())?;
    let writer_store = Arc::clone(&store);
    let writer = std::thread::spawn(move || -> anyhow::Result<()> {
        for step in 0..200i64 {
            let ts = DAY_START_MS + step * 15_000;
            writer_store.append(
                "default",
                &batch(&[
                    ("a", &[], &[(ts, step as f64)]),
                    ("b", &[], &[(ts, step as f64)]),
                ]),
            );
            writer_store.seal()?;
            // Level merges, and every 50 steps a day-end merge into one block.
            let now = if step % 50 == 49 {
                DAY_START_MS + 48 * HOUR_MS
            } else {
                ts
            };
            writer_store.compact_at(now)?;
        }
        Ok(())
    });
    let mut reads = 0;
    while !writer.is_finished() || reads == 0 {
        for series in select_all(&store, "default")? {
            let expected: Vec<(i64, f64)> = (0..series.samples.len() as i64)
                .map(|step| (DAY_START_MS + step * 15_000, step as f64))
                .collect();
            assert_eq!(series.samples, expected, "no sample twice, none missing");
        }
        reads += 1;
    }
    writer.join().expect("writer thread panicked")?;
    assert_eq!(select_all(&store, "default")?[0].samples.len(), 200);
    Ok(())
}

#[test]
fn a_query_over_many_series_decodes_them_on_every_core_and_reads_each_sample_once()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path())?;
    let workers: Vec<String> = (0..150).map(|n| format!("w-{n:03}")).collect();
    for step in 0..8 {
        let ts = DAY_START_MS + step * 15_000;
        let samples: Vec<[(i64, f64); 1]> = (0..workers.len())
            .map(|n| [(ts, (n * 100 + step as usize) as f64)])
            .collect();
        let labels: Vec<[(&str, &str); 1]> = workers
            .iter()
            .map(|worker| [("worker", worker.as_str())])
            .collect();
        let specs: Vec<Spec<'_>> = labels
            .iter()
            .zip(&samples)
            .map(|(labels, samples)| ("mem", &labels[..], &samples[..]))
            .collect();
        store.append("default", &batch(&specs));
        // Three blocks, and the last two steps in the head.
        if step % 2 == 1 && step < 6 {
            store.seal()?;
        }
    }
    let selected = select_all(&store, "default")?;
    assert_eq!(selected.len(), workers.len());
    for (n, series) in selected.iter().enumerate() {
        assert_eq!(label(&series.labels, "worker"), workers[n]);
        let values: Vec<f64> = series.samples.iter().map(|&(_, value)| value).collect();
        let expected: Vec<f64> = (0..8).map(|step| (n * 100 + step) as f64).collect();
        assert_eq!(values, expected, "{}", workers[n]);
    }
    Ok(())
}

/// The first and last sample per (cluster, node, role) come from block directories and the
/// head, agree with reading every sample, leave other tenants out, and a partition's blocks
/// are read again only when a seal or merge changed them.
#[test]
fn sample_senders_come_from_directories_and_the_head_without_decoding() -> anyhow::Result<()> {
    use crate::series::select::{SampleSender, SeriesSource};

    /// Reads every sample: the trait's default answer, to compare with.
    struct EverySample(Arc<dyn SeriesSource>);
    impl SeriesSource for EverySample {
        fn select(
            &self,
            matchers: &[Matcher],
            start_ms: i64,
            end_ms: i64,
        ) -> Result<Vec<SeriesSamples>, crate::series::select::SelectError> {
            self.0.select(matchers, start_ms, end_ms)
        }
        fn series(
            &self,
            matcher_sets: &[Vec<Matcher>],
            start_ms: i64,
            end_ms: i64,
        ) -> Result<Vec<Labels>, crate::series::select::SelectError> {
            self.0.series(matcher_sets, start_ms, end_ms)
        }
    }

    let dir = tempfile::tempdir()?;
    let store = open(dir.path())?;
    let t = DAY_START_MS + HOUR_MS;
    let worker = [("cluster", "m"), ("node", "10.0.0.7"), ("role", "worker")];
    let scheduler = [("cluster", "m"), ("node", "sched"), ("role", "scheduler")];
    store.append(
        "a",
        &batch(&[
            ("up", &worker, &[(t, 1.0), (t + 15_000, 1.0)]),
            ("up", &scheduler, &[(t + 5_000, 1.0)]),
        ]),
    );
    store.append(
        "b",
        &batch(&[("up", &[("cluster", "theirs")], &[(t, 1.0)])]),
    );
    store.seal()?;
    // The next day's head, and a second series of the worker in today's head.
    store.append(
        "a",
        &batch(&[
            ("up", &worker, &[(t + 30_000, 1.0), (t + 24 * HOUR_MS, 1.0)]),
            ("dask_tasks", &worker, &[(t - 60_000, 2.0)]),
        ]),
    );
    let senders = store.sample_senders(&["a".to_owned()])?;
    let expected = vec![
        SampleSender {
            cluster: "m".to_owned(),
            node: "10.0.0.7".to_owned(),
            role: "worker".to_owned(),
            first_ms: t - 60_000,
            last_ms: t + 24 * HOUR_MS,
        },
        SampleSender {
            cluster: "m".to_owned(),
            node: "sched".to_owned(),
            role: "scheduler".to_owned(),
            first_ms: t + 5_000,
            last_ms: t + 5_000,
        },
    ];
    assert_eq!(senders, expected);
    let source = store.source(vec!["a".to_owned()]);
    assert_eq!(source.sample_senders()?, expected);
    assert_eq!(
        EverySample(Arc::clone(&source)).sample_senders()?,
        expected,
        "the same as reading every sample"
    );
    let read = store.sender_cache.summarized();
    assert_eq!(store.sample_senders(&["a".to_owned()])?, expected);
    assert_eq!(
        store.sender_cache.summarized(),
        read,
        "nothing sealed since"
    );
    store.seal()?;
    assert_eq!(store.sample_senders(&["a".to_owned()])?, expected);
    assert!(
        store.sender_cache.summarized() > read,
        "new blocks are read"
    );
    assert_eq!(
        store.sample_senders(&["b".to_owned()])?,
        vec![SampleSender {
            cluster: "theirs".to_owned(),
            node: String::new(),
            role: String::new(),
            first_ms: t,
            last_ms: t,
        }]
    );
    // A finished partition: its index comes from its file.
    drop(source);
    drop(store);
    let store = open(dir.path())?;
    assert_eq!(store.sample_senders(&["a".to_owned()])?, expected);
    Ok(())
}
