//! A log line's whole journey: Dask log files → agent → gRPC → collector → search API.

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

use afterglow_tests::{Agent, Collector, Scene, fixture, wait_for};
use anyhow::Result;
use serde_json::Value;

/// Counts the records in Dask output without the agent's parser: one per timestamped line,
/// one per task output line; tracebacks and `Compute Failed` details belong to their record.
pub(crate) fn expected_records(text: &str) -> usize {
    text.lines()
        .filter(|line| {
            let timestamped =
                line.len() > 24 && line.starts_with("20") && line.as_bytes()[19] == b',';
            timestamped || line.starts_with("user ") || line.starts_with("<dynamic-code>")
        })
        .count()
}

/// Where to cut `text` so that a later step completes a half-written header line.
fn split_points(text: &str, parts: usize) -> Vec<usize> {
    (1..parts)
        .map(|part| {
            let from = text.len() * part / parts;
            let line_start = text[from..]
                .find("\n2026-")
                .map_or(text.len(), |at| from + at + 1);
            (line_start + 12).min(text.len())
        })
        .collect()
}

pub(crate) fn agent_config(collector: &Collector, node: &str, log_glob: &Path) -> String {
    format!(
        r#"collector = "{}"
cluster = "nightly-etl"
node = "{node}"
timezone = "UTC"
[[logs]]
paths = ["{}"]
role = "worker"
poll_interval = "50ms"
multiline_timeout = "300ms"
[ship]
batch_linger = "20ms"
backoff_max = "500ms"
"#,
        collector.grpc_url,
        log_glob.display()
    )
}

fn hits_of_node<'a>(hits: &'a [Value], node: &str) -> Vec<&'a Value> {
    hits.iter().filter(|hit| hit["node"] == node).collect()
}

pub(crate) fn count_node(collector: &Collector, node: &str) -> Result<usize> {
    Ok(hits_of_node(&collector.search_all("*", 1000)?, node).len())
}

/// Waits until the collector holds `expected` records in all, then checks that it holds
/// exactly that many and none twice.
pub(crate) fn wait_for_exactly(collector: &Collector, expected: usize) -> Result<()> {
    let hits = wait_for(&format!("all {expected} records"), || {
        let hits = collector.search_all("*", 10_000)?;
        Ok(if hits.len() >= expected {
            Ok(hits)
        } else {
            Err(hits.len())
        })
    })?;
    assert_eq!(hits.len(), expected);
    assert_no_duplicates(&hits);
    Ok(())
}

/// Waits until the collector holds `expected` records of `node`.
pub(crate) fn wait_for_count(collector: &Collector, node: &str, expected: usize) -> Result<()> {
    wait_for(&format!("{expected} records of {node}"), || {
        let count = count_node(collector, node)?;
        Ok(if count == expected {
            Ok(())
        } else {
            Err(count)
        })
    })
}

pub(crate) fn assert_no_duplicates(hits: &[Value]) {
    let mut seen = HashSet::new();
    for hit in hits {
        let key = (
            hit["stream"].as_str().unwrap_or_default().to_owned(),
            hit["seq"].as_u64(),
        );
        assert!(
            seen.insert(key.clone()),
            "record stored twice: {key:?}\n{hit:#}"
        );
    }
}

/// Appends `text` to `path` in `parts` steps, waiting after each until the collector has
/// every record of the file's complete lines.
pub(crate) fn append_in_steps(
    collector: &Collector,
    path: &Path,
    node: &str,
    text: &str,
    parts: usize,
) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let mut written = 0;
    let mut cuts = split_points(text, parts);
    cuts.push(text.len());
    for cut in cuts {
        file.write_all(&text.as_bytes()[written..cut])?;
        file.flush()?;
        written = cut;
        let on_disk = std::fs::read_to_string(path)?;
        let expected = expected_records(&on_disk[..on_disk.rfind('\n').map_or(0, |at| at + 1)]);
        wait_for_count(collector, node, expected)?;
    }
    Ok(())
}

#[test]
fn two_nodes_logs_arrive_once_whole_and_interleaved_by_time() -> Result<()> {
    let scene = Scene::new()?;
    let collector = scene.collector(None)?;
    let worker_1 = fixture("logs/worker-1.log");
    let worker_2 = fixture("logs/worker-2.log");
    let mut agents = Vec::new();
    for (node, name) in [("node-a", "worker-1.log"), ("node-b", "worker-2.log")] {
        let node_dir = scene.path().join(node);
        std::fs::create_dir(&node_dir)?;
        std::fs::write(node_dir.join(name), "")?;
        agents.push(Agent::start(
            scene.path(),
            node,
            &agent_config(&collector, node, &node_dir.join("*.log")),
        )?);
    }
    // The two nodes write in alternation, each in several appends that cut lines in half.
    append_in_steps(
        &collector,
        &scene.path().join("node-a/worker-1.log"),
        "node-a",
        &worker_1,
        3,
    )?;
    append_in_steps(
        &collector,
        &scene.path().join("node-b/worker-2.log"),
        "node-b",
        &worker_2,
        4,
    )?;

    let hits = collector.search_all("*", 1000)?;
    assert_eq!(
        hits.len(),
        expected_records(&worker_1) + expected_records(&worker_2)
    );
    assert_no_duplicates(&hits);

    // Correct fields, from a line with a known place in worker-1.log.
    let killed = hits
        .iter()
        .find(|hit| hit["message"] == "Worker process 5100 was killed by signal 9")
        .expect("the nanny's kill line is stored");
    assert_eq!(killed["ts"], "2026-11-27T13:58:39.503000Z");
    assert_eq!(killed["cluster"], "nightly-etl");
    assert_eq!(killed["node"], "node-a");
    assert_eq!(killed["role"], "worker");
    assert_eq!(killed["level"], "INFO");
    assert_eq!(killed["logger"], "distributed.nanny");
    assert!(
        killed["source"]
            .as_str()
            .unwrap_or_default()
            .ends_with("node-a/worker-1.log")
    );
    let offset_in_file = worker_1
        .find("2026-11-27 13:58:39,503")
        .expect("line in fixture");
    assert_eq!(killed["seq"].as_u64(), Some(offset_in_file as u64));

    // Interleaved by time across the two nodes: (ts, node, source, seq) never goes back,
    // and the nodes take turns.
    let keys: Vec<(String, String, String, u64)> = hits
        .iter()
        .map(|hit| {
            let text = |name: &str| hit[name].as_str().unwrap_or_default().to_owned();
            (
                text("ts"),
                text("node"),
                text("source"),
                hit["seq"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(
        keys, sorted,
        "hits are not in (ts, node, source, seq) order"
    );
    let node_switches = keys
        .windows(2)
        .filter(|pair| pair[0].1 != pair[1].1)
        .count();
    assert!(
        node_switches > 10,
        "nodes are not interleaved: {node_switches} switches"
    );

    // Each node's chained shutdown traceback is one whole record.
    let tracebacks = collector.search_all("\"Batched Comm Closed\"", 100)?;
    assert_eq!(tracebacks.len(), 2, "{tracebacks:#?}");
    for hit in &tracebacks {
        let message = hit["message"].as_str().unwrap_or_default();
        assert!(message.contains(
            "\n\nThe above exception was the direct cause of the following exception:\n\n"
        ));
        assert!(message.ends_with("Stream is closed"), "{message}");
        assert_eq!(
            message
                .matches("Traceback (most recent call last):")
                .count(),
            2
        );
    }
    // A task's print() is a record of its own, attributed to its node.
    let prints = collector.search_all("\"user print() from task 0\"", 100)?;
    assert_eq!(prints.len(), 1);
    assert_eq!(prints[0]["node"], "node-a");
    assert_eq!(prints[0]["level"], "");

    // Small pages by cursor return exactly the one large page.
    assert_eq!(collector.search_all("*", 7)?, hits);
    let errors_paged = collector.search_all("level:ERROR OR level:WARNING", 3)?;
    assert_eq!(
        errors_paged,
        collector.search_all("level:ERROR OR level:WARNING", 1000)?
    );
    assert!(!errors_paged.is_empty());
    Ok(())
}

#[test]
fn agent_reconnects_after_the_collector_is_killed_and_restarted() -> Result<()> {
    let scene = Scene::new()?;
    let mut collector = scene.collector(None)?;
    let log_dir = scene.log_dir();
    let log_path = log_dir.join("scheduler.log");
    std::fs::write(&log_path, "")?;
    let agent = Agent::start(
        scene.path(),
        "a",
        &agent_config(&collector, "node-a", &log_dir.join("*.log")),
    )?;

    let text = fixture("logs/scheduler.log");
    let cut = split_points(&text, 2)[0];
    append_in_steps(&collector, &log_path, "node-a", &text[..cut], 1)?;

    collector.process.kill();
    let grpc_port = collector.grpc_port();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log_path)?
        .write_all(&text.as_bytes()[cut..])?;
    wait_for("the agent to notice the collector is gone", || {
        let log = agent.process.log();
        Ok(if log.contains("collector unreachable") {
            Ok(())
        } else {
            Err(log.lines().last().map(str::to_owned))
        })
    })?;

    let collector = scene.collector(Some(grpc_port))?;
    let expected = expected_records(&text);
    wait_for_exactly(&collector, expected)
}

#[test]
fn a_restarted_agent_rereading_its_files_stores_nothing_twice() -> Result<()> {
    let scene = Scene::new()?;
    let collector = scene.collector(None)?;
    let log_dir = scene.log_dir();
    let log_path = log_dir.join("worker-2.log");
    let text = fixture("logs/worker-2.log");
    let cut = split_points(&text, 2)[0];
    std::fs::write(&log_path, "")?;
    let config = agent_config(&collector, "node-b", &log_dir.join("*.log"));
    let mut agent = Agent::start(scene.path(), "first", &config)?;
    append_in_steps(&collector, &log_path, "node-b", &text[..cut], 1)?;
    agent.process.kill();

    // The new agent has no checkpoint yet and reads the file from its start again.
    let _agent = Agent::start(scene.path(), "second", &config)?;
    append_in_steps(&collector, &log_path, "node-b", &text[cut..], 1)?;
    let hits = collector.search_all("*", 1000)?;
    assert_eq!(hits.len(), expected_records(&text));
    assert_no_duplicates(&hits);
    Ok(())
}

/// Regression: the collector waited forever for agents' open Push streams after SIGTERM.
#[test]
fn sigterm_stops_collector_and_agent_promptly_while_connected() -> Result<()> {
    let scene = Scene::new()?;
    let mut collector = scene.collector(None)?;
    let log_dir = scene.log_dir();
    let log_path = log_dir.join("worker-1.log");
    let config = agent_config(&collector, "node-a", &log_dir.join("*.log"));
    let mut agent = Agent::start(scene.path(), "a", &config)?;
    append_in_steps(
        &collector,
        &log_path,
        "node-a",
        &fixture("logs/worker-1.log"),
        1,
    )?;

    let limit = std::time::Duration::from_secs(5);
    assert_eq!(collector.process.terminate_within(limit)?, Some(0));
    assert_eq!(agent.process.terminate_within(limit + limit)?, Some(0));
    Ok(())
}

/// Distributed's multi-line "Sending large graph" `UserWarning`, written by the
/// `warnings` module into a client script's log whose own lines a `regex` format reads, is
/// one record: level `WARNING`, logger `UserWarning`, up to its source line.
#[test]
fn a_multi_line_python_warning_in_a_regex_client_log_is_one_record() -> Result<()> {
    let scene = Scene::new()?;
    let collector = scene.collector(None)?;
    let log_dir = scene.log_dir();
    let text = fixture("logs/client-regex.log");
    std::fs::write(log_dir.join("client.log"), &text)?;
    let config = format!(
        r#"collector = "{}"
cluster = "nightly-etl"
node = "node-c"
timezone = "UTC"
[[logs]]
paths = ["{}"]
role = "client"
format = "regex"
regex = '^(?P<ts>\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d) CLIENT (?P<message>.*)$'
multiline_timeout = "300ms"
[ship]
batch_linger = "20ms"
"#,
        collector.grpc_url,
        log_dir.join("*.log").display()
    );
    let _agent = Agent::start(scene.path(), "c", &config)?;
    // One record per client line, one for the warning, one for the script's print.
    let client_lines = text
        .lines()
        .filter(|line| line.contains(" CLIENT "))
        .count();
    wait_for_count(&collector, "node-c", client_lines + 2)?;

    let warnings = collector.search_all("\"Sending large graph\"", 10)?;
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    let warning = &warnings[0];
    assert_eq!(
        (&warning["level"], &warning["logger"]),
        (&Value::from("WARNING"), &Value::from("UserWarning"))
    );
    let message = warning["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("/srv/daskrun/venv/lib/python3.11/site-packages/distributed/client.py:3429: UserWarning: Sending large graph of size 19.07 MiB.\nThis may cause some slowdown.\n"),
        "{message}"
    );
    assert!(
        message.ends_with("for more information.\n  warnings.warn("),
        "{message}"
    );
    // It has no time of its own: it takes the client line's before it.
    assert_eq!(warning["ts"], "2026-11-27T13:59:26.000000Z");
    let print = collector.search_all("\"done computing\"", 10)?;
    assert_eq!(print.len(), 1);
    assert_eq!(print[0]["level"], "");
    Ok(())
}
