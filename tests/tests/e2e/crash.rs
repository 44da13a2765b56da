//! Promise 1 and 2 under real crashes: the collector SIGKILLed again and again while four
//! agents keep writing; every line written is stored exactly once in the end.

use std::io::Write;
use std::time::Duration;

use afterglow_tests::{Agent, Scene, fixture};
use anyhow::Result;

use crate::logs::{agent_config, expected_records, wait_for_exactly};

#[test]
fn the_collector_killed_twenty_times_while_four_agents_write_loses_and_repeats_nothing()
-> Result<()> {
    let scene = Scene::new()?;
    let mut collector = scene.collector(None)?;
    let grpc_port = collector.grpc_port();
    let sources = [
        "scheduler.log",
        "worker-1.log",
        "worker-2.log",
        "worker-1.log",
    ];
    let mut files = Vec::new();
    let mut agents = Vec::new();
    for (index, source) in sources.iter().enumerate() {
        let node = format!("node-{index}");
        let log_dir = scene.path().join(&node);
        std::fs::create_dir(&log_dir)?;
        let path = log_dir.join("dask.log");
        files.push((
            std::fs::File::create(&path)?,
            fixture(&format!("logs/{source}")),
        ));
        agents.push(Agent::start(
            scene.path(),
            &node,
            &agent_config(&collector, &node, &log_dir.join("*.log")),
        )?);
    }
    // Each round every agent's file grows by a slice of its fixture; then the collector dies
    // at a moment drawn from a fixed seed, and comes back.
    let rounds = 20;
    let mut seed = 0x5eed_cafe_f00d_u64;
    let mut written = vec![0usize; files.len()];
    for round in 0..rounds {
        for (index, (file, text)) in files.iter_mut().enumerate() {
            // Cut only where a record starts, so no record waits across a crash for its
            // continuation lines (the multi-line timeout would close it early).
            let target = text.len() * (round + 1) / rounds;
            let end = if round + 1 == rounds {
                text.len()
            } else {
                text[target..]
                    .find("\n2026-")
                    .map_or(text.len(), |at| target + at + 1)
                    .max(written[index])
            };
            file.write_all(&text.as_bytes()[written[index]..end])?;
            written[index] = end;
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(seed % 700));
        collector.process.kill();
        collector = scene.collector(Some(grpc_port))?;
    }
    let expected: usize = files.iter().map(|(_, text)| expected_records(text)).sum();
    wait_for_exactly(&collector, expected)?;
    drop(agents);
    Ok(())
}
