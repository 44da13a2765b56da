//! Test harness for end-to-end tests: builds and starts the real `afterglow-collector` and
//! `afterglow-agent` binaries on loopback ports and temporary directories, and talks to them
//! only through their public interfaces (config files, gRPC between them, the HTTP API).
//!
//! Panics carry what is needed to debug: every process's log is printed when a test fails.

// Real processes run in real time: there is no tokio clock to pause in this harness.
#![allow(clippy::disallowed_types)]

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub mod dask;
pub mod peers;
pub mod pki;
pub mod push;
pub mod sse;

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// How long a test waits for a condition before it fails.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Directory holding the freshly built binaries.
pub fn binaries_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // Test executables live in <target>/<profile>/deps; the binaries one level up.
        let exe = std::env::current_exe().expect("the test knows its own path");
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test executable is in <target>/<profile>/deps")
            .to_owned();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let status = Command::new(cargo)
            .args([
                "build",
                "--quiet",
                "--bins",
                "-p",
                "afterglow-agent",
                "-p",
                "afterglow-collector",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the binaries failed");
        dir
    })
}

/// The repository's copy of real Dask output (`tests/fixtures/dask`).
pub fn fixture_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/dask")
        .join(relative)
}

/// Reads a fixture file.
pub fn fixture(relative: &str) -> String {
    let path = fixture_path(relative);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

/// A child process that is killed when dropped, with its stderr in a file.
pub struct Process {
    name: String,
    child: Child,
    log_path: PathBuf,
}

impl Process {
    fn spawn(name: &str, command: Command, log_path: PathBuf, stdout: Stdio) -> Result<Process> {
        let log = std::fs::File::create(&log_path)?;
        Process::spawn_with(name, command, log_path, stdout, log.into())
    }

    /// Starts `command` with its stdout and stderr both appended to `log_path`, as
    /// `>> log 2>&1` would (a log file an agent tails).
    fn spawn_appending(name: &str, command: Command, log_path: PathBuf) -> Result<Process> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        let stdout = log.try_clone()?;
        Process::spawn_with(name, command, log_path, stdout.into(), log.into())
    }

    fn spawn_with(
        name: &str,
        mut command: Command,
        log_path: PathBuf,
        stdout: Stdio,
        stderr: Stdio,
    ) -> Result<Process> {
        let child = command
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        Ok(Process {
            name: name.to_owned(),
            child,
            log_path,
        })
    }

    /// Starts `command` with its output in a log file in `work_dir`.
    pub fn spawn_in(work_dir: &Path, name: &str, command: Command) -> Result<Process> {
        let log_path = work_dir.join(format!("{name}-{}.log", unique_suffix()));
        Process::spawn(name, command, log_path, Stdio::null())
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Open file descriptors of the process, from `/proc`.
    pub fn open_descriptors(&self) -> Result<usize> {
        Ok(std::fs::read_dir(format!("/proc/{}/fd", self.pid()))?.count())
    }

    /// CPU time (user + system) the process has used so far, from `/proc`.
    pub fn cpu_time(&self) -> Result<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))?;
        // Fields after the command name, which is in parentheses and may hold spaces.
        let after_name = stat.rsplit_once(')').context("stat has a command name")?.1;
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
        // Linux reports these in USER_HZ, which is 100 on every supported architecture.
        Ok(Duration::from_millis(ticks * 10))
    }

    /// Sends SIGKILL and waits for the process to die.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGHUP (a collector reads its configuration file again).
    pub fn hang_up(&self) -> Result<()> {
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()?;
        if !status.success() {
            bail!("cannot signal {}", self.name);
        }
        Ok(())
    }

    /// Sends SIGTERM and waits up to `limit` for the process to exit; returns the exit code.
    pub fn terminate_within(&mut self, limit: Duration) -> Result<Option<i32>> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        if !status.success() {
            bail!("cannot signal {}", self.name);
        }
        self.wait_within(limit)
            .with_context(|| format!("after SIGTERM to {}", self.name))
    }

    /// Waits up to `limit` for the process to exit on its own; returns the exit code.
    pub fn wait_within(&mut self, limit: Duration) -> Result<Option<i32>> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status.code());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!(
            "{} did not exit within {limit:?}; log:\n{}",
            self.name,
            self.log()
        )
    }

    /// The process's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Waits until the process has logged `text`.
    pub fn wait_for_log(&self, text: &str) -> Result<()> {
        wait_for(&format!("{} to log {text:?}", self.name), || {
            let log = self.log();
            Ok(if log.contains(text) {
                Ok(())
            } else {
                Err(log.lines().last().map(str::to_owned))
            })
        })
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("===== log of {} =====\n{}", self.name, self.log());
        }
        self.kill();
    }
}

/// A test's temporary directory: the collector keeps its data in `data/`, agents tail `logs/`,
/// and processes write their configs and logs at the top.
pub struct Scene {
    dir: tempfile::TempDir,
}

impl Scene {
    /// A new directory with an empty `logs/`.
    pub fn new() -> Result<Scene> {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir(dir.path().join("logs"))?;
        Ok(Scene { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.path().join("data")
    }

    pub fn log_dir(&self) -> PathBuf {
        self.path().join("logs")
    }

    /// Starts a collector on the scene's data, on `grpc_port` when given (a restart).
    pub fn collector(&self, grpc_port: Option<u16>) -> Result<Collector> {
        Collector::start(self.path(), &self.data_dir(), grpc_port)
    }
}

/// A running collector and how to reach it.
pub struct Collector {
    pub process: Process,
    /// `http://127.0.0.1:PORT` of the HTTP API.
    pub http_url: String,
    /// `http://127.0.0.1:PORT` for agents (`https://` with `[tls]`).
    pub grpc_url: String,
    grpc_port: u16,
    /// The client of `get_json` and `search_all`; replace it to trust a `[tls]` collector's CA.
    pub http_agent: ureq::Agent,
}

impl Collector {
    /// Starts a collector keeping its data in `data_dir`, on free ports, or on `grpc_port`
    /// when given (to restart one that agents know).
    pub fn start(work_dir: &Path, data_dir: &Path, grpc_port: Option<u16>) -> Result<Collector> {
        Collector::start_with(work_dir, data_dir, grpc_port, "")
    }

    /// Like `start`, with `extra` TOML (tables only) added to the configuration.
    pub fn start_with(
        work_dir: &Path,
        data_dir: &Path,
        grpc_port: Option<u16>,
        extra: &str,
    ) -> Result<Collector> {
        let command = Command::new(binaries_dir().join("afterglow-collector"));
        Collector::start_command(work_dir, data_dir, grpc_port, extra, command)
    }

    /// Like `start_with`, with the process's open-file limit (soft and hard) set to
    /// `open_files` (util-linux `prlimit`, which then runs the collector in its place).
    pub fn start_with_open_files(
        work_dir: &Path,
        data_dir: &Path,
        extra: &str,
        open_files: u64,
    ) -> Result<Collector> {
        let mut command = Command::new("prlimit");
        command
            .arg(format!("--nofile={open_files}:{open_files}"))
            .arg("--")
            .arg(binaries_dir().join("afterglow-collector"));
        Collector::start_command(work_dir, data_dir, None, extra, command)
    }

    fn start_command(
        work_dir: &Path,
        data_dir: &Path,
        grpc_port: Option<u16>,
        extra: &str,
        mut command: Command,
    ) -> Result<Collector> {
        let config_path = work_dir.join(format!("collector-{}.toml", grpc_port.unwrap_or(0)));
        std::fs::write(
            &config_path,
            format!(
                "data_dir = {:?}\n[listen]\nhttp = \"127.0.0.1:0\"\ngrpc = \"127.0.0.1:{}\"\n{extra}",
                data_dir.display().to_string(),
                grpc_port.unwrap_or(0)
            ),
        )?;
        command.arg("--config").arg(&config_path);
        let log_path = work_dir.join(format!("collector-{}.log", unique_suffix()));
        let mut process = Process::spawn("collector", command, log_path, Stdio::piped())?;
        let stdout = process.child.stdout.take().context("collector stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let field = |name: &str| -> Result<String> {
            line.split_whitespace()
                .find_map(|part| part.strip_prefix(name))
                .map(str::to_owned)
                .with_context(|| {
                    format!(
                        "collector did not announce {name} (said {line:?}); log:\n{}",
                        process.log()
                    )
                })
        };
        let http_url = field("http=")?;
        let grpc_url = field("grpc=")?;
        let grpc_port = grpc_url.rsplit(':').next().context("grpc port")?.parse()?;
        Ok(Collector {
            process,
            http_url,
            grpc_url,
            grpc_port,
            http_agent: ureq::Agent::new_with_defaults(),
        })
    }

    /// The gRPC port, to restart a collector where its agents expect it.
    pub fn grpc_port(&self) -> u16 {
        self.grpc_port
    }

    /// `GET path` on the HTTP API, returning the status and the parsed JSON body.
    pub fn get_json(&self, path_and_query: &str) -> Result<(u16, Value)> {
        let (status, body) = self.get_as(None, path_and_query)?;
        let body: Value = serde_json::from_str(&body)
            .with_context(|| format!("JSON from {path_and_query}: {body}"))?;
        Ok((status, body))
    }

    /// `GET path` on the HTTP API with `token` as bearer (none: without), returning the
    /// status and the body.
    pub fn get_as(&self, token: Option<&str>, path_and_query: &str) -> Result<(u16, String)> {
        let url = format!("{}{path_and_query}", self.http_url);
        let mut request = self.http_agent.get(&url);
        if let Some(token) = token {
            request = request.header("Authorization", &format!("Bearer {token}"));
        }
        let response = request
            .config()
            .http_status_as_error(false)
            .build()
            .call()
            .with_context(|| format!("GET {url}"))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .read_to_string()
            .with_context(|| format!("body of {url}"))?;
        Ok((status, body))
    }

    /// Every hit of a search, following cursors, `page_size` at a time.
    pub fn search_all(&self, query: &str, page_size: usize) -> Result<Vec<Value>> {
        let mut hits = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/api/v1/logs/search?q={}&limit={page_size}", encode(query));
            if let Some(cursor) = &cursor {
                path.push_str(&format!("&cursor={cursor}"));
            }
            let (status, body) = self.get_json(&path)?;
            if status != 200 {
                bail!("search {query:?} answered {status}: {body}");
            }
            hits.extend(
                body["hits"]
                    .as_array()
                    .context("hits array")?
                    .iter()
                    .cloned(),
            );
            match body.get("next_cursor").and_then(Value::as_str) {
                Some(next) => cursor = Some(next.to_owned()),
                None => return Ok(hits),
            }
        }
    }
}

/// A TCP connection to `to` from the loopback address `from` (not 127.0.0.1: another peer, as
/// the collector's per-peer cap counts them), within 5 s.
pub fn connect_from(from: std::net::Ipv4Addr, to: std::net::SocketAddr) -> Result<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&std::net::SocketAddr::from((from, 0)).into())?;
    socket
        .connect_timeout(&to.into(), Duration::from_secs(5))
        .with_context(|| format!("cannot connect to {to} from {from}"))?;
    Ok(socket.into())
}

/// A running agent.
pub struct Agent {
    pub process: Process,
    /// Where the agent's stdout goes, when it is kept.
    stdout_path: Option<PathBuf>,
}

impl Agent {
    /// Starts an agent with `config` (TOML text) written into `work_dir`.
    /// Unless the config says otherwise, its state lives in `work_dir/state-NAME` (so an
    /// agent restarted under the same name resumes from its checkpoints) and its own metrics
    /// endpoint takes a free port.
    pub fn start(work_dir: &Path, name: &str, config: &str) -> Result<Agent> {
        let config_path = work_dir.join(format!("agent-{name}.toml"));
        let mut text = String::new();
        if !config.contains("state_dir") {
            let state_dir = work_dir.join(format!("state-{name}"));
            text.push_str(&format!(
                "state_dir = {:?}\n",
                state_dir.display().to_string()
            ));
        }
        text.push_str(config);
        if !config.contains("[telemetry]") {
            text.push_str("\n[telemetry]\nlisten = \"127.0.0.1:0\"\n");
        }
        std::fs::write(&config_path, text)?;
        let mut command = Command::new(binaries_dir().join("afterglow-agent"));
        command.arg("--config").arg(&config_path);
        let log_path = work_dir.join(format!("agent-{name}-{}.log", unique_suffix()));
        Ok(Agent {
            process: Process::spawn(&format!("agent {name}"), command, log_path, Stdio::piped())?,
            stdout_path: None,
        })
    }

    /// The value of one of the agent's own metrics (e.g. `afterglow_agent_lines_read_total`),
    /// read from its `/metrics` endpoint, whose address the agent logs at start.
    pub fn metric(&self, name: &str) -> Result<f64> {
        let log = self.process.log();
        let addr = log
            .lines()
            .filter(|line| line.contains("serving the agent's metrics"))
            .find_map(|line| line.split("addr=").nth(1))
            .map(|rest| rest.trim_start_matches(|c: char| !c.is_ascii_digit()))
            .map(|rest| {
                rest.split(|c: char| !(c.is_ascii_digit() || c == '.' || c == ':'))
                    .next()
                    .unwrap_or("")
            })
            .context("the agent has not logged its metrics address")?
            .to_owned();
        let body = ureq::get(&format!("http://{addr}/metrics"))
            .call()?
            .into_body()
            .read_to_string()?;
        body.lines()
            .find_map(|line| {
                line.strip_prefix(name)?
                    .strip_prefix(' ')?
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .with_context(|| format!("no metric {name} in:\n{body}"))
    }

    /// Starts `afterglow-agent run --role ROLE -- COMMAND…` without a config file, shipping
    /// to `collector` as node `name` of cluster `wrap-tests`. Its stdout (the command's, copied
    /// through) goes to a file: see `stdout`.
    pub fn start_wrapped(
        work_dir: &Path,
        name: &str,
        collector: &Collector,
        role: &str,
        command: &[&str],
    ) -> Result<Agent> {
        Agent::start_wrapped_in("wrap-tests", work_dir, name, collector, role, command)
    }

    /// `start_wrapped` as a node of `cluster`.
    pub fn start_wrapped_in(
        cluster: &str,
        work_dir: &Path,
        name: &str,
        collector: &Collector,
        role: &str,
        command: &[&str],
    ) -> Result<Agent> {
        let mut agent = Command::new(binaries_dir().join("afterglow-agent"));
        agent
            .env_remove("AFTERGLOW_AGENT_CONFIG")
            .env("AFTERGLOW_COLLECTOR", &collector.grpc_url)
            .env("AFTERGLOW_CLUSTER", cluster)
            .env("AFTERGLOW_NODE", name)
            .args(["run", "--role", role, "--"])
            .args(command);
        let suffix = unique_suffix();
        let log_path = work_dir.join(format!("agent-{name}-{suffix}.log"));
        let stdout_path = work_dir.join(format!("agent-{name}-{suffix}.stdout"));
        let stdout = std::fs::File::create(&stdout_path)?;
        Ok(Agent {
            process: Process::spawn(&format!("agent {name}"), agent, log_path, stdout.into())?,
            stdout_path: Some(stdout_path),
        })
    }

    /// What the agent wrote to its stdout so far, if it was started to keep it.
    pub fn stdout(&self) -> String {
        self.stdout_path
            .as_ref()
            .and_then(|path| std::fs::read_to_string(path).ok())
            .unwrap_or_default()
    }
}

/// Polls `condition` every 50 ms until it returns `Some`, or fails after `PATIENCE` with
/// `what` and the last value seen.
pub fn wait_for<T, S: std::fmt::Debug>(
    what: &str,
    condition: impl FnMut() -> Result<std::result::Result<T, S>>,
) -> Result<T> {
    wait_for_within(what, PATIENCE, condition)
}

/// `wait_for` with a patience of `limit`, for what has a known delay of its own.
pub fn wait_for_within<T, S: std::fmt::Debug>(
    what: &str,
    limit: Duration,
    mut condition: impl FnMut() -> Result<std::result::Result<T, S>>,
) -> Result<T> {
    let deadline = Instant::now() + limit;
    loop {
        let last = match condition()? {
            Ok(value) => return Ok(value),
            Err(last) => last,
        };
        if Instant::now() > deadline {
            // A panic, not an error: the processes' logs are printed as they are dropped.
            panic!("gave up after {limit:?} waiting for {what}; last seen: {last:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A new token from `afterglow-collector token new` (as an operator makes one) for `tenants`
/// (comma-separated; none for an admin token): the token and its `[[tokens]]` stanza.
pub fn new_token(name: &str, tenants: &str, can: &str) -> Result<(String, String)> {
    let mut command = Command::new(binaries_dir().join("afterglow-collector"));
    command.args(["token", "new", "--name", name, "--can", can]);
    if !tenants.is_empty() {
        command.args(["--tenant", tenants]);
    }
    let output = command.output()?;
    if !output.status.success() {
        bail!(
            "token new failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let stdout = String::from_utf8(output.stdout)?;
    let (token, stanza) = stdout
        .split_once('\n')
        .context("token new printed one line")?;
    Ok((token.trim().to_owned(), stanza.trim_start().to_owned()))
}

/// Sends `bytes` on a new connection to `address` (`host:port`) and reads what comes back
/// until the peer closes it or `patience` passes, returning it.
pub fn send_raw(address: &str, bytes: &[u8], patience: Duration) -> Result<Vec<u8>> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address)?;
    stream.set_read_timeout(Some(patience))?;
    // The peer may close as soon as it has seen enough: later writes then fail, as they may.
    let _ = stream.write_all(bytes);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    Ok(answer)
}

/// Percent-encodes a query parameter value.
pub fn encode(value: &str) -> String {
    let mut encoded = String::new();
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

fn unique_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or_default()
}
