//! A real Dask cluster on 127.0.0.1 for the tests: `dask scheduler` and `dask worker` from the
//! virtual environment `scripts/test` prepares (dask, distributed, prometheus_client from PyPI).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::{Process, unique_suffix};

/// The `bin/` of the virtual environment with Dask: `$AFTERGLOW_DASK_VENV`, else
/// `~/.cache/afterglow-venv` (where `scripts/test` installs it).
pub fn venv_bin() -> Result<PathBuf> {
    let venv = match std::env::var_os("AFTERGLOW_DASK_VENV") {
        Some(venv) => PathBuf::from(venv),
        None => PathBuf::from(std::env::var_os("HOME").context("HOME is set")?)
            .join(".cache/afterglow-venv"),
    };
    let bin = venv.join("bin");
    if !bin.join("dask").exists() {
        bail!(
            "no Dask in {}: run scripts/test, which installs dask, distributed and prometheus_client there",
            venv.display()
        );
    }
    Ok(bin)
}

/// A port free right now on 127.0.0.1.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The command line of `dask scheduler` on `port` with its dashboard (and `/metrics`,
/// `/json/identity.json`) on `dashboard_port`.
pub fn scheduler_command(port: u16, dashboard_port: u16) -> Result<Vec<String>> {
    Ok(vec![
        venv_bin()?.join("dask").display().to_string(),
        "scheduler".to_owned(),
        "--host".to_owned(),
        "127.0.0.1".to_owned(),
        "--port".to_owned(),
        port.to_string(),
        "--dashboard-address".to_owned(),
        format!("127.0.0.1:{dashboard_port}"),
        "--no-show".to_owned(),
    ])
}

/// The command line of `dask worker` named `name` with one thread, its dashboard on
/// `dashboard_port` (0: any), its files under `work_dir`, and a nanny unless `nanny` is false.
pub fn worker_command(
    work_dir: &Path,
    scheduler_port: u16,
    name: &str,
    dashboard_port: u16,
    nanny: bool,
) -> Result<Vec<String>> {
    let mut command = vec![
        venv_bin()?.join("dask").display().to_string(),
        "worker".to_owned(),
        format!("tcp://127.0.0.1:{scheduler_port}"),
        "--name".to_owned(),
        name.to_owned(),
        "--host".to_owned(),
        "127.0.0.1".to_owned(),
        "--nthreads".to_owned(),
        "1".to_owned(),
        "--dashboard-address".to_owned(),
        format!("127.0.0.1:{dashboard_port}"),
        "--local-directory".to_owned(),
        work_dir.join(format!("dask-{name}")).display().to_string(),
    ];
    if !nanny {
        command.push("--no-nanny".to_owned());
    }
    Ok(command)
}

/// `dask scheduler` as `scheduler_command` gives it.
pub fn scheduler(work_dir: &Path, port: u16, dashboard_port: u16) -> Result<Process> {
    spawn(
        work_dir,
        "dask-scheduler",
        &scheduler_command(port, dashboard_port)?,
    )
}

/// `dask worker` named `name` without a nanny, its dashboard on `dashboard_port`, listening
/// on `worker_port` when given (else a random port).
pub fn worker(
    work_dir: &Path,
    scheduler_port: u16,
    name: &str,
    dashboard_port: u16,
    worker_port: Option<u16>,
) -> Result<Process> {
    let mut command = worker_command(work_dir, scheduler_port, name, dashboard_port, false)?;
    if let Some(port) = worker_port {
        command.extend(["--worker-port".to_owned(), port.to_string()]);
    }
    spawn(work_dir, &format!("dask-{name}"), &command)
}

/// Runs `command` with `env` added, its stdout and stderr appended to `log_path` as
/// `>> log 2>&1` would: a Dask process writing the log file an agent tails.
pub fn spawn_logging_to(
    name: &str,
    command: &[String],
    env: &[(&str, &str)],
    log_path: &Path,
) -> Result<Process> {
    let mut process = Command::new(&command[0]);
    process.args(&command[1..]).envs(env.iter().copied());
    Process::spawn_appending(name, process, log_path.to_owned())
}

fn spawn(work_dir: &Path, name: &str, command: &[String]) -> Result<Process> {
    let log_path = work_dir.join(format!("{name}-{}.log", unique_suffix()));
    let mut process = Command::new(&command[0]);
    process.args(&command[1..]);
    Process::spawn(name, process, log_path, Stdio::null())
}
