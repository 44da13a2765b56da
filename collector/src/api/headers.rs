//! The security headers of every HTTP response, and `Cache-Control: no-store` on every answer
//! that may carry a tenant's data (the API and `/metrics`).
//!
//! The rule a reader must not miss: the Content-Security-Policy allows scripts, styles and
//! requests from the collector's own origin only, so the UI (`web/`) must keep to ES modules and
//! style sheets it serves itself: no inline `<script>`, `<style>`, `style="…"` attribute or
//! `on…=` handler (setting `element.style` from a script, as uPlot does, is allowed), and no
//! resource from another origin. `web/tests/browser.mjs` fails a browser test on any violation.

use axum::http::{HeaderName, HeaderValue, header};
use axum::response::Response;

/// What the UI may load: scripts, styles, fonts and requests (`fetch`, the live tail) from its
/// own origin; images from it and `data:` (the page's empty favicon); nothing may frame it,
/// nothing may change its base URL, and forms submit to itself only.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Adds the security headers to `response` (a `map_response` layer over the whole router).
pub(crate) async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let set = [
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        // For browsers that do not know `frame-ancestors`.
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        // Page URLs hold search queries: they are not sent to anyone the UI links to.
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
    ];
    for (name, value) in set {
        headers.insert::<HeaderName>(name, value);
    }
    response
}

/// Tells every cache (the browser's and any proxy's) to keep no copy of `response`: a
/// tenant's records must not outlive the session that could read them.
pub(crate) async fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::{HeaderMap, Request, StatusCode, header};
    use tower::ServiceExt;

    use crate::api::router;
    use crate::api::test_support::state_reading;
    use crate::config::DEFAULT_MAX_OPEN_PARTITIONS;
    use crate::index::partition::LogStore;

    use super::CONTENT_SECURITY_POLICY;

    async fn headers_of(state: &crate::api::AppState, uri: &str) -> (StatusCode, HeaderMap) {
        let response = router(state.clone())
            .oneshot(Request::get(uri).body(Body::empty()).expect("request"))
            .await
            .expect("router answers");
        (response.status(), response.headers().clone())
    }

    #[tokio::test]
    async fn every_response_has_security_headers_and_data_is_not_stored() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let store = Arc::new(LogStore::open(dir.path(), DEFAULT_MAX_OPEN_PARTITIONS)?);
        let state = state_reading(store, &["default"]);
        for (uri, carries_data) in [
            ("/", false),
            ("/app.js", false),
            ("/style.css", false),
            ("/healthz", false),
            ("/api/v1/logs/search?q=*", true),
            ("/api/v1/logs/tail?q=*", true),
            ("/api/v1/query?query=up&time=1795787813", true),
            ("/api/v1/retention", true),
            ("/metrics", true),
        ] {
            let (status, headers) = headers_of(&state, uri).await;
            assert!(
                status.is_success() || uri == "/api/v1/retention",
                "{uri}: {status}"
            );
            let value = |name| {
                headers
                    .get(&name)
                    .and_then(|value| value.to_str().ok())
                    .map(str::to_owned)
            };
            assert_eq!(
                value(header::CONTENT_SECURITY_POLICY).as_deref(),
                Some(CONTENT_SECURITY_POLICY),
                "{uri}"
            );
            assert_eq!(
                value(header::X_CONTENT_TYPE_OPTIONS).as_deref(),
                Some("nosniff"),
                "{uri}"
            );
            assert_eq!(
                value(header::X_FRAME_OPTIONS).as_deref(),
                Some("DENY"),
                "{uri}"
            );
            let cache_control = value(header::CACHE_CONTROL);
            if carries_data {
                assert_eq!(cache_control.as_deref(), Some("no-store"), "{uri}");
            } else {
                assert_ne!(cache_control.as_deref(), Some("no-store"), "{uri}");
            }
        }
        let policy = CONTENT_SECURITY_POLICY;
        for directive in [
            "script-src 'self';",
            "frame-ancestors 'none'",
            "default-src 'none';",
        ] {
            assert!(policy.contains(directive), "{directive:?} in {policy}");
        }
        assert!(!policy.contains("unsafe"), "{policy}");
        Ok(())
    }

    #[tokio::test]
    async fn a_refused_api_request_is_not_stored_either() -> anyhow::Result<()> {
        use crate::auth::token::{digest, hex};
        let dir = tempfile::tempdir()?;
        let store = Arc::new(LogStore::open(dir.path(), DEFAULT_MAX_OPEN_PARTITIONS)?);
        let mut state = state_reading(store, &["default"]);
        let with_token = crate::CollectorConfig::parse(&format!(
            "[[tokens]]\nname = \"reader\"\nsha256 = \"{}\"\ntenants = [\"mine\"]\ncan = [\"read\"]\n",
            hex(&digest("secret"))
        ))
        .map_err(|problems| anyhow::anyhow!("{problems:?}"))?;
        state.access = Arc::new(crate::auth::Access::new(&with_token, Arc::default()));
        let (status, headers) = headers_of(&state, "/api/v1/logs/search?q=*").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        Ok(())
    }
}
