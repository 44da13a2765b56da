//! The agent's spool with the real binaries: a collector outage is ridden out on disk, a file
//! deleted meanwhile is drained into the spool and released, a full spool pauses reading.

use std::time::Duration;

use afterglow_tests::{Agent, Scene, fixture, wait_for};
use anyhow::Result;

use crate::logs::{agent_config, expected_records, wait_for_count, wait_for_exactly};

#[test]
fn an_outage_is_ridden_out_in_the_spool_even_across_an_agent_restart_and_a_deleted_file()
-> Result<()> {
    let scene = Scene::new()?;
    let mut collector = scene.collector(None)?;
    let grpc_port = collector.grpc_port();
    let log_dir = scene.log_dir();
    let config = agent_config(&collector, "node-s", &log_dir.join("*.log"));
    let mut agent = Agent::start(scene.path(), "s", &config)?;

    let kept = fixture("logs/worker-1.log");
    let deleted = fixture("logs/worker-2.log").repeat(3);
    std::fs::write(log_dir.join("kept.log"), &kept)?;
    wait_for_count(&collector, "node-s", expected_records(&kept))?;

    collector.process.kill();
    std::fs::write(log_dir.join("deleted.log"), &deleted)?;
    let lines_written = (kept.lines().count() + deleted.lines().count()) as f64;
    wait_for("the agent to read the new file", || {
        Ok(match agent.metric("afterglow_agent_lines_read_total") {
            Ok(lines_read) if lines_read >= lines_written => Ok(()),
            Ok(lines_read) => Err(lines_read.to_string()),
            Err(error) => Err(error.to_string()),
        })
    })?;
    wait_for("the new file's batches in the spool", || {
        Ok(match agent.metric("afterglow_agent_unacked_batches") {
            Ok(batches) if batches > 0.0 => Ok(()),
            other => Err(format!("{other:?}")),
        })
    })?;
    // Deleted while the collector is away: read to its end into the spool, then released.
    std::fs::remove_file(log_dir.join("deleted.log"))?;
    agent.process.wait_for_log("released file that is gone")?;

    // The agent restarts during the outage: the spool is sent first by the new one.
    agent.process.kill();
    let agent = Agent::start(scene.path(), "s", &config)?;
    let collector = scene.collector(Some(grpc_port))?;
    let expected = expected_records(&kept) + expected_records(&deleted);
    wait_for_exactly(&collector, expected)?;
    wait_for("the spool to empty", || {
        Ok(match agent.metric("afterglow_agent_unacked_batches") {
            Ok(0.0) => Ok(()),
            other => Err(format!("{other:?}")),
        })
    })?;
    Ok(())
}

fn resident_bytes(agent: &Agent) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", agent.process.pid()))?;
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse::<u64>().ok())
        .unwrap_or(0);
    Ok(kib * 1024)
}

#[test]
fn a_full_spool_pauses_reading_without_memory_growth_then_drains() -> Result<()> {
    let scene = Scene::new()?;
    let mut collector = scene.collector(None)?;
    let grpc_port = collector.grpc_port();
    let log_dir = scene.log_dir();
    let config = format!(
        "{}\n[spool]\nmax_bytes = \"64KiB\"\n",
        agent_config(&collector, "node-f", &log_dir.join("*.log"))
            .replace("[ship]\n", "[ship]\nbatch_max_records = 50\n")
    );
    let agent = Agent::start(scene.path(), "f", &config)?;
    collector.process.kill();

    // Far more than the spool holds.
    let text = fixture("logs/scheduler.log").repeat(20);
    std::fs::write(log_dir.join("big.log"), &text)?;
    agent
        .process
        .wait_for_log("backpressure: the queue of unacked batches is full")?;
    let paused_rss = resident_bytes(&agent)?;
    std::fs::OpenOptions::new()
        .append(true)
        .open(log_dir.join("big.log"))
        .and_then(|mut file| {
            use std::io::Write;
            file.write_all(text.as_bytes())
        })?;
    std::thread::sleep(Duration::from_secs(2));
    let later_rss = resident_bytes(&agent)?;
    assert!(
        later_rss < paused_rss + (8 << 20),
        "memory grew while paused: {paused_rss} → {later_rss} bytes"
    );
    let spool_bytes: u64 = std::fs::read_dir(scene.path().join("state-f/spool"))?
        .flatten()
        .filter_map(|entry| entry.metadata().ok())
        .map(|metadata| metadata.len())
        .sum();
    assert!(
        spool_bytes < 64 * 1024 + 64 * 1024,
        "spool holds {spool_bytes} bytes"
    );

    let collector = scene.collector(Some(grpc_port))?;
    let expected = 2 * expected_records(&text);
    wait_for_exactly(&collector, expected)?;
    Ok(())
}

#[test]
fn a_sixty_second_outage_while_four_agents_keep_writing_is_drained_exactly_once() -> Result<()> {
    let scene = Scene::new()?;
    let mut collector = scene.collector(None)?;
    let grpc_port = collector.grpc_port();
    let blocks = record_blocks(&fixture("logs/worker-1.log"));
    let mut agents = Vec::new();
    let mut files = Vec::new();
    for index in 0..4 {
        let node = format!("node-{index}");
        let log_dir = scene.path().join(&node);
        std::fs::create_dir(&log_dir)?;
        agents.push(Agent::start(
            scene.path(),
            &node,
            &agent_config(&collector, &node, &log_dir.join("*.log")),
        )?);
        files.push(std::fs::File::create(log_dir.join("dask.log"))?);
    }
    collector.process.kill();
    // The writers go on for a whole minute of outage: a block of the fixture per file every
    // 100 ms, over and over, each block starting where a record starts.
    let outage = Duration::from_secs(60);
    let started = std::time::Instant::now();
    let mut written = String::new();
    let mut next = 0;
    while started.elapsed() < outage {
        let block = &blocks[next % blocks.len()];
        for file in &mut files {
            use std::io::Write;
            file.write_all(block.as_bytes())?;
        }
        written.push_str(block);
        next += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    for agent in &agents {
        assert!(
            agent.metric("afterglow_agent_unacked_batches")? > 0.0,
            "the agent holds its backlog in the spool"
        );
    }
    let collector = scene.collector(Some(grpc_port))?;
    wait_for_exactly(&collector, 4 * expected_records(&written))?;
    Ok(())
}

/// The fixture cut where records start: a header line with the lines that follow it.
fn record_blocks(text: &str) -> Vec<String> {
    let mut blocks: Vec<String> = Vec::new();
    for line in text.split_inclusive('\n') {
        match blocks.last_mut() {
            Some(block) if !line.starts_with("2026-") => block.push_str(line),
            _ => blocks.push(line.to_owned()),
        }
    }
    blocks
}
