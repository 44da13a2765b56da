//! The web UI in Debian's chromium, driven by playwright-core (`web/tests/<view>.spec.mjs`),
//! each view's spec against a real collector of its own, fed by real agents: three nodes
//! tailing the fixture logs, and the scheduler's and a worker's fixture `/metrics` pages
//! scraped every second.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use afterglow_tests::peers::{MetricsServer, instant_query};
use afterglow_tests::{Agent, Collector, binaries_dir, fixture, wait_for};
use anyhow::{Context, Result};

/// The cluster every spec sees, alive while this value is.
struct FixtureCluster {
    _dir: tempfile::TempDir,
    collector: Collector,
    /// A log file that `node-b`'s agent tails: a line appended there arrives as a record.
    tail_file: PathBuf,
    _agents: Vec<Agent>,
    _pages: Vec<MetricsServer>,
}

/// Starts the collector and the agents, and waits until every log record is searchable and
/// both metrics pages have been scraped.
fn fixture_cluster() -> Result<FixtureCluster> {
    let dir = tempfile::tempdir()?;
    let collector = Collector::start(dir.path(), &dir.path().join("data"), None)?;
    let scheduler_page = fixture("metrics/scheduler-metrics-t2-load.prom");
    let worker_page = fixture("metrics/worker-1-metrics-t2-load.prom");
    let pages = vec![
        MetricsServer::start(Arc::new(move |path, _| {
            (path == "/metrics").then(|| scheduler_page.clone())
        }))?,
        MetricsServer::start(Arc::new(move |path, _| {
            (path == "/metrics").then(|| worker_page.clone())
        }))?,
    ];
    let mut expected = 0;
    let mut agents = Vec::new();
    let nodes = [
        ("scheduler-0", "scheduler", "scheduler.log", Some(&pages[0])),
        ("node-a", "worker", "worker-1.log", Some(&pages[1])),
        ("node-b", "worker", "worker-2.log", None),
    ];
    for (node, role, name, page) in nodes {
        let node_dir = dir.path().join(node);
        std::fs::create_dir(&node_dir)?;
        let mut text = fixture(&format!("logs/{name}"));
        if node == "node-a" {
            text.push_str("2026-11-27 14:09:00,000 - distributed.worker - WARNING - injected <b id=\"injected\">markup</b>\n");
        }
        expected += text
            .lines()
            .filter(|line| {
                line.starts_with("2026-")
                    || line.starts_with("user ")
                    || line.starts_with("<dynamic-code>")
            })
            .count();
        std::fs::write(node_dir.join(name), text)?;
        let mut config = format!(
            "collector = \"{}\"\ncluster = \"ui\"\nnode = \"{node}\"\ntimezone = \"UTC\"\n[[logs]]\npaths = [\"{}/*.log\"]\nrole = \"{role}\"\nmultiline_timeout = \"200ms\"\n",
            collector.grpc_url,
            node_dir.display()
        );
        if let Some(page) = page {
            config.push_str(&format!(
                "[[metrics]]\nurl = \"{}\"\nrole = \"{role}\"\ninterval = \"1s\"\n",
                page.url("/metrics")
            ));
        }
        agents.push(Agent::start(dir.path(), node, &config)?);
    }
    wait_for(&format!("{expected} records"), || {
        let count = collector.search_all("*", 1000)?.len();
        Ok(if count == expected {
            Ok(())
        } else {
            Err(count)
        })
    })?;
    wait_for("both metrics pages scraped", || {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64();
        let up = instant_query(&collector.http_url, "up", now)?;
        let targets = up["result"].as_array().map_or(0, Vec::len);
        Ok(if targets == 2 { Ok(()) } else { Err(targets) })
    })?;
    Ok(FixtureCluster {
        tail_file: dir.path().join("node-b").join("worker-2.log"),
        _dir: dir,
        collector,
        _agents: agents,
        _pages: pages,
    })
}

/// Where the specs save their screenshots: `<target>/test-output/ui`.
fn screenshot_dir() -> PathBuf {
    binaries_dir()
        .parent()
        .map_or_else(
            || PathBuf::from("test-output"),
            |target| target.join("test-output"),
        )
        .join("ui")
}

/// Runs `web/tests/<spec>` against a fresh fixture cluster and requires every test in it to
/// pass (and at least one to run).
fn run_spec(spec: &str) -> Result<()> {
    let cluster = fixture_cluster()?;
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web");
    let output = Command::new("node")
        .args(["--test", "--test-reporter=spec", &format!("tests/{spec}")])
        .current_dir(&web)
        .env("AFTERGLOW_URL", &cluster.collector.http_url)
        .env("AFTERGLOW_SCREENSHOTS", screenshot_dir())
        .env("AFTERGLOW_TAIL_FILE", &cluster.tail_file)
        .output()
        .context(
            "cannot run node: install Node.js, then `npm ci --prefix web` (scripts/test does)",
        )?;
    let report = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{spec} failed:\n{report}");
    let passed: usize = report
        .lines()
        .find_map(|line| line.trim().strip_prefix("ℹ pass "))
        .and_then(|count| count.trim().parse().ok())
        .unwrap_or(0);
    assert!(passed > 0, "{spec} ran no test:\n{report}");
    assert!(report.contains("ℹ fail 0"), "{spec}:\n{report}");
    Ok(())
}

#[test]
fn search_view_in_chromium() -> Result<()> {
    run_spec("search.spec.mjs")
}

#[test]
fn clusters_view_in_chromium() -> Result<()> {
    run_spec("clusters.spec.mjs")
}

#[test]
fn metrics_view_in_chromium() -> Result<()> {
    run_spec("metrics.spec.mjs")
}
