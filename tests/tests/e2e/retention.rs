//! Retention through the real binaries: a collector keeping everything is given an age limit
//! by editing its configuration file (and SIGHUP, to read it at once); the day of the fixture
//! logs (2026-11-27, more than an hour old on any clock this runs on) disappears from search
//! and from disk, and today's records and samples stay. It also needs the writer to let go of
//! a past day soon after its last record: a partition held open is never deleted.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use afterglow_tests::peers::{MetricsServer, instant_query};
use afterglow_tests::{Agent, Collector, Scene, encode, fixture, wait_for};
use anyhow::Result;

/// Records of `query` on 2026-11-27 (UTC), as the search API counts them.
fn count_on_fixture_day(collector: &Collector, query: &str) -> Result<u64> {
    let (_, json) = collector.get_json(&format!(
        "/api/v1/logs/search?q={}&start=2026-11-27T00:00:00Z&end=2026-11-28T00:00:00Z&limit=1&count=true",
        encode(query)
    ))?;
    Ok(json["count"].as_u64().unwrap_or(u64::MAX))
}

#[test]
fn an_age_limit_added_to_the_running_config_deletes_old_days_and_keeps_today() -> Result<()> {
    let scene = Scene::new()?;
    let collector = Collector::start_with(
        scene.path(),
        &scene.data_dir(),
        None,
        "[retention]\ninterval = \"1s\"\n",
    )?;
    let page = fixture("metrics/worker-1-metrics-t2-load.prom");
    let metrics = MetricsServer::start(Arc::new(move |path, _| {
        (path == "/metrics").then(|| page.clone())
    }))?;
    let logs_dir = scene.path().join("node");
    std::fs::create_dir(&logs_dir)?;
    let mut text = fixture("logs/worker-1.log");
    let today = "today-record-kept";
    let now = jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M:%S,%3f");
    text.push_str(&format!("{now} - distributed.worker - INFO - {today}\n"));
    std::fs::write(logs_dir.join("worker-1.log"), text)?;
    let _agent = Agent::start(
        scene.path(),
        "node",
        &format!(
            "collector = \"{}\"\ncluster = \"old\"\nnode = \"node\"\ntimezone = \"UTC\"\n\
             [[logs]]\npaths = [\"{}/*.log\"]\nrole = \"worker\"\nmultiline_timeout = \"200ms\"\n\
             [[metrics]]\nurl = \"{}\"\nrole = \"worker\"\ninterval = \"1s\"\n",
            collector.grpc_url,
            logs_dir.display(),
            metrics.url("/metrics"),
        ),
    )?;
    let old_records = fixture("logs/worker-1.log")
        .lines()
        .filter(|line| line.starts_with("2026-11-27"))
        .count() as u64;
    wait_for("the fixture day and today's record", || {
        let old = count_on_fixture_day(&collector, "*")?;
        let kept = collector.search_all(today, 10)?.len();
        Ok(if old == old_records && kept == 1 {
            Ok(())
        } else {
            Err((old, kept))
        })
    })?;
    let up_now = || -> Result<usize> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64();
        let up = instant_query(&collector.http_url, "up{cluster=\"old\"}", now)?;
        Ok(up["result"].as_array().map_or(0, Vec::len))
    };
    wait_for("a scrape", || {
        Ok(if up_now()? == 1 { Ok(()) } else { Err(0) })
    })?;

    // The same file with an age limit; SIGHUP makes the collector read it now.
    let config_path = scene.path().join("collector-0.toml");
    let config = std::fs::read_to_string(&config_path)?;
    std::fs::write(
        &config_path,
        config.replace(
            "[retention]\n",
            "[retention]\nlogs_max_age = \"1h\"\nmetrics_max_age = \"1h\"\n",
        ),
    )?;
    collector.process.hang_up()?;
    wait_for("the fixture day deleted", || {
        let old = count_on_fixture_day(&collector, "*")?;
        Ok(if old == 0 { Ok(()) } else { Err(old) })
    })?;
    assert_eq!(
        collector.search_all(today, 10)?.len(),
        1,
        "today's record stays"
    );
    assert_eq!(up_now()?, 1, "today's samples stay");
    assert!(
        !scene.data_dir().join("logs/default/2026-11-27").exists(),
        "the day's partition is gone from disk"
    );
    let (_, retention) = collector.get_json("/api/v1/retention")?;
    assert_eq!(retention["settings"]["logs_max_age"], "1h", "{retention}");
    Ok(())
}
