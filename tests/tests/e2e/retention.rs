//! Retention through the real binaries: a collector keeping everything is given an age limit
//! by editing its configuration file (and SIGHUP, to read it at once); the day of the fixture
//! logs (2026-11-27, more than an hour old on any clock this runs on), and a metric sample the
//! scraped page stamps on that day, disappear from search, the Prometheus API and disk, and
//! today's records and samples stay. It also needs the writer to let go of a past day soon
//! after its last record: a partition held open is never deleted.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use afterglow_tests::peers::{MetricsServer, instant_query};
use afterglow_tests::{Agent, Collector, Scene, encode, fixture, wait_for, wait_for_within};
use anyhow::Result;

/// Records of `query` on 2026-11-27 (UTC), as the search API counts them.
fn count_on_fixture_day(collector: &Collector, query: &str) -> Result<u64> {
    let (_, json) = collector.get_json(&format!(
        "/api/v1/logs/search?q={}&start=2026-11-27T00:00:00Z&end=2026-11-28T00:00:00Z&limit=1&count=true",
        encode(query)
    ))?;
    Ok(json["count"].as_u64().unwrap_or(u64::MAX))
}

/// 2026-11-27T12:00:00Z, in milliseconds.
const OLD_SAMPLE_MS: i64 = 1_795_780_800_000;

/// Series of `old_gauge` the Prometheus API finds at the old sample's time.
fn old_samples(collector: &Collector) -> Result<usize> {
    let at = OLD_SAMPLE_MS as f64 / 1000.0 + 30.0;
    let found = instant_query(&collector.http_url, "old_gauge", at)?;
    Ok(found["result"].as_array().map_or(0, Vec::len))
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
    // For its first seconds the page also has a sample stamped 2026-11-27T12:00:00Z.
    let metrics = MetricsServer::start(Arc::new(move |path, elapsed| {
        let old = if elapsed < 3.0 {
            format!("old_gauge 1 {OLD_SAMPLE_MS}\n")
        } else {
            String::new()
        };
        (path == "/metrics").then(|| page.clone() + &old)
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
    // Every record of the fixture is on its day, the lines without a header (a task's print)
    // too: they take the time of the header before them.
    let headers = fixture("logs/worker-1.log")
        .lines()
        .filter(|line| line.starts_with("2026-11-27"))
        .count() as u64;
    wait_for("the fixture day and today's record", || {
        let old = count_on_fixture_day(&collector, "*")?;
        let kept = collector.search_all(today, 10)?.len();
        let (_, all) = collector.get_json("/api/v1/logs/search?q=*&start=0&limit=1&count=true")?;
        let all = all["count"].as_u64().unwrap_or(u64::MAX);
        Ok(if kept == 1 && old + 1 == all && old >= headers {
            Ok(())
        } else {
            Err((old, kept, all))
        })
    })?;
    let up_now = || -> Result<usize> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64();
        let up = instant_query(&collector.http_url, "up{cluster=\"old\"}", now)?;
        Ok(up["result"].as_array().map_or(0, Vec::len))
    };
    wait_for("a scrape, and the old sample", || {
        let (up, old) = (up_now()?, old_samples(&collector)?);
        Ok(if up == 1 && old == 1 {
            Ok(())
        } else {
            Err((up, old))
        })
    })?;

    let day_dirs = [
        scene.data_dir().join("logs/default/2026-11-27"),
        scene.data_dir().join("metrics/default/2026-11-27"),
    ];
    // The metrics day reaches the disk when the series head is sealed; the logs day is there.
    assert!(day_dirs[0].exists(), "{day_dirs:?}");

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
    // The old day's samples stay "being written" until the series head is next sealed (every
    // 30 s), and a day being written is not deleted.
    wait_for_within(
        "the fixture day's records and sample deleted",
        std::time::Duration::from_secs(90),
        || {
            let (records, samples) = (
                count_on_fixture_day(&collector, "*")?,
                old_samples(&collector)?,
            );
            Ok(if records == 0 && samples == 0 {
                Ok(())
            } else {
                Err((records, samples))
            })
        },
    )?;
    assert_eq!(
        collector.search_all(today, 10)?.len(),
        1,
        "today's record stays"
    );
    assert_eq!(up_now()?, 1, "today's samples stay");
    assert!(
        day_dirs.iter().all(|dir| !dir.exists()),
        "the day's partitions are gone from disk"
    );
    let (_, retention) = collector.get_json("/api/v1/retention")?;
    assert_eq!(retention["settings"]["logs_max_age"], "1h", "{retention}");
    Ok(())
}

/// Killed with SIGKILL at several moments while the janitor deletes 60 old days, a collector
/// restarts onto a consistent store: every day is either whole (all its records) or gone,
/// nothing half-deleted is left on disk, and search answers.
#[test]
fn sigkill_while_retention_deletes_leaves_every_day_whole_or_gone() -> Result<()> {
    let scene = Scene::new()?;
    let days: Vec<String> = (0..60)
        .map(|day| {
            let date = jiff::civil::date(2026, 9, 1) + jiff::ToSpan::days(day);
            date.to_string()
        })
        .collect();
    let per_day = 3;
    {
        let collector = scene.collector(None)?;
        let logs_dir = scene.path().join("node");
        std::fs::create_dir(&logs_dir)?;
        let mut text = String::new();
        for day in &days {
            for record in 0..per_day {
                text.push_str(&format!(
                    "{day} 12:00:0{record},000 - distributed.worker - INFO - old record {record}\n"
                ));
            }
        }
        std::fs::write(logs_dir.join("worker.log"), text)?;
        let mut agent = Agent::start(
            scene.path(),
            "node",
            &format!(
                "collector = \"{}\"\ncluster = \"c\"\nnode = \"node\"\ntimezone = \"UTC\"\n\
                 [[logs]]\npaths = [\"{}/*.log\"]\nrole = \"worker\"\n",
                collector.grpc_url,
                logs_dir.display(),
            ),
        )?;
        let expected = days.len() * per_day;
        wait_for(&format!("{expected} records"), || {
            let found = collector.search_all("*", 1000)?.len();
            Ok(if found == expected {
                Ok(())
            } else {
                Err(found)
            })
        })?;
        agent
            .process
            .terminate_within(std::time::Duration::from_secs(10))?;
        let mut collector = collector;
        collector
            .process
            .terminate_within(std::time::Duration::from_secs(30))?;
    }
    let per_day_counts = |collector: &Collector| -> Result<Vec<u64>> {
        days.iter()
            .map(|day| {
                let (_, json) = collector.get_json(&format!(
                    "/api/v1/logs/search?q=*&start={day}T00:00:00Z&end={day}T23:59:59Z&limit=1&count=true"
                ))?;
                Ok(json["count"].as_u64().unwrap_or(u64::MAX))
            })
            .collect()
    };
    let mut killed_mid_run = 0;
    for delay_ms in [0, 2, 5, 10, 20, 40] {
        let mut collector = Collector::start_with(
            scene.path(),
            &scene.data_dir(),
            None,
            "[retention]\nmax_age = \"24h\"\ninterval = \"1h\"\n",
        )?;
        // Not a wait for a condition: the moment of the kill is what varies.
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        collector.process.kill();
        let collector = scene.collector(None)?;
        let counts = per_day_counts(&collector)?;
        assert!(
            counts
                .iter()
                .all(|&count| count == 0 || count == per_day as u64),
            "after a SIGKILL {delay_ms} ms into the janitor's run, days are whole or gone: {counts:?}"
        );
        let leftovers: Vec<_> = std::fs::read_dir(scene.data_dir().join("logs/default"))?
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".deleting"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        let kept = counts.iter().filter(|&&count| count > 0).count();
        eprintln!(
            "SIGKILL {delay_ms} ms after start: {kept} of {} days kept",
            days.len()
        );
        if kept > 0 && kept < days.len() {
            killed_mid_run += 1;
        }
    }
    assert!(
        killed_mid_run > 0,
        "no SIGKILL landed while the janitor was deleting"
    );
    Ok(())
}
