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

/// `dask scheduler` on `port` with its dashboard (and `/metrics`, `/json/identity.json`) on
/// `dashboard_port`.
pub fn scheduler(work_dir: &Path, port: u16, dashboard_port: u16) -> Result<Process> {
    let mut command = Command::new(venv_bin()?.join("dask"));
    command.args([
        "scheduler",
        "--host",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--dashboard-address",
        &format!("127.0.0.1:{dashboard_port}"),
        "--no-show",
    ]);
    spawn(work_dir, "dask-scheduler", command)
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
    let mut command = Command::new(venv_bin()?.join("dask"));
    command.args([
        "worker",
        &format!("tcp://127.0.0.1:{scheduler_port}"),
        "--name",
        name,
        "--host",
        "127.0.0.1",
        "--nthreads",
        "1",
        "--no-nanny",
        "--dashboard-address",
        &format!("127.0.0.1:{dashboard_port}"),
        "--local-directory",
        &work_dir.join(format!("dask-{name}")).display().to_string(),
    ]);
    if let Some(port) = worker_port {
        command.args(["--worker-port", &port.to_string()]);
    }
    spawn(work_dir, &format!("dask-{name}"), command)
}

fn spawn(work_dir: &Path, name: &str, command: Command) -> Result<Process> {
    let log_path = work_dir.join(format!("{name}-{}.log", unique_suffix()));
    Process::spawn(name, command, log_path, Stdio::null())
}
