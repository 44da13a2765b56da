//! The collector's TOML configuration and its defaults: with no file at all the
//! collector keeps data in `./afterglow-data` and listens on loopback only.
//! `CollectorConfig::load` reports every problem in a file at once. A file's string values may
//! name environment variables (`${NAME}`, `${NAME:-default}`, `$$` for a `$`), as the agent's.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::wal::FsyncPolicy;

/// The whole collector configuration (`collector.toml`).
#[derive(Debug, Clone, Deserialize)]
pub struct CollectorConfig {
    /// Where indexes and other state live.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Listen on addresses other than loopback with no `[[tokens]]`, although nothing then
    /// authenticates callers: whoever reaches the ports can read and write every tenant's
    /// data. Off by default.
    #[serde(default)]
    pub allow_unauthenticated: bool,
    /// Who may do what (`auth/`). With none, callers are anonymous and reach tenant
    /// `default` only, and only loopback is listened on (see `allow_unauthenticated`).
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
    /// Listening addresses.
    #[serde(default)]
    pub listen: ListenConfig,
    /// TLS on both listeners (none: plaintext).
    #[serde(default)]
    pub tls: TlsConfig,
    /// How the log index is written.
    #[serde(default)]
    pub index: IndexConfig,
    /// What one agent may send.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// How the write-ahead log is synced.
    #[serde(default)]
    pub wal: WalConfig,
    /// The series store and the Prometheus API.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// Log search.
    #[serde(default)]
    pub search: SearchConfig,
    /// What PromQL queries may hold in memory, and how many run at once.
    #[serde(default)]
    pub query: QueryConfig,
    /// How long data is kept and how much disk it may take (none of it: kept for ever).
    #[serde(default)]
    pub retention: RetentionConfig,
}

/// One `[[tokens]]` entry: a bearer token, known by its SHA-256 only, and what it may do.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Who holds it, for logs and `/api/v1/whoami` (unique).
    pub name: String,
    /// Hex SHA-256 of the token (`afterglow-collector token new` prints it).
    pub sha256: String,
    /// The tenants it reads, or the one tenant it ingests into.
    #[serde(default)]
    pub tenants: Vec<String>,
    /// What it may do: `ingest`, `read` (its tenants) and `admin` (read every tenant and the
    /// collector's own `/metrics`).
    pub can: Vec<Capability>,
    /// Requests (HTTP requests and ingested batches) per second it may make; more are
    /// answered 429 / RESOURCE_EXHAUSTED. Defaults to `[limits] requests_per_second_per_token`.
    pub requests_per_second: Option<f64>,
}

/// What a token may do.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Capability {
    Ingest,
    Read,
    Admin,
}

impl Capability {
    /// The name used in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Ingest => "ingest",
            Capability::Read => "read",
            Capability::Admin => "admin",
        }
    }
}

/// Tells whether `tenant` may name a tenant: 1 to 64 ASCII letters, digits, `.`, `_` or `-`,
/// not starting with `.` (it names directories).
pub fn is_valid_tenant(tenant: &str) -> bool {
    (1..=64).contains(&tenant.len())
        && !tenant.starts_with('.')
        && tenant
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'))
}

impl TokenConfig {
    fn problems(&self, at: usize) -> Vec<String> {
        let mut problems = Vec::new();
        let here = format!("`tokens[{at}]` ({:?})", self.name);
        if self.name.trim().is_empty() {
            problems.push(format!("`tokens[{at}].name`: must not be empty"));
        }
        if crate::auth::token::parse_sha256(&self.sha256).is_none() {
            problems.push(format!(
                "{here}: `sha256` must be 64 hex digits, the SHA-256 of the token (`afterglow-collector token new` prints it); the token itself is never written here"
            ));
        }
        if self.can.is_empty() {
            problems.push(format!(
                "{here}: `can` must list at least one of \"ingest\", \"read\", \"admin\""
            ));
        }
        for tenant in &self.tenants {
            if !is_valid_tenant(tenant) {
                problems.push(format!(
                    "{here}: tenant {tenant:?} must be 1 to 64 letters, digits, '.', '_' or '-', not starting with '.'"
                ));
            }
        }
        let needs_tenants = self.can.iter().any(|can| *can != Capability::Admin);
        if needs_tenants && self.tenants.is_empty() {
            problems.push(format!(
                "{here}: `tenants` must name the tenants it may {}",
                if self.can.contains(&Capability::Read) {
                    "read"
                } else {
                    "ingest into"
                }
            ));
        }
        if self.can.contains(&Capability::Ingest) && self.tenants.len() > 1 {
            problems.push(format!(
                "{here}: an `ingest` token writes into exactly one tenant, but {} are listed; give each tenant's agents their own token",
                self.tenants.len()
            ));
        }
        if let Some(rate) = self.requests_per_second
            && !(rate.is_finite() && rate > 0.0)
        {
            problems.push(format!("{here}: `requests_per_second` must be above 0"));
        }
        problems
    }
}

/// The `[retention]` table. Every limit is optional; without any, everything is kept.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct RetentionConfig {
    /// Age past which logs and metrics are deleted, unless `logs_max_age`, `metrics_max_age` or
    /// a rule says otherwise. A (tenant, UTC day) partition goes once its whole day is older.
    pub max_age: Option<String>,
    /// Most bytes the whole data directory may take (e.g. `"50GiB"`); past it the oldest
    /// partitions, logs and metrics alike, are deleted until it is under.
    pub max_disk: Option<String>,
    /// Overrides `max_age` for logs.
    pub logs_max_age: Option<String>,
    /// Overrides `max_age` for metrics.
    pub metrics_max_age: Option<String>,
    /// How often the limits are applied (also once at start-up).
    #[serde(default = "default_retention_interval")]
    pub interval: String,
    /// Per-tenant and per-cluster ages; the first rule that matches a (tenant, cluster) wins over
    /// every other age limit.
    #[serde(default)]
    pub rules: Vec<RetentionRuleConfig>,
}

/// One `[[retention.rules]]` entry.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct RetentionRuleConfig {
    /// The tenant the rule is for; without it, every tenant.
    pub tenant: Option<String>,
    /// A glob of cluster names (`*`, `?`, `[...]`, `{a,b}`); without it, every cluster. A
    /// cluster's records and series are deleted from inside a day that other clusters keep.
    pub cluster: Option<String>,
    /// Age past which the matching data (logs and metrics) is deleted.
    pub max_age: String,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            max_age: None,
            max_disk: None,
            logs_max_age: None,
            metrics_max_age: None,
            interval: default_retention_interval(),
            rules: Vec::new(),
        }
    }
}

impl RetentionConfig {
    /// The problems of the table, each naming its key.
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut check_age = |name: String, value: &str| match parse_duration(value) {
            Err(error) => problems.push(format!("`{name}`: {error}")),
            Ok(duration) if duration.is_zero() => {
                problems.push(format!("`{name}`: must be above 0"));
            }
            Ok(_) => {}
        };
        for (name, value) in [
            ("retention.max_age", &self.max_age),
            ("retention.logs_max_age", &self.logs_max_age),
            ("retention.metrics_max_age", &self.metrics_max_age),
        ] {
            if let Some(value) = value {
                check_age(name.to_owned(), value);
            }
        }
        check_age("retention.interval".to_owned(), &self.interval);
        for (at, rule) in self.rules.iter().enumerate() {
            check_age(format!("retention.rules[{at}].max_age"), &rule.max_age);
        }
        for (at, rule) in self.rules.iter().enumerate() {
            if let Some(cluster) = &rule.cluster
                && let Err(error) = globset::Glob::new(cluster)
            {
                problems.push(format!("`retention.rules[{at}].cluster`: {error}"));
            }
        }
        if let Some(max_disk) = &self.max_disk {
            match parse_bytes(max_disk) {
                Err(error) => problems.push(format!("`retention.max_disk`: {error}")),
                Ok(0) => problems.push("`retention.max_disk`: must be above 0".to_owned()),
                Ok(_) => {}
            }
        }
        problems
    }

    /// The limits, parsed.
    pub fn settings(&self) -> crate::retention::RetentionSettings {
        let age = |value: &Option<String>| {
            value
                .as_deref()
                .map(|value| parse_duration(value).expect("validated when loaded"))
        };
        crate::retention::RetentionSettings {
            max_age: age(&self.max_age),
            logs_max_age: age(&self.logs_max_age),
            metrics_max_age: age(&self.metrics_max_age),
            max_disk_bytes: self
                .max_disk
                .as_deref()
                .map(|value| parse_bytes(value).expect("validated when loaded")),
            interval: parse_duration(&self.interval).expect("validated when loaded"),
            rules: self
                .rules
                .iter()
                .map(|rule| crate::retention::RetentionRule {
                    tenant: rule.tenant.clone(),
                    cluster: rule.cluster.as_deref().map(|glob| {
                        crate::retention::ClusterGlob::new(glob).expect("validated when loaded")
                    }),
                    max_age: parse_duration(&rule.max_age).expect("validated when loaded"),
                })
                .collect(),
        }
    }
}

fn default_retention_interval() -> String {
    "5m".to_owned()
}

/// The `[search]` table.
#[derive(Debug, Clone, Deserialize)]
pub struct SearchConfig {
    /// Longest a log search, count, histogram, context, cluster summary or export's first page
    /// may take before the caller is answered 503.
    #[serde(default = "default_search_timeout")]
    pub timeout: String,
    /// Most log partitions (one index per tenant and UTC day) kept open at once; past it, the
    /// least recently used one that no search or write is using is closed. Partitions in use
    /// stay open even beyond it. At least 1.
    #[serde(default = "default_max_open_partitions")]
    pub max_open_partitions: usize,
    /// Most live tails (`/api/v1/logs/tail` clients) at once; one more is answered 503. Each
    /// holds a buffer of events and matches every new batch. At least 1.
    #[serde(default = "default_max_tail_clients")]
    pub max_tail_clients: usize,
    /// Most live tails reading one tenant at once, so that one team cannot take every place;
    /// one more is answered 503 naming the tenant. A tail counts against every tenant its caller reads (an
    /// `admin` tail, which reads every tenant, against a share of the admins' own). Default:
    /// half of `max_tail_clients` (at least 1); at most `max_tail_clients`.
    pub max_tail_clients_per_tenant: Option<usize>,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            timeout: default_search_timeout(),
            max_open_partitions: default_max_open_partitions(),
            max_tail_clients: default_max_tail_clients(),
            max_tail_clients_per_tenant: None,
        }
    }
}

impl SearchConfig {
    /// `timeout`, parsed.
    pub fn timeout(&self) -> Duration {
        parse_duration(&self.timeout).expect("validated when loaded")
    }

    /// `max_tail_clients_per_tenant`, or its default: half of `max_tail_clients`.
    pub fn tail_clients_per_tenant(&self) -> usize {
        self.max_tail_clients_per_tenant
            .unwrap_or(self.max_tail_clients / 2)
            .max(1)
    }

    fn tail_problems(&self) -> Vec<String> {
        match self.max_tail_clients_per_tenant {
            Some(0) => vec!["`search.max_tail_clients_per_tenant`: must be at least 1".to_owned()],
            Some(share) if share > self.max_tail_clients => vec![format!(
                "`search.max_tail_clients_per_tenant`: {share} is more than `search.max_tail_clients` ({})",
                self.max_tail_clients
            )],
            _ => Vec::new(),
        }
    }
}

fn default_search_timeout() -> String {
    "30s".to_owned()
}
fn default_max_open_partitions() -> usize {
    DEFAULT_MAX_OPEN_PARTITIONS
}
fn default_max_tail_clients() -> usize {
    64
}

/// `[search] max_open_partitions` when not configured.
pub const DEFAULT_MAX_OPEN_PARTITIONS: usize = 64;

/// The `[query]` table: the memory PromQL queries (`/api/v1/query`, `/api/v1/query_range`)
/// may take. Evaluation holds at most about `max_concurrent × max_samples ×
/// promql::PEAK_BYTES_PER_SAMPLE` bytes; the defaults keep that near 1 GiB.
#[derive(Debug, Clone, Deserialize)]
pub struct QueryConfig {
    /// Most samples one query may hold in memory at once (read from the store, computed, and
    /// in its answer), as Prometheus's `--query.max-samples`; past it the query is answered
    /// 422 naming this limit. At least 1.
    #[serde(default = "default_max_samples")]
    pub max_samples: usize,
    /// Most queries evaluated at once; one more waits up to 5 s for one of them to end, and
    /// is then answered 503. At least 1.
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent: usize,
}

impl Default for QueryConfig {
    fn default() -> Self {
        QueryConfig {
            max_samples: default_max_samples(),
            max_concurrent: default_max_concurrent(),
        }
    }
}

impl QueryConfig {
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.max_samples == 0 {
            problems.push("`query.max_samples`: must be at least 1".to_owned());
        }
        if self.max_concurrent == 0 {
            problems.push("`query.max_concurrent`: must be at least 1".to_owned());
        }
        problems
    }
}

fn default_max_samples() -> usize {
    crate::promql::DEFAULT_MAX_SAMPLES
}
fn default_max_concurrent() -> usize {
    crate::promql::DEFAULT_MAX_CONCURRENT
}

/// The `[metrics]` table.
#[derive(Debug, Clone, Deserialize)]
pub struct MetricsConfig {
    /// Most distinct series one tenant may have in one day; new series past it are not kept,
    /// and the agent is told so (it logs a warning).
    #[serde(default = "default_max_series_per_tenant")]
    pub max_series_per_tenant: usize,
    /// Longest a PromQL query may run (a query's own `timeout` may only lower it).
    #[serde(default = "default_query_timeout")]
    pub query_timeout: String,
    /// How far back an instant selector looks for a sample (Prometheus's lookback delta).
    #[serde(default = "default_lookback_delta")]
    pub lookback_delta: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            max_series_per_tenant: default_max_series_per_tenant(),
            query_timeout: default_query_timeout(),
            lookback_delta: default_lookback_delta(),
        }
    }
}

impl MetricsConfig {
    /// `query_timeout`, parsed.
    pub fn query_timeout(&self) -> Duration {
        parse_duration(&self.query_timeout).expect("validated when loaded")
    }

    /// `lookback_delta`, parsed.
    pub fn lookback_delta(&self) -> Duration {
        parse_duration(&self.lookback_delta).expect("validated when loaded")
    }
}

fn default_max_series_per_tenant() -> usize {
    100_000
}
fn default_query_timeout() -> String {
    "2m".to_owned()
}
fn default_lookback_delta() -> String {
    "5m".to_owned()
}

/// The `[wal]` table.
#[derive(Debug, Clone, Deserialize)]
pub struct WalConfig {
    /// `"always"`: fsync before every ack (a power cut loses nothing acked). `"interval"`:
    /// ack after the write and fsync every `fsync_interval` (a power cut, not a crash of the
    /// collector, can lose up to that much acked data).
    #[serde(default = "default_fsync")]
    pub fsync: String,
    /// How often the WAL is synced with `fsync = "interval"`.
    #[serde(default = "default_fsync_interval")]
    pub fsync_interval: String,
}

impl Default for WalConfig {
    fn default() -> Self {
        WalConfig {
            fsync: default_fsync(),
            fsync_interval: default_fsync_interval(),
        }
    }
}

fn default_fsync() -> String {
    "always".to_owned()
}
fn default_fsync_interval() -> String {
    "1s".to_owned()
}

/// The `[limits]` table.
#[derive(Debug, Clone, Deserialize)]
pub struct LimitsConfig {
    /// Most records in one batch; a larger batch is refused with INVALID_ARGUMENT.
    #[serde(default = "default_max_batch_records")]
    pub max_batch_records: usize,
    /// Largest batch in bytes once decompressed; a larger one ends the stream with
    /// RESOURCE_EXHAUSTED naming the size limit.
    #[serde(default = "default_max_batch_bytes")]
    pub max_batch_bytes: usize,
    /// Bytes of one connection's batches being logged and not yet acked; the connection
    /// reads no further batch until acks free room (HTTP/2 flow control then holds the agent).
    #[serde(default = "default_max_in_flight_bytes")]
    pub max_in_flight_bytes: usize,
    /// Batches are refused with RESOURCE_EXHAUSTED while the data directory's file system has
    /// less free space than this, in bytes (queries keep working; agents spool and retry).
    #[serde(default = "default_min_free_disk_bytes")]
    pub min_free_disk_bytes: u64,
    /// Requests per second one token may make (HTTP requests and ingested batches), unless
    /// its `[[tokens]]` entry says otherwise; bursts of twice that are let through.
    /// Anonymous callers (no tokens configured) are not limited.
    #[serde(default = "default_requests_per_second_per_token")]
    pub requests_per_second_per_token: f64,
    /// Most connections open at once on each listener (HTTP, gRPC); one more is closed as soon
    /// as it is accepted. At least 1.
    #[serde(default = "default_max_connections_per_listener")]
    pub max_connections_per_listener: usize,
    /// Most connections open at once from one peer address, both listeners together (behind a
    /// reverse proxy, the proxy is one peer); one more is closed at once. At least 1.
    #[serde(default = "default_max_connections_per_peer")]
    pub max_connections_per_peer: usize,
    /// File descriptors connections may never take: kept for the WAL, the index and the series
    /// store. The collector raises its open-file limit to the hard limit at start; connections
    /// get what is left of it beyond the descriptors then open and this reserve.
    #[serde(default = "default_reserved_descriptors")]
    pub reserved_descriptors: u64,
    /// Longest a new connection (TLS handshake included) may take to send its first complete
    /// request; then it is closed. Above 0.
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout: String,
    /// Longest a connection may stay with no request in flight after one; then it is closed.
    /// Live tails and agents' streams are requests in flight. Above 0.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: String,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_batch_records: default_max_batch_records(),
            max_batch_bytes: default_max_batch_bytes(),
            max_in_flight_bytes: default_max_in_flight_bytes(),
            min_free_disk_bytes: default_min_free_disk_bytes(),
            requests_per_second_per_token: default_requests_per_second_per_token(),
            max_connections_per_listener: default_max_connections_per_listener(),
            max_connections_per_peer: default_max_connections_per_peer(),
            reserved_descriptors: default_reserved_descriptors(),
            header_read_timeout: default_header_read_timeout(),
            idle_timeout: default_idle_timeout(),
        }
    }
}

impl LimitsConfig {
    /// The connection caps and timeouts, parsed.
    pub fn connection_limits(&self) -> crate::connections::ConnectionLimits {
        crate::connections::ConnectionLimits {
            max_per_listener: self.max_connections_per_listener,
            max_per_peer: self.max_connections_per_peer,
            reserved_descriptors: self.reserved_descriptors,
            header_read_timeout: parse_duration(&self.header_read_timeout)
                .expect("validated when loaded"),
            idle_timeout: parse_duration(&self.idle_timeout).expect("validated when loaded"),
        }
    }

    fn connection_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (name, value) in [
            (
                "limits.max_connections_per_listener",
                self.max_connections_per_listener,
            ),
            (
                "limits.max_connections_per_peer",
                self.max_connections_per_peer,
            ),
        ] {
            if value == 0 {
                problems.push(format!("`{name}`: must be at least 1"));
            }
        }
        for (name, value) in [
            ("limits.header_read_timeout", &self.header_read_timeout),
            ("limits.idle_timeout", &self.idle_timeout),
        ] {
            match parse_duration(value) {
                Err(error) => problems.push(format!("`{name}`: {error}")),
                Ok(duration) if duration.is_zero() => {
                    problems.push(format!("`{name}`: must be above 0"));
                }
                Ok(_) => {}
            }
        }
        problems
    }
}

fn default_max_batch_records() -> usize {
    100_000
}
fn default_max_batch_bytes() -> usize {
    64 * 1024 * 1024
}
fn default_max_in_flight_bytes() -> usize {
    64 * 1024 * 1024
}
fn default_min_free_disk_bytes() -> u64 {
    512 * 1024 * 1024
}
fn default_requests_per_second_per_token() -> f64 {
    200.0
}
fn default_max_connections_per_listener() -> usize {
    8192
}
fn default_max_connections_per_peer() -> usize {
    256
}
fn default_reserved_descriptors() -> u64 {
    512
}
fn default_header_read_timeout() -> String {
    "10s".to_owned()
}
fn default_idle_timeout() -> String {
    "60s".to_owned()
}

/// The `[listen]` table.
#[derive(Debug, Clone, Deserialize)]
pub struct ListenConfig {
    /// HTTP address: search API, Prometheus API, web UI, own metrics. Port 0 picks a free one.
    #[serde(default = "default_http")]
    pub http: String,
    /// gRPC address for agents. Port 0 picks a free one.
    #[serde(default = "default_grpc")]
    pub grpc: String,
}

impl Default for ListenConfig {
    fn default() -> Self {
        ListenConfig {
            http: default_http(),
            grpc: default_grpc(),
        }
    }
}

/// The `[tls]` table: with `cert` and `key`, both listeners speak only TLS.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TlsConfig {
    /// PEM certificate chain, the collector's certificate first. Reloaded when it changes:
    /// new connections get the new certificate.
    pub cert: Option<PathBuf>,
    /// PEM private key of `cert` (PKCS#8, RSA or SEC1). Reloaded with `cert`.
    pub key: Option<PathBuf>,
    /// PEM CA certificates: when set, every client (agents and HTTP callers alike) must
    /// present a certificate signed by one of them (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

impl TlsConfig {
    /// The files, when TLS is on.
    pub fn files(&self) -> Option<crate::tls::TlsFiles> {
        Some(crate::tls::TlsFiles {
            cert: self.cert.clone()?,
            key: self.key.clone()?,
            client_ca: self.client_ca.clone(),
        })
    }

    /// Whether the listeners speak TLS.
    pub fn is_enabled(&self) -> bool {
        self.files().is_some()
    }

    /// The problems of the table, each naming its key; the files are read and checked.
    fn problems(&self) -> Vec<String> {
        if self.cert.is_some() != self.key.is_some() {
            return vec!["`tls.cert` and `tls.key`: give both or neither".to_owned()];
        }
        match self.files() {
            None if self.client_ca.is_some() => vec![
                "`tls.client_ca`: needs `tls.cert` and `tls.key` (client certificates are asked for only over TLS)".to_owned(),
            ],
            None => Vec::new(),
            Some(files) => match crate::tls::load_server_config(&files) {
                Ok(_) => Vec::new(),
                Err(error) => vec![crate::tls::describe(&error)],
            },
        }
    }
}

/// The `[index]` table.
#[derive(Debug, Clone, Deserialize)]
pub struct IndexConfig {
    /// Longest time between a batch's arrival and its commit (and its ack); records become
    /// searchable at commit.
    #[serde(default = "default_commit_interval")]
    pub commit_interval: String,
}

impl Default for IndexConfig {
    fn default() -> Self {
        IndexConfig {
            commit_interval: default_commit_interval(),
        }
    }
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("./afterglow-data")
}
fn default_http() -> String {
    "127.0.0.1:7700".to_owned()
}
fn default_grpc() -> String {
    "127.0.0.1:7701".to_owned()
}
fn default_commit_interval() -> String {
    "500ms".to_owned()
}

/// Every problem found in a configuration file.
#[derive(Debug, thiserror::Error)]
#[error("{} problem(s) in {}:\n  {}", .problems.len(), .path.display(), .problems.join("\n  "))]
pub struct ConfigProblems {
    /// The file that was read.
    pub path: PathBuf,
    /// One line per problem.
    pub problems: Vec<String>,
}

impl CollectorConfig {
    /// Reads, parses and validates the file at `path`.
    pub fn load(path: &Path) -> Result<CollectorConfig, ConfigProblems> {
        let problems = |problems| ConfigProblems {
            path: path.to_owned(),
            problems,
        };
        let text = std::fs::read_to_string(path)
            .map_err(|error| problems(vec![format!("cannot read file: {error}")]))?;
        let environment = afterglow_plumbing::process_environment;
        let mut parsed = CollectorConfig::parse_file_text(&text, &environment);
        // Checked here, for `check` and the start, and not on a reload, which applies no new
        // `data_dir`: a disk gone bad must not keep a token from being revoked.
        let data_dir = match &parsed {
            Ok(config) => Some(config.data_dir.clone()),
            Err(_) => data_dir_written_in(&text, &environment),
        };
        if let Some(problem) = data_dir.and_then(|data_dir| data_dir_problem(&data_dir)) {
            match &mut parsed {
                Ok(_) => parsed = Err(vec![problem]),
                Err(listed) => listed.push(problem),
            }
        }
        parsed.map_err(problems)
    }

    /// Parses and validates the text of a configuration file after replacing its `${NAME}`,
    /// `${NAME:-default}` and `$$` in string values with values from `environment`, as the
    /// agent does; an unset variable without a default is a problem naming it.
    pub fn parse_file_text(
        text: &str,
        environment: &dyn Fn(&str) -> Option<String>,
    ) -> Result<CollectorConfig, Vec<String>> {
        CollectorConfig::parse(&afterglow_plumbing::expand_env_vars(text, environment)?)
    }

    /// Parses and validates configuration text, returning every problem found.
    pub fn parse(text: &str) -> Result<CollectorConfig, Vec<String>> {
        afterglow_plumbing::parse_validated(text, CollectorConfig::problems)
    }

    /// The configuration used when no file is given.
    pub fn embedded_default() -> CollectorConfig {
        CollectorConfig::parse("").expect("the empty configuration is valid")
    }

    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (name, addr) in [
            ("listen.http", &self.listen.http),
            ("listen.grpc", &self.listen.grpc),
        ] {
            match addr.parse::<SocketAddr>() {
                Err(error) => problems.push(format!(
                    "`{name}`: {addr:?} is not an address like \"127.0.0.1:7700\": {error}"
                )),
                Ok(addr)
                    if !addr.ip().is_loopback()
                        && self.tokens.is_empty()
                        && !self.allow_unauthenticated =>
                {
                    problems.push(format!(
                        "`{name}`: {addr} is not a loopback address, and no `[[tokens]]` are configured, so nothing authenticates callers: anyone who can reach it could read and write every tenant's logs and metrics. Add tokens (`afterglow-collector token new`), listen on 127.0.0.1 behind a proxy that authenticates, or set `allow_unauthenticated = true` to accept that"
                    ));
                }
                Ok(_) => {}
            }
        }
        if let Err(error) = parse_duration(&self.index.commit_interval) {
            problems.push(format!("`index.commit_interval`: {error}"));
        } else if self.commit_interval() > Duration::from_secs(1)
            || self.commit_interval().is_zero()
        {
            problems.push("`index.commit_interval`: must be above 0 and at most \"1s\" (records must be searchable within a second)".to_owned());
        }
        if self.limits.max_in_flight_bytes < self.limits.max_batch_bytes {
            problems.push("`limits.max_in_flight_bytes`: must be at least `limits.max_batch_bytes`, or the largest batch could never be taken".to_owned());
        }
        if !matches!(self.wal.fsync.as_str(), "always" | "interval") {
            problems.push(format!(
                "`wal.fsync`: {:?} is not \"always\" or \"interval\"",
                self.wal.fsync
            ));
        }
        for (name, value) in [
            ("metrics.query_timeout", &self.metrics.query_timeout),
            ("metrics.lookback_delta", &self.metrics.lookback_delta),
            ("search.timeout", &self.search.timeout),
        ] {
            match parse_duration(value) {
                Err(error) => problems.push(format!("`{name}`: {error}")),
                Ok(duration) if duration.is_zero() => {
                    problems.push(format!("`{name}`: must be above 0"));
                }
                Ok(_) => {}
            }
        }
        if self.metrics.max_series_per_tenant == 0 {
            problems.push("`metrics.max_series_per_tenant`: must be at least 1".to_owned());
        }
        if self.search.max_tail_clients == 0 {
            problems.push("`search.max_tail_clients`: must be at least 1".to_owned());
        }
        problems.extend(self.search.tail_problems());
        problems.extend(self.query.problems());
        if self.search.max_open_partitions == 0 {
            problems.push("`search.max_open_partitions`: must be at least 1".to_owned());
        }
        problems.extend(self.shared_port_problem());
        problems.extend(self.retention.problems());
        problems.extend(self.limits.connection_problems());
        problems.extend(self.token_problems());
        problems.extend(self.tls.problems());
        match parse_duration(&self.wal.fsync_interval) {
            Err(error) => problems.push(format!("`wal.fsync_interval`: {error}")),
            Ok(interval) if interval.is_zero() => {
                problems.push("`wal.fsync_interval`: must be above 0".to_owned());
            }
            Ok(_) => {}
        }
        problems
    }

    /// The problem of both listeners on one port where their addresses overlap (the same
    /// address, or a wildcard covering the other), which the second bind would fail on.
    fn shared_port_problem(&self) -> Option<String> {
        let http: SocketAddr = self.listen.http.parse().ok()?;
        let grpc: SocketAddr = self.listen.grpc.parse().ok()?;
        // `[::]` takes IPv4 too (Linux's default dual stack); `0.0.0.0` takes no IPv6.
        let covers = |wildcard: std::net::IpAddr, other: std::net::IpAddr| {
            wildcard.is_unspecified() && (wildcard.is_ipv6() || other.is_ipv4())
        };
        let overlap =
            http.ip() == grpc.ip() || covers(http.ip(), grpc.ip()) || covers(grpc.ip(), http.ip());
        (http.port() != 0 && http.port() == grpc.port() && overlap).then(|| {
            format!(
                "`listen.http` and `listen.grpc`: {http} and {grpc} are the same port on the same addresses; give each listener its own port"
            )
        })
    }

    fn token_problems(&self) -> Vec<String> {
        let mut problems: Vec<String> = (self.tokens.iter().enumerate())
            .flat_map(|(at, token)| token.problems(at))
            .collect();
        let mut names = std::collections::HashSet::new();
        let mut hashes = std::collections::HashSet::new();
        for token in &self.tokens {
            if !names.insert(token.name.as_str()) {
                problems.push(format!(
                    "`tokens`: the name {:?} is used twice; names must be unique",
                    token.name
                ));
            }
            if !hashes.insert(token.sha256.to_ascii_lowercase()) {
                problems.push(format!(
                    "`tokens`: {:?} has the same `sha256` as an earlier token; every token must be different",
                    token.name
                ));
            }
        }
        let rate = self.limits.requests_per_second_per_token;
        if !(rate.is_finite() && rate > 0.0) {
            problems.push("`limits.requests_per_second_per_token`: must be above 0".to_owned());
        }
        problems
    }

    /// Tells whether both listeners are on loopback addresses.
    pub fn listens_on_loopback_only(&self) -> bool {
        [&self.listen.http, &self.listen.grpc].iter().all(|addr| {
            addr.parse::<SocketAddr>()
                .is_ok_and(|addr| addr.ip().is_loopback())
        })
    }

    /// When the WAL is fsynced.
    pub fn fsync_policy(&self) -> FsyncPolicy {
        match self.wal.fsync.as_str() {
            "interval" => FsyncPolicy::Interval(
                parse_duration(&self.wal.fsync_interval).expect("validated when loaded"),
            ),
            _ => FsyncPolicy::Always,
        }
    }

    /// The HTTP listening address.
    pub fn http_addr(&self) -> SocketAddr {
        self.listen.http.parse().expect("validated when loaded")
    }

    /// The gRPC listening address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.listen.grpc.parse().expect("validated when loaded")
    }

    /// Longest time between a batch's arrival and its commit.
    pub fn commit_interval(&self) -> Duration {
        parse_duration(&self.index.commit_interval).expect("validated when loaded")
    }
}

/// The problem with `data_dir` if the collector could not create or write it: the
/// directory, or else its nearest ancestor that exists (the rest is created at start),
/// must be a directory this process may write into. Nothing is created here.
fn data_dir_problem(dir: &Path) -> Option<String> {
    if dir.as_os_str().is_empty() {
        return Some("`data_dir`: must not be empty".to_owned());
    }
    let (existing, metadata) = dir.ancestors().find_map(|ancestor| {
        let ancestor = if ancestor.as_os_str().is_empty() {
            Path::new(".")
        } else {
            ancestor
        };
        std::fs::metadata(ancestor)
            .ok()
            .map(|metadata| (ancestor, metadata))
    })?;
    let access = rustix::fs::Access::WRITE_OK | rustix::fs::Access::EXEC_OK;
    let unusable = if !metadata.is_dir() {
        "is not a directory".to_owned()
    } else {
        let error = rustix::fs::access(existing, access).err()?;
        format!("is not writable: {error}")
    };
    Some(if existing == dir {
        format!("`data_dir`: {} {unusable}", dir.display())
    } else {
        format!(
            "`data_dir`: {} cannot be created: {} {unusable}",
            dir.display(),
            existing.display()
        )
    })
}

/// The `data_dir` a file's text names once expanded (the default if none), for checking it
/// when other problems keep the file from parsing; `None` if the text is not TOML at all.
fn data_dir_written_in(
    text: &str,
    environment: &dyn Fn(&str) -> Option<String>,
) -> Option<PathBuf> {
    let expanded = afterglow_plumbing::expand_env_vars(text, environment).ok()?;
    let table: toml::Table = toml::from_str(&expanded).ok()?;
    match table.get("data_dir") {
        None => Some(default_data_dir()),
        Some(value) => value.as_str().map(PathBuf::from),
    }
}

/// Parses a human duration such as `"500ms"`, `"15s"` or `"720h"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let signed: jiff::SignedDuration = text
        .parse()
        .map_err(|error| format!("{text:?} is not a duration like \"15s\" or \"720h\": {error}"))?;
    Duration::try_from(signed).map_err(|_| format!("{text:?} must not be negative"))
}

/// Parses a size such as `"50GiB"`, `"500MB"` or `"1024"` (bytes): a whole number and an
/// optional unit, B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let digits_end = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(digits_end);
    let not_a_size = || format!("{text:?} is not a size like \"50GiB\" or \"500MB\"");
    let number: u64 = digits.parse().map_err(|_| not_a_size())?;
    let multiplier: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" => 1000,
        "MB" => 1000_u64.pow(2),
        "GB" => 1000_u64.pow(3),
        "TB" => 1000_u64.pow(4),
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        _ => return Err(not_a_size()),
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("{text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses() {
        let config = CollectorConfig::parse(include_str!("../examples/collector.toml"))
            .expect("the example is valid");
        assert_eq!(config.listen.http, "127.0.0.1:7700");
    }

    #[test]
    fn wal_fsync_is_always_unless_interval_is_asked_for() {
        assert_eq!(
            CollectorConfig::embedded_default().fsync_policy(),
            FsyncPolicy::Always
        );
        let interval =
            CollectorConfig::parse("[wal]\nfsync = \"interval\"\nfsync_interval = \"200ms\"\n")
                .expect("valid");
        assert_eq!(
            interval.fsync_policy(),
            FsyncPolicy::Interval(Duration::from_millis(200))
        );
        let problems =
            CollectorConfig::parse("[wal]\nfsync = \"sometimes\"\n").expect_err("invalid");
        assert!(problems[0].contains("`wal.fsync`"), "{problems:?}");
    }

    #[test]
    fn listening_beyond_loopback_needs_allow_unauthenticated() {
        for listen in [
            "[listen]\nhttp = \"0.0.0.0:7700\"\n",
            "[listen]\ngrpc = \"10.1.2.3:7701\"\n",
            "[listen]\nhttp = \"[::]:7700\"\n",
        ] {
            let problems = CollectorConfig::parse(listen).expect_err("refused");
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert!(
                problems[0].contains("is not a loopback address")
                    && problems[0].contains("allow_unauthenticated = true"),
                "{problems:?}"
            );
            let allowed = format!("allow_unauthenticated = true\n{listen}");
            assert!(CollectorConfig::parse(&allowed).is_ok(), "{allowed}");
        }
        for loopback in ["127.0.0.1:7700", "127.0.0.2:7700", "[::1]:7700"] {
            let text = format!("[listen]\nhttp = \"{loopback}\"\n");
            assert!(CollectorConfig::parse(&text).is_ok(), "{text}");
        }
    }

    #[test]
    fn no_file_means_the_documented_defaults() {
        let config = CollectorConfig::embedded_default();
        assert_eq!(config.data_dir, PathBuf::from("./afterglow-data"));
        assert_eq!(config.http_addr().to_string(), "127.0.0.1:7700");
        assert_eq!(config.grpc_addr().to_string(), "127.0.0.1:7701");
        assert_eq!(config.search.max_open_partitions, 64);
        assert_eq!(config.search.max_tail_clients, 64);
        let problems = CollectorConfig::parse("[search]\nmax_tail_clients = 0\n")
            .expect_err("no tail at all is refused");
        assert_eq!(problems, ["`search.max_tail_clients`: must be at least 1"]);
    }

    /// `[query] max_samples` and `max_concurrent`, and the live tails' share per
    /// tenant, are configured, with defaults, and checked.
    #[test]
    fn query_limits_and_the_tail_share_per_tenant_are_configured() {
        let defaults = CollectorConfig::embedded_default();
        assert_eq!(
            defaults.query.max_samples,
            crate::promql::DEFAULT_MAX_SAMPLES
        );
        assert_eq!(
            defaults.query.max_concurrent,
            crate::promql::DEFAULT_MAX_CONCURRENT
        );
        assert_eq!(defaults.search.tail_clients_per_tenant(), 32, "half of 64");
        let set = CollectorConfig::parse(
            "[query]\nmax_samples = 1000\nmax_concurrent = 2\n[search]\nmax_tail_clients = 10\nmax_tail_clients_per_tenant = 3\n",
        )
        .expect("valid");
        assert_eq!((set.query.max_samples, set.query.max_concurrent), (1000, 2));
        assert_eq!(set.search.tail_clients_per_tenant(), 3);
        let one = CollectorConfig::parse("[search]\nmax_tail_clients = 1\n").expect("valid");
        assert_eq!(one.search.tail_clients_per_tenant(), 1, "at least one");

        let problems = CollectorConfig::parse(
            "[query]\nmax_samples = 0\nmax_concurrent = 0\n[search]\nmax_tail_clients = 4\nmax_tail_clients_per_tenant = 5\n",
        )
        .expect_err("invalid");
        assert_eq!(
            problems,
            [
                "`search.max_tail_clients_per_tenant`: 5 is more than `search.max_tail_clients` (4)",
                "`query.max_samples`: must be at least 1",
                "`query.max_concurrent`: must be at least 1",
            ]
        );
    }

    #[test]
    fn connection_limits_default_and_every_problem_is_reported() {
        let limits = CollectorConfig::embedded_default()
            .limits
            .connection_limits();
        assert_eq!(limits.max_per_listener, 8192);
        assert_eq!(limits.max_per_peer, 256);
        assert_eq!(limits.reserved_descriptors, 512);
        assert_eq!(limits.header_read_timeout, Duration::from_secs(10));
        assert_eq!(limits.idle_timeout, Duration::from_secs(60));
        let text = "[limits]\nmax_connections_per_listener = 0\nmax_connections_per_peer = 0\nheader_read_timeout = \"0s\"\nidle_timeout = \"soon\"\n";
        let problems = CollectorConfig::parse(text).expect_err("broken");
        let all = problems.join("\n");
        assert_eq!(problems.len(), 4, "{all}");
        for expected in [
            "`limits.max_connections_per_listener`: must be at least 1",
            "`limits.max_connections_per_peer`: must be at least 1",
            "`limits.header_read_timeout`: must be above 0",
            "`limits.idle_timeout`: \"soon\"",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
    }

    #[test]
    fn max_open_partitions_is_at_least_one() {
        let two = CollectorConfig::parse("[search]\nmax_open_partitions = 2\n").expect("valid");
        assert_eq!(two.search.max_open_partitions, 2);
        let problems =
            CollectorConfig::parse("[search]\nmax_open_partitions = 0\n").expect_err("invalid");
        assert_eq!(
            problems,
            ["`search.max_open_partitions`: must be at least 1"]
        );
    }

    #[test]
    fn no_retention_table_keeps_everything() {
        let settings = CollectorConfig::embedded_default().retention.settings();
        assert_eq!(settings.max_age, None);
        assert_eq!(settings.max_disk_bytes, None);
        assert!(settings.rules.is_empty());
        assert_eq!(settings.interval, Duration::from_secs(300));
    }

    #[test]
    fn retention_limits_are_parsed() {
        let text = "[retention]\nmax_age = \"720h\"\nmax_disk = \"50GiB\"\nlogs_max_age = \"336h\"\nmetrics_max_age = \"2160h\"\ninterval = \"1m\"\n[[retention.rules]]\ntenant = \"team-a\"\nmax_age = \"72h\"\n";
        let settings = CollectorConfig::parse(text)
            .expect("valid")
            .retention
            .settings();
        let hours = |hours: u64| Some(Duration::from_secs(hours * 3600));
        assert_eq!(settings.max_age, hours(720));
        assert_eq!(settings.logs_max_age, hours(336));
        assert_eq!(settings.metrics_max_age, hours(2160));
        assert_eq!(settings.max_disk_bytes, Some(50 << 30));
        assert_eq!(settings.interval, Duration::from_secs(60));
        assert_eq!(settings.rules[0].tenant.as_deref(), Some("team-a"));
        assert_eq!(settings.rules[0].max_age, Duration::from_secs(72 * 3600));
    }

    #[test]
    fn a_cluster_glob_is_accepted_and_a_bad_one_rejected() {
        let text = "[[retention.rules]]\ntenant = \"team-a\"\ncluster = \"ci-*\"\nmax_age = \"72h\"\n[[retention.rules]]\ncluster = \"{nightly,weekly}-?\"\nmax_age = \"24h\"\n";
        let settings = CollectorConfig::parse(text)
            .expect("valid")
            .retention
            .settings();
        let rule = &settings.rules[0];
        assert_eq!(rule.tenant.as_deref(), Some("team-a"));
        let glob = rule.cluster.as_ref().expect("a cluster glob");
        assert!(glob.is_match("ci-42"));
        assert!(!glob.is_match("prod"));
        let second = settings.rules[1].cluster.as_ref().expect("a cluster glob");
        assert!(second.is_match("weekly-3"));
        assert!(!second.is_match("weekly-33"));

        let bad = "[[retention.rules]]\ncluster = \"ci-[\"\nmax_age = \"72h\"\n";
        let problems = CollectorConfig::parse(bad).expect_err("an unclosed class");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("`retention.rules[0].cluster`: "),
            "{problems:?}"
        );
        assert!(problems[0].contains("ci-["), "{problems:?}");
    }

    #[test]
    fn every_retention_problem_is_reported() {
        let text = "[retention]\nmax_age = \"30d\"\nmax_disk = \"lots\"\ninterval = \"0s\"\n[[retention.rules]]\nmax_age = \"soon\"\n";
        let problems = CollectorConfig::parse(text).expect_err("broken");
        let all = problems.join("\n");
        assert_eq!(problems.len(), 4, "{all}");
        for expected in [
            "`retention.max_age`",
            "`retention.max_disk`",
            "`retention.interval`: must be above 0",
            "`retention.rules[0].max_age`",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
    }

    #[test]
    fn sizes_take_decimal_and_binary_units() {
        assert_eq!(parse_bytes("1024"), Ok(1024));
        assert_eq!(parse_bytes("500MB"), Ok(500_000_000));
        assert_eq!(parse_bytes("50GiB"), Ok(50 << 30));
        assert_eq!(parse_bytes("2 TiB"), Ok(2 << 40));
        assert!(parse_bytes("1.5GiB").is_err());
        assert!(parse_bytes("5 GiBs").is_err());
        assert!(parse_bytes("").is_err());
    }

    #[test]
    fn tls_needs_cert_and_key_together_and_files_that_load()
    -> Result<(), Box<dyn std::error::Error>> {
        let only_cert = CollectorConfig::parse("[tls]\ncert = \"/x.crt\"\n").expect_err("no key");
        assert_eq!(
            only_cert,
            vec!["`tls.cert` and `tls.key`: give both or neither"]
        );
        let only_ca =
            CollectorConfig::parse("[tls]\nclient_ca = \"/ca.crt\"\n").expect_err("no cert");
        assert_eq!(only_ca.len(), 1, "{only_ca:?}");
        assert!(
            only_ca[0].starts_with("`tls.client_ca`: needs `tls.cert`"),
            "{only_ca:?}"
        );
        let missing = CollectorConfig::parse(
            "[tls]\ncert = \"/nonexistent/c.crt\"\nkey = \"/nonexistent/c.key\"\n",
        )
        .expect_err("no such files");
        assert_eq!(missing.len(), 1, "{missing:?}");
        assert!(
            missing[0].starts_with("`tls.cert`: cannot read /nonexistent/c.crt"),
            "{missing:?}"
        );

        let test = crate::tls::tests::write_certificates()?;
        let files = &test.files;
        let ca = files.client_ca.as_ref().expect("written");
        let text = format!(
            "[tls]\ncert = {:?}\nkey = {:?}\nclient_ca = {:?}\n",
            files.cert, files.key, ca
        );
        let config = CollectorConfig::parse(&text).map_err(|problems| problems.join("; "))?;
        assert_eq!(config.tls.files().as_ref(), Some(files));
        assert!(!CollectorConfig::embedded_default().tls.is_enabled());

        // A key that is not PEM is named with its file.
        std::fs::write(&files.key, "not a key")?;
        let bad_key = CollectorConfig::parse(&text).expect_err("unusable key");
        assert_eq!(bad_key.len(), 1, "{bad_key:?}");
        assert!(
            bad_key[0].starts_with(&format!(
                "`tls.key`: {} holds no PEM private key",
                files.key.display()
            )),
            "{bad_key:?}"
        );
        Ok(())
    }

    #[test]
    fn both_listeners_on_one_port_is_a_problem() {
        for (http, grpc) in [
            ("127.0.0.1:7700", "127.0.0.1:7700"),
            ("0.0.0.0:7700", "127.0.0.1:7700"),
            ("127.0.0.1:7700", "[::]:7700"),
            ("[::]:7700", "[::1]:7700"),
        ] {
            let text = format!(
                "allow_unauthenticated = true\n[listen]\nhttp = \"{http}\"\ngrpc = \"{grpc}\"\n"
            );
            let problems = CollectorConfig::parse(&text).expect_err("one port for both");
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert!(
                problems[0].starts_with("`listen.http` and `listen.grpc`:"),
                "{problems:?}"
            );
        }
        for (http, grpc) in [
            ("127.0.0.1:7700", "127.0.0.2:7700"),
            ("0.0.0.0:7700", "[::1]:7700"),
            ("127.0.0.1:0", "127.0.0.1:0"),
            ("127.0.0.1:7700", "127.0.0.1:7701"),
        ] {
            let text = format!(
                "allow_unauthenticated = true\n[listen]\nhttp = \"{http}\"\ngrpc = \"{grpc}\"\n"
            );
            assert!(CollectorConfig::parse(&text).is_ok(), "{text}");
        }
    }

    #[test]
    fn a_data_dir_that_cannot_be_created_is_a_problem() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("a-file");
        std::fs::write(&file, "not a directory")?;
        let config_path = dir.path().join("collector.toml");
        let load = |text: String| -> std::io::Result<Result<CollectorConfig, Vec<String>>> {
            std::fs::write(&config_path, text)?;
            Ok(CollectorConfig::load(&config_path).map_err(|problems| problems.problems))
        };
        for data_dir in [file.join("x"), file.join("x/y")] {
            let problems = load(format!("data_dir = {data_dir:?}\n"))?.expect_err("under a file");
            assert_eq!(
                problems,
                [format!(
                    "`data_dir`: {} cannot be created: {} is not a directory",
                    data_dir.display(),
                    file.display()
                )]
            );
        }
        let problems = load(format!("data_dir = {file:?}\n"))?.expect_err("a file");
        assert_eq!(
            problems,
            [format!("`data_dir`: {} is not a directory", file.display())]
        );
        // Listed with the file's other problems.
        let problems = load(format!(
            "data_dir = {:?}\n[search]\nmax_tail_clients = 0\n",
            file.join("x")
        ))?
        .expect_err("two problems");
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[1].starts_with("`data_dir`: "), "{problems:?}");

        let creatable = dir.path().join("new/deeper");
        let config = load(format!("data_dir = {creatable:?}\n"))?;
        assert!(config.is_ok(), "{config:?}");
        assert!(!creatable.exists(), "checking creates nothing");
        Ok(())
    }

    #[test]
    fn string_values_name_environment_variables_as_the_agents_do() {
        let environment = |name: &str| (name == "AFTERGLOW_DATA").then(|| "/tmp".to_owned());
        let text = "data_dir = \"${AFTERGLOW_DATA}/afterglow\"\n[listen]\nhttp = \"127.0.0.1:${HTTP_PORT:-7710}\"\n";
        let config = CollectorConfig::parse_file_text(text, &environment).expect("expanded");
        assert_eq!(config.data_dir, PathBuf::from("/tmp/afterglow"));
        assert_eq!(config.listen.http, "127.0.0.1:7710");
        let problems =
            CollectorConfig::parse_file_text("data_dir = \"${AFTERGLOW_NOPE}\"\n", &environment)
                .expect_err("unset, no default");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("`data_dir`: environment variable AFTERGLOW_NOPE is not set"),
            "{problems:?}"
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = "data_dr = \"x\"\n[listen]\nhttp = \"localhost\"\ngrpc = \"127.0.0.1:99999\"\n[index]\ncommit_interval = \"soon\"\n";
        let problems = CollectorConfig::parse(text).expect_err("the file is broken");
        let all = problems.join("\n");
        assert_eq!(problems.len(), 4, "{all}");
        for expected in ["`data_dr`", "listen.http", "listen.grpc", "commit_interval"] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
    }
}
