//! Query limits through the real collector: PromQL memory is bounded by `[query] max_samples`
//! and `[query] max_concurrent`. An agent scrapes a page of 20,000 series into the collector;
//! then eight heavy queries at once (the issue's `max_over_time(x[1h:1ms])`, and range
//! functions whose windows cover every step) must leave its peak RSS under a stated bound,
//! each answered with data or a refusal that says which limit, counted on `/metrics`.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use afterglow_tests::peers::MetricsServer;
use afterglow_tests::{Agent, Collector, Scene, encode, wait_for_within};
use anyhow::{Context, Result};
use serde_json::Value;

/// Series on the scraped page, as in the issue.
const SERIES: usize = 20_000;

/// The collector's peak RSS may grow by at most this much while the queries run: by
/// default 4 queries (`[query] max_concurrent`) of at most 3 million samples (`[query]
/// max_samples`) at 80 bytes a sample take 960 MB, and a quarter more is left for the
/// allocator. (Before the limits counted while building, these queries took gigabytes.)
const QUERY_GROWTH_BOUND_BYTES: u64 = 1_200_000_000;

/// A page of `SERIES` gauges `load_test{i="…"}`, whose values move with time.
fn serve_many_series() -> Result<MetricsServer> {
    MetricsServer::start(Arc::new(|path, elapsed| {
        (path == "/metrics").then(|| {
            let mut page = String::with_capacity(SERIES * 32);
            page.push_str("# TYPE load_test gauge\n");
            for index in 0..SERIES {
                page.push_str(&format!(
                    "load_test{{i=\"{index}\"}} {}\n",
                    (index as f64 + elapsed).floor()
                ));
            }
            page
        })
    }))
}

fn now_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
}

/// A kilobyte figure of `/proc/PID/status` (`VmHWM`, the peak RSS; `VmRSS`), in bytes.
fn memory_bytes(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kilobytes: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .context("the field is in /proc/PID/status")?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kilobytes * 1024)
}

/// `afterglow_collector_queries_refused_total{reason}` on `/metrics`.
fn refused(collector: &Collector, reason: &str) -> Result<f64> {
    let (status, body) = collector.get_as(None, "/metrics")?;
    anyhow::ensure!(status == 200, "/metrics answered {status}");
    let line = format!("afterglow_collector_queries_refused_total{{reason=\"{reason}\"}} ");
    Ok(body
        .lines()
        .find_map(|text| text.strip_prefix(&line)?.trim().parse().ok())
        .unwrap_or(0.0))
}

/// Starts an agent scraping the page into `collector`, and waits until every series has
/// `samples` samples. The page is served for as long as the server returned lives.
fn load_series(
    scene: &Scene,
    collector: &Collector,
    samples: usize,
) -> Result<(MetricsServer, Agent)> {
    let page = serve_many_series()?;
    let agent = Agent::start(
        scene.path(),
        "scraper",
        &format!(
            "collector = \"{}\"\ncluster = \"load\"\nnode = \"n1\"\n\
             [[metrics]]\nurl = \"{}\"\nrole = \"worker\"\ninterval = \"2s\"\n",
            collector.grpc_url,
            page.url("/metrics"),
        ),
    )?;
    let query = encode(&format!(
        "count(count_over_time(load_test[5m]) >= {samples})"
    ));
    // A debug agent takes a while over a 20,000-series page on a busy machine: 2 s to scrape,
    // and time for a few scrapes to fail without failing the test.
    let patience = Duration::from_secs(2 * samples as u64 + 60);
    wait_for_within(
        &format!("{SERIES} series with {samples} samples"),
        patience,
        || {
            let (status, body) = collector.get_json(&format!("/api/v1/query?query={query}"))?;
            let count = body["data"]["result"][0]["value"][1]
                .as_str()
                .and_then(|text| text.parse::<f64>().ok())
                .unwrap_or(0.0);
            Ok(if status == 200 && count >= SERIES as f64 {
                Ok(())
            } else {
                Err((status, count))
            })
        },
    )?;
    Ok((page, agent))
}

/// What a query was answered: status and body.
type Answer = (u16, Value);

/// Sends each query on its own thread at once.
fn send_all(collector: &Collector, paths: Vec<String>) -> mpsc::Receiver<(String, Result<Answer>)> {
    let (sender, answers) = mpsc::channel();
    for path in paths {
        let sender = sender.clone();
        let url = format!("{}{path}", collector.http_url);
        std::thread::spawn(move || {
            let answer = (|| -> Result<Answer> {
                let response = ureq::get(&url)
                    .config()
                    .http_status_as_error(false)
                    .timeout_global(Some(Duration::from_secs(120)))
                    .build()
                    .call()?;
                let status = response.status().as_u16();
                // An answer of millions of points is larger than ureq's default 10 MB.
                let body = response
                    .into_body()
                    .with_config()
                    .limit(1 << 30)
                    .read_to_string()?;
                Ok((status, serde_json::from_str(&body).unwrap_or(Value::Null)))
            })();
            let _ = sender.send((path, answer));
        });
    }
    answers
}

/// The eight heavy queries: four of its subquery, four range queries of a range
/// function whose windows cover every step (a point per step and series).
fn heavy_queries() -> Vec<String> {
    let now = now_seconds().floor();
    let subquery = format!(
        "/api/v1/query?query={}&time={now}",
        encode("max_over_time(load_test[1h:1ms])")
    );
    let range_function = format!(
        "/api/v1/query_range?query={}&start={now}&end={}&step=1s",
        encode("rate(load_test[3h])"),
        now + 10_000.0
    );
    (0..4)
        .flat_map(|_| [subquery.clone(), range_function.clone()])
        .collect()
}

#[test]
fn eight_heavy_queries_at_once_keep_the_collector_under_its_memory_bound() -> Result<()> {
    let scene = Scene::new()?;
    let collector = scene.collector(None)?;
    let _scraping = load_series(&scene, &collector, 5)?;
    let pid = collector.process.pid();
    let before = memory_bytes(pid, "VmHWM")?;
    let bound = before + QUERY_GROWTH_BOUND_BYTES;

    let peak_within_bound = || -> Result<u64> {
        let peak = memory_bytes(pid, "VmHWM")?;
        assert!(
            peak <= bound,
            "peak RSS {} MiB: more than {} MiB before the queries + {} MB",
            peak >> 20,
            before >> 20,
            QUERY_GROWTH_BOUND_BYTES / 1_000_000
        );
        Ok(peak)
    };

    let queries = heavy_queries();
    let sent = queries.len();
    let answers = send_all(&collector, queries);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut answered = Vec::new();
    while answered.len() < sent {
        // Watched while the queries run, so that a collector past the bound is stopped (and
        // this test fails) before it takes the machine's memory.
        peak_within_bound()?;
        assert!(
            Instant::now() < deadline,
            "only {} of {sent} queries answered",
            answered.len()
        );
        if let Ok((path, answer)) = answers.recv_timeout(Duration::from_millis(20)) {
            answered.push((path, answer?));
        }
    }
    let peak = peak_within_bound()?;
    eprintln!(
        "peak RSS {} MiB, {} MiB before the queries",
        peak >> 20,
        before >> 20
    );

    let statuses: Vec<u16> = answered.iter().map(|(_, (status, _))| *status).collect();
    let (mut over_samples, mut no_place) = (0.0, 0.0);
    for (path, (status, body)) in &answered {
        let message = body["error"].as_str().unwrap_or_default();
        match status {
            200 => assert_eq!(body["status"], "success", "{path}: {body}"),
            422 => {
                assert_eq!(body["errorType"], "execution", "{path}: {body}");
                assert!(message.contains("[query] max_samples"), "{path}: {body}");
                over_samples += 1.0;
            }
            503 => {
                assert_eq!(body["errorType"], "unavailable", "{path}: {body}");
                assert!(message.contains("[query] max_concurrent"), "{path}: {body}");
                no_place += 1.0;
            }
            other => panic!("{path} answered {other}: {body}"),
        }
    }
    assert!(
        over_samples > 0.0,
        "the heavy queries hold far more than the default limit: {statuses:?}"
    );
    assert_eq!(refused(&collector, "max_samples")?, over_samples);
    assert_eq!(refused(&collector, "max_concurrent")?, no_place);
    Ok(())
}

/// The `[query]` keys are read from the configuration: a query over a small `max_samples` is
/// answered 422 naming it, and with `max_concurrent = 1` a query arriving while a slow one
/// runs waits, then is answered 503 naming it; both counted.
#[test]
fn the_query_table_sets_max_samples_and_max_concurrent() -> Result<()> {
    let scene = Scene::new()?;
    let collector = Collector::start_with(
        scene.path(),
        &scene.data_dir(),
        None,
        "[query]\nmax_samples = 1000000\nmax_concurrent = 1\n",
    )?;
    let _scraping = load_series(&scene, &collector, 5)?;
    let now = now_seconds().floor();

    let small = encode("load_test{i=\"7\"}");
    let (status, body) = collector.get_json(&format!("/api/v1/query?query={small}&time={now}"))?;
    assert_eq!(status, 200, "{body}");
    // A point a second for 100 s (within the 5 min lookback) of 20,000 series: 2 million.
    let (status, body) = collector.get_json(&format!(
        "/api/v1/query_range?query=load_test&start={now}&end={}&step=1s",
        now + 100.0
    ))?;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errorType"], "execution");
    let message = body["error"].as_str().unwrap_or_default();
    assert!(
        message.contains("more than 1000000 samples ([query] max_samples)"),
        "{message}"
    );
    assert_eq!(refused(&collector, "max_samples")?, 1.0);

    // Slow but small: a quantile of every series' window at each of 10,000 steps, summed as
    // it goes; it gives up after its own 8 s timeout, the other waits 5 s for its place.
    let slow = format!(
        "/api/v1/query_range?query={}&start={now}&end={}&step=1s&timeout=8s",
        encode("sum(quantile_over_time(0.5, load_test[3h]))"),
        now + 10_000.0
    );
    let answers = send_all(&collector, vec![slow.clone(), slow]);
    let answered: Vec<Answer> = (0..2)
        .map(|_| {
            let (_, answer) = answers
                .recv_timeout(Duration::from_secs(60))
                .expect("both are answered");
            answer
        })
        .collect::<Result<_>>()?;
    let unavailable: Vec<&Answer> = answered
        .iter()
        .filter(|(_, body)| body["errorType"] == "unavailable")
        .collect();
    assert_eq!(unavailable.len(), 1, "one found no place: {answered:?}");
    let (status, body) = unavailable[0];
    assert_eq!(*status, 503);
    let message = body["error"].as_str().unwrap_or_default();
    assert!(
        message.contains("as many queries as it may at once (1, [query] max_concurrent)"),
        "{message}"
    );
    assert_eq!(refused(&collector, "max_concurrent")?, 1.0);
    Ok(())
}
