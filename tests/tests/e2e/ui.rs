//! The web UI in Debian's chromium, driven by playwright-core (`web/tests/*.spec.mjs`) against a
//! real collector fed by a real agent.

use std::path::Path;
use std::process::Command;

use afterglow_tests::{Agent, Collector, fixture, wait_for};
use anyhow::{Context, Result};

#[test]
fn search_page_finds_records_in_chromium() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let collector = Collector::start(dir.path(), &dir.path().join("data"), None)?;
    let mut expected = 0;
    let mut agents = Vec::new();
    let nodes = [
        ("scheduler-0", "scheduler", "scheduler.log"),
        ("node-a", "worker", "worker-1.log"),
        ("node-b", "worker", "worker-2.log"),
    ];
    for (node, role, name) in nodes {
        let node_dir = dir.path().join(node);
        std::fs::create_dir(&node_dir)?;
        let mut text = fixture(&format!("logs/{name}"));
        if node == "node-a" {
            text.push_str("2026-11-27 14:09:00,000 - distributed.worker - WARNING - injected <b id=\"injected\">markup</b>\n");
        }
        expected += text
            .lines()
            .filter(|line| {
                line.starts_with("2026-")
                    || line.starts_with("user ")
                    || line.starts_with("<dynamic-code>")
            })
            .count();
        std::fs::write(node_dir.join(name), text)?;
        let config = format!(
            "collector = \"{}\"\ncluster = \"ui\"\nnode = \"{node}\"\ntimezone = \"UTC\"\n[[logs]]\npaths = [\"{}/*.log\"]\nrole = \"{role}\"\nmultiline_timeout = \"200ms\"\n",
            collector.grpc_url,
            node_dir.display()
        );
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

    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web");
    let mut specs: Vec<String> = std::fs::read_dir(web.join("tests"))?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".spec.mjs"))
        .map(|name| format!("tests/{name}"))
        .collect();
    specs.sort();
    let mut command = Command::new("node");
    command
        .args(["--test", "--test-reporter=spec"])
        .args(&specs)
        .current_dir(&web)
        .env("AFTERGLOW_URL", &collector.http_url);
    if let Ok(path) = std::env::var("AFTERGLOW_SCREENSHOT") {
        command.env("AFTERGLOW_SCREENSHOT", path);
    }
    let output = command.output().context(
        "cannot run node: install Node.js, then `npm ci --prefix web` (scripts/test does)",
    )?;
    let report = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "browser tests failed:\n{report}");
    assert!(
        report.contains("pass 6"),
        "expected 6 passing browser tests:\n{report}"
    );
    Ok(())
}
