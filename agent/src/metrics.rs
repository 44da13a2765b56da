//! The agent's own telemetry: the counters and gauges that say how tailing and shipping go,
//! their `prometheus-client` registry, and a small HTTP server that exposes them at
//! `GET /metrics` (with `GET /healthz` for liveness probes).
//!
//! Other modules only touch the public metric fields; nothing here knows how they are fed.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// The `Content-Type` of what [`AgentMetrics::encode`] produces (OpenMetrics text).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How long a client may take to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an open connection may hold on after shutdown to finish its response.
const CONNECTION_SHUTDOWN_GRACE: Duration = Duration::from_millis(500);
/// Pause after a failed `accept` (e.g. too many open files) so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Every metric the agent exposes about itself, and the registry that encodes them.
///
/// Counters only go up; gauges are set by whoever owns the quantity. Clones of a metric share
/// its value, so a task may keep its own handle.
#[derive(Debug)]
pub struct AgentMetrics {
    registry: Registry,
    /// `afterglow_agent_lines_read_total`: complete lines read from log files.
    pub lines_read: Counter,
    /// `afterglow_agent_bytes_read_total`: bytes read from log files.
    pub bytes_read: Counter,
    /// `afterglow_agent_lines_truncated_total`: lines cut at `max_line_bytes`.
    pub lines_truncated: Counter,
    /// `afterglow_agent_invalid_utf8_lines_total`: lines that were not valid UTF-8.
    pub invalid_utf8_lines: Counter,
    /// `afterglow_agent_lines_malformed_total`: lines not in the configured wrapper format
    /// (container runtime lines), skipped.
    pub lines_malformed: Counter,
    /// `afterglow_agent_records_sent_total`: records sent to the collector.
    pub records_sent: Counter,
    /// `afterglow_agent_batches_acked_total`: batches the collector acknowledged.
    pub batches_acked: Counter,
    /// `afterglow_agent_checkpoint_writes_total`: checkpoint files written.
    pub checkpoint_writes: Counter,
    /// `afterglow_agent_checkpoint_errors_total`: checkpoint writes that failed.
    pub checkpoint_errors: Counter,
    /// `afterglow_agent_reconnects_total`: connections to the collector after the first.
    pub reconnects: Counter,
    /// `afterglow_agent_collector_warnings_total`: warnings the collector answered with.
    pub collector_warnings: Counter,
    /// `afterglow_agent_scrapes_total`: scrapes of metrics endpoints.
    pub scrapes: Counter,
    /// `afterglow_agent_scrape_failures_total`: scrapes that got no page.
    pub scrape_failures: Counter,
    /// `afterglow_agent_scrape_lines_skipped_total`: metrics page lines that did not parse.
    pub scrape_lines_skipped: Counter,
    /// `afterglow_agent_files_open`: log files currently followed.
    pub files_open: Gauge,
    /// `afterglow_agent_files_pending_deletion`: followed files whose path is gone.
    pub files_pending_deletion: Gauge,
    /// `afterglow_agent_bytes_behind`: file size minus acked offset, summed over files.
    pub bytes_behind: Gauge,
    /// `afterglow_agent_unacked_batches`: batches sent and not yet acked.
    pub unacked_batches: Gauge,
    /// `afterglow_agent_backpressure`: 1 while the shipper takes no new records, else 0.
    pub backpressure: Gauge,
    /// `afterglow_agent_collector_connected`: 1 while a push stream is open, else 0.
    pub collector_connected: Gauge,
    /// `afterglow_agent_scrape_targets`: metrics endpoints being scraped.
    pub scrape_targets: Gauge,
    /// `afterglow_agent_scrape_targets_down`: of those, the ones whose last scrape failed.
    pub scrape_targets_down: Gauge,
}

impl AgentMetrics {
    /// Creates every metric at zero, registered in a registry of its own.
    pub fn new() -> Arc<AgentMetrics> {
        let mut registry = Registry::default();
        // prometheus-client appends `_total` to counter names.
        let mut counter = |name: &str, help: &str| {
            let counter = Counter::default();
            registry.register(name, help, counter.clone());
            counter
        };
        let lines_read = counter(
            "afterglow_agent_lines_read",
            "Complete lines read from log files",
        );
        let bytes_read = counter("afterglow_agent_bytes_read", "Bytes read from log files");
        let lines_truncated = counter(
            "afterglow_agent_lines_truncated",
            "Lines cut because they exceeded max_line_bytes",
        );
        let invalid_utf8_lines = counter(
            "afterglow_agent_invalid_utf8_lines",
            "Lines that were not valid UTF-8",
        );
        let lines_malformed = counter(
            "afterglow_agent_lines_malformed",
            "Lines not in the configured container runtime format, skipped",
        );
        let records_sent = counter(
            "afterglow_agent_records_sent",
            "Records sent to the collector",
        );
        let batches_acked = counter(
            "afterglow_agent_batches_acked",
            "Batches the collector acknowledged",
        );
        let checkpoint_writes = counter(
            "afterglow_agent_checkpoint_writes",
            "Checkpoint files written",
        );
        let checkpoint_errors = counter(
            "afterglow_agent_checkpoint_errors",
            "Checkpoint writes that failed",
        );
        let reconnects = counter(
            "afterglow_agent_reconnects",
            "Connections to the collector after the first one",
        );
        let collector_warnings = counter(
            "afterglow_agent_collector_warnings",
            "Warnings the collector answered with (data it acked but did not keep, e.g. series over a limit)",
        );
        let scrapes = counter("afterglow_agent_scrapes", "Scrapes of metrics endpoints");
        let scrape_failures = counter(
            "afterglow_agent_scrape_failures",
            "Scrapes that got no page (connection refused, timeout, HTTP error, too large)",
        );
        let scrape_lines_skipped = counter(
            "afterglow_agent_scrape_lines_skipped",
            "Lines of metrics pages that did not parse and were skipped",
        );
        let mut gauge = |name: &str, help: &str| {
            let gauge = Gauge::default();
            registry.register(name, help, gauge.clone());
            gauge
        };
        let files_open = gauge("afterglow_agent_files_open", "Log files currently followed");
        let files_pending_deletion = gauge(
            "afterglow_agent_files_pending_deletion",
            "Followed files whose path is gone, kept open until read to their end",
        );
        let bytes_behind = gauge(
            "afterglow_agent_bytes_behind",
            "File size minus acknowledged offset, summed over followed files",
        );
        let unacked_batches = gauge(
            "afterglow_agent_unacked_batches",
            "Batches sent to the collector and not yet acknowledged",
        );
        let backpressure = gauge(
            "afterglow_agent_backpressure",
            "1 while the shipper takes no new records because too many batches are unacknowledged",
        );
        let collector_connected = gauge(
            "afterglow_agent_collector_connected",
            "1 while a push stream to the collector is open",
        );
        let scrape_targets = gauge(
            "afterglow_agent_scrape_targets",
            "Metrics endpoints being scraped",
        );
        let scrape_targets_down = gauge(
            "afterglow_agent_scrape_targets_down",
            "Metrics endpoints whose last scrape failed",
        );
        Arc::new(AgentMetrics {
            registry,
            lines_read,
            bytes_read,
            lines_truncated,
            invalid_utf8_lines,
            lines_malformed,
            records_sent,
            batches_acked,
            checkpoint_writes,
            checkpoint_errors,
            reconnects,
            collector_warnings,
            scrapes,
            scrape_failures,
            scrape_lines_skipped,
            files_open,
            files_pending_deletion,
            bytes_behind,
            unacked_batches,
            backpressure,
            collector_connected,
            scrape_targets,
            scrape_targets_down,
        })
    }

    /// Every metric in the OpenMetrics text format (see [`CONTENT_TYPE`]), ending in `# EOF`.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a string does not fail");
        text
    }
}

/// Binds `listen` (port 0 picks a free port) and serves the metrics over HTTP/1 in a spawned
/// task until `shutdown`. Returns the bound address.
///
/// `GET /metrics` answers the encoded metrics, `GET /healthz` answers `ok`, anything else 404.
/// On shutdown the listener closes at once and open connections get a short grace period.
pub async fn serve_metrics(
    listen: SocketAddr,
    metrics: Arc<AgentMetrics>,
    shutdown: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(listen).await?;
    let address = listener.local_addr()?;
    tracing::info!(%address, "serving metrics");
    tokio::spawn(accept_loop(listener, metrics, shutdown));
    Ok(address)
}

async fn accept_loop(
    listener: TcpListener,
    metrics: Arc<AgentMetrics>,
    shutdown: CancellationToken,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) => {
                tokio::spawn(serve_connection(
                    builder.clone(),
                    stream,
                    Arc::clone(&metrics),
                    shutdown.clone(),
                ));
            }
            Err(error) => {
                tracing::warn!(%error, "cannot accept a metrics connection");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => {}
                }
            }
        }
    }
    tracing::debug!("metrics server stopped");
}

async fn serve_connection(
    builder: http1::Builder,
    stream: TcpStream,
    metrics: Arc<AgentMetrics>,
    shutdown: CancellationToken,
) {
    let service = service_fn(move |request: Request<Incoming>| {
        let response = respond(&metrics, &request);
        async move { Ok::<_, Infallible>(response) }
    });
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            match tokio::time::timeout(CONNECTION_SHUTDOWN_GRACE, connection.as_mut()).await {
                Ok(result) => result,
                Err(_) => return, // dropping the connection closes it
            }
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "metrics connection ended with an error");
    }
}

fn respond(metrics: &AgentMetrics, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match (request.method(), request.uri().path()) {
        (&Method::GET, "/metrics") => (StatusCode::OK, CONTENT_TYPE, metrics.encode()),
        (&Method::GET, "/healthz") => {
            (StatusCode::OK, "text/plain; charset=utf-8", "ok".to_owned())
        }
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found".to_owned(),
        ),
    };
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .body(Full::new(Bytes::from(body)))
        .expect("a status and a static content type make a valid response")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::net::Ipv4Addr;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    const COUNTERS: [&str; 14] = [
        "afterglow_agent_lines_read_total",
        "afterglow_agent_bytes_read_total",
        "afterglow_agent_lines_truncated_total",
        "afterglow_agent_invalid_utf8_lines_total",
        "afterglow_agent_lines_malformed_total",
        "afterglow_agent_records_sent_total",
        "afterglow_agent_batches_acked_total",
        "afterglow_agent_checkpoint_writes_total",
        "afterglow_agent_checkpoint_errors_total",
        "afterglow_agent_reconnects_total",
        "afterglow_agent_collector_warnings_total",
        "afterglow_agent_scrapes_total",
        "afterglow_agent_scrape_failures_total",
        "afterglow_agent_scrape_lines_skipped_total",
    ];
    const GAUGES: [&str; 8] = [
        "afterglow_agent_files_open",
        "afterglow_agent_files_pending_deletion",
        "afterglow_agent_bytes_behind",
        "afterglow_agent_unacked_batches",
        "afterglow_agent_backpressure",
        "afterglow_agent_collector_connected",
        "afterglow_agent_scrape_targets",
        "afterglow_agent_scrape_targets_down",
    ];

    /// Sample lines of the text format as name → value; comments are skipped.
    fn samples(text: &str) -> HashMap<String, i64> {
        text.lines()
            .filter(|line| !line.starts_with('#') && !line.is_empty())
            .map(|line| {
                let (name, value) = line.split_once(' ').expect("a sample has a value");
                (name.to_owned(), value.parse().expect("values are integers"))
            })
            .collect()
    }

    /// `# TYPE` lines as family name → type.
    fn types(text: &str) -> HashMap<String, String> {
        text.lines()
            .filter_map(|line| line.strip_prefix("# TYPE "))
            .map(|rest| {
                let (name, kind) = rest.split_once(' ').expect("a type line names a type");
                (name.to_owned(), kind.to_owned())
            })
            .collect()
    }

    fn bump_every_metric(metrics: &AgentMetrics) {
        let counters = [
            &metrics.lines_read,
            &metrics.bytes_read,
            &metrics.lines_truncated,
            &metrics.invalid_utf8_lines,
            &metrics.lines_malformed,
            &metrics.records_sent,
            &metrics.batches_acked,
            &metrics.checkpoint_writes,
            &metrics.checkpoint_errors,
            &metrics.reconnects,
            &metrics.collector_warnings,
            &metrics.scrapes,
            &metrics.scrape_failures,
            &metrics.scrape_lines_skipped,
        ];
        for (index, counter) in counters.into_iter().enumerate() {
            counter.inc_by(index as u64 + 1);
        }
        let gauges = [
            &metrics.files_open,
            &metrics.files_pending_deletion,
            &metrics.bytes_behind,
            &metrics.unacked_batches,
            &metrics.backpressure,
            &metrics.collector_connected,
            &metrics.scrape_targets,
            &metrics.scrape_targets_down,
        ];
        for (index, gauge) in gauges.into_iter().enumerate() {
            gauge.set(index as i64 + 10);
        }
    }

    #[test]
    fn every_metric_is_exposed_under_its_exact_name_with_its_value() {
        let metrics = AgentMetrics::new();
        bump_every_metric(&metrics);
        let text = metrics.encode();
        let samples = samples(&text);
        for (index, name) in COUNTERS.iter().enumerate() {
            assert_eq!(samples.get(*name), Some(&(index as i64 + 1)), "{name}");
        }
        for (index, name) in GAUGES.iter().enumerate() {
            assert_eq!(samples.get(*name), Some(&(index as i64 + 10)), "{name}");
        }
        assert_eq!(samples.len(), COUNTERS.len() + GAUGES.len(), "{text}");
    }

    #[test]
    fn counters_and_gauges_are_typed_and_documented() {
        let text = AgentMetrics::new().encode();
        let types = types(&text);
        for name in COUNTERS {
            let family = name.strip_suffix("_total").expect("counters end in _total");
            assert_eq!(types.get(family).map(String::as_str), Some("counter"));
        }
        for name in GAUGES {
            assert_eq!(types.get(name).map(String::as_str), Some("gauge"));
        }
        let help_lines = text
            .lines()
            .filter(|line| line.starts_with("# HELP "))
            .count();
        assert_eq!(help_lines, COUNTERS.len() + GAUGES.len());
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn fresh_metrics_start_at_zero() {
        let samples = samples(&AgentMetrics::new().encode());
        assert!(samples.values().all(|value| *value == 0), "{samples:?}");
    }

    /// Sends one `GET path` with `Connection: close`; returns the status code, the headers
    /// (lower-cased names) and the body.
    async fn get(address: SocketAddr, path: &str) -> (u16, HashMap<String, String>, String) {
        let mut stream = TcpStream::connect(address).await.expect("server listens");
        let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .expect("request is written");
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .await
            .expect("response is read");
        let (head, body) = response
            .split_once("\r\n\r\n")
            .expect("a response has a head");
        let mut head_lines = head.lines();
        let status = head_lines
            .next()
            .and_then(|line| line.split(' ').nth(1))
            .and_then(|code| code.parse().ok())
            .expect("a status line");
        let headers = head_lines
            .filter_map(|line| line.split_once(": "))
            .map(|(name, value)| (name.to_ascii_lowercase(), value.to_owned()))
            .collect();
        (status, headers, body.to_owned())
    }

    async fn start_server() -> (SocketAddr, Arc<AgentMetrics>, CancellationToken) {
        let metrics = AgentMetrics::new();
        let shutdown = CancellationToken::new();
        let address = serve_metrics(
            (Ipv4Addr::LOCALHOST, 0).into(),
            Arc::clone(&metrics),
            shutdown.clone(),
        )
        .await
        .expect("binding port 0 works");
        (address, metrics, shutdown)
    }

    #[tokio::test]
    async fn metrics_endpoint_serves_the_current_values() {
        let (address, metrics, shutdown) = start_server().await;
        assert_ne!(address.port(), 0);
        metrics.lines_read.inc_by(7);
        metrics.collector_connected.set(1);
        let (status, headers, body) = get(address, "/metrics").await;
        assert_eq!(status, 200);
        assert_eq!(
            headers.get("content-type").map(String::as_str),
            Some(CONTENT_TYPE)
        );
        let samples = samples(&body);
        assert_eq!(samples.get("afterglow_agent_lines_read_total"), Some(&7));
        assert_eq!(samples.get("afterglow_agent_collector_connected"), Some(&1));
        assert_eq!(samples.get("afterglow_agent_records_sent_total"), Some(&0));
        shutdown.cancel();
    }

    #[tokio::test]
    async fn healthz_answers_ok() {
        let (address, _metrics, shutdown) = start_server().await;
        let (status, _, body) = get(address, "/healthz").await;
        assert_eq!((status, body.as_str()), (200, "ok"));
        shutdown.cancel();
    }

    #[tokio::test]
    async fn other_paths_are_not_found() {
        let (address, _metrics, shutdown) = start_server().await;
        for path in ["/", "/metrics/extra", "/nope"] {
            let (status, _, _) = get(address, path).await;
            assert_eq!(status, 404, "{path}");
        }
        shutdown.cancel();
    }

    #[tokio::test]
    async fn server_stops_listening_after_cancel() {
        let (address, _metrics, shutdown) = start_server().await;
        shutdown.cancel();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        loop {
            if TcpStream::connect(address).await.is_err() {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "still listening after cancel"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn cancel_closes_an_idle_keep_alive_connection() {
        let (address, _metrics, shutdown) = start_server().await;
        let mut stream = TcpStream::connect(address).await.expect("server listens");
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
            .await
            .expect("request is written");
        let mut buffer = [0; 1024];
        let read = stream.read(&mut buffer).await.expect("response is read");
        assert!(buffer[..read].starts_with(b"HTTP/1.1 200"));
        shutdown.cancel();
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut rest))
            .await
            .expect("the connection closes soon after cancel")
            .expect("reading to the end works");
    }
}
