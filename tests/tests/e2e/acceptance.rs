//! The acceptance story, against a real Dask cluster from PyPI: "my job died last night with
//! KilledWorker; the cluster is gone; what happened?" A scheduler and three workers with
//! nannies run on 127.0.0.1, each beside an agent (one wrapping its worker, the others
//! tailing log files; the scheduler's also discovers the cluster's metrics). The workload
//! (`tests/dask/workload.py`) prints from tasks, fails a task, holds the GIL, and SIGKILLs a
//! worker so that its nanny restarts it and the job ends in KilledWorker; then the cluster
//! shuts down, and everything is asked of the collector alone.

use std::collections::{BTreeMap, HashSet};
use std::process::Command;

use afterglow_tests::dask::{
    free_port, scheduler_command, spawn_logging_to, venv_bin, worker_command,
};
use afterglow_tests::peers::instant_query;
use afterglow_tests::{Agent, Collector, Process, Scene, wait_for};
use anyhow::{Context, Result, bail};
use serde_json::Value;

const CLUSTER: &str = "acceptance";
/// The worker the workload kills; it runs in wrap mode.
const VICTIM: &str = "w-1";

/// The hits of `query` within the cluster, oldest first.
fn search(collector: &Collector, query: &str) -> Result<Vec<Value>> {
    collector.search_all(&format!("cluster:{CLUSTER} AND ({query})"), 500)
}

/// The message of a hit.
fn message(hit: &Value) -> &str {
    hit["message"].as_str().unwrap_or_default()
}

/// Waits until `query` has exactly `count` hits in the cluster, and returns them.
fn wait_for_hits(collector: &Collector, query: &str, count: usize) -> Result<Vec<Value>> {
    wait_for(&format!("{count} hits of {query}"), || {
        let hits = search(collector, query)?;
        Ok(if hits.len() == count {
            Ok(hits)
        } else {
            Err(hits
                .iter()
                .map(message)
                .map(str::to_owned)
                .collect::<Vec<_>>())
        })
    })
}

/// The cluster's processes and the agents beside them.
struct Cluster {
    scheduler: Process,
    workers: Vec<Process>,
    agents: Vec<Agent>,
    scheduler_port: u16,
}

/// Starts the scheduler (its log tailed by `scheduler-0`'s agent, which also discovers the
/// cluster's metrics), `w-1` wrapped by `node-1`'s agent, and `w-2`, `w-3` writing log files
/// tailed by `node-2`'s and `node-3`'s agents.
fn start_cluster(scene: &Scene, collector: &Collector) -> Result<Cluster> {
    let (scheduler_port, dashboard) = (free_port()?, free_port()?);
    let scheduler_log = scene.log_dir().join("scheduler.log");
    let scheduler = spawn_logging_to(
        "dask-scheduler",
        &scheduler_command(scheduler_port, dashboard)?,
        // One death of a worker running a task is enough for KilledWorker.
        &[("DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES", "0")],
        &scheduler_log,
    )?;
    let tailing = |node: &str, role: &str, log: &std::path::Path, extra: &str| {
        Agent::start(
            scene.path(),
            node,
            &format!(
                "collector = {:?}\ncluster = {CLUSTER:?}\nnode = {node:?}\n\
                 [[logs]]\npaths = [{:?}]\nrole = {role:?}\n{extra}",
                collector.grpc_url,
                log.display().to_string(),
            ),
        )
    };
    let mut agents = vec![tailing(
        "scheduler-0",
        "scheduler",
        &scheduler_log,
        &format!(
            "[dask]\nscheduler = \"http://127.0.0.1:{dashboard}\"\n\
             poll_interval = \"1s\"\ninterval = \"1s\"\n"
        ),
    )?];
    let wrapped = worker_command(scene.path(), scheduler_port, VICTIM, 0, true)?;
    let wrapped: Vec<&str> = wrapped.iter().map(String::as_str).collect();
    agents.push(Agent::start_wrapped_in(
        CLUSTER,
        scene.path(),
        "node-1",
        collector,
        "worker",
        &wrapped,
    )?);
    let mut workers = Vec::new();
    for number in [2, 3] {
        let name = format!("w-{number}");
        let log = scene.log_dir().join(format!("{name}.log"));
        workers.push(spawn_logging_to(
            &format!("dask-{name}"),
            &worker_command(scene.path(), scheduler_port, &name, 0, true)?,
            &[],
            &log,
        )?);
        agents.push(tailing(&format!("node-{number}"), "worker", &log, "")?);
    }
    Ok(Cluster {
        scheduler,
        workers,
        agents,
        scheduler_port,
    })
}

/// What the workload reports on its last line.
struct Story {
    /// Each printed line and the worker that printed it.
    prints: BTreeMap<String, String>,
    victim_addresses: [String; 2],
}

/// Runs `tests/dask/workload.py` with `args` after the scheduler's address; its stdout.
fn workload(scheduler_port: u16, args: &[&str]) -> Result<String> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dask/workload.py");
    let output = Command::new(venv_bin()?.join("python"))
        .arg(&script)
        .arg(format!("tcp://127.0.0.1:{scheduler_port}"))
        .args(args)
        .output()
        .context("cannot run the workload")?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!(
            "the workload failed ({}):\n{stdout}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(stdout)
}

/// The job's story, as the workload reports it on its last line.
fn run_story(scheduler_port: u16) -> Result<Story> {
    let stdout = workload(scheduler_port, &["3", VICTIM])?;
    let report: Value = serde_json::from_str(stdout.lines().last().context("no report")?)?;
    let prints = report["prints"]
        .as_object()
        .context("prints")?
        .iter()
        .map(|(line, worker)| (line.clone(), worker.as_str().unwrap_or_default().to_owned()))
        .collect();
    let address = |key: &str| report[key].as_str().unwrap_or_default().to_owned();
    assert!(
        report["killed"]
            .as_str()
            .unwrap_or_default()
            .contains("KilledWorker"),
        "{report}"
    );
    Ok(Story {
        prints,
        victim_addresses: [address("old_address"), address("new_address")],
    })
}

/// `[value]` of each series of an instant query now, with its labels.
fn series_now(api: &str, query: &str) -> Result<Vec<(Value, String)>> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64();
    let data = instant_query(api, query, now)?;
    Ok(data["result"]
        .as_array()
        .context("result")?
        .iter()
        .map(|item| {
            (
                item["metric"].clone(),
                item["value"][1].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect())
}

#[test]
fn a_dead_clusters_story_is_found_through_the_api_after_it_is_gone() -> Result<()> {
    let scene = Scene::new()?;
    let collector = scene.collector(None)?;
    let mut cluster = start_cluster(&scene, &collector)?;
    let story = run_story(cluster.scheduler_port)?;
    // The restarted worker is scraped under its new address before the cluster goes.
    let api = collector.http_url.as_str();
    let new_address = story.victim_addresses[1].as_str();
    wait_for("the restarted worker scraped", || {
        let up = series_now(
            api,
            &format!("up{{cluster=\"{CLUSTER}\", worker_addr=\"{new_address}\"}}"),
        )?;
        Ok(if up.iter().any(|(_, value)| value == "1") {
            Ok(())
        } else {
            Err(up)
        })
    })?;
    workload(cluster.scheduler_port, &["--shutdown"])?;

    // The cluster is gone: every Dask process has exited, and the wrapping agent with its
    // command, once everything it read was acknowledged.
    let patience = std::time::Duration::from_secs(60);
    cluster.scheduler.wait_within(patience)?;
    for worker in &mut cluster.workers {
        worker.wait_within(patience)?;
    }
    let wrapping = &mut cluster.agents[1].process;
    assert_eq!(wrapping.wait_within(patience)?, Some(0));
    // The last lines each process wrote have arrived.
    wait_for_hits(&collector, "\"End scheduler\"", 1)?;
    let ends = wait_for_hits(&collector, "\"End worker\"", 3)?;
    let mut ended: Vec<&str> = ends.iter().filter_map(|hit| hit["node"].as_str()).collect();
    ended.sort_unstable();
    assert_eq!(ended, ["node-1", "node-2", "node-3"]);

    // The failing task: one record, its traceback included.
    let failed = wait_for_hits(&collector, "\"Compute Failed\"", 1)?;
    let failure = message(&failed[0]);
    assert!(
        failure.contains("ValueError('afterglow: this task fails on purpose')")
            && failure.contains("Traceback:")
            && failure.contains("in fail"),
        "{failure}"
    );
    assert_eq!(failed[0]["level"], "ERROR");
    assert_eq!(failed[0]["logger"], "distributed.worker");

    // The GIL held too long: Dask warns at least once (on a loaded machine the loop can stall
    // again on its own, and each stall is warned about).
    let unresponsive = wait_for("the unresponsive event loop's warning", || {
        let hits = search(&collector, "\"Event loop was unresponsive in Worker\"")?;
        Ok(if hits.is_empty() { Err(()) } else { Ok(hits) })
    })?;
    assert!(
        unresponsive
            .iter()
            .all(|hit| hit["role"] == "worker" && hit["logger"] == "distributed.core"),
        "{unresponsive:?}"
    );

    // The kill, across the nodes, in the order it happened: the scheduler removes the worker
    // and its nanny reports the signal (which of the two logs first is Dask's race), then the
    // worker starts again on the same node.
    let old_address = story.victim_addresses[0].as_str();
    let sequence = search(
        &collector,
        &format!(
            "\"Remove worker addr: {old_address}\" OR \"killed by signal 9\" \
             OR \"Start worker at: {new_address}\""
        ),
    )?;
    let mut told: Vec<(&str, &str)> = sequence
        .iter()
        .map(|hit| (hit["node"].as_str().unwrap_or_default(), message(hit)))
        .collect();
    assert_eq!(told.len(), 3, "{told:#?}");
    let (restart_node, restart) = told.pop().expect("three");
    assert_eq!(restart_node, "node-1");
    assert!(restart.contains(new_address), "{restart}");
    told.sort_unstable();
    assert_eq!(told[0].0, "node-1", "{told:#?}");
    assert!(told[0].1.contains("was killed by signal 9"), "{told:#?}");
    assert_eq!(told[1].0, "scheduler-0", "{told:#?}");
    assert!(told[1].1.starts_with("Remove worker"), "{told:#?}");
    let times: Vec<&str> = sequence
        .iter()
        .filter_map(|hit| hit["ts"].as_str())
        .collect();
    assert!(times.is_sorted(), "{times:?}");
    // The restarted worker's start-up: it registers again, on the same node.
    let registered = search(&collector, "\"Registered to\" AND node:node-1")?;
    assert_eq!(
        registered.len(),
        2,
        "before and after the kill: {registered:?}"
    );

    // Every print, once, from the worker that ran it.
    assert_eq!(story.prints.len(), 9);
    for (line, worker) in &story.prints {
        let hits = search(&collector, &format!("\"{line}\""))?;
        assert_eq!(hits.len(), 1, "{line}: {hits:?}");
        let node = format!("node-{}", worker.trim_start_matches("w-"));
        assert_eq!(hits[0]["node"], node.as_str(), "{line}");
        assert_eq!(message(&hits[0]), line);
        if node == "node-1" {
            // The wrapped worker's stdout is its own stream.
            assert_eq!(hits[0]["source"], "stdout", "{line}");
        }
    }

    // Nothing duplicated: no two records are the same place of the same stream (Dask itself
    // writes some lines twice in one millisecond, so text alone cannot tell).
    let everything = search(&collector, "*")?;
    let mut seen = HashSet::new();
    for hit in &everything {
        let key = (
            hit["stream"].as_str().unwrap_or_default().to_owned(),
            hit["seq"].as_u64(),
        );
        assert!(seen.insert(key), "repeated: {hit}");
    }

    // Metrics: every worker under its name, the victim under both its addresses, and every
    // target down now that the cluster is gone.
    let down = wait_for("every target down", || {
        let up = series_now(api, &format!("up{{cluster=\"{CLUSTER}\"}}"))?;
        Ok(
            if up.len() == 4 && up.iter().all(|(_, value)| value == "0") {
                Ok(up)
            } else {
                Err(up)
            },
        )
    })?;
    let mut roles: Vec<String> = down
        .iter()
        .map(|(metric, _)| metric["worker"].as_str().unwrap_or("scheduler").to_owned())
        .collect();
    roles.sort();
    assert_eq!(roles, ["scheduler", "w-1", "w-2", "w-3"]);
    // Over the last 10 minutes, each worker's own metrics, the victim at both addresses.
    let scraped = series_now(
        api,
        &format!("last_over_time(dask_worker_threads{{cluster=\"{CLUSTER}\"}}[10m])"),
    )?;
    let mut addresses: BTreeMap<String, HashSet<String>> = BTreeMap::new();
    for (metric, _) in &scraped {
        addresses
            .entry(metric["worker"].as_str().unwrap_or_default().to_owned())
            .or_default()
            .insert(
                metric["worker_addr"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            );
    }
    assert_eq!(
        addresses.keys().map(String::as_str).collect::<Vec<_>>(),
        ["w-1", "w-2", "w-3"],
        "{scraped:?}"
    );
    let victim: HashSet<String> = story.victim_addresses.iter().cloned().collect();
    assert_eq!(addresses[VICTIM], victim);
    Ok(())
}
