//! Refuses an API request whose URL query is not valid percent-encoding (`%` not followed by
//! two hex digits), as Prometheus does, before any handler reads it: the parameter parsers
//! would otherwise take `%ZZ` literally and answer a malformed request as if it were sound.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api::ApiError;

/// Whether `query` (the part of a URL after `?`) has a `%` not followed by two hex digits.
fn has_bad_escape(query: &str) -> bool {
    let bytes = query.as_bytes();
    bytes.iter().enumerate().any(|(at, &byte)| {
        byte == b'%'
            && !bytes
                .get(at + 1..at + 3)
                .is_some_and(|pair| pair.iter().all(u8::is_ascii_hexdigit))
    })
}

/// A middleware over the API routes: 400 for a query string with a bad escape.
pub(crate) async fn refuse_bad_escapes(request: Request, next: Next) -> Response {
    if request.uri().query().is_some_and(has_bad_escape) {
        return ApiError::bad_request(
            "malformed query string: `%` must be followed by two hex digits",
        )
        .into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::has_bad_escape;
    use crate::api::test_support::{get, state_with, worker_record};

    #[test]
    fn a_percent_needs_two_hex_digits() {
        for bad in ["q=%ZZ", "q=%", "q=a%2", "q=%2g", "q=ok&x=%%41"] {
            assert!(has_bad_escape(bad), "{bad}");
        }
        for good in ["q=%2A", "q=plain", "q=%e2%9c%93", "", "q=100%25"] {
            assert!(!has_bad_escape(good), "{good}");
        }
    }

    #[tokio::test]
    async fn every_api_route_refuses_a_bad_escape_and_serves_a_good_one() {
        let dir = tempfile::tempdir().expect("temp dir");
        let state = state_with(
            dir.path(),
            vec![worker_record(1_000, "w-1", (1, 1), "INFO", "zz")],
        )
        .await;
        for route in [
            "/api/v1/logs/search",
            "/api/v1/logs/histogram",
            "/api/v1/logs/export",
            "/api/v1/query",
            "/api/v1/clusters",
        ] {
            let (status, body) = get(&state, &format!("{route}?q=%ZZ&query=%ZZ")).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{route}: {body}");
            assert!(
                body.to_string().contains("malformed query string"),
                "{route}: {body}"
            );
        }
        let (status, body) = get(&state, "/api/v1/logs/search?q=%7A%7A&start=0").await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}
