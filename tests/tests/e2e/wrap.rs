//! Wrap mode: `afterglow-agent run -- CMD` ships everything CMD writes to stdout and stderr,
//! copies it through, forwards SIGTERM to CMD and exits with CMD's exit code.

use afterglow_tests::{Agent, Collector, PATIENCE, wait_for};
use anyhow::Result;
use serde_json::Value;

const STDERR_TEXT: &str = "\
2026-11-27 13:56:53,599 - distributed.worker - INFO - Start worker at: tcp://10.0.3.7:40001
2026-11-27 13:56:54,100 - distributed.core - ERROR - Exception while handling op get_data
Traceback (most recent call last):
  File \"/opt/conda/lib/python3.12/site-packages/distributed/core.py\", line 832, in _handle_comm
    result = handler(**msg)
ZeroDivisionError: division by zero
2026-11-27 13:56:54,200 - distributed.worker - INFO - Stopping worker
";
const STDOUT_TEXT: &str = "user print() from task 0\nuser print() from task 1\n";

/// Waits until the collector holds `count` records of `node`, and returns them.
fn wait_for_records(collector: &Collector, node: &str, count: usize) -> Result<Vec<Value>> {
    wait_for(&format!("{count} records of {node}"), || {
        let hits: Vec<Value> = collector
            .search_all("*", 1000)?
            .into_iter()
            .filter(|hit| hit["node"] == node)
            .collect();
        Ok(if hits.len() == count {
            Ok(hits)
        } else {
            Err(hits)
        })
    })
}

fn text<'a>(hit: &'a Value, field: &str) -> &'a str {
    hit[field].as_str().unwrap_or_default()
}

#[test]
fn a_wrapped_commands_output_is_shipped_per_pipe_and_its_exit_code_is_the_agents() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let collector = Collector::start(dir.path(), &dir.path().join("data"), None)?;
    let (out, err) = (dir.path().join("out.txt"), dir.path().join("err.txt"));
    std::fs::write(&out, STDOUT_TEXT)?;
    std::fs::write(&err, STDERR_TEXT)?;
    let script = format!(
        "cat '{}'; cat '{}' >&2; exit 3",
        out.display(),
        err.display()
    );
    let mut agent = Agent::start_wrapped(
        dir.path(),
        "node-w",
        &collector,
        "worker",
        &["sh", "-c", &script],
    )?;
    assert_eq!(agent.process.wait_within(PATIENCE)?, Some(3));
    // Copied through to the agent's own stdout and stderr.
    assert_eq!(agent.stdout(), STDOUT_TEXT);
    assert!(
        agent.process.log().contains(STDERR_TEXT),
        "{}",
        agent.process.log()
    );

    let hits = wait_for_records(&collector, "node-w", 5)?;
    for hit in &hits {
        assert_eq!(hit["cluster"], "wrap-tests");
        assert_eq!(hit["role"], "worker");
    }
    let from = |source: &str| -> Vec<&Value> {
        hits.iter()
            .filter(|hit| text(hit, "source") == source)
            .collect()
    };
    let (stdout, stderr) = (from("stdout"), from("stderr"));
    let messages = |hits: &[&Value]| -> Vec<String> {
        hits.iter()
            .map(|hit| text(hit, "message").to_owned())
            .collect()
    };
    assert_eq!(
        messages(&stdout),
        ["user print() from task 0", "user print() from task 1"]
    );
    // `seq` is the record's byte offset in its pipe.
    let seqs: Vec<Option<u64>> = stdout.iter().map(|hit| hit["seq"].as_u64()).collect();
    assert_eq!(seqs, [Some(0), Some(25)]);
    assert_eq!(stderr.len(), 3, "{stderr:#?}");
    assert_ne!(stdout[0]["stream"], stderr[0]["stream"]);

    let traceback = stderr
        .iter()
        .find(|hit| hit["level"] == "ERROR")
        .expect("the error record is stored");
    assert_eq!(traceback["logger"], "distributed.core");
    let message = text(traceback, "message");
    assert!(
        message.starts_with(
            "Exception while handling op get_data\nTraceback (most recent call last):\n"
        ),
        "{message}"
    );
    assert!(
        message.ends_with("\nZeroDivisionError: division by zero"),
        "{message}"
    );
    Ok(())
}

#[test]
fn a_wrapped_command_killed_by_sigkill_gives_137_and_loses_no_line() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let collector = Collector::start(dir.path(), &dir.path().join("data"), None)?;
    let script = "printf 'line %s before the kill\\n' 1 2 3; \
                  echo 'on stderr before the kill' >&2; \
                  printf 'half a line'; \
                  kill -9 $$";
    let mut agent = Agent::start_wrapped(
        dir.path(),
        "node-k",
        &collector,
        "nanny",
        &["sh", "-c", script],
    )?;
    assert_eq!(agent.process.wait_within(PATIENCE)?, Some(137));
    let hits = wait_for_records(&collector, "node-k", 5)?;
    let mut messages: Vec<(&str, &str)> = hits
        .iter()
        .map(|hit| (text(hit, "source"), text(hit, "message")))
        .collect();
    messages.sort();
    assert_eq!(
        messages,
        [
            ("stderr", "on stderr before the kill"),
            ("stdout", "half a line"),
            ("stdout", "line 1 before the kill"),
            ("stdout", "line 2 before the kill"),
            ("stdout", "line 3 before the kill"),
        ]
    );
    Ok(())
}

#[test]
fn sigterm_to_the_agent_reaches_the_wrapped_command() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let collector = Collector::start(dir.path(), &dir.path().join("data"), None)?;
    let script = "trap 'echo got TERM; exit 0' TERM; \
                  echo ready; \
                  while :; do sleep 0.1; done";
    let mut agent = Agent::start_wrapped(
        dir.path(),
        "node-t",
        &collector,
        "worker",
        &["sh", "-c", script],
    )?;
    // `ready` is written after the trap is set.
    wait_for_records(&collector, "node-t", 1)?;
    assert_eq!(agent.process.terminate_within(PATIENCE)?, Some(0));
    let hits = wait_for_records(&collector, "node-t", 2)?;
    let messages: Vec<&str> = hits.iter().map(|hit| text(hit, "message")).collect();
    assert!(messages.contains(&"got TERM"), "{messages:?}");
    assert!(agent.stdout().ends_with("got TERM\n"), "{}", agent.stdout());
    Ok(())
}
