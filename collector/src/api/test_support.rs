//! What the API's tests share: the state the handlers see, reading some tenants, and a GET
//! through the router answered as JSON.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::api::{AppState, router};
use crate::index::partition::LogStore;

/// The state of a caller who may read `tenants`, with no metric series.
pub(crate) fn state_reading(store: Arc<LogStore>, tenants: &[&str]) -> AppState {
    AppState {
        store,
        readable_tenants: Arc::new(tenants.iter().map(|&tenant| tenant.to_owned()).collect()),
        series: crate::series::select::no_series(),
        search_timeout: std::time::Duration::from_secs(30),
    }
}

/// `GET uri`: the status and the body as JSON (`Null` when it is not JSON).
pub(crate) async fn get(state: &AppState, uri: &str) -> (StatusCode, serde_json::Value) {
    let response = router(state.clone())
        .oneshot(
            Request::get(uri)
                .body(Body::empty())
                .expect("request builds"),
        )
        .await
        .expect("router answers");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body reads")
        .to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, json)
}
