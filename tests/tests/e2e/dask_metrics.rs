//! Dask discovery against a real cluster from PyPI: one agent beside the scheduler scrapes
//! the scheduler and every worker; workers keep their `worker` label across restarts, a
//! counter that restarts from zero is handled by `rate` and `increase`, a worker that lives a
//! few seconds leaves its metrics, and discovery writes no error into the scheduler's log.

use afterglow_tests::dask::{free_port, scheduler, venv_bin, worker};
use afterglow_tests::peers::{instant_query, prom_get};
use afterglow_tests::{Agent, Process, Scene, encode, wait_for};
use anyhow::{Context, Result};
use serde_json::Value;

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
}

/// `label → value` of every series of an instant query now.
fn results(api: &str, query: &str) -> Result<Vec<(Value, f64)>> {
    let data = instant_query(api, query, now())?;
    data["result"]
        .as_array()
        .context("result")?
        .iter()
        .map(|item| {
            let value = item["value"][1].as_str().context("value")?.parse()?;
            Ok((item["metric"].clone(), value))
        })
        .collect()
}

#[test]
fn one_agent_follows_a_real_dask_cluster_across_worker_restarts() -> Result<()> {
    let scene = Scene::new()?;
    let (scheduler_port, dashboard) = (free_port()?, free_port()?);
    let _scheduler = scheduler(scene.path(), scheduler_port, dashboard)?;
    let (w1_dashboard, w2_dashboard, w2_port) = (free_port()?, free_port()?, free_port()?);
    let mut w1 = worker(scene.path(), scheduler_port, "w-1", w1_dashboard, None)?;
    let mut w2 = worker(
        scene.path(),
        scheduler_port,
        "w-2",
        w2_dashboard,
        Some(w2_port),
    )?;
    let collector = scene.collector(None)?;
    let _agent = Agent::start(
        scene.path(),
        "discovery",
        &format!(
            "collector = \"{}\"\ncluster = \"real-dask\"\nnode = \"scheduler-host\"\n\
             [dask]\nscheduler = \"http://127.0.0.1:{dashboard}\"\npoll_interval = \"1s\"\ninterval = \"1s\"\n",
            collector.grpc_url
        ),
    )?;
    let api = collector.http_url.as_str();
    let up_workers = |query: &str| -> Result<Vec<(String, String)>> {
        let mut found: Vec<(String, String)> = results(api, query)?
            .into_iter()
            .filter(|(_, value)| *value == 1.0)
            .map(|(metric, _)| {
                (
                    metric["worker"].as_str().unwrap_or_default().to_owned(),
                    metric["worker_addr"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                )
            })
            .collect();
        found.sort();
        Ok(found)
    };
    let before = wait_for("both workers and the scheduler scraped", || {
        let workers = up_workers("up{role=\"worker\"}")?;
        let scheduler_up = results(api, "up{role=\"scheduler\"}")?;
        Ok(
            if workers.len() == 2 && scheduler_up.iter().any(|(_, v)| *v == 1.0) {
                Ok(workers)
            } else {
                Err((workers, scheduler_up))
            },
        )
    })?;
    assert_eq!(before[0].0, "w-1");
    assert_eq!(
        before[1],
        ("w-2".to_owned(), format!("tcp://127.0.0.1:{w2_port}"))
    );
    let scheduler_sees = results(api, "dask_scheduler_workers{state=\"idle\"}")?;
    assert_eq!(scheduler_sees.len(), 1);
    // Let w-2's tick counter grow over a few scrapes before its restart.
    wait_for("w-2 counted ticks over 3 scrapes", || {
        let counts = results(
            api,
            "count_over_time(dask_worker_tick_count_total{worker=\"w-2\"}[1m])",
        )?;
        Ok(if counts.first().is_some_and(|(_, count)| *count >= 3.0) {
            Ok(())
        } else {
            Err(counts)
        })
    })?;

    // w-1 dies and comes back under a new address; w-2 dies and comes back at the same one.
    w1.kill();
    w2.kill();
    let _w1 = worker(scene.path(), scheduler_port, "w-1", w1_dashboard, None)?;
    let _w2 = worker(
        scene.path(),
        scheduler_port,
        "w-2",
        w2_dashboard,
        Some(w2_port),
    )?;
    let old_w1_addr = before[0].1.clone();
    wait_for("w-1 under a new address and w-2 back, both scraped", || {
        let workers = up_workers("up{role=\"worker\"}")?;
        let restarted = results(
            api,
            "changes(process_start_time_seconds{worker=\"w-2\"}[2m])",
        )?;
        Ok(
            if workers.len() == 2
                && workers[0].0 == "w-1"
                && workers[0].1 != old_w1_addr
                && restarted
                    .first()
                    .is_some_and(|(_, changes)| *changes >= 1.0)
            {
                Ok(())
            } else {
                Err((workers, restarted))
            },
        )
    })?;
    // w-1: one worker name, two addresses over the test; the old one ended.
    let start = now() - 120.0;
    let series = prom_get(
        api,
        &format!(
            "/api/v1/series?match[]={}&start={start}&end={}",
            encode("up{worker=\"w-1\"}"),
            now()
        ),
    )?;
    let addrs: Vec<&str> = series
        .as_array()
        .context("series")?
        .iter()
        .filter_map(|labels| labels["worker_addr"].as_str())
        .collect();
    assert_eq!(addrs.len(), 2, "{series}");
    let names = prom_get(api, "/api/v1/label/worker/values")?;
    assert_eq!(names, serde_json::json!(["w-1", "w-2"]));

    // w-2: one series across the restart, whose counter went back to near zero, then grew
    // over three more scrapes...
    let values = wait_for("w-2's counter reset and counted on", || {
        let raw = instant_query(
            api,
            "dask_worker_tick_count_total{worker=\"w-2\"}[2m]",
            now(),
        )?;
        let matrix = raw["result"].as_array().context("matrix")?;
        assert_eq!(matrix.len(), 1, "one series across the restart: {raw}");
        let values: Vec<f64> = matrix[0]["values"]
            .as_array()
            .context("values")?
            .iter()
            .map(|pair| {
                pair[1]
                    .as_str()
                    .unwrap_or("NaN")
                    .parse()
                    .unwrap_or(f64::NAN)
            })
            .collect();
        let reset = values.windows(2).position(|pair| pair[1] < pair[0]);
        Ok(match reset {
            Some(at) if values.len() - at > 3 => Ok(values),
            _ => Err(values),
        })
    })?;
    // ...and `increase` counts what both lives counted, never a negative jump.
    let counted: f64 = values
        .windows(2)
        .map(|pair| {
            if pair[1] >= pair[0] {
                pair[1] - pair[0]
            } else {
                pair[1]
            }
        })
        .sum();
    let increase = results(
        api,
        "increase(dask_worker_tick_count_total{worker=\"w-2\"}[2m])",
    )?;
    let increase = increase.first().context("an increase")?.1;
    assert!(
        increase >= counted * 0.99,
        "increase {increase} over the restart covers the {counted} ticks counted"
    );
    let rates = prom_get(
        api,
        &format!(
            "/api/v1/query_range?query={}&start={}&end={}&step=1",
            encode("rate(dask_worker_tick_count_total{worker=\"w-2\"}[5s])"),
            now() - 60.0,
            now()
        ),
    )?;
    for point in rates["result"][0]["values"]
        .as_array()
        .context("rate values")?
    {
        let rate: f64 = point[1].as_str().unwrap_or("NaN").parse()?;
        assert!(rate >= 0.0, "rate never negative across the reset: {point}");
    }
    Ok(())
}

/// While its workers run tasks, Dask 2026.8 answers `/json/identity.json` with an error (it
/// cannot serialize the tuple keys of their task metrics); a worker that joins then is found
/// through the scheduler's workers page instead.
#[test]
fn a_worker_joining_a_busy_cluster_is_found_while_the_identity_document_fails() -> Result<()> {
    let scene = Scene::new()?;
    let (scheduler_port, dashboard) = (free_port()?, free_port()?);
    let _scheduler = scheduler(scene.path(), scheduler_port, dashboard)?;
    let _w1 = worker(scene.path(), scheduler_port, "w-1", free_port()?, None)?;
    let collector = scene.collector(None)?;
    let _agent = Agent::start(
        scene.path(),
        "discovery",
        &format!(
            "collector = \"{}\"\ncluster = \"busy\"\n\
             [dask]\nscheduler = \"http://127.0.0.1:{dashboard}\"\npoll_interval = \"1s\"\ninterval = \"1s\"\n",
            collector.grpc_url
        ),
    )?;
    // Short tasks, one after another, until the test ends.
    let mut load = std::process::Command::new(venv_bin()?.join("python"));
    load.args([
        "-c",
        "import sys, time\n\
         from distributed import Client\n\
         client = Client(sys.argv[1])\n\
         while True:\n    client.gather(client.map(time.sleep, [0.01] * 50, pure=False))\n",
        &format!("tcp://127.0.0.1:{scheduler_port}"),
    ]);
    let _load = Process::spawn_in(scene.path(), "busy-client", load)?;
    let identity_url = format!("http://127.0.0.1:{dashboard}/json/identity.json");
    // An error answer, not a scheduler that is not listening yet.
    let identity_fails = || -> Result<bool> {
        let answer = ureq::get(&identity_url)
            .config()
            .http_status_as_error(false)
            .build()
            .call();
        Ok(answer.is_ok_and(|response| response.status().as_u16() == 500))
    };
    wait_for("the identity document failing under load", || {
        Ok(if identity_fails()? { Ok(()) } else { Err(()) })
    })?;
    let _w2 = worker(scene.path(), scheduler_port, "w-2", free_port()?, None)?;
    let api = collector.http_url.as_str();
    wait_for("w-2 scraped", || {
        let up = results(api, "up{worker=\"w-2\"}")?;
        Ok(if up.iter().any(|(_, value)| *value == 1.0) {
            Ok(())
        } else {
            Err(up)
        })
    })?;
    assert!(
        identity_fails()?,
        "the identity document still fails: w-2 was found through the workers page"
    );
    Ok(())
}

/// Whether the scheduler's workers page lists a worker named `name` (the page Dask renders
/// without error whatever its workers do).
fn scheduler_lists(dashboard: u16, name: &str) -> Result<bool> {
    let page = ureq::get(&format!(
        "http://127.0.0.1:{dashboard}/info/main/workers.html"
    ))
    .call()?
    .into_body()
    .read_to_string()?;
    Ok(page.contains(&format!("<td> {name} </td>")))
}

/// A worker found by discovery was first scraped at its place on the interval's
/// grid, up to an interval later, so a worker that lived less than that (one OOM-killed or
/// restarted) left no sample. With a 60 s interval, a worker SIGKILLed seconds after it joined
/// still has its series.
#[test]
fn a_worker_killed_seconds_after_it_joined_leaves_its_metrics() -> Result<()> {
    let scene = Scene::new()?;
    let (scheduler_port, dashboard) = (free_port()?, free_port()?);
    let _scheduler = scheduler(scene.path(), scheduler_port, dashboard)?;
    let collector = scene.collector(None)?;
    let _agent = Agent::start(
        scene.path(),
        "discovery",
        &format!(
            "collector = \"{}\"\ncluster = \"brief\"\nnode = \"scheduler-host\"\n\
             [dask]\nscheduler = \"http://127.0.0.1:{dashboard}\"\npoll_interval = \"500ms\"\ninterval = \"60s\"\n",
            collector.grpc_url
        ),
    )?;
    let mut brief = worker(scene.path(), scheduler_port, "w-brief", free_port()?, None)?;
    wait_for("the scheduler to list w-brief", || {
        Ok(if scheduler_lists(dashboard, "w-brief").unwrap_or(false) {
            Ok(())
        } else {
            Err(())
        })
    })?;
    // The worker's whole life after it joined: the scenario, not a wait for a condition.
    std::thread::sleep(std::time::Duration::from_secs(3));
    brief.kill();
    let api = collector.http_url.as_str();
    let lived = wait_for("w-brief's series in the collector", || {
        let up = results(api, "max_over_time(up{worker=\"w-brief\"}[5m])")?;
        let threads = results(
            api,
            "max_over_time(dask_worker_threads{worker=\"w-brief\"}[5m])",
        )?;
        Ok(match (up.first(), threads.first()) {
            (Some((_, up)), Some((_, threads))) => Ok((*up, *threads)),
            _ => Err((up, threads)),
        })
    })?;
    assert_eq!(lived, (1.0, 1.0), "up, and its one thread");
    Ok(())
}

/// Discovery asked for `/json/identity.json`, which Dask fails to serialize while
/// workers run tasks, and the scheduler's log filled with `ERROR tornado.application Uncaught
/// exception GET /json/identity.json`. Under a steady workload, discovery still finds a worker
/// that joins, and the scheduler logs no error.
#[test]
fn discovery_writes_no_error_into_a_busy_schedulers_log() -> Result<()> {
    let scene = Scene::new()?;
    let (scheduler_port, dashboard) = (free_port()?, free_port()?);
    let scheduler = scheduler(scene.path(), scheduler_port, dashboard)?;
    let _w1 = worker(scene.path(), scheduler_port, "w-1", free_port()?, None)?;
    let collector = scene.collector(None)?;
    let _agent = Agent::start(
        scene.path(),
        "discovery",
        &format!(
            "collector = \"{}\"\ncluster = \"busy\"\n\
             [dask]\nscheduler = \"http://127.0.0.1:{dashboard}\"\npoll_interval = \"200ms\"\ninterval = \"1s\"\n",
            collector.grpc_url
        ),
    )?;
    let api = collector.http_url.as_str();
    let scraped = |name: &str| -> Result<std::result::Result<(), Vec<(Value, f64)>>> {
        let up = results(api, &format!("up{{worker=\"{name}\"}}"))?;
        Ok(if up.iter().any(|(_, value)| *value == 1.0) {
            Ok(())
        } else {
            Err(up)
        })
    };
    wait_for("w-1 scraped", || scraped("w-1"))?;
    // Short tasks, one round after another, each round counted on stderr.
    let mut load = std::process::Command::new(venv_bin()?.join("python"));
    load.args([
        "-c",
        "import sys, time\n\
         from distributed import Client\n\
         client = Client(sys.argv[1])\n\
         for round in range(1, 1_000_000):\n    \
         client.gather(client.map(time.sleep, [0.01] * 50, pure=False))\n    \
         print(f'round {round}', file=sys.stderr, flush=True)\n",
        &format!("tcp://127.0.0.1:{scheduler_port}"),
    ]);
    let load = Process::spawn_in(scene.path(), "busy-client", load)?;
    // Discovery polls every 200 ms through five rounds of tasks, and a worker joins meanwhile.
    load.wait_for_log("round 5\n")?;
    let _w2 = worker(scene.path(), scheduler_port, "w-2", free_port()?, None)?;
    wait_for("w-2 scraped under load", || scraped("w-2"))?;
    let log = scheduler.log();
    let errors: Vec<&str> = log.lines().filter(|line| line.contains("ERROR")).collect();
    assert!(
        errors.is_empty(),
        "the scheduler logged errors while discovery polled it:\n{}",
        errors.join("\n")
    );
    Ok(())
}
