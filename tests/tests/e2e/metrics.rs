//! Metrics end to end: an agent and a real Prometheus scrape the same loopback pages (real
//! Dask pages whose counters grow at known rates, plus a histogram), and the same PromQL
//! queries against both APIs agree; promtool queries our API.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;

use afterglow_tests::peers::{MetricsServer, Prometheus, instant_query, prom_get};
use afterglow_tests::{Agent, Scene, encode, fixture, wait_for};
use anyhow::{Context, Result};
use serde_json::Value;

/// Per-second rates of the counters in the served pages: line `i` of a page grows at
/// `1 + i % 4` per second.
fn rate_of_line(index: usize) -> f64 {
    1.0 + (index % 4) as f64
}

/// A real Dask page whose counters (`*_total` samples) grow linearly from their recorded
/// value.
fn growing(page: &str, elapsed: f64) -> String {
    let mut out = String::with_capacity(page.len());
    for (index, line) in page.lines().enumerate() {
        let sample_name = line.split(['{', ' ']).next().unwrap_or_default();
        match line.rsplit_once(' ') {
            Some((series, value)) if !line.starts_with('#') && sample_name.ends_with("_total") => {
                let start: f64 = value.parse().unwrap_or(0.0);
                out.push_str(&format!(
                    "{series} {}\n",
                    start + rate_of_line(index) * elapsed
                ));
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// A classic histogram whose buckets fill at 10, 30, 45 and 50 observations per second.
fn latency_histogram(elapsed: f64) -> String {
    let mut page = String::from(
        "# HELP afterglow_test_latency_seconds Request latency\n# TYPE afterglow_test_latency_seconds histogram\n",
    );
    for (le, per_second) in [("0.1", 10.0), ("0.5", 30.0), ("1.0", 45.0), ("+Inf", 50.0)] {
        page.push_str(&format!(
            "afterglow_test_latency_seconds_bucket{{le=\"{le}\"}} {}\n",
            per_second * elapsed
        ));
    }
    page.push_str(&format!(
        "afterglow_test_latency_seconds_sum {}\nafterglow_test_latency_seconds_count {}\n",
        20.0 * elapsed,
        50.0 * elapsed
    ));
    page
}

/// A scheduler's and a worker's `/metrics`, each on a port of its own (so that their
/// `instance` labels differ).
fn serve_dask_pages() -> Result<(MetricsServer, MetricsServer)> {
    let scheduler = fixture("metrics/scheduler-metrics-t2-load.prom");
    let worker = fixture("metrics/worker-1-metrics-t2-load.prom");
    Ok((
        MetricsServer::start(Arc::new(move |path, elapsed| {
            (path == "/metrics").then(|| growing(&scheduler, elapsed))
        }))?,
        MetricsServer::start(Arc::new(move |path, elapsed| {
            (path == "/metrics").then(|| growing(&worker, elapsed) + &latency_histogram(elapsed))
        }))?,
    ))
}

/// An instant vector as `labels (without the scrapers' own identity labels) → value`.
fn vector(data: &Value) -> Result<BTreeMap<String, f64>> {
    let mut out = BTreeMap::new();
    for item in data["result"].as_array().context("result array")? {
        let labels: BTreeMap<&str, &str> = item["metric"]
            .as_object()
            .context("metric object")?
            .iter()
            .filter(|(name, _)| !matches!(name.as_str(), "job" | "cluster" | "node" | "role"))
            .map(|(name, value)| (name.as_str(), value.as_str().unwrap_or_default()))
            .collect();
        let value: f64 = item["value"][1].as_str().context("value string")?.parse()?;
        out.insert(format!("{labels:?}"), value);
    }
    Ok(out)
}

/// Asserts that `query` at `time` gives the same series on both APIs, with values within
/// `tolerance` (relative).
fn assert_agree(afterglow: &str, prometheus: &str, query: &str, time: f64, tolerance: f64) {
    let ours = vector(&instant_query(afterglow, query, time).expect("afterglow answers"))
        .expect("a vector");
    let theirs = vector(&instant_query(prometheus, query, time).expect("prometheus answers"))
        .expect("a vector");
    assert!(!theirs.is_empty(), "{query}: Prometheus has no result");
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>(),
        "{query}: the same series"
    );
    for (series, theirs) in &theirs {
        let ours = ours[series];
        let close = (ours - theirs).abs() <= tolerance * theirs.abs().max(1e-9);
        assert!(
            close,
            "{query} {series}: afterglow {ours}, prometheus {theirs}"
        );
    }
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
}

#[test]
fn afterglow_and_prometheus_scraping_the_same_pages_answer_the_same_queries() -> Result<()> {
    let scene = Scene::new()?;
    let (scheduler, worker) = serve_dask_pages()?;
    let collector = scene.collector(None)?;
    let _agent = Agent::start(
        scene.path(),
        "scraper",
        &format!(
            "collector = \"{}\"\ncluster = \"compare\"\nnode = \"n1\"\n\
             [[metrics]]\nurl = \"{}\"\nrole = \"scheduler\"\ninterval = \"1s\"\n\
             [[metrics]]\nurl = \"{}\"\nrole = \"worker\"\ninterval = \"1s\"\n",
            collector.grpc_url,
            scheduler.url("/metrics"),
            worker.url("/metrics"),
        ),
    )?;
    let prometheus = Prometheus::start(
        scene.path(),
        &format!(
            "  - job_name: scheduler\n    static_configs: [{{targets: ['127.0.0.1:{}']}}]\n\
             \x20 - job_name: worker\n    static_configs: [{{targets: ['127.0.0.1:{}']}}]\n",
            scheduler.port, worker.port
        ),
    )?;
    // Both keep 15 scrapes of each target: rates over 10 s windows are then well defined.
    for api in [&collector.http_url, &prometheus.url] {
        wait_for("15 scrapes of both targets", || {
            let data = instant_query(api, "count_over_time(up[30s])", now())?;
            let counts = vector(&data)?;
            Ok(
                if counts.len() == 2 && counts.values().all(|count| *count >= 15.0) {
                    Ok(())
                } else {
                    Err(counts)
                },
            )
        })?;
    }
    let time = now() - 2.0;
    let (ours, theirs) = (collector.http_url.as_str(), prometheus.url.as_str());
    // Instance labels agree by construction (host:port of the same URL); the jobs and our
    // cluster/node/role labels are left out of the comparison.
    assert_agree(ours, theirs, "up", time, 0.0);
    assert_agree(ours, theirs, "dask_scheduler_workers", time, 0.0);
    assert_agree(
        ours,
        theirs,
        "sum by (state) (dask_scheduler_tasks)",
        time,
        0.0,
    );
    assert_agree(
        ours,
        theirs,
        "dask_worker_memory_bytes{type=\"managed\"}",
        time,
        0.0,
    );
    assert_agree(
        ours,
        theirs,
        "dask_worker_memory_bytes{type!~\"man.*\"}",
        time,
        0.0,
    );
    assert_agree(
        ours,
        theirs,
        "rate(dask_scheduler_tasks_forgotten_total[10s])",
        time,
        0.02,
    );
    assert_agree(
        ours,
        theirs,
        "sum without (instance) (rate(dask_worker_tick_count_total[10s]))",
        time,
        0.02,
    );
    assert_agree(
        ours,
        theirs,
        "histogram_quantile(0.8, sum by (le) (rate(afterglow_test_latency_seconds_bucket[10s])))",
        time,
        0.02,
    );
    assert_agree(ours, theirs, "dask_scheduler_workers > 0", time, 0.0);
    assert_agree(
        ours,
        theirs,
        "dask_worker_memory_bytes / 1024 / 1024",
        time,
        1e-9,
    );
    assert_agree(ours, theirs, "topk(2, dask_worker_memory_bytes)", time, 0.0);

    // The rate is the one the page was built with.
    let rate = vector(&instant_query(
        ours,
        "rate(dask_scheduler_tasks_forgotten_total[10s])",
        time,
    )?)?;
    let page = fixture("metrics/scheduler-metrics-t2-load.prom");
    let line = page
        .lines()
        .position(|line| line.starts_with("dask_scheduler_tasks_forgotten_total "))
        .context("the fixture has the counter")?;
    let expected = rate_of_line(line);
    let found = *rate.values().next().context("one series")?;
    assert!(
        (found - expected).abs() < 0.05 * expected,
        "rate {found}, built with {expected}"
    );

    // The metadata APIs: the same series and label names for a selector.
    let selector = encode("dask_scheduler_tasks");
    let series = |api: &str| -> Result<usize> {
        let data = prom_get(
            api,
            &format!(
                "/api/v1/series?match[]={selector}&start={}&end={}",
                time - 60.0,
                time
            ),
        )?;
        Ok(data.as_array().context("series list")?.len())
    };
    assert_eq!(series(ours)?, series(theirs)?);
    let labels = prom_get(ours, &format!("/api/v1/labels?match[]={selector}"))?;
    let labels: Vec<&str> = labels
        .as_array()
        .context("names")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for name in ["__name__", "cluster", "instance", "node", "role", "state"] {
        assert!(labels.contains(&name), "{name} in {labels:?}");
    }
    let values = prom_get(ours, "/api/v1/label/role/values")?;
    assert_eq!(values, serde_json::json!(["scheduler", "worker"]));
    Ok(())
}

#[test]
fn promtool_queries_our_api() -> Result<()> {
    let scene = Scene::new()?;
    let (scheduler, _worker) = serve_dask_pages()?;
    let collector = scene.collector(None)?;
    let _agent = Agent::start(
        scene.path(),
        "scraper",
        &format!(
            "collector = \"{}\"\ncluster = \"promtool\"\nnode = \"n1\"\n\
             [[metrics]]\nurl = \"{}\"\nrole = \"scheduler\"\ninterval = \"1s\"\n",
            collector.grpc_url,
            scheduler.url("/metrics"),
        ),
    )?;
    // Enough scrapes that a range ending two seconds ago has one at or before each of its steps.
    wait_for("8 scrapes", || {
        let data = instant_query(&collector.http_url, "count_over_time(up[30s])", now())?;
        let count = vector(&data)?.values().next().copied().unwrap_or(0.0);
        Ok(if count >= 8.0 { Ok(()) } else { Err(count) })
    })?;
    let promtool = |args: &[&str]| -> Result<String> {
        let output = Command::new("promtool")
            .args(args)
            .output()
            .context("promtool runs")?;
        assert!(
            output.status.success(),
            "promtool {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(String::from_utf8(output.stdout)?)
    };
    let instant = promtool(&[
        "query",
        "instant",
        &collector.http_url,
        "dask_scheduler_workers{state=\"idle\"}",
    ])?;
    assert!(
        instant.contains("dask_scheduler_workers{")
            && instant.contains("state=\"idle\"")
            && instant.contains("=> 3 @"),
        "{instant}"
    );
    // Two seconds back: every step then has a scrape at or before it, ingested.
    let end = now().floor() - 2.0;
    let range = promtool(&[
        "query",
        "range",
        "--start",
        &format!("{}", end - 4.0),
        "--end",
        &format!("{end}"),
        "--step",
        "1s",
        &collector.http_url,
        "up",
    ])?;
    // Five steps, each `1 @[time]`.
    assert_eq!(range.matches("1 @[").count(), 5, "{range}");
    Ok(())
}

/// Sample times of `up` in the last five minutes, in unix ms.
fn up_times(api: &str) -> Result<Vec<i64>> {
    let data = instant_query(api, "up[5m]", now())?;
    let Some(series) = data["result"].as_array().and_then(|result| result.first()) else {
        return Ok(Vec::new());
    };
    series["values"]
        .as_array()
        .context("values")?
        .iter()
        .map(|pair| Ok((pair[0].as_f64().context("time")? * 1000.0).round() as i64))
        .collect()
}

#[test]
fn samples_not_yet_sealed_survive_a_collector_sigkill_and_the_outage_leaves_no_gap() -> Result<()> {
    let scene = Scene::new()?;
    let (scheduler, _worker) = serve_dask_pages()?;
    let mut collector = scene.collector(None)?;
    let grpc_port = collector.grpc_port();
    let agent = Agent::start(
        scene.path(),
        "scraper",
        &format!(
            "collector = \"{}\"\ncluster = \"crash\"\nnode = \"n1\"\n\
             [[metrics]]\nurl = \"{}\"\nrole = \"scheduler\"\ninterval = \"1s\"\n",
            collector.grpc_url,
            scheduler.url("/metrics"),
        ),
    )?;
    // Well under the 30 s seal interval: all of this is in the head, and in the WAL.
    let before = wait_for("4 scrapes stored", || {
        let times = up_times(&collector.http_url)?;
        Ok(if times.len() >= 4 {
            Ok(times)
        } else {
            Err(times)
        })
    })?;
    let scrapes_at_kill = agent.metric("afterglow_agent_scrapes_total")?;
    collector.process.kill();
    // The agent keeps scraping into its spool while the collector is away.
    wait_for("3 scrapes during the outage", || {
        let scrapes = agent.metric("afterglow_agent_scrapes_total")?;
        Ok(if scrapes >= scrapes_at_kill + 3.0 {
            Ok(())
        } else {
            Err(scrapes)
        })
    })?;
    let collector = scene.collector(Some(grpc_port))?;
    let after = wait_for("the outage's scrapes delivered and 4 more", || {
        let times = up_times(&collector.http_url)?;
        Ok(if times.len() >= before.len() + 7 {
            Ok(times)
        } else {
            Err(times)
        })
    })?;
    for time in &before {
        assert!(
            after.contains(time),
            "sample at {time} lost in the crash: {after:?}"
        );
    }
    for pair in after.windows(2) {
        assert!(pair[1] > pair[0], "one sample per time");
        assert!(
            pair[1] - pair[0] <= 3000,
            "no gap for the outage: {} ms between samples in {after:?}",
            pair[1] - pair[0]
        );
    }
    Ok(())
}

#[test]
fn series_past_the_tenant_limit_are_refused_and_the_agent_is_told() -> Result<()> {
    let scene = Scene::new()?;
    let (scheduler, _worker) = serve_dask_pages()?;
    let collector = afterglow_tests::Collector::start_with(
        scene.path(),
        &scene.data_dir(),
        None,
        "[metrics]\nmax_series_per_tenant = 20\n",
    )?;
    let agent = Agent::start(
        scene.path(),
        "scraper",
        &format!(
            "collector = \"{}\"\ncluster = \"limit\"\nnode = \"n1\"\n\
             [[metrics]]\nurl = \"{}\"\nrole = \"scheduler\"\ninterval = \"1s\"\n",
            collector.grpc_url,
            scheduler.url("/metrics"),
        ),
    )?;
    agent
        .process
        .wait_for_log("the collector did not keep part of a batch")?;
    let log = agent.process.log();
    assert!(
        log.contains("the limit is 20 series per tenant per day"),
        "the warning names the limit: {log}"
    );
    assert!(agent.metric("afterglow_agent_collector_warnings_total")? >= 1.0);
    let count = vector(&instant_query(
        &collector.http_url,
        "count({__name__=~\".+\"})",
        now(),
    )?)?;
    assert_eq!(
        count.values().copied().collect::<Vec<_>>(),
        [20.0],
        "exactly the limit kept"
    );
    // The synthetic series come first in a scrape, so `up` is among those kept.
    let up = vector(&instant_query(&collector.http_url, "up", now())?)?;
    assert_eq!(up.values().copied().collect::<Vec<_>>(), [1.0]);
    Ok(())
}
