//! The series store's bytes per sample (`benches/series/run.sh`): a 50-worker Dask cluster and
//! its scheduler scraped every 15 s for one UTC day, fed through `SeriesStore::append`, sealed
//! every 30 s of simulated time and compacted, until the day is one block per partition.
//!
//! Usage: `series_bytes METRICS_DIR [OPENMETRICS_FILE]`
//!
//! Series shapes come from the real pages in `tests/fixtures/dask/metrics` (parsed by the
//! agent's parser): the `*-t1-idle` and `*-t2-load` page of each role give each series its kind
//! and the range it moves in. Every worker gets the worker page's series, the scheduler the
//! scheduler page's, all with the agent's identity labels (`cluster`, `node`, `role`,
//! `instance`, and `worker` for workers), plus the synthetic `up`, `scrape_duration_seconds`
//! and `scrape_samples_scraped`, and (the pages have none) one 10-bucket histogram per worker.
//! Values, from a fixed-seed generator: a series equal on both pages is constant; integer
//! gauges hold still and sometimes step (byte gauges by whole 4 KiB pages); non-integer gauges
//! (latencies, durations) take a new full-precision value every scrape; counters increase by
//! varying amounts while their target is busy (about a third of the time, in spells of
//! minutes) and mostly hold while it is idle. Timestamps are exactly on the 15 s grid.
//!
//! With OPENMETRICS_FILE, the same samples are also written there as OpenMetrics text (every
//! series as a `gauge` family of its own name, timestamps in seconds) for `promtool tsdb
//! create-blocks-from openmetrics`.
//!
//! Prints one JSON object on stdout.

use std::collections::BTreeMap;
use std::error::Error;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use afterglow_agent::prom::{Format, MetricKind, parse};
use afterglow_collector::series::{SeriesConfig, SeriesStore};
use afterglow_proto::v1::{Label, MetricFamily, MetricSeries, PushRequest, Sample, Stream};
use rustix::time::{ClockId, clock_gettime};

const USAGE: &str = "usage: series_bytes METRICS_DIR [OPENMETRICS_FILE]";
const WORKERS: usize = 50;
const SCRAPE_INTERVAL_MS: i64 = 15_000;
/// One day of scrapes.
const STEPS: usize = 24 * 3600 * 1000 / SCRAPE_INTERVAL_MS as usize;
/// A seal every 30 s of simulated time.
const SEAL_EVERY_STEPS: usize = 2;
/// 2026-11-26T00:00:00Z: a finished day.
const DAY_START_MS: i64 = 1_795_651_200_000;
const TENANT: &str = "default";
/// The generator's seed: every run simulates the same day.
const SEED: u64 = 0x5eed_a17e;

const WORKER_PAGES: [&str; 2] = [
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/dask/metrics/worker-1-metrics-t1-idle.prom"
    )),
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/dask/metrics/worker-1-metrics-t2-load.prom"
    )),
];
const SCHEDULER_PAGES: [&str; 2] = [
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/dask/metrics/scheduler-metrics-t1-idle.prom"
    )),
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/dask/metrics/scheduler-metrics-t2-load.prom"
    )),
];

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    fn chance(&mut self, probability: f64) -> bool {
        self.unit() < probability
    }
}

/// One series of a page: its kind and its values on the idle and the loaded page.
struct PageSeries {
    metric: String,
    labels: Vec<(String, String)>,
    kind: MetricKind,
    idle: f64,
    load: f64,
}

/// The series of a role's two pages (the loaded page's, with the idle value where present).
fn page_series(pages: [&str; 2]) -> Vec<PageSeries> {
    let idle = parse(pages[0], Format::Text004);
    let load = parse(pages[1], Format::Text004);
    let mut idle_values = BTreeMap::new();
    for family in &idle.families {
        for sample in &family.samples {
            idle_values.insert((sample.name.clone(), sample.labels.clone()), sample.value);
        }
    }
    let mut series = Vec::new();
    for family in &load.families {
        for sample in &family.samples {
            let key = (sample.name.clone(), sample.labels.clone());
            series.push(PageSeries {
                metric: sample.name.clone(),
                labels: sample.labels.clone(),
                kind: family.kind,
                idle: idle_values.get(&key).copied().unwrap_or(sample.value),
                load: sample.value,
            });
        }
    }
    series
}

/// One simulated series: its labels and one value per scrape.
struct SimSeries {
    target: usize,
    metric: String,
    labels: Vec<(String, String)>,
    values: Vec<f64>,
}

fn is_integral(value: f64) -> bool {
    value.fract() == 0.0
}

/// The values of one page series on one target over the day.
fn simulate(page: &PageSeries, busy: &[bool], rng: &mut Rng) -> Vec<f64> {
    let counter = matches!(page.kind, MetricKind::Counter) || page.metric.ends_with("_total");
    let low = page.idle.min(page.load);
    let high = page.idle.max(page.load);
    let constant = page.idle == page.load
        || page.metric.ends_with("_start_time_seconds")
        || page.metric.ends_with("_info");
    let mut values = Vec::with_capacity(STEPS);
    if constant {
        values.resize(STEPS, page.load);
        return values;
    }
    let integral = is_integral(page.idle) && is_integral(page.load);
    let mut value = if integral {
        (page.idle * (0.5 + rng.unit())).round()
    } else {
        page.idle
    };
    for &target_busy in busy {
        if counter {
            let active = if target_busy {
                rng.chance(0.8)
            } else {
                rng.chance(0.1)
            };
            if active {
                if page.metric.contains("cpu_seconds") {
                    // CPU time advances in clock ticks.
                    value += rng.below(if target_busy { 100 } else { 3 }) as f64 * 0.01;
                } else if integral {
                    let most = ((high - low) / 40.0).max(1.0) as u64;
                    value += (rng.below(most) + 1) as f64;
                } else {
                    value += rng.unit() * (high - low) / 40.0;
                }
            }
        } else if integral {
            if rng.chance(if target_busy { 0.2 } else { 0.02 }) {
                let step = ((high - low) / 10.0).max(1.0);
                let mut delta = (rng.unit() * 2.0 - 1.0) * step;
                if page.metric.contains("bytes") {
                    delta = (delta / 4096.0).round() * 4096.0;
                } else {
                    delta = delta.round();
                }
                value = (value + delta).clamp(0.0, high * 1.5);
            }
        } else {
            // A measurement (latency, duration): new every scrape.
            value = low + rng.unit() * (high - low);
        }
        values.push(value);
    }
    values
}

/// Busy spells of a target: about a third of the time, a few minutes at a time.
fn busy_spells(rng: &mut Rng) -> Vec<bool> {
    let mut busy = rng.chance(0.35);
    (0..STEPS)
        .map(|_| {
            if rng.chance(1.0 / 40.0) {
                busy = rng.chance(0.35);
            }
            busy
        })
        .collect()
}

/// A histogram of task durations (seconds) with 10 buckets, `_count` and `_sum`.
fn histogram(
    target: usize,
    identity: &[(String, String)],
    busy: &[bool],
    rng: &mut Rng,
) -> Vec<SimSeries> {
    let bounds = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
    let mut buckets = vec![0.0; bounds.len() + 1];
    let mut count = 0.0;
    let mut sum = 0.0;
    let mut bucket_values = vec![Vec::with_capacity(STEPS); bounds.len() + 1];
    let mut count_values = Vec::with_capacity(STEPS);
    let mut sum_values = Vec::with_capacity(STEPS);
    for &target_busy in busy {
        let observations = if target_busy { rng.below(20) } else { 0 };
        for _ in 0..observations {
            let observed = 0.002 * (rng.unit() * 9.0).exp();
            for (bucket, &bound) in buckets
                .iter_mut()
                .zip(bounds.iter().chain([f64::INFINITY].iter()))
            {
                if observed <= bound {
                    *bucket += 1.0;
                }
            }
            count += 1.0;
            sum += observed;
        }
        for (values, &bucket) in bucket_values.iter_mut().zip(&buckets) {
            values.push(bucket);
        }
        count_values.push(count);
        sum_values.push(sum);
    }
    let name = "dask_worker_task_duration_seconds";
    let mut series = Vec::new();
    for (index, values) in bucket_values.into_iter().enumerate() {
        let le = bounds
            .get(index)
            .map_or("+Inf".to_owned(), |bound| bound.to_string());
        let mut labels = identity.to_vec();
        labels.push(("le".to_owned(), le));
        series.push(SimSeries {
            target,
            metric: format!("{name}_bucket"),
            labels,
            values,
        });
    }
    series.push(SimSeries {
        target,
        metric: format!("{name}_count"),
        labels: identity.to_vec(),
        values: count_values,
    });
    series.push(SimSeries {
        target,
        metric: format!("{name}_sum"),
        labels: identity.to_vec(),
        values: sum_values,
    });
    series
}

/// Every series of the cluster, target 0 being the scheduler.
fn cluster_series() -> Vec<SimSeries> {
    let worker_pages = page_series(WORKER_PAGES);
    let scheduler_pages = page_series(SCHEDULER_PAGES);
    let mut rng = Rng(SEED);
    let mut all = Vec::new();
    for target in 0..=WORKERS {
        let (role, pages) = if target == 0 {
            ("scheduler", &scheduler_pages)
        } else {
            ("worker", &worker_pages)
        };
        let node = format!("node-{target:02}");
        let mut identity = vec![
            ("cluster".to_owned(), "bench".to_owned()),
            ("instance".to_owned(), format!("{node}:8787")),
            ("node".to_owned(), node),
            ("role".to_owned(), role.to_owned()),
        ];
        if target > 0 {
            identity.push(("worker".to_owned(), format!("worker-{target}")));
        }
        let busy = busy_spells(&mut rng);
        for page in pages {
            let mut labels = identity.clone();
            labels.extend(page.labels.iter().cloned());
            let values = simulate(page, &busy, &mut rng);
            all.push(SimSeries {
                target,
                metric: page.metric.clone(),
                labels,
                values,
            });
        }
        let scrape_duration = (0..STEPS).map(|_| 0.002 + rng.unit() * 0.018).collect();
        all.push(SimSeries {
            target,
            metric: "up".to_owned(),
            labels: identity.clone(),
            values: vec![1.0; STEPS],
        });
        all.push(SimSeries {
            target,
            metric: "scrape_duration_seconds".to_owned(),
            labels: identity.clone(),
            values: scrape_duration,
        });
        all.push(SimSeries {
            target,
            metric: "scrape_samples_scraped".to_owned(),
            labels: identity.clone(),
            values: vec![pages.len() as f64; STEPS],
        });
        if target > 0 {
            all.extend(histogram(target, &identity, &busy, &mut rng));
        }
    }
    for series in &mut all {
        series.labels.sort();
    }
    all
}

fn cpu_seconds() -> f64 {
    let time = clock_gettime(ClockId::ProcessCPUTime);
    time.tv_sec as f64 + time.tv_nsec as f64 / 1e9
}

/// The batch of scrape `step`: one stream and one family per target.
fn scrape_batch(series: &[SimSeries], step: usize) -> PushRequest {
    let ts_unix_millis = DAY_START_MS + step as i64 * SCRAPE_INTERVAL_MS;
    let mut request = PushRequest {
        batch_number: step as u64,
        streams: (0..=WORKERS)
            .map(|target| Stream {
                id: target as u64,
                cluster: "bench".to_owned(),
                node: format!("node-{target:02}"),
                role: if target == 0 { 1 } else { 2 },
                source: format!("http://node-{target:02}:8787/metrics"),
            })
            .collect(),
        logs: Vec::new(),
        metric_families: (0..=WORKERS)
            .map(|target| MetricFamily {
                stream_index: target as u32,
                name: "page".to_owned(),
                r#type: 2,
                help: String::new(),
                series: Vec::new(),
            })
            .collect(),
    };
    for one in series {
        request.metric_families[one.target]
            .series
            .push(MetricSeries {
                metric: one.metric.clone(),
                labels: one
                    .labels
                    .iter()
                    .map(|(name, value)| Label {
                        name: name.clone(),
                        value: value.clone(),
                    })
                    .collect(),
                samples: vec![Sample {
                    ts_unix_millis,
                    value: one.values[step],
                }],
                seq: step as u64,
            });
    }
    request
}

fn write_openmetrics(series: &[SimSeries], path: &Path) -> Result<(), Box<dyn Error>> {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let mut order: Vec<&SimSeries> = series.iter().collect();
    order.sort_by(|a, b| a.metric.cmp(&b.metric));
    let mut previous_metric = "";
    for one in order {
        if one.metric != previous_metric {
            writeln!(out, "# TYPE {} gauge", one.metric)?;
            previous_metric = &one.metric;
        }
        let labels: Vec<String> = one
            .labels
            .iter()
            .map(|(name, value)| {
                let escaped = value
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                format!("{name}=\"{escaped}\"")
            })
            .collect();
        let labels = labels.join(",");
        for (step, value) in one.values.iter().enumerate() {
            let ts_s = (DAY_START_MS + step as i64 * SCRAPE_INTERVAL_MS) / 1000;
            writeln!(out, "{}{{{labels}}} {value:?} {ts_s}", one.metric)?;
        }
    }
    writeln!(out, "# EOF")?;
    out.into_inner()
        .map_err(|error| error.into_error())?
        .sync_all()?;
    Ok(())
}

fn dir_bytes(path: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        let metadata = entry.metadata()?;
        total += if metadata.is_dir() {
            dir_bytes(&entry.path())?
        } else {
            metadata.len()
        };
    }
    Ok(total)
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let metrics_dir = args.next().ok_or(USAGE)?;
    let openmetrics = args.next();
    let series = cluster_series();
    let samples = series.len() * STEPS;

    let store = Arc::new(SeriesStore::open(
        Path::new(&metrics_dir),
        SeriesConfig::default(),
    )?);
    let cpu_start = cpu_seconds();
    let mut added = 0;
    for step in 0..STEPS {
        let outcome = store.append(TENANT, &scrape_batch(&series, step));
        added += outcome.added;
        if (step + 1) % SEAL_EVERY_STEPS == 0 {
            store.seal()?;
            store.compact_at(DAY_START_MS + step as i64 * SCRAPE_INTERVAL_MS)?;
        }
    }
    store.seal()?;
    let blocks_before_day_end = store.stats().blocks;
    store.compact_at(DAY_START_MS + 26 * 3_600_000)?;
    let cpu_s = cpu_seconds() - cpu_start;
    let stats = store.stats();
    let bytes = dir_bytes(Path::new(&metrics_dir))?;

    let query_start = cpu_seconds();
    let source = store.source(vec![TENANT.to_owned()]);
    let selected = source.select(&[], i64::MIN, i64::MAX)?;
    let selected_samples: usize = selected.iter().map(|one| one.samples.len()).sum();
    let query_cpu_s = cpu_seconds() - query_start;

    if let Some(path) = openmetrics {
        write_openmetrics(&series, Path::new(&path))?;
    }
    assert_eq!(added, samples, "every sample is added once");
    assert_eq!(selected_samples, samples, "every sample reads back");
    println!(
        "{{\"series\": {}, \"samples\": {samples}, \"bytes\": {bytes}, \"bytes_per_sample\": {:.4}, \"blocks_before_day_end\": {blocks_before_day_end}, \"blocks\": {}, \"ingest_cpu_s\": {cpu_s:.2}, \"read_all_cpu_s\": {query_cpu_s:.2}, \"day_start_ms\": {DAY_START_MS}}}",
        series.len(),
        bytes as f64 / samples as f64,
        stats.blocks,
    );
    Ok(())
}
