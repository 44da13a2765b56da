//! The agent's TOML configuration: what to read, where to send it, and every default.
//! `AgentConfig::load` reports every problem in a file at once, so `check` can print them all.
//! A file's string values may name environment variables (`${NAME}`, `${NAME:-default}`,
//! `$$` for a `$`); they are replaced when the file is loaded, never in keys or comments.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use afterglow_proto::v1::Role as WireRole;
use globset::Glob;
use jiff::tz::TimeZone;
use serde::Deserialize;

use crate::format::{LineFormat, LineParser};
use crate::scrape::ScrapeTiming;

/// The whole agent configuration (`agent.toml`).
#[derive(Debug, Clone, Deserialize)]
pub struct AgentConfig {
    /// gRPC URL of the collector.
    #[serde(default = "default_collector")]
    pub collector: String,
    /// Name of the Dask cluster this node belongs to.
    #[serde(default = "default_cluster")]
    pub cluster: String,
    /// Name of this node; defaults to the host name.
    #[serde(default = "default_node")]
    pub node: String,
    /// Where the agent keeps its state (checkpoints, spool).
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// IANA zone of timestamps written without an offset (`"UTC"`, `"Europe/Berlin"`);
    /// defaults to the node's zone.
    pub timezone: Option<String>,
    /// Bearer token sent to the collector.
    pub token: Option<String>,
    /// File holding the bearer token (its text, surrounding white space ignored), read at
    /// start and again before each connection to the collector.
    pub token_file: Option<PathBuf>,
    /// TLS to the collector (`collector` must then be an https:// URL).
    #[serde(default)]
    pub tls: TlsConfig,
    /// Log files to tail.
    #[serde(default)]
    pub logs: Vec<LogsConfig>,
    /// Prometheus endpoints to scrape.
    #[serde(default)]
    pub metrics: Vec<MetricsConfig>,
    /// Scrape a whole Dask cluster's metrics, found through its scheduler.
    pub dask: Option<DaskConfig>,
    /// How records are batched and sent.
    #[serde(default)]
    pub ship: ShipConfig,
    /// The agent's own metrics endpoint.
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    /// Where batches wait for the collector's ack.
    #[serde(default)]
    pub spool: SpoolConfig,
}

/// The `[spool]` table: batches sealed on disk under `state_dir/spool` until acked.
#[derive(Debug, Clone, Deserialize)]
pub struct SpoolConfig {
    /// Most bytes the spool may hold (`"1GiB"`, `"512MiB"`, or a number of bytes); reading
    /// pauses while it is full.
    #[serde(default = "default_spool_max_bytes")]
    pub max_bytes: ByteSize,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig {
            max_bytes: default_spool_max_bytes(),
        }
    }
}

/// A size in bytes, written as a number or a string with a unit (`"64MiB"`, `"1GB"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<ByteSize, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Number(bytes) => Ok(ByteSize(bytes)),
            Raw::Text(text) => parse_byte_size(&text)
                .map(ByteSize)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// Parses `"1GiB"`, `"512 MiB"`, `"100MB"`, `"4096"`.
pub fn parse_byte_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let number: u64 = text[..digits_end]
        .parse()
        .map_err(|_| format!("{text:?} is not a size like \"1GiB\" or \"512MiB\""))?;
    let multiplier: u64 = match text[digits_end..].trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        unit => {
            return Err(format!(
                "{text:?}: unknown unit {unit:?} (use KiB, MiB, GiB, TiB, KB, MB, GB or TB)"
            ));
        }
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// The `[telemetry]` table.
#[derive(Debug, Clone, Deserialize)]
pub struct TelemetryConfig {
    /// Address of the agent's `/metrics` endpoint; port 0 picks a free port. `"off"` disables it.
    #[serde(default = "default_telemetry_listen")]
    pub listen: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            listen: default_telemetry_listen(),
        }
    }
}

/// Where reading starts in a file found at the agent's first start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartAt {
    /// Read files from their first byte.
    #[default]
    Beginning,
    /// Skip what files hold already; read only what is appended.
    End,
}

/// One `[[logs]]` table: a set of files read the same way.
#[derive(Debug, Clone, Deserialize)]
pub struct LogsConfig {
    /// Globs of files to tail, e.g. `/var/log/dask/*.log`.
    pub paths: Vec<String>,
    /// Globs of files not to tail even though `paths` match them, e.g. `*.gz`.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Where to start in files found at the agent's first start (no checkpoints yet):
    /// `"beginning"` or `"end"`. Files appearing later are always read from the beginning.
    #[serde(default)]
    pub start_at: StartAt,
    /// Role of the processes writing these files.
    #[serde(default)]
    pub role: Role,
    /// Line format: `"dask"` (Dask's default logging format), `"dask-iso"` (ISO time, PID,
    /// logger, level), `"dask-pipe"` (`time|LEVEL|logger|pid|message`), `"regex"`, `"cri"`
    /// (Kubernetes container logs wrapping Dask lines) or `"plain"` (no header).
    #[serde(default)]
    pub format: LineFormat,
    /// With `format = "regex"`: a regex with named groups `message` and optionally `ts`,
    /// `level`, `logger`, matched against each line.
    pub regex: Option<String>,
    /// With `format = "regex"`: how the `ts` group is written, in strftime notation
    /// (`"%Y-%m-%d %H:%M:%S,%f"`); without it RFC 3339 and Dask's form are tried.
    pub ts_format: Option<String>,
    /// Takes the role from the file's path instead of `role`: a regex whose named group
    /// `role` captures `scheduler`, `worker`, `nanny` or `client` (e.g. `"dask-(?P<role>[a-z]+)-"`).
    pub role_from_path: Option<String>,
    /// How often every file is checked for new data and new files, besides the immediate
    /// wake-ups from file system notifications (and instead of them where those fail).
    #[serde(default = "default_poll_interval")]
    pub poll_interval: String,
    /// Whether to use file system notifications (inotify) to notice changes at once; without
    /// them (or where they fail) files are only checked every `poll_interval`.
    #[serde(default = "default_watch")]
    pub watch: bool,
    /// How long a record that looks unfinished (a traceback without its exception line, a
    /// `Compute Failed` block without its `Traceback:`, a warning without its source line)
    /// stays open for continuation lines once its file goes quiet; any other record is sent
    /// after 50 ms (or this, if shorter).
    #[serde(default = "default_multiline_timeout")]
    pub multiline_timeout: String,
    /// Longest line kept; the rest of a longer line is cut and the record flagged.
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: usize,
    /// Longest time a deleted or renamed-away file is kept open; it is released earlier once
    /// read to its end and quiet.
    #[serde(default = "default_release_after")]
    pub release_after: String,
    /// A file read to its end and quiet this long has its descriptor closed; it is opened
    /// again when it changes. Bounds open descriptors however many files match.
    #[serde(default = "default_close_inactive")]
    pub close_inactive: String,
    /// Most descriptors this table's files may hold open; beyond it the longest-quiet idle
    /// files are closed first, and new files wait until one can be.
    #[serde(default = "default_max_open_files")]
    pub max_open_files: usize,
}

/// One `[[metrics]]` table: a Prometheus endpoint to scrape.
#[derive(Debug, Clone, Deserialize)]
pub struct MetricsConfig {
    /// `http://HOST:PORT/metrics`.
    pub url: String,
    /// Role of the process serving it.
    #[serde(default)]
    pub role: Role,
    /// How often to scrape.
    #[serde(default = "default_scrape_interval")]
    pub interval: String,
    /// How long one scrape may take (at most `interval`).
    #[serde(default = "default_scrape_timeout")]
    pub timeout: String,
    /// Largest page read; a larger one fails the scrape.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: ByteSize,
    /// Extra labels on every series of this target.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl MetricsConfig {
    /// The interval, timeout and size cap, parsed (the timeout capped at the interval).
    pub fn timing(&self) -> ScrapeTiming {
        timing(&self.interval, &self.timeout, self.max_body_bytes)
    }
}

/// The `[dask]` table: discovery of a Dask cluster's scheduler and workers.
#[derive(Debug, Clone, Deserialize)]
pub struct DaskConfig {
    /// The scheduler's dashboard, e.g. `http://127.0.0.1:8787`.
    pub scheduler: String,
    /// How often to ask the scheduler for its workers.
    #[serde(default = "default_poll_interval_dask")]
    pub poll_interval: String,
    /// How often to scrape each target.
    #[serde(default = "default_scrape_interval")]
    pub interval: String,
    /// How long one scrape may take (at most `interval`).
    #[serde(default = "default_scrape_timeout")]
    pub timeout: String,
    /// Largest page read; a larger one fails the scrape.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: ByteSize,
    /// Extra labels on every series of every discovered target.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl DaskConfig {
    /// The scheduler's dashboard URL, ending in `/` so that paths join under it.
    pub fn scheduler_url(&self) -> Result<url::Url, String> {
        let mut url = url::Url::parse(&self.scheduler)
            .map_err(|error| format!("{:?} is not a URL: {error}", self.scheduler))?;
        if url.scheme() != "http" || url.host().is_none() {
            return Err(format!(
                "{:?} must be an http:// URL with a host",
                self.scheduler
            ));
        }
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        Ok(url)
    }

    /// How often the scheduler is asked for its workers.
    pub fn poll_interval(&self) -> Duration {
        parse_duration(&self.poll_interval).expect("validated when loaded")
    }

    /// The interval, timeout and size cap of every discovered target.
    pub fn timing(&self) -> ScrapeTiming {
        timing(&self.interval, &self.timeout, self.max_body_bytes)
    }
}

fn timing(interval: &str, timeout: &str, max_body_bytes: ByteSize) -> ScrapeTiming {
    let interval = parse_duration(interval).expect("validated when loaded");
    let timeout = parse_duration(timeout).expect("validated when loaded");
    ScrapeTiming {
        interval,
        timeout: timeout.min(interval),
        max_body_bytes: max_body_bytes.0,
    }
}

/// Labels the agent sets itself; `labels` tables may not name them.
const TARGET_LABELS: [&str; 6] = [
    "cluster",
    "node",
    "role",
    "instance",
    "worker",
    "worker_addr",
];

fn check_scrape(
    problems: &mut Vec<String>,
    at: &str,
    interval: &str,
    timeout: &str,
    labels: &BTreeMap<String, String>,
) {
    check_duration(problems, &format!("{at}.interval"), interval);
    check_duration(problems, &format!("{at}.timeout"), timeout);
    if parse_duration(interval).is_ok_and(|interval| interval < Duration::from_secs(1)) {
        problems.push(format!("{at}.interval: must be at least 1s"));
    }
    for name in labels.keys() {
        let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            problems.push(format!(
                "{at}.labels: {name:?} is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)"
            ));
        }
        if TARGET_LABELS.contains(&name.as_str()) || name.starts_with("__") {
            problems.push(format!(
                "{at}.labels: {name:?} is set by the agent and cannot be overridden"
            ));
        }
    }
}

/// The `[tls]` table. An https:// collector is reached over TLS even without it, trusting the
/// system's CA store.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TlsConfig {
    /// PEM CA certificate(s) to trust instead of the system's CA store (a private CA).
    pub ca: Option<PathBuf>,
    /// PEM client certificate, for a collector that asks for one (mutual TLS).
    pub cert: Option<PathBuf>,
    /// PEM private key of `cert` (PKCS#8, RSA or SEC1).
    pub key: Option<PathBuf>,
}

impl TlsConfig {
    /// Whether any `[tls]` key is set.
    pub fn is_set(&self) -> bool {
        self.ca.is_some() || self.cert.is_some() || self.key.is_some()
    }
}

/// The `[ship]` table: batching and reconnects.
#[derive(Debug, Clone, Deserialize)]
pub struct ShipConfig {
    /// Most records in one batch.
    #[serde(default = "default_batch_max_records")]
    pub batch_max_records: usize,
    /// Most bytes of record text in one batch; a batch is sent when it reaches either limit.
    #[serde(default = "default_batch_max_bytes")]
    pub batch_max_bytes: usize,
    /// How long a batch waits for more records before it is sent.
    #[serde(default = "default_batch_linger")]
    pub batch_linger: String,
    /// Most batches sent but not yet acknowledged; reading pauses beyond it.
    #[serde(default = "default_max_unacked_batches")]
    pub max_unacked_batches: usize,
    /// Longest wait between reconnect attempts (waits start at 100 ms and double, jittered).
    #[serde(default = "default_backoff_max")]
    pub backoff_max: String,
}

impl Default for ShipConfig {
    fn default() -> Self {
        ShipConfig {
            batch_max_records: default_batch_max_records(),
            batch_max_bytes: default_batch_max_bytes(),
            batch_linger: default_batch_linger(),
            max_unacked_batches: default_max_unacked_batches(),
            backoff_max: default_backoff_max(),
        }
    }
}

/// The role of a Dask process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Scheduler,
    Worker,
    Nanny,
    Client,
    #[default]
    Other,
}

impl From<Role> for WireRole {
    fn from(role: Role) -> WireRole {
        match role {
            Role::Scheduler => WireRole::Scheduler,
            Role::Worker => WireRole::Worker,
            Role::Nanny => WireRole::Nanny,
            Role::Client => WireRole::Client,
            Role::Other => WireRole::Other,
        }
    }
}

fn default_collector() -> String {
    "http://127.0.0.1:7701".to_owned()
}
fn default_cluster() -> String {
    "default".to_owned()
}
fn default_node() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}
fn default_state_dir() -> PathBuf {
    PathBuf::from("./afterglow-agent-state")
}
fn default_poll_interval() -> String {
    "1s".to_owned()
}
fn default_multiline_timeout() -> String {
    "1s".to_owned()
}
fn default_watch() -> bool {
    true
}
fn default_spool_max_bytes() -> ByteSize {
    ByteSize(1 << 30)
}
fn default_max_open_files() -> usize {
    1024
}
fn default_close_inactive() -> String {
    "5m".to_owned()
}
fn default_release_after() -> String {
    "60s".to_owned()
}
fn default_telemetry_listen() -> String {
    "127.0.0.1:7702".to_owned()
}
fn default_max_line_bytes() -> usize {
    1 << 20
}
fn default_batch_max_records() -> usize {
    1000
}
fn default_batch_max_bytes() -> usize {
    4 << 20
}
fn default_batch_linger() -> String {
    "100ms".to_owned()
}
fn default_max_unacked_batches() -> usize {
    64
}
fn default_scrape_interval() -> String {
    "15s".to_owned()
}
fn default_scrape_timeout() -> String {
    "10s".to_owned()
}
fn default_poll_interval_dask() -> String {
    "5s".to_owned()
}
fn default_max_body_bytes() -> ByteSize {
    ByteSize(16 << 20)
}
fn default_backoff_max() -> String {
    "5s".to_owned()
}

/// Every problem found in a configuration file.
#[derive(Debug, thiserror::Error)]
#[error("{} in {}:\n  {}", problem_count(.problems.len()), .path.display(), .problems.join("\n  "))]
pub struct ConfigProblems {
    /// The file that was read.
    pub path: PathBuf,
    /// One line per problem.
    pub problems: Vec<String>,
}

fn problem_count(count: usize) -> String {
    if count == 1 {
        "1 problem".to_owned()
    } else {
        format!("{count} problems")
    }
}

impl AgentConfig {
    /// Reads, parses and validates the file at `path`.
    pub fn load(path: &Path) -> Result<AgentConfig, ConfigProblems> {
        let problems = |problems| ConfigProblems {
            path: path.to_owned(),
            problems,
        };
        let text = std::fs::read_to_string(path)
            .map_err(|error| problems(vec![format!("cannot read file: {error}")]))?;
        let text =
            afterglow_plumbing::expand_env_vars(&text, &afterglow_plumbing::process_environment)
                .map_err(problems)?;
        AgentConfig::parse(&text).map_err(problems)
    }

    /// Parses and validates configuration text, returning every problem found.
    pub fn parse(text: &str) -> Result<AgentConfig, Vec<String>> {
        afterglow_plumbing::parse_validated(text, AgentConfig::problems)
    }

    /// The configuration used when no file is given: nothing to tail yet.
    pub fn embedded_default() -> AgentConfig {
        AgentConfig::parse("").expect("the empty configuration is valid")
    }

    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        match url::Url::parse(&self.collector) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
            Ok(_) => problems.push(format!(
                "`collector`: {:?} must be an http:// or https:// URL with a host",
                self.collector
            )),
            Err(error) => problems.push(format!(
                "`collector`: {:?} is not a URL: {error}",
                self.collector
            )),
        }
        for (name, value) in [("cluster", &self.cluster), ("node", &self.node)] {
            if value.trim().is_empty() {
                problems.push(format!("`{name}` must not be empty"));
            }
        }
        if let Some(zone) = &self.timezone
            && let Err(error) = TimeZone::get(zone)
        {
            problems.push(format!(
                "`timezone`: {zone:?} is not a known time zone: {error}"
            ));
        }
        if self.token.is_some() && self.token_file.is_some() {
            problems.push("set `token` or `token_file`, not both".to_owned());
        }
        problems.extend(crate::tls::problems(&self.tls, &self.collector));
        for (index, logs) in self.logs.iter().enumerate() {
            let at = format!("`logs[{index}]`");
            if logs.paths.is_empty() {
                problems.push(format!("{at}.paths: give at least one glob"));
            }
            for pattern in logs.paths.iter().chain(&logs.exclude) {
                if let Err(error) = Glob::new(pattern) {
                    problems.push(format!("{at}.paths: bad glob {pattern:?}: {error}"));
                }
            }
            check_duration(
                &mut problems,
                &format!("{at}.poll_interval"),
                &logs.poll_interval,
            );
            check_duration(
                &mut problems,
                &format!("{at}.multiline_timeout"),
                &logs.multiline_timeout,
            );
            check_duration(
                &mut problems,
                &format!("{at}.release_after"),
                &logs.release_after,
            );
            check_duration(
                &mut problems,
                &format!("{at}.close_inactive"),
                &logs.close_inactive,
            );
            if let Err(error) = logs.line_parser() {
                problems.push(format!("{at}: {error}"));
            }
            if let Some(pattern) = &logs.role_from_path {
                match regex::Regex::new(pattern) {
                    Ok(regex) if regex.capture_names().flatten().any(|name| name == "role") => {}
                    Ok(_) => problems.push(format!(
                        "{at}.role_from_path: {pattern:?} has no named group `role`"
                    )),
                    Err(error) => problems.push(format!(
                        "{at}.role_from_path: bad regex {pattern:?}: {error}"
                    )),
                }
            }
            if logs.max_open_files == 0 {
                problems.push(format!("{at}.max_open_files: must be at least 1"));
            }
            if logs.max_line_bytes < 64 {
                problems.push(format!("{at}.max_line_bytes: must be at least 64"));
            }
        }
        for (index, metrics) in self.metrics.iter().enumerate() {
            let at = format!("`metrics[{index}]`");
            match url::Url::parse(&metrics.url) {
                Ok(url) if url.scheme() == "http" && url.host().is_some() => {}
                Ok(_) => problems.push(format!(
                    "{at}.url: {:?} must be an http:// URL with a host",
                    metrics.url
                )),
                Err(error) => {
                    problems.push(format!("{at}.url: {:?} is not a URL: {error}", metrics.url))
                }
            }
            check_scrape(
                &mut problems,
                &at,
                &metrics.interval,
                &metrics.timeout,
                &metrics.labels,
            );
        }
        if let Some(dask) = &self.dask {
            if let Err(error) = dask.scheduler_url() {
                problems.push(format!("`dask.scheduler`: {error}"));
            }
            check_duration(&mut problems, "`dask.poll_interval`", &dask.poll_interval);
            check_scrape(
                &mut problems,
                "`dask`",
                &dask.interval,
                &dask.timeout,
                &dask.labels,
            );
        }
        if self.telemetry.listen != "off"
            && let Err(error) = self.telemetry.listen.parse::<std::net::SocketAddr>()
        {
            problems.push(format!(
                "`telemetry.listen`: {:?} is not an address like \"127.0.0.1:7702\" or \"off\": {error}",
                self.telemetry.listen
            ));
        }
        check_duration(
            &mut problems,
            "`ship.batch_linger`",
            &self.ship.batch_linger,
        );
        check_duration(&mut problems, "`ship.backoff_max`", &self.ship.backoff_max);
        for (name, value) in [
            ("batch_max_records", self.ship.batch_max_records),
            ("batch_max_bytes", self.ship.batch_max_bytes),
            ("max_unacked_batches", self.ship.max_unacked_batches),
        ] {
            if value == 0 {
                problems.push(format!("`ship.{name}` must be at least 1"));
            }
        }
        problems
    }

    /// The zone for timestamps without an offset.
    pub fn timezone(&self) -> TimeZone {
        match &self.timezone {
            Some(zone) => TimeZone::get(zone).expect("validated when loaded"),
            None => TimeZone::system(),
        }
    }

    /// The bearer token, if one is configured.
    pub fn read_token(&self) -> std::io::Result<Option<String>> {
        if let Some(path) = &self.token_file {
            return Ok(Some(std::fs::read_to_string(path)?.trim().to_owned()));
        }
        Ok(self.token.clone())
    }
}

impl LogsConfig {
    /// How often files are checked.
    pub fn poll_interval(&self) -> Duration {
        parse_duration(&self.poll_interval).expect("validated when loaded")
    }

    /// How long a quiet file's open record waits for continuation lines.
    pub fn multiline_timeout(&self) -> Duration {
        parse_duration(&self.multiline_timeout).expect("validated when loaded")
    }

    /// The parser for this table's line format.
    pub fn line_parser(&self) -> Result<LineParser, String> {
        LineParser::new(
            self.format,
            self.regex.as_deref(),
            self.ts_format.as_deref(),
        )
    }

    /// The role of the file at `path`: from `role_from_path` when it matches a known role,
    /// else `role`.
    pub fn role_for(&self, path: &Path) -> Role {
        let Some(pattern) = &self.role_from_path else {
            return self.role;
        };
        let regex = regex::Regex::new(pattern).expect("validated when loaded");
        let text = path.to_string_lossy();
        let captured = regex
            .captures(&text)
            .and_then(|captures| captures.name("role"));
        match captured.map(|role| role.as_str()) {
            Some("scheduler") => Role::Scheduler,
            Some("worker") => Role::Worker,
            Some("nanny") => Role::Nanny,
            Some("client") => Role::Client,
            _ => self.role,
        }
    }

    /// How long a file read to its end stays open while quiet.
    pub fn close_inactive(&self) -> Duration {
        parse_duration(&self.close_inactive).expect("validated when loaded")
    }

    /// Longest time a deleted or renamed-away file is kept open.
    pub fn release_after(&self) -> Duration {
        parse_duration(&self.release_after).expect("validated when loaded")
    }
}

impl ShipConfig {
    /// How long a batch waits for more records.
    pub fn batch_linger(&self) -> Duration {
        parse_duration(&self.batch_linger).expect("validated when loaded")
    }

    /// Longest wait between reconnect attempts.
    pub fn backoff_max(&self) -> Duration {
        parse_duration(&self.backoff_max).expect("validated when loaded")
    }
}

fn check_duration(problems: &mut Vec<String>, name: &str, value: &str) {
    if let Err(error) = parse_duration(value) {
        problems.push(format!("{name}: {error}"));
    }
}

/// Parses a human duration such as `"250ms"`, `"15s"` or `"720h"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let signed: jiff::SignedDuration = text
        .parse()
        .map_err(|error| format!("{text:?} is not a duration like \"15s\" or \"720h\": {error}"))?;
    Duration::try_from(signed).map_err(|_| format!("{text:?} must not be negative"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses() {
        let text = include_str!("../examples/agent.toml");
        let config = AgentConfig::parse(text).expect("the example is valid");
        assert_eq!(config.logs.len(), 4);
        assert_eq!(config.logs[0].role, Role::Scheduler);
    }

    #[test]
    fn empty_config_has_the_documented_defaults() {
        let config = AgentConfig::embedded_default();
        assert_eq!(config.collector, "http://127.0.0.1:7701");
        assert_eq!(config.ship.batch_linger(), Duration::from_millis(100));
        assert!(!config.node.is_empty());
    }

    #[test]
    fn byte_sizes_take_units() {
        assert_eq!(parse_byte_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_byte_size("512 MiB"), Ok(512 << 20));
        assert_eq!(parse_byte_size("100MB"), Ok(100_000_000));
        assert_eq!(parse_byte_size("4096"), Ok(4096));
        assert!(parse_byte_size("7 fortnights").is_err());
        assert!(parse_byte_size("99999999999TiB").is_err());
        let config = AgentConfig::parse("[spool]\nmax_bytes = \"64MiB\"\n").expect("valid");
        assert_eq!(config.spool.max_bytes, ByteSize(64 << 20));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = r#"
collector = "not a url"
colector = "typo"
timezone = "Mars/Olympus"
[[logs]]
paths = ["/var/log/[dask/*.log"]
poll_interval = "7 fortnights"
flavour = "dask"
"#;
        let problems = AgentConfig::parse(text).expect_err("the file is broken");
        let all = problems.join("\n");
        for expected in [
            "`colector`",
            "logs.0.flavour",
            "`collector`",
            "timezone",
            "bad glob",
            "poll_interval",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
        assert_eq!(problems.len(), 6, "{all}");
    }

    #[test]
    fn scrape_targets_and_discovery_are_checked() {
        let text = r#"
[[metrics]]
url = "ftp://host/metrics"
interval = "500ms"
labels = { node = "spoof", "bad-name" = "x" }
[[metrics]]
url = "http://127.0.0.1:8787/metrics"
timeout = "soon"
[dask]
scheduler = "not a url"
poll_interval = "often"
"#;
        let problems = AgentConfig::parse(text).expect_err("the file is broken");
        let all = problems.join("\n");
        for expected in [
            "`metrics[0]`.url: \"ftp://host/metrics\" must be an http:// URL",
            "`metrics[0]`.interval: must be at least 1s",
            "`metrics[0]`.labels: \"node\" is set by the agent",
            "`metrics[0]`.labels: \"bad-name\" is not a label name",
            "`metrics[1]`.timeout",
            "`dask.scheduler`",
            "`dask.poll_interval`",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
        assert_eq!(problems.len(), 7, "{all}");
    }

    #[test]
    fn scrape_defaults_and_a_timeout_capped_at_the_interval() {
        let config = AgentConfig::parse(
            "[[metrics]]\nurl = \"http://h:1/metrics\"\ninterval = \"5s\"\n[dask]\nscheduler = \"http://h:8787/prefix\"\n",
        )
        .expect("valid");
        let timing = config.metrics[0].timing();
        assert_eq!(timing.interval, Duration::from_secs(5));
        assert_eq!(
            timing.timeout,
            Duration::from_secs(5),
            "capped at the interval"
        );
        assert_eq!(timing.max_body_bytes, 16 << 20);
        let dask = config.dask.expect("discovery configured");
        assert_eq!(dask.timing().interval, Duration::from_secs(15));
        assert_eq!(dask.poll_interval(), Duration::from_secs(5));
        assert_eq!(
            dask.scheduler_url().expect("valid").as_str(),
            "http://h:8787/prefix/"
        );
    }

    #[test]
    fn load_expands_the_environment_and_reports_unset_variables() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("agent.toml");
        std::fs::write(
            &path,
            "cluster = \"${AFTERGLOW_TEST_SURELY_UNSET_VARIABLE}\"\n",
        )?;
        let problems = AgentConfig::load(&path).expect_err("the variable is unset");
        assert!(
            problems
                .to_string()
                .contains("AFTERGLOW_TEST_SURELY_UNSET_VARIABLE is not set"),
            "{problems}"
        );
        std::fs::write(
            &path,
            "cluster = \"${AFTERGLOW_TEST_SURELY_UNSET_VARIABLE:-etl}\"\n",
        )?;
        let config = AgentConfig::load(&path).expect("the default applies");
        assert_eq!(config.cluster, "etl");
        Ok(())
    }
}
