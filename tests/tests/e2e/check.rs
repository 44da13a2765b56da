//! `check --config FILE` on both binaries: every problem printed, non-zero exit; and what the
//! collector says when it reloads a file whose changes need a restart.

use std::process::Command;

use afterglow_tests::{Scene, binaries_dir};
use anyhow::Result;

fn check(binary: &str, config: &std::path::Path) -> Result<(Option<i32>, String)> {
    check_with_env(binary, config, &[])
}

/// `check` with environment variables `env` set (`None`: removed).
fn check_with_env(
    binary: &str,
    config: &std::path::Path,
    env: &[(&str, Option<&str>)],
) -> Result<(Option<i32>, String)> {
    let mut command = Command::new(binaries_dir().join(binary));
    command.arg("check").arg("--config").arg(config);
    for (name, value) in env {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    let output = command.output()?;
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

#[test]
fn check_fails_where_the_start_would() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a directory")?;
    let config = dir.path().join("collector.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[listen]\nhttp = \"127.0.0.1:7799\"\ngrpc = \"127.0.0.1:7799\"\n",
            file.join("data").display().to_string()
        ),
    )?;
    let (code, text) = check("afterglow-collector", &config)?;
    assert_eq!(code, Some(1), "{text}");
    for problem in [
        "2 problem(s)",
        &format!("{} is not a directory", file.display()),
        "`listen.http` and `listen.grpc`: 127.0.0.1:7799 and 127.0.0.1:7799",
    ] {
        assert!(text.contains(problem), "{problem:?} missing from:\n{text}");
    }
    Ok(())
}

#[test]
fn the_collector_expands_environment_variables_as_the_agent_does() -> Result<()> {
    let dir = tempfile::tempdir()?;
    for binary in ["afterglow-collector", "afterglow-agent"] {
        let config = dir.path().join(format!("{binary}.toml"));
        let key = if binary == "afterglow-agent" {
            "state_dir"
        } else {
            "data_dir"
        };
        std::fs::write(&config, format!("{key} = \"${{AFTERGLOW_NOPE}}/x\"\n"))?;
        let unset = [("AFTERGLOW_NOPE", None)];
        let (code, text) = check_with_env(binary, &config, &unset)?;
        assert_eq!(code, Some(1), "{binary}: {text}");
        assert!(
            text.contains(&format!(
                "`{key}`: environment variable AFTERGLOW_NOPE is not set"
            )),
            "{binary}: {text}"
        );
        let data = dir.path().display().to_string();
        let set = [("AFTERGLOW_NOPE", Some(data.as_str()))];
        let (code, text) = check_with_env(binary, &config, &set)?;
        assert_eq!(code, Some(0), "{binary}: {text}");
    }
    Ok(())
}

#[test]
fn a_reload_that_changes_start_only_settings_says_a_restart_is_needed() -> Result<()> {
    let scene = Scene::new()?;
    let collector = scene.collector(None)?;
    let config_path = scene.path().join("collector-0.toml");
    let config = std::fs::read_to_string(&config_path)?;
    let moved = scene.path().join("moved-data");
    let changed = config.replace(
        &format!("{:?}", scene.data_dir().display().to_string()),
        &format!("{:?}", moved.display().to_string()),
    );
    assert_ne!(changed, config, "the test changes data_dir");
    std::fs::write(
        &config_path,
        format!("{changed}[search]\nmax_tail_clients = 3\n[retention]\nmax_age = \"720h\"\n"),
    )?;
    collector.process.hang_up()?;
    collector
        .process
        .wait_for_log("the file changes data_dir, which applies only at start: restart")?;
    collector
        .process
        .wait_for_log("the file changes search.max_tail_clients, which applies only at start")?;
    let log = collector.process.log();
    assert!(
        !log.contains("the file changes retention"),
        "retention applies live:\n{log}"
    );
    let (status, retention) = collector.get_json("/api/v1/retention")?;
    assert_eq!(status, 200);
    assert_eq!(retention["settings"]["max_age"], "720h", "{retention}");
    assert!(!moved.exists(), "the data directory in use stays");
    Ok(())
}
