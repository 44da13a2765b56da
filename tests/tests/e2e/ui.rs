//! The web UI in Debian's chromium, driven by playwright-core (`web/tests/<view>.spec.mjs`),
//! each view's spec against a real collector of its own, fed by real agents: three nodes
//! tailing the fixture logs, and the scheduler's and a worker's fixture `/metrics` pages
//! scraped every second. The login page's spec gets a collector with `[[tokens]]` instead,
//! fed by agents whose ingest tokens put their logs into two tenants.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use afterglow_tests::peers::{MetricsServer, instant_query};
use afterglow_tests::{Agent, Collector, binaries_dir, encode, fixture, new_token, wait_for};
use anyhow::{Context, Result, ensure};
use serde_json::Value;

/// The cluster every spec sees, alive while this value is.
struct FixtureCluster {
    dir: tempfile::TempDir,
    collector: Collector,
    /// A log file that `node-b`'s agent tails: a line appended there arrives as a record.
    tail_file: PathBuf,
    agents: Vec<Agent>,
    pages: Vec<MetricsServer>,
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
        expected += record_count(&text);
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
        dir,
        collector,
        agents,
        pages,
    })
}

/// How many records the agent makes of `text` (fixture logs: lines that start one).
fn record_count(text: &str) -> usize {
    text.lines()
        .filter(|line| {
            line.starts_with("2026-")
                || line.starts_with("user ")
                || line.starts_with("<dynamic-code>")
        })
        .count()
}

/// A line only tenant `team-b` holds: a search by `team-a`'s token must never show it.
const TEAM_B_LINE: &str = "teambonlysecret the other team's private record";

/// A collector with `[[tokens]]` and the tokens themselves, alive while this value is.
struct TenantCluster {
    _dir: tempfile::TempDir,
    collector: Collector,
    /// A log file that `team-a`'s agent tails.
    tail_file: PathBuf,
    /// Token name -> token, for the spec (`AFTERGLOW_TOKENS`).
    tokens: serde_json::Map<String, Value>,
    _agents: Vec<Agent>,
}

/// `GET path` with a bearer token: the status and the JSON body.
fn get_with_token(
    collector: &Collector,
    token: &str,
    path_and_query: &str,
) -> Result<(u16, Value)> {
    let (status, body) = collector.get_as(Some(token), path_and_query)?;
    Ok((status, serde_json::from_str(&body)?))
}

/// Starts a collector with tokens for two tenants: `team-a`'s agent (cluster `alpha`) tails the
/// fixture worker log, `team-b`'s (cluster `beta`) a log with [`TEAM_B_LINE`]; waits until every
/// record is searchable by the admin token.
fn tenant_cluster() -> Result<TenantCluster> {
    let dir = tempfile::tempdir()?;
    let mut stanzas = String::new();
    let mut tokens = serde_json::Map::new();
    let entries = [
        ("team-a-ingest", "team-a", "ingest", ""),
        ("team-b-ingest", "team-b", "ingest", ""),
        ("team-a-readers", "team-a", "read", ""),
        // Sign-in uses its one request of the burst: the view's first calls are answered 429.
        (
            "team-a-slow",
            "team-a",
            "read",
            "requests_per_second = 0.5\n",
        ),
        ("ops", "ops", "admin", ""),
    ];
    for (name, tenant, can, extra) in entries {
        let (token, stanza) = new_token(name, tenant, can)?;
        stanzas.push_str(&format!("{stanza}{extra}"));
        tokens.insert(name.to_owned(), Value::String(token));
    }
    let collector = Collector::start_with(dir.path(), &dir.path().join("data"), None, &stanzas)?;
    let team_b_text = format!(
        "2026-11-27 14:00:00,000 - distributed.worker - INFO - team-b starting\n\
         2026-11-27 14:00:01,000 - distributed.worker - WARNING - {TEAM_B_LINE}\n\
         2026-11-27 14:00:02,000 - distributed.worker - INFO - team-b done\n"
    );
    let nodes = [
        (
            "node-a",
            "alpha",
            "team-a-ingest",
            "worker-1.log",
            fixture("logs/worker-1.log"),
        ),
        ("node-b", "beta", "team-b-ingest", "team-b.log", team_b_text),
    ];
    let mut expected = 0;
    let mut agents = Vec::new();
    for (node, cluster, token_name, file, text) in nodes {
        let node_dir = dir.path().join(node);
        std::fs::create_dir(&node_dir)?;
        expected += record_count(&text);
        std::fs::write(node_dir.join(file), text)?;
        let config = format!(
            "collector = \"{}\"\ncluster = \"{cluster}\"\nnode = \"{node}\"\ntimezone = \"UTC\"\ntoken = {:?}\n[[logs]]\npaths = [\"{}/*.log\"]\nrole = \"worker\"\nmultiline_timeout = \"200ms\"\n",
            collector.grpc_url,
            tokens[token_name].as_str().context("tokens are strings")?,
            node_dir.display()
        );
        agents.push(Agent::start(dir.path(), node, &config)?);
    }
    let admin = tokens["ops"].as_str().context("ops token")?.to_owned();
    wait_for(&format!("{expected} records"), || {
        let (status, body) = get_with_token(
            &collector,
            &admin,
            &format!("/api/v1/logs/search?q={}&limit=1&count=true", encode("*")),
        )?;
        ensure!(status == 200, "admin search answered {status}: {body}");
        let count = body["count"].as_u64().unwrap_or(0);
        Ok(if count == u64::try_from(expected)? {
            Ok(())
        } else {
            Err(count)
        })
    })?;
    Ok(TenantCluster {
        tail_file: dir.path().join("node-a").join("worker-1.log"),
        _dir: dir,
        collector,
        tokens,
        _agents: agents,
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
    run_spec_against(spec, &cluster.collector, &cluster.tail_file, &[])
}

/// Runs `web/tests/<spec>` against `collector` with `env` added to the spec's environment.
fn run_spec_against(
    spec: &str,
    collector: &Collector,
    tail_file: &Path,
    env: &[(&str, String)],
) -> Result<()> {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web");
    let output = Command::new("node")
        .args(["--test", "--test-reporter=spec", &format!("tests/{spec}")])
        .current_dir(&web)
        .env("AFTERGLOW_URL", &collector.http_url)
        .env("AFTERGLOW_SCREENSHOTS", screenshot_dir())
        .env("AFTERGLOW_TAIL_FILE", tail_file)
        .envs(env.iter().map(|(name, value)| (name, value)))
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

/// The real identity document of the fixture scheduler, listing only `worker-1` (at its real
/// address, `tcp://127.0.0.1:42737`, as its log says) with its dashboard on `dashboard_port`.
fn identity_with_worker_1(dashboard_port: u16) -> Result<String> {
    let mut identity: Value = serde_json::from_str(&fixture("http/scheduler-identity-idle.json"))?;
    let workers = identity["workers"]
        .as_object_mut()
        .context("identity lists workers")?;
    workers.retain(|address, _| address == "tcp://127.0.0.1:42737");
    let worker_1 = workers
        .get_mut("tcp://127.0.0.1:42737")
        .context("worker-1 in the identity document")?;
    ensure!(worker_1["name"] == "worker-1", "{worker_1}");
    worker_1["services"]["dashboard"] = Value::from(dashboard_port);
    Ok(identity.to_string())
}

/// The fixture cluster, plus what the Clusters view shows beyond its logs: an agent on
/// `scheduler-0` that discovers `ui`'s worker `worker-1` through the scheduler's dashboard
/// (its series carry `worker` and `worker_addr`, and `node` = the worker's host), and an agent
/// that tails no file and only scrapes a page, for cluster `scrape-only`.
fn clusters_fixture() -> Result<FixtureCluster> {
    let mut cluster = fixture_cluster()?;
    let worker_page = fixture("metrics/worker-1-metrics-t2-load.prom");
    let worker_server = MetricsServer::start(Arc::new(move |path, _| {
        (path == "/metrics").then(|| worker_page.clone())
    }))?;
    let identity = identity_with_worker_1(worker_server.port)?;
    let scheduler_page = fixture("metrics/scheduler-metrics-t2-load.prom");
    let dashboard = MetricsServer::start(Arc::new(move |path, _| match path {
        "/json/identity.json" => Some(identity.clone()),
        "/metrics" => Some(scheduler_page.clone()),
        _ => None,
    }))?;
    let only_page = fixture("metrics/scheduler-metrics-t1-idle.prom");
    let scrape_only_page = MetricsServer::start(Arc::new(move |path, _| {
        (path == "/metrics").then(|| only_page.clone())
    }))?;
    let grpc = cluster.collector.grpc_url.clone();
    cluster.agents.push(Agent::start(
        cluster.dir.path(),
        "discovery",
        &format!(
            "collector = \"{grpc}\"\ncluster = \"ui\"\nnode = \"scheduler-0\"\n\
             [dask]\nscheduler = \"{}\"\npoll_interval = \"1s\"\ninterval = \"1s\"\n",
            dashboard.url("")
        ),
    )?);
    cluster.agents.push(Agent::start(
        cluster.dir.path(),
        "metrics-host",
        &format!(
            "collector = \"{grpc}\"\ncluster = \"scrape-only\"\nnode = \"metrics-host\"\n\
             [[metrics]]\nurl = \"{}\"\nrole = \"scheduler\"\ninterval = \"1s\"\n",
            scrape_only_page.url("/metrics")
        ),
    )?);
    cluster
        .pages
        .extend([worker_server, dashboard, scrape_only_page]);
    let api = cluster.collector.http_url.clone();
    wait_for("worker-1 discovered and scraped", || {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64();
        let up = instant_query(&api, "up{cluster=\"ui\", worker=\"worker-1\"}", now)?;
        let found = up["result"].as_array().map_or(0, Vec::len);
        Ok(if found == 1 { Ok(()) } else { Err(up) })
    })?;
    // The cluster that sends metrics only is in the API before the view is asked for it: its
    // agent scrapes on its own schedule, so its first sample may come after worker-1's.
    let body = wait_for("the metrics-only cluster listed", || {
        let (status, body) = cluster
            .collector
            .get_as(None, "/api/v1/clusters/scrape-only")?;
        Ok(if status == 200 {
            Ok(body)
        } else {
            Err((status, body))
        })
    })?;
    let detail: Value = serde_json::from_str(&body)?;
    assert_eq!(
        detail["nodes"],
        serde_json::json!({"scheduler": ["metrics-host"]})
    );
    assert_eq!(detail["sends"], serde_json::json!(["metrics"]));
    assert_eq!(detail["records_by_level"], serde_json::json!({}));
    assert_eq!(detail["alive"], true, "{detail}");
    Ok(cluster)
}

#[test]
fn clusters_view_in_chromium() -> Result<()> {
    let cluster = clusters_fixture()?;
    run_spec_against(
        "clusters.spec.mjs",
        &cluster.collector,
        &cluster.tail_file,
        &[],
    )
}

#[test]
fn metrics_view_in_chromium() -> Result<()> {
    run_spec("metrics.spec.mjs")
}

#[test]
fn login_page_in_chromium_with_tokens_and_tenants() -> Result<()> {
    let cluster = tenant_cluster()?;
    // The premise the spec builds on: team-a's token reads team-a only.
    let reader = cluster.tokens["team-a-readers"]
        .as_str()
        .context("reader token")?;
    let (status, body) = get_with_token(
        &cluster.collector,
        reader,
        &format!("/api/v1/logs/search?q={}", encode("teambonlysecret")),
    )?;
    assert_eq!(
        (status, body["hits"].as_array().map(Vec::len)),
        (200, Some(0)),
        "{body}"
    );
    run_spec_against(
        "login.spec.mjs",
        &cluster.collector,
        &cluster.tail_file,
        &[(
            "AFTERGLOW_TOKENS",
            Value::Object(cluster.tokens.clone()).to_string(),
        )],
    )
}
