//! `check --config FILE` on both binaries: every problem printed, non-zero exit.

use std::process::Command;

use afterglow_tests::binaries_dir;
use anyhow::Result;

fn check(binary: &str, config: &std::path::Path) -> Result<(Option<i32>, String)> {
    let output = Command::new(binaries_dir().join(binary))
        .arg("check")
        .arg("--config")
        .arg(config)
        .output()?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    Ok((output.status.code(), text))
}

#[test]
fn check_prints_every_problem_and_fails() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let agent_config = dir.path().join("agent.toml");
    std::fs::write(
        &agent_config,
        "collector = \"ftp://x\"\nnode = \"n\"\nretries = 3\n[[logs]]\npaths = [\"/var/log/{a\"]\nmultiline_timeout = \"soon\"\n",
    )?;
    let (code, text) = check("afterglow-agent", &agent_config)?;
    assert_eq!(code, Some(1), "{text}");
    for problem in [
        "`collector`",
        "unknown key `retries`",
        "bad glob",
        "multiline_timeout",
        "4 problems",
    ] {
        assert!(text.contains(problem), "{problem:?} missing from:\n{text}");
    }

    let collector_config = dir.path().join("collector.toml");
    std::fs::write(
        &collector_config,
        "[listen]\nhttp = \"everywhere\"\ngrpc = \"127.0.0.1:7701\"\nport = 1\n",
    )?;
    let (code, text) = check("afterglow-collector", &collector_config)?;
    assert_eq!(code, Some(1), "{text}");
    for problem in ["listen.http", "unknown key `listen.port`"] {
        assert!(text.contains(problem), "{problem:?} missing from:\n{text}");
    }
    Ok(())
}

#[test]
fn check_accepts_the_example_configs() -> Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for (binary, example) in [
        ("afterglow-agent", "agent/examples/agent.toml"),
        ("afterglow-collector", "collector/examples/collector.toml"),
    ] {
        let (code, text) = check(binary, &root.join(example))?;
        assert_eq!(code, Some(0), "{example}: {text}");
    }
    Ok(())
}
