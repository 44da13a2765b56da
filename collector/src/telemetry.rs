//! The collector's own telemetry: counters of what ingest took and refused and of queries over
//! their time budget, and gauges read when scraped, in a `prometheus-client` registry that
//! `GET /metrics` encodes (OpenMetrics text).
//!
//! Other modules only touch the public metric fields; nothing here knows how they are fed.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The `Content-Type` of what [`CollectorMetrics::encode`] produces.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Why a batch was refused: `disk_full`, `too_many_records`, `invalid`, `not_stored`, or its
/// token's `unknown`, `forbidden`, `rate_limited` (a token revoked on an open stream is `unknown`).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Refusal {
    pub reason: String,
}

/// What a query was: `search`, `histogram`, `context`, `export` or `cluster summary`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueryKind {
    pub query: String,
}

/// Why a PromQL query was refused: `max_samples` (422) or `max_concurrent` (503).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueryRefusalLabel {
    pub reason: String,
}

/// What retention deleted: `kind` `logs` or `metrics`, `reason` `age`, `disk` or
/// `cluster_age` (a cluster's data inside a partition other clusters keep).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RetentionLabels {
    pub kind: String,
    pub reason: String,
}

/// Why retention deleted records or series from inside a partition: `cluster_age`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RetentionReason {
    pub reason: String,
}

/// A refused request: `protocol` `http` or `grpc`, `reason` `missing`, `unknown`,
/// `forbidden` or `rate_limited` (`auth/`).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AuthFailure {
    pub protocol: String,
    pub reason: String,
}

/// A listener, `http` or `grpc` (where a TLS handshake failed, where connections are open).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TlsListenerLabel {
    pub listener: String,
}

/// A connection closed by admission: `listener` `http` or `grpc`; `reason` `peer`,
/// `listener` or `descriptors` (refused at accept, `connections.rs`), or `header` or `idle`
/// (timed out).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnectionLabels {
    pub listener: String,
    pub reason: String,
}

/// Every metric the collector exposes about itself, and the registry that encodes them.
/// Clones of a metric share its value.
#[derive(Debug)]
pub struct CollectorMetrics {
    registry: Registry,
    /// `afterglow_collector_batches_acked_total`: batches made durable and acknowledged.
    pub batches_acked: Counter,
    /// `afterglow_collector_records_received_total`: log records in batches taken into the WAL.
    pub records_received: Counter,
    /// `afterglow_collector_batches_refused_total{reason}`: batches refused, by reason.
    pub batches_refused: Family<Refusal, Counter>,
    /// `afterglow_collector_queries_over_budget_total{query}`: queries answered 503 because
    /// they took longer than `[search] timeout`.
    pub queries_over_budget: Family<QueryKind, Counter>,
    /// `afterglow_collector_queries_refused_total{reason}`: PromQL queries refused for a
    /// `[query]` limit, `max_samples` or `max_concurrent`.
    pub queries_refused: Family<QueryRefusalLabel, Counter>,
    /// `afterglow_collector_open_log_partitions`: log partitions open now (set when scraped).
    pub open_log_partitions: Gauge,
    /// `afterglow_collector_retention_partitions_deleted_total{kind, reason}`.
    pub retention_partitions_deleted: Family<RetentionLabels, Counter>,
    /// `afterglow_collector_retention_bytes_freed_total{kind, reason}`.
    pub retention_bytes_freed: Family<RetentionLabels, Counter>,
    /// `afterglow_collector_retention_records_deleted_total{reason}`: log records retention
    /// deleted from inside partitions (whole partitions are not counted here).
    pub retention_records_deleted: Family<RetentionReason, Counter>,
    /// `afterglow_collector_retention_series_deleted_total{reason}`: metric series retention
    /// dropped from inside partitions.
    pub retention_series_deleted: Family<RetentionReason, Counter>,
    /// `afterglow_collector_config_reloads_rejected_total`: new configuration files rejected
    /// for their errors (the settings in force stayed).
    pub config_reloads_rejected: Counter,
    /// `afterglow_collector_auth_failures_total{protocol, reason}`: requests refused for
    /// their token (none, unknown, not allowed) or its rate.
    pub auth_failures: Family<AuthFailure, Counter>,
    /// `afterglow_collector_tls_handshakes_failed_total{listener}`: connections closed because
    /// their TLS handshake failed or timed out (plaintext to a TLS port, unknown client CA).
    pub tls_handshakes_failed: Family<TlsListenerLabel, Counter>,
    /// `afterglow_collector_connections_refused_total{listener, reason}`: connections closed as
    /// soon as accepted, past the cap per peer, per listener or on descriptors.
    pub connections_refused: Family<ConnectionLabels, Counter>,
    /// `afterglow_collector_connections_timed_out_total{listener, reason}`: connections closed
    /// for sending no complete request in time (`header`) or for staying idle (`idle`).
    pub connections_timed_out: Family<ConnectionLabels, Counter>,
    /// `afterglow_collector_connections_open{listener}`: admitted connections open now.
    pub connections_open: Family<TlsListenerLabel, Gauge>,
    /// `afterglow_collector_labels_renamed_total`: pushed metric labels renamed because the
    /// collector sets that name itself (`tenant` became `exported_tenant`), once per series
    /// per batch.
    pub labels_renamed: Counter,
    /// `afterglow_collector_labels_dropped_total`: pushed metric labels dropped for a name
    /// reserved to the collector (`__…`), once per series per batch.
    pub labels_dropped: Counter,
}

impl CollectorMetrics {
    /// Creates every metric at zero, registered in a registry of its own.
    pub fn new() -> CollectorMetrics {
        let mut registry = Registry::with_prefix("afterglow_collector");
        let batches_acked = Counter::default();
        let records_received = Counter::default();
        let batches_refused = Family::<Refusal, Counter>::default();
        let queries_over_budget = Family::<QueryKind, Counter>::default();
        let queries_refused = Family::<QueryRefusalLabel, Counter>::default();
        let open_log_partitions = Gauge::default();
        let retention_partitions_deleted = Family::<RetentionLabels, Counter>::default();
        let retention_bytes_freed = Family::<RetentionLabels, Counter>::default();
        let retention_records_deleted = Family::<RetentionReason, Counter>::default();
        let retention_series_deleted = Family::<RetentionReason, Counter>::default();
        let config_reloads_rejected = Counter::default();
        let auth_failures = Family::<AuthFailure, Counter>::default();
        let tls_handshakes_failed = Family::<TlsListenerLabel, Counter>::default();
        let connections_refused = Family::<ConnectionLabels, Counter>::default();
        let connections_timed_out = Family::<ConnectionLabels, Counter>::default();
        let connections_open = Family::<TlsListenerLabel, Gauge>::default();
        let labels_renamed = Counter::default();
        let labels_dropped = Counter::default();
        // prometheus-client appends `_total` to counter names.
        registry.register(
            "batches_acked",
            "Batches made durable and acknowledged",
            batches_acked.clone(),
        );
        registry.register(
            "records_received",
            "Log records in batches taken into the WAL",
            records_received.clone(),
        );
        registry.register(
            "batches_refused",
            "Batches refused, by reason",
            batches_refused.clone(),
        );
        registry.register(
            "queries_over_budget",
            "Queries answered 503 for taking longer than [search] timeout",
            queries_over_budget.clone(),
        );
        registry.register(
            "queries_refused",
            "PromQL queries refused for a [query] limit, by reason",
            queries_refused.clone(),
        );
        registry.register(
            "open_log_partitions",
            "Log partitions open now",
            open_log_partitions.clone(),
        );
        registry.register(
            "retention_partitions_deleted",
            "Partitions retention deleted, by kind and reason",
            retention_partitions_deleted.clone(),
        );
        registry.register(
            "retention_bytes_freed",
            "Bytes retention freed, by kind and reason",
            retention_bytes_freed.clone(),
        );
        registry.register(
            "retention_records_deleted",
            "Log records retention deleted from inside partitions, by reason",
            retention_records_deleted.clone(),
        );
        registry.register(
            "retention_series_deleted",
            "Metric series retention dropped from inside partitions, by reason",
            retention_series_deleted.clone(),
        );
        registry.register(
            "config_reloads_rejected",
            "New configuration files rejected for their errors",
            config_reloads_rejected.clone(),
        );
        registry.register(
            "auth_failures",
            "Requests refused for their token or its rate, by protocol and reason",
            auth_failures.clone(),
        );
        registry.register(
            "tls_handshakes_failed",
            "Connections closed because their TLS handshake failed or timed out, by listener",
            tls_handshakes_failed.clone(),
        );
        registry.register(
            "connections_refused",
            "Connections closed as soon as accepted, by listener and the cap they were past",
            connections_refused.clone(),
        );
        registry.register(
            "connections_timed_out",
            "Connections closed for no complete request in time or for idling, by listener",
            connections_timed_out.clone(),
        );
        registry.register(
            "connections_open",
            "Admitted connections open now, by listener",
            connections_open.clone(),
        );
        registry.register(
            "labels_renamed",
            "Pushed metric labels renamed for a name the collector sets (tenant became exported_tenant)",
            labels_renamed.clone(),
        );
        registry.register(
            "labels_dropped",
            "Pushed metric labels dropped for a name reserved to the collector (__ prefix)",
            labels_dropped.clone(),
        );
        CollectorMetrics {
            registry,
            batches_acked,
            records_received,
            batches_refused,
            queries_over_budget,
            queries_refused,
            open_log_partitions,
            retention_partitions_deleted,
            retention_bytes_freed,
            retention_records_deleted,
            retention_series_deleted,
            config_reloads_rejected,
            auth_failures,
            tls_handshakes_failed,
            connections_refused,
            connections_timed_out,
            connections_open,
            labels_renamed,
            labels_dropped,
        }
    }

    /// Counts a partition retention deleted.
    pub fn retention_deleted(&self, kind: &str, reason: &str, bytes_freed: u64) {
        let labels = RetentionLabels {
            kind: kind.to_owned(),
            reason: reason.to_owned(),
        };
        self.retention_partitions_deleted
            .get_or_create(&labels)
            .inc();
        self.retention_bytes_freed
            .get_or_create(&labels)
            .inc_by(bytes_freed);
    }

    /// Counts what retention deleted from inside a partition of `kind` for `reason`: `items`
    /// log records or metric series, freeing `bytes_freed`.
    pub fn retention_deleted_inside(&self, kind: &str, reason: &str, items: u64, bytes_freed: u64) {
        let labels = RetentionReason {
            reason: reason.to_owned(),
        };
        let items_deleted = if kind == "logs" {
            &self.retention_records_deleted
        } else {
            &self.retention_series_deleted
        };
        items_deleted.get_or_create(&labels).inc_by(items);
        self.retention_bytes_freed
            .get_or_create(&RetentionLabels {
                kind: kind.to_owned(),
                reason: reason.to_owned(),
            })
            .inc_by(bytes_freed);
    }

    /// Counts a refused batch.
    pub fn refused(&self, reason: &str) {
        self.batches_refused
            .get_or_create(&Refusal {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Counts a PromQL query refused for `reason` (`max_samples`, `max_concurrent`).
    pub fn query_refused(&self, reason: &str) {
        self.queries_refused
            .get_or_create(&QueryRefusalLabel {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Counts a failed TLS handshake on `listener`.
    pub fn tls_handshake_failed(&self, listener: &str) {
        self.tls_handshakes_failed
            .get_or_create(&TlsListenerLabel {
                listener: listener.to_owned(),
            })
            .inc();
    }

    /// Counts a connection refused on `listener` for `reason`.
    pub fn connection_refused(&self, listener: &str, reason: &str) {
        self.connections_refused
            .get_or_create(&ConnectionLabels {
                listener: listener.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Counts a connection on `listener` closed by the `reason` timeout.
    pub fn connection_timed_out(&self, listener: &str, reason: &str) {
        self.connections_timed_out
            .get_or_create(&ConnectionLabels {
                listener: listener.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// The gauge of connections open on `listener`.
    pub fn connections_open(&self, listener: &str) -> Gauge {
        self.connections_open
            .get_or_create(&TlsListenerLabel {
                listener: listener.to_owned(),
            })
            .clone()
    }

    /// Every metric in the OpenMetrics text format (see [`CONTENT_TYPE`]), ending in `# EOF`.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a string does not fail");
        text
    }
}

impl Default for CollectorMetrics {
    fn default() -> Self {
        CollectorMetrics::new()
    }
}
