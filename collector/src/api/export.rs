//! `GET /api/v1/logs/export`: every hit of a search as NDJSON, one search hit object per line.
//!
//! The rule a reader must not miss: memory stays bounded however many records match. A
//! blocking task walks the search page by page and feeds a channel of at most
//! `PAGES_IN_FLIGHT` pages that the response body drains; a client that stops reading stops
//! the walk. Parameters and the first page are checked before the answer starts, so a bad
//! query is a 400 like search's; a failure after that can only cut the body short.

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::api::access::Reader;
use crate::api::logs::{FilterParams, HitJson, SearchParams, search_request};
use crate::api::{ApiError, AppState, within_budget};
use crate::index::export::SearchPages;
use crate::index::search::Hit;

/// Hits fetched per search page.
const EXPORT_PAGE_HITS: usize = 1000;
/// Encoded pages waiting for the client, beyond the one being encoded.
const PAGES_IN_FLIGHT: usize = 2;

/// `GET /api/v1/logs/export?q=&start=&end=&order=&cursor=&filter=&exclude=`: search's
/// parameters; `limit` has no effect, everything matching is exported, oldest first unless
/// `order=desc`.
pub async fn export(
    State(state): State<AppState>,
    reader: Reader,
    FilterParams(filters): FilterParams,
    Query(params): Query<SearchParams>,
) -> Result<Response, ApiError> {
    let with_tenant = reader.spans_tenants();
    let mut request = search_request(reader, params, filters, Timestamp::now())?;
    request.limit = EXPORT_PAGE_HITS;
    let store = state.store.clone();
    let (mut pages, first_page) = within_budget(&state, "export", move || {
        let mut pages = SearchPages::new(store, request);
        let first_page = pages.next().transpose()?.unwrap_or_default();
        Ok((pages, first_page))
    })
    .await?;
    let (sender, receiver) = mpsc::channel::<Result<Bytes, std::io::Error>>(PAGES_IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        if sender
            .blocking_send(Ok(ndjson(first_page, with_tenant)))
            .is_err()
        {
            return;
        }
        for page in &mut pages {
            let chunk = page.map(|hits| ndjson(hits, with_tenant)).map_err(|error| {
                tracing::error!(%error, "export stopped before its end");
                std::io::Error::other(error.to_string())
            });
            if sender.blocking_send(chunk).is_err() {
                // The client went away.
                return;
            }
        }
    });
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(ReceiverStream::new(receiver)),
    )
        .into_response())
}

/// One line of search-hit JSON per hit, with its tenant when `with_tenant`.
fn ndjson(hits: Vec<Hit>, with_tenant: bool) -> Bytes {
    let mut lines = Vec::with_capacity(hits.len() * 256);
    for hit in hits {
        serde_json::to_writer(&mut lines, &HitJson::new(hit, with_tenant))
            .expect("a hit serializes");
        lines.push(b'\n');
    }
    Bytes::from(lines)
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;
    use crate::api::test_support::{get_bytes, state_with, worker_record};
    use crate::index::writer::LogEntry;

    /// Midnight UTC, 2026-11-28.
    const MIDNIGHT_MICROS: i64 = 1_795_824_000_000_000;

    /// 3600 records, two a millisecond (one per node) from 0.9 s before midnight, every third a
    /// WARNING, in tenant `default`; the same in `other-team`.
    async fn state_with_many_records(dir: &std::path::Path) -> AppState {
        let entries: Vec<LogEntry> = (0..3600u64)
            .map(|seq| {
                let node = if seq % 2 == 0 { "w-1" } else { "w-2" };
                let level = if seq % 3 == 0 { "WARNING" } else { "INFO" };
                let ts_micros = MIDNIGHT_MICROS - 900_000 + (seq as i64 / 2) * 1000;
                worker_record(
                    ts_micros,
                    node,
                    (seq % 2, seq),
                    level,
                    &format!("record {seq}"),
                )
            })
            .collect();
        state_with(dir, entries).await
    }

    #[tokio::test]
    async fn export_equals_all_search_pages_across_pages_and_a_day_boundary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = state_with_many_records(dir.path()).await;
        let filter = "q=level:INFO&start=2026-11-27T23:59:59Z&end=2026-11-28T00:00:00.8Z";
        let mut searched = Vec::new();
        let mut cursor = String::new();
        loop {
            let uri = format!("/api/v1/logs/search?{filter}&limit=333&cursor={cursor}");
            let (status, _, bytes) = get_bytes(&state, &uri).await;
            assert_eq!(status, StatusCode::OK);
            let page: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
            searched.extend(page["hits"].as_array().expect("hits").iter().cloned());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = next.to_owned(),
                None => break,
            }
        }
        let (status, content_type, bytes) =
            get_bytes(&state, &format!("/api/v1/logs/export?{filter}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(content_type.as_deref(), Some("application/x-ndjson"));
        let text = std::str::from_utf8(&bytes).expect("utf-8");
        assert!(text.ends_with('\n'));
        let exported: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).expect("one json object per line"))
            .collect();
        // 1.7 s of 2 records a millisecond, two thirds INFO: more than two export pages.
        assert!(exported.len() > 2 * EXPORT_PAGE_HITS, "{}", exported.len());
        assert_eq!(exported, searched);
        let days: std::collections::BTreeSet<&str> = exported
            .iter()
            .map(|hit| &hit["ts"].as_str().expect("ts")[..10])
            .collect();
        assert_eq!(days.len(), 2, "{days:?}");
    }

    #[tokio::test]
    async fn bad_parameters_are_400_before_streaming() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = state_with_many_records(dir.path()).await;
        for (query, named) in [
            ("q=level:(ERROR", "bad query"),
            ("start=yesterday", "`start`"),
        ] {
            let (status, content_type, bytes) =
                get_bytes(&state, &format!("/api/v1/logs/export?{query}")).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
            assert_eq!(content_type.as_deref(), Some("application/json"));
            let json: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
            let message = json["error"].as_str().unwrap_or_default();
            assert!(message.contains(named), "{query}: {message}");
        }
    }

    #[tokio::test]
    async fn an_empty_range_is_an_empty_body() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = state_with_many_records(dir.path()).await;
        let (status, content_type, bytes) = get_bytes(
            &state,
            "/api/v1/logs/export?start=2026-11-28T00:00:00Z&end=2026-11-28T00:00:00Z",
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(content_type.as_deref(), Some("application/x-ndjson"));
        assert!(bytes.is_empty());
    }
}
