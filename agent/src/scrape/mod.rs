//! Scraping Prometheus endpoints: one task per target fetches its page every `interval`,
//! parses it leniently, adds the target's identity labels and the synthetic series, and hands
//! the scrape to the shipper. Targets come from `[[metrics]]` or from Dask discovery
//! (`dask.rs`), which may change a running target's address. A target is scraped at once when
//! it starts or moves and once more when it leaves, so that a worker that lives less than an
//! interval still leaves samples.
//!
//! The rule a reader must not miss: samples are stamped with the scrape's place on the
//! `interval` grid when the scrape started within `GRID_TOLERANCE` of it (Prometheus's
//! timestamp tolerance does the same): equal steps compress to almost nothing in the
//! collector's store.

pub mod dask;
pub mod http;
pub mod page;

use std::sync::Arc;
use std::time::Duration;

use afterglow_proto::v1::{Label, MetricFamily};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::config::Role;
use crate::metrics::AgentMetrics;
use crate::prom::{self, Format, ParsedPage};
use crate::record::{Scrape, StreamInfo};
use crate::scrape::page::{ScrapeReport, Staleness};

/// A scrape that starts this close to its grid point is stamped with the grid point.
const GRID_TOLERANCE_MS: i64 = 25;

/// One endpoint to scrape and what to call it.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub url: Url,
    /// The target's stream: stable across address changes of the same Dask worker.
    pub stream: Arc<StreamInfo>,
    /// Identity and extra labels, sorted by name.
    pub labels: Vec<Label>,
    pub interval: Duration,
    pub timeout: Duration,
    pub max_body_bytes: u64,
}

impl Target {
    /// A target with the identity labels `cluster`, `node`, `role`, `instance` (host:port of
    /// `url`) plus `extra` (which must not name those), under a stream identified by `key`.
    pub fn new(
        url: Url,
        identity: TargetIdentity<'_>,
        extra: impl IntoIterator<Item = (String, String)>,
        timing: &ScrapeTiming,
    ) -> Target {
        let instance = match (url.host_str(), url.port_or_known_default()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            _ => url.to_string(),
        };
        let mut labels: Vec<Label> = [
            ("cluster", identity.cluster.to_owned()),
            ("node", identity.node.to_owned()),
            ("role", role_name(identity.role).to_owned()),
            ("instance", instance),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .chain(extra)
        .map(|(name, value)| Label { name, value })
        .collect();
        labels.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        let id = xxhash_rust::xxh3::xxh3_64(
            format!(
                "metrics\0{}\0{}\0{}",
                identity.cluster, identity.agent_node, identity.key
            )
            .as_bytes(),
        );
        Target {
            stream: Arc::new(StreamInfo {
                id,
                checkpoint_id: id,
                cluster: identity.cluster.to_owned(),
                node: identity.node.to_owned(),
                role: identity.role,
                source: url.to_string(),
            }),
            url,
            labels,
            interval: timing.interval,
            timeout: timing.timeout,
            max_body_bytes: timing.max_body_bytes,
        }
    }
}

/// Who a target is, for its labels and its stream id.
#[derive(Debug, Clone, Copy)]
pub struct TargetIdentity<'a> {
    pub cluster: &'a str,
    /// The `node` label: the agent's node, or a discovered worker's host.
    pub node: &'a str,
    /// The agent's own node, part of the stream id.
    pub agent_node: &'a str,
    pub role: Role,
    /// What stays the same for this target across address changes (its URL, or a Dask
    /// worker's name).
    pub key: &'a str,
}

/// How often and how patiently a target is scraped.
#[derive(Debug, Clone, PartialEq)]
pub struct ScrapeTiming {
    pub interval: Duration,
    pub timeout: Duration,
    pub max_body_bytes: u64,
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Scheduler => "scheduler",
        Role::Worker => "worker",
        Role::Nanny => "nanny",
        Role::Client => "client",
        Role::Other => "other",
    }
}

/// Where scrapes go and what they count.
#[derive(Clone)]
pub struct ScrapeContext {
    pub scrapes: mpsc::Sender<Scrape>,
    pub metrics: Arc<AgentMetrics>,
}

/// Scrapes the target in `target` (which may change between scrapes) until `shutdown`, or
/// until `removed`. A target is scraped at once when the task starts and when it changes,
/// then on its grid; when it is removed it is scraped once more if it still answers, and
/// every series it shipped then gets a staleness marker.
pub async fn run_target(
    mut target: watch::Receiver<Target>,
    context: ScrapeContext,
    shutdown: CancellationToken,
    removed: CancellationToken,
) {
    let mut current = target.borrow_and_update().clone();
    let mut ticker = ticker_for(&current);
    let mut scraper = Scraper::default();
    // A configured target's sender is gone from the start: it never changes.
    let mut target_can_change = true;
    context.metrics.scrape_targets.inc();
    // The first scrape is at once: a worker that lives less than an interval (one that is
    // OOM-killed or restarted) still leaves its samples.
    let mut scrape_at_once = true;
    loop {
        if !scrape_at_once {
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = removed.cancelled() => {
                    scraper.scrape_leaving(&current, &context, &shutdown).await;
                    break;
                }
                changed = target.changed(), if target_can_change => {
                    if changed.is_err() {
                        target_can_change = false;
                        continue;
                    }
                    // A moved target (a worker restarted under a new address) is a new
                    // process that may be short-lived too: scrape it at once.
                    let next = target.borrow_and_update().clone();
                    if next.interval != current.interval {
                        ticker = ticker_for(&next);
                    }
                    current = next;
                }
                _ = ticker.tick() => {
                    // A grid point just after an out-of-grid scrape would scrape twice in a
                    // row; the grid resumes at its next point.
                    if scraper.started_within(current.interval / 2) {
                        continue;
                    }
                }
            }
        }
        scrape_at_once = false;
        let families = scraper.scrape(&current, &context).await;
        // While the shipper's queue is full this waits: the missed ticks are skipped.
        if !send(&current, families, &context, &shutdown).await {
            break;
        }
    }
    context.metrics.scrape_targets.dec();
    if scraper.last_error.is_some() {
        context.metrics.scrape_targets_down.dec();
    }
}

/// What one target's scrapes remember between them.
#[derive(Debug, Default)]
struct Scraper {
    staleness: Staleness,
    last_ts: Option<i64>,
    last_started: Option<Instant>,
    last_error: Option<String>,
}

impl Scraper {
    /// Whether the last scrape started less than `duration` ago.
    fn started_within(&self, duration: Duration) -> bool {
        self.last_started
            .is_some_and(|started| started.elapsed() < duration)
    }

    /// Fetches and parses `target`'s page: the families of one scrape, `up` 0 and staleness
    /// markers if it fails.
    async fn scrape(&mut self, target: &Target, context: &ScrapeContext) -> Vec<MetricFamily> {
        let ts = grid_timestamp(now_ms(), self.last_ts, target.interval);
        self.last_ts = Some(ts);
        let started = Instant::now();
        self.last_started = Some(started);
        let fetched = http::get(
            &target.url,
            http::ACCEPT_METRICS,
            target.timeout,
            target.max_body_bytes,
        )
        .await;
        let duration_seconds = started.elapsed().as_secs_f64();
        context.metrics.scrapes.inc();
        let page = match fetched {
            Ok(page) => {
                if self.last_error.take().is_some() {
                    tracing::info!(url = %target.url, "scrape target is up again");
                    context.metrics.scrape_targets_down.dec();
                }
                Some(parse_page(&page, target, context))
            }
            Err(error) => {
                context.metrics.scrape_failures.inc();
                let message = error.to_string();
                if self.last_error.is_none() {
                    context.metrics.scrape_targets_down.inc();
                }
                if self.last_error.as_deref() != Some(&message) {
                    tracing::warn!(url = %target.url, error = %message, "scrape failed; reporting the target down until it answers");
                }
                self.last_error = Some(message);
                None
            }
        };
        let report = ScrapeReport {
            up: page.is_some(),
            duration_seconds,
        };
        self.staleness
            .scrape_families(page, &target.labels, report, ts, ts as u64)
    }

    /// The last scrape of a target that is going away: its page if it still answers (a
    /// worker that is leaving may still serve it), then a staleness marker for every series.
    /// A target that no longer answers is not reported down: it is gone, not failing.
    async fn scrape_leaving(
        &mut self,
        target: &Target,
        context: &ScrapeContext,
        shutdown: &CancellationToken,
    ) {
        let ts = now_ms().max(self.last_ts.map_or(i64::MIN, |ts| ts + 1));
        let started = Instant::now();
        let fetched = tokio::select! {
            fetched = http::get(&target.url, http::ACCEPT_METRICS, target.timeout, target.max_body_bytes) => fetched,
            () = shutdown.cancelled() => return,
        };
        let mut end_ts = ts;
        match fetched {
            Ok(page) => {
                context.metrics.scrapes.inc();
                let report = ScrapeReport {
                    up: true,
                    duration_seconds: started.elapsed().as_secs_f64(),
                };
                let parsed = parse_page(&page, target, context);
                let families = self.staleness.scrape_families(
                    Some(parsed),
                    &target.labels,
                    report,
                    ts,
                    ts as u64,
                );
                if !send(target, families, context, shutdown).await {
                    return;
                }
                end_ts = ts + 1;
            }
            Err(error) => {
                tracing::debug!(url = %target.url, %error, "a target that left no longer answers");
            }
        }
        let ended = self.staleness.end_all(end_ts, end_ts as u64);
        send(target, ended, context, shutdown).await;
    }
}

/// Hands `families` of `target` to the shipper, unless there are none; false if the
/// shipper is gone or the agent shuts down first.
async fn send(
    target: &Target,
    families: Vec<MetricFamily>,
    context: &ScrapeContext,
    shutdown: &CancellationToken,
) -> bool {
    if families.is_empty() {
        return true;
    }
    let scrape = Scrape {
        stream: Arc::clone(&target.stream),
        families,
    };
    tokio::select! {
        sent = context.scrapes.send(scrape) => sent.is_ok(),
        () = shutdown.cancelled() => false,
    }
}

/// Parses a fetched page leniently; skipped lines are counted and the first one logged.
fn parse_page(page: &http::Page, target: &Target, context: &ScrapeContext) -> ParsedPage {
    let text = String::from_utf8_lossy(&page.body);
    let parsed = prom::parse(&text, Format::from_content_type(&page.content_type));
    if let Some(problem) = parsed.problems.first() {
        context
            .metrics
            .scrape_lines_skipped
            .inc_by(parsed.problems.len() as u64);
        tracing::warn!(url = %target.url, skipped = parsed.problems.len(), first = %problem, "skipped lines of a metrics page");
    }
    parsed
}

/// A ticker on the target's interval, first firing at an offset within the interval that
/// depends on the target, so that many targets do not all scrape at the same instant.
fn ticker_for(target: &Target) -> tokio::time::Interval {
    let interval_ms = u64::try_from(target.interval.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    let offset = Duration::from_millis(target.stream.id % interval_ms);
    let mut ticker = tokio::time::interval_at(Instant::now() + offset, target.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    ticker
}

/// `now_ms`, or the grid point `last + k·interval` nearest to it when within tolerance.
fn grid_timestamp(now_ms: i64, last_ts: Option<i64>, interval: Duration) -> i64 {
    let interval_ms = i64::try_from(interval.as_millis())
        .unwrap_or(i64::MAX)
        .max(1);
    let Some(last) = last_ts else {
        return now_ms;
    };
    let steps = ((now_ms - last) as f64 / interval_ms as f64).round() as i64;
    let grid = last.saturating_add(steps.saturating_mul(interval_ms));
    if steps >= 1 && (now_ms - grid).abs() <= GRID_TOLERANCE_MS {
        grid
    } else {
        now_ms.max(last + 1)
    }
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrape_times_snap_to_the_grid_only_within_tolerance() {
        let interval = Duration::from_secs(15);
        assert_eq!(grid_timestamp(1_000, None, interval), 1_000);
        assert_eq!(grid_timestamp(16_010, Some(1_000), interval), 16_000);
        assert_eq!(grid_timestamp(15_990, Some(1_000), interval), 16_000);
        // Two ticks skipped: still on the grid.
        assert_eq!(grid_timestamp(46_004, Some(1_000), interval), 46_000);
        // Late by more than the tolerance: the real time.
        assert_eq!(grid_timestamp(16_100, Some(1_000), interval), 16_100);
        // Never at or before the previous sample.
        assert_eq!(grid_timestamp(1_000, Some(1_000), interval), 1_001);
    }
}

#[cfg(test)]
mod loop_tests;
