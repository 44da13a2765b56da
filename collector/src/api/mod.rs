//! The collector's HTTP side: the router, shared state, and the one place where errors become
//! HTTP responses (`ApiError`).

pub mod access;
#[cfg(test)]
mod bounds_tests;
pub mod clusters;
pub mod context;
pub mod export;
pub mod headers;
pub mod histogram;
pub mod logs;
pub mod prom;
pub mod prom_limits;
mod query_string;
#[cfg(test)]
mod query_tests;
pub mod retention;
pub mod tail;
pub mod tail_places;
#[cfg(test)]
pub(crate) mod test_support;
pub mod time;
pub mod ui;

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::auth::{Access, Need};
use crate::error::Error;
use crate::index::partition::LogStore;
use crate::retention::Janitor;
use crate::series::select::SourceFactory;
use crate::telemetry::{self, CollectorMetrics, QueryKind};

/// Lists every tenant with stored data.
pub type TenantList = Arc<dyn Fn() -> Vec<String> + Send + Sync>;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<LogStore>,
    /// Who may do what; handlers learn their caller's tenants through `access::Reader`.
    pub access: Arc<Access>,
    /// Every tenant with stored logs or metrics (what an `admin` token reads).
    pub all_tenants: TenantList,
    /// Stored metric series, for the Prometheus API.
    pub series: SourceFactory,
    /// Longest a log search may take before it is answered 503.
    pub search_timeout: Duration,
    /// The collector's own metrics, served at `/metrics`.
    pub metrics: Arc<CollectorMetrics>,
    /// The places of live tail clients (`[search] max_tail_clients`, and per tenant).
    pub tail_clients: Arc<tail_places::TailPlaces>,
    /// What PromQL queries are held to (`[query]`, `[metrics]`).
    pub prom_limits: Arc<prom_limits::PromLimits>,
    /// What retention keeps (`None` in tests that do not ask).
    pub retention: Option<Arc<Janitor>>,
}

/// Runs blocking index work `what` within `state`'s search budget: its result, or a 503
/// saying it took too long, counted in `/metrics`. The work sees the deadline (`budget`) and
/// stops at the next partition; a tantivy search of one partition cannot be stopped midway.
pub(crate) async fn within_budget<T: Send + 'static>(
    state: &AppState,
    what: &str,
    work: impl FnOnce() -> crate::error::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    let budget = state.search_timeout;
    let started = tokio::time::Instant::now();
    let deadline = started.checked_add(budget);
    let work = tokio::task::spawn_blocking(move || crate::budget::with_deadline(deadline, work));
    let finished = tokio::select! {
        () = tokio::time::sleep(budget) => None,
        finished = work => Some(finished),
    };
    // Work that ended just as its budget ran out is answered as over budget too.
    match finished.filter(|_| started.elapsed() < budget) {
        Some(Ok(result)) => result.map_err(ApiError::from),
        Some(Err(_)) => Err(ApiError::internal(format!(
            "the {what} failed unexpectedly"
        ))),
        None => Err({
            state
                .metrics
                .queries_over_budget
                .get_or_create(&QueryKind {
                    query: what.to_owned(),
                })
                .inc();
            ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: format!(
                    "the {what} took longer than its {} s budget ([search] timeout): narrow the time range or the query",
                    budget.as_secs_f64()
                ),
            }
        }),
    }
}

/// `GET /metrics`: the collector's own metrics, for Prometheus.
async fn own_metrics(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    state
        .metrics
        .open_log_partitions
        .set(i64::try_from(state.store.open_count()).unwrap_or(i64::MAX));
    (
        [(axum::http::header::CONTENT_TYPE, telemetry::CONTENT_TYPE)],
        state.metrics.encode(),
    )
        .into_response()
}

/// Builds the HTTP router. Every API route is behind a token check (`access.rs`); health,
/// readiness and the UI's files are open (the UI asks for a token itself). Every response has
/// the security headers, and what the API and `/metrics` answer is not to be stored
/// (`headers.rs`).
pub fn router(state: AppState) -> Router {
    let check = |need| {
        axum::middleware::from_fn_with_state((Arc::clone(&state.access), need), access::require)
    };
    let own = Router::new()
        .route("/metrics", get(own_metrics))
        .route_layer(check(Need::Admin));
    let whoami = Router::new()
        .route("/api/v1/whoami", get(access::whoami))
        .route_layer(check(Need::Known));
    let reads = data_routes().route_layer(check(Need::Read));
    let not_stored = Router::new()
        .merge(own)
        .merge(whoami)
        .merge(reads)
        .layer(axum::middleware::from_fn(query_string::refuse_bad_escapes))
        .layer(axum::middleware::map_response(headers::no_store));
    Router::new()
        .merge(not_stored)
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(|| async { "ready\n" }))
        .fallback(get(ui::serve_asset))
        .layer(axum::middleware::map_response(headers::security_headers))
        .with_state(state)
}

/// The routes that read tenants' data, and the Prometheus API's fixed answers.
fn data_routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/logs/search", get(logs::search))
        .route("/api/v1/logs/tail", get(tail::tail))
        .route("/api/v1/logs/context", get(context::context))
        .route("/api/v1/logs/histogram", get(histogram::histogram))
        .route("/api/v1/logs/export", get(export::export))
        .route("/api/v1/clusters", get(clusters::list))
        .route("/api/v1/clusters/{name}", get(clusters::detail))
        .route("/api/v1/query", get(prom::query).post(prom::query))
        .route(
            "/api/v1/query_range",
            get(prom::query_range).post(prom::query_range),
        )
        .route("/api/v1/series", get(prom::series).post(prom::series))
        .route("/api/v1/labels", get(prom::labels).post(prom::labels))
        .route(
            "/api/v1/label/{name}/values",
            get(prom::label_values).post(prom::label_values),
        )
        .route("/api/v1/retention", get(retention::status))
        .route("/api/v1/status/buildinfo", get(prom::buildinfo))
        .route("/api/v1/metadata", get(prom::metadata))
        .route(
            "/api/v1/query_exemplars",
            get(prom::query_exemplars).post(prom::query_exemplars),
        )
}

/// An error answered as `{"error": "…"}` with a status.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    /// A 400 naming what is wrong with the request.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    /// A 404 saying what was not found.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }

    /// A 500 for a failure that is the collector's, not the caller's.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.into(),
        }
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> ApiError {
        match error {
            Error::BadQuery(message) => ApiError::bad_request(format!("bad query: {message}")),
            Error::OverBudget => ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: "the query took longer than its budget ([search] timeout): narrow the time range or the query".to_owned(),
            },
            // A race with retention, not a failure: asking again answers without that day.
            deleted @ Error::PartitionDeleted { .. } => ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: deleted.to_string(),
            },
            other => {
                tracing::error!(error = %other, "request failed");
                ApiError::internal(other.to_string())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.message });
        (self.status, Json(body)).into_response()
    }
}
