//! A record's `truncated` and `ts_inferred` flags, as the agent sends them, come
//! back in search, export, context and the live tail, and survive a collector restart.

use std::io::Write;

use afterglow_tests::push::{batch, push, record};
use afterglow_tests::sse::Tail;
use afterglow_tests::{Agent, Collector, Scene, encode, wait_for};
use anyhow::{Context, Result};
use serde_json::Value;

/// The flags of a hit as `(message, truncated, ts_inferred)`; a flag left out reads false,
/// and one given must be `true` (false is never written).
fn flags(hit: &Value) -> Result<(String, bool, bool)> {
    let flag = |name: &str| -> Result<bool> {
        match hit.get(name) {
            None => Ok(false),
            Some(Value::Bool(true)) => Ok(true),
            Some(other) => anyhow::bail!("{name} is {other}, not left out or true: {hit}"),
        }
    };
    Ok((
        hit["message"].as_str().context("message")?.to_owned(),
        flag("truncated")?,
        flag("ts_inferred")?,
    ))
}

fn expected() -> Vec<(String, bool, bool)> {
    vec![
        ("flagsmarker plain".to_owned(), false, false),
        ("flagsmarker cut".to_owned(), true, false),
        ("flagsmarker guessed".to_owned(), false, true),
    ]
}

/// Search, export and context of the three records, as flags.
fn stored_flags(collector: &Collector) -> Result<Vec<Vec<(String, bool, bool)>>> {
    let hits = collector.search_all("flagsmarker", 10)?;
    let searched: Vec<_> = hits.iter().map(flags).collect::<Result<_>>()?;
    if searched.len() < 3 {
        return Ok(vec![searched]);
    }
    let (status, export) = collector.get_as(
        None,
        &format!("/api/v1/logs/export?q={}", encode("flagsmarker")),
    )?;
    anyhow::ensure!(status == 200, "export answered {status}: {export}");
    let exported: Vec<_> = export
        .lines()
        .map(|line| flags(&serde_json::from_str(line)?))
        .collect::<Result<_>>()?;
    let first = hits.first().context("a hit")?;
    let (status, context) = collector.get_json(&format!(
        "/api/v1/logs/context?stream={}&seq={}&after=5",
        first["stream"].as_str().context("stream")?,
        first["seq"]
    ))?;
    anyhow::ensure!(status == 200, "context answered {status}: {context}");
    let mut in_context = vec![flags(&context["hit"])?];
    for hit in context["after"].as_array().context("after")? {
        in_context.push(flags(hit)?);
    }
    Ok(vec![searched, exported, in_context])
}

#[test]
fn truncated_and_inferred_times_reach_every_answer_and_survive_a_restart() -> Result<()> {
    let scene = Scene::new()?;
    let collector = scene.collector(None)?;
    let mut tail = Tail::open(
        &collector,
        &format!("/api/v1/logs/tail?q={}", encode("flagsmarker")),
        None,
    )?;
    let now = jiff::Timestamp::now().as_nanosecond() as i64;
    let mut cut = record(20, now + 1_000, "flagsmarker cut");
    cut.truncated = true;
    let mut guessed = record(30, now + 2_000, "flagsmarker guessed");
    guessed.ts_inferred = true;
    push(
        &collector.grpc_url,
        batch(
            1,
            (0xf1a9, "flags", "worker-1"),
            vec![record(10, now, "flagsmarker plain"), cut, guessed],
        ),
    )?;
    let tailed: Vec<_> = tail
        .next_hits(3)?
        .iter()
        .map(flags)
        .collect::<Result<_>>()?;
    assert_eq!(tailed, expected(), "live tail");
    // Acked means in the WAL; killed at once, the index likely has not committed them yet,
    // and the restart replays them from the WAL.
    let mut collector = collector;
    collector.process.kill();
    let collector = Collector::start(scene.path(), &scene.data_dir(), None)?;
    let answers = wait_for("the three records after the restart", || {
        let answers = stored_flags(&collector)?;
        Ok(if answers[0].len() == 3 {
            Ok(answers)
        } else {
            Err(answers)
        })
    })?;
    for (answer, name) in answers.iter().zip(["search", "export", "context"]) {
        assert_eq!(*answer, expected(), "{name}");
    }
    Ok(())
}

/// A 5 MB line in a tailed file comes back cut at the agent's 1 MiB limit, and says so.
#[test]
fn a_five_megabyte_line_comes_back_truncated() -> Result<()> {
    let scene = Scene::new()?;
    let collector = scene.collector(None)?;
    let log = scene.log_dir().join("worker.log");
    std::fs::create_dir_all(scene.log_dir())?;
    let mut file = std::fs::File::create(&log)?;
    let stamp = jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M:%S,%3f");
    writeln!(
        file,
        "{stamp} - distributed.worker - INFO - hugelinemarker {}",
        "x".repeat(5_000_000)
    )?;
    writeln!(
        file,
        "{stamp} - distributed.worker - INFO - shortlinemarker after it"
    )?;
    drop(file);
    let _agent = Agent::start(
        scene.path(),
        "worker",
        &crate::logs::agent_config(&collector, "worker-1", &scene.log_dir().join("*.log")),
    )?;
    let hits = wait_for("the long and the short record", || {
        let hits = collector.search_all("hugelinemarker OR shortlinemarker", 10)?;
        Ok(if hits.len() == 2 {
            Ok(hits)
        } else {
            Err(hits.len())
        })
    })?;
    let huge = &hits[0];
    let message = huge["message"].as_str().context("message")?;
    assert!(
        message.starts_with("hugelinemarker xxx"),
        "{}",
        &message[..40]
    );
    assert!(
        message.len() <= 1 << 20 && message.len() > 1 << 19,
        "cut near 1 MiB: {} bytes",
        message.len()
    );
    assert_eq!(huge["truncated"], true, "the cut record says so");
    assert_eq!(hits[1]["message"], "shortlinemarker after it");
    assert_eq!(hits[1].get("truncated"), None, "a whole record has no flag");
    Ok(())
}
