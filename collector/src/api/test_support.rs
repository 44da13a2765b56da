//! What the API's tests share: worker records written through the real writer for a readable
//! and an unreadable tenant, the state the handlers see, and a GET through the router.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::api::{AppState, router};
use crate::config::DEFAULT_MAX_OPEN_PARTITIONS;
use crate::index::partition::LogStore;
use crate::index::writer::{LogEntry, LogWriter};

/// The state of a caller who may read `tenants`, with no metric series.
pub(crate) fn state_reading(store: Arc<LogStore>, tenants: &[&str]) -> AppState {
    let all_tenants: crate::api::TenantList = {
        let store = Arc::clone(&store);
        Arc::new(move || store.tenants())
    };
    AppState {
        store,
        access: Arc::new(crate::auth::Access::anonymous_reading(tenants)),
        all_tenants,
        series: crate::series::select::no_series(),
        search_timeout: Duration::from_secs(30),
        metrics: Arc::default(),
        tail_clients: Arc::new(crate::api::tail_places::TailPlaces::new(64, 32)),
        prom_limits: Arc::default(),
        retention: None,
    }
}

/// A record of worker `node` of cluster `nightly-etl`, read from `/var/log/dask/{node}.log`.
pub(crate) fn worker_record(
    ts_micros: i64,
    node: &str,
    (stream, seq): (u64, u64),
    level: &str,
    message: &str,
) -> LogEntry {
    LogEntry {
        ts_micros,
        cluster: "nightly-etl".to_owned(),
        node: node.to_owned(),
        role: "worker".to_owned(),
        source: format!("/var/log/dask/{node}.log"),
        level: level.to_owned(),
        logger: "distributed.worker".to_owned(),
        message: message.to_owned(),
        stream,
        seq,
        truncated: false,
        ts_inferred: false,
    }
}

/// A store under `dir` holding `entries` for tenant `default` and again for `other-team`,
/// and the state of a caller who reads `default` only.
pub(crate) async fn state_with(dir: &Path, entries: Vec<LogEntry>) -> AppState {
    let store = Arc::new(LogStore::open(dir, DEFAULT_MAX_OPEN_PARTITIONS).expect("store opens"));
    let writer = LogWriter::start(Arc::clone(&store), Duration::from_millis(10), None)
        .expect("writer starts");
    for tenant in ["default", "other-team"] {
        writer
            .write(tenant.to_owned(), entries.clone())
            .await
            .expect("written");
    }
    writer.shutdown().await;
    state_reading(store, &["default"])
}

/// `GET uri`: the status, the content type and the body.
pub(crate) async fn get_bytes(state: &AppState, uri: &str) -> (StatusCode, Option<String>, Bytes) {
    let request = Request::get(uri)
        .body(Body::empty())
        .expect("request builds");
    send_bytes(state, request).await
}

/// `request` through the router: the status, the content type and the body.
pub(crate) async fn send_bytes(
    state: &AppState,
    request: Request<Body>,
) -> (StatusCode, Option<String>, Bytes) {
    let response = router(state.clone())
        .oneshot(request)
        .await
        .expect("router answers");
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body reads")
        .to_bytes();
    (status, content_type, bytes)
}

/// `GET uri`: the status and the body as JSON (`Null` when it is not JSON).
pub(crate) async fn get(state: &AppState, uri: &str) -> (StatusCode, serde_json::Value) {
    let (status, _, bytes) = get_bytes(state, uri).await;
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, json)
}
