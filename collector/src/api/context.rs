//! `GET /api/v1/logs/context`: the records around one search hit, in its stream's order.
//! The record is named by the `stream` and `seq` a search hit carries, `stream` in the same
//! 16-hex-digit form, and by its `tenant` when the hit carries one (two tenants' agents can
//! claim the same stream).

use axum::Json;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};

use crate::api::access::Reader;
use crate::api::logs::HitJson;
use crate::api::{ApiError, AppState, within_budget};
use crate::index::context::{self, ContextRequest, MAX_CONTEXT};
use crate::index::search::Hit;

/// Records on each side when `before` or `after` is not given.
const DEFAULT_CONTEXT: usize = 10;

/// Query parameters of `/api/v1/logs/context`: `stream` and `seq` are required.
#[derive(Debug, Default, Deserialize)]
pub struct ContextParams {
    stream: Option<String>,
    seq: Option<String>,
    before: Option<String>,
    after: Option<String>,
    tenant: Option<String>,
}

/// The JSON answer of `/api/v1/logs/context`: each side in ascending `seq` order.
#[derive(Debug, Serialize)]
pub struct ContextResponse {
    before: Vec<HitJson>,
    hit: HitJson,
    after: Vec<HitJson>,
}

/// `GET /api/v1/logs/context?stream=<16 hex digits>&seq=<u64>&before=10&after=10&tenant=`
///
/// Answers the record `(stream, seq)` of the caller's tenants (of `tenant` alone if given) and
/// up to `before`/`after`
/// (0 to 1000, default 10) records of the same stream (node and file) around it, by `seq`,
/// whichever UTC day they were written on; 404 when no readable tenant holds the record.
pub async fn context(
    State(state): State<AppState>,
    reader: Reader,
    Query(params): Query<ContextParams>,
) -> Result<Json<ContextResponse>, ApiError> {
    let with_tenant = reader.spans_tenants();
    let request = context_request(reader, params)?;
    let (stream, seq) = (request.stream, request.seq);
    let store = state.store.clone();
    let found = within_budget(&state, "context search", move || {
        context::context(&store, &request)
    })
    .await?;
    let found = found.ok_or_else(|| {
        ApiError::not_found(format!("no record with stream {stream:016x} and seq {seq}"))
    })?;
    Ok(Json(ContextResponse {
        before: hits_json(found.before, with_tenant),
        hit: HitJson::new(found.hit, with_tenant),
        after: hits_json(found.after, with_tenant),
    }))
}

fn hits_json(hits: Vec<Hit>, with_tenant: bool) -> Vec<HitJson> {
    hits.into_iter()
        .map(|hit| HitJson::new(hit, with_tenant))
        .collect()
}

fn context_request(reader: Reader, params: ContextParams) -> Result<ContextRequest, ApiError> {
    let stream = match params.stream.as_deref() {
        None | Some("") => return Err(ApiError::bad_request("`stream`: missing")),
        Some(text) => parse_stream(text).ok_or_else(|| {
            ApiError::bad_request(format!(
                "`stream`: {text:?} is not 16 hex digits as search hits give it"
            ))
        })?,
    };
    let seq = match params.seq.as_deref() {
        None | Some("") => return Err(ApiError::bad_request("`seq`: missing")),
        Some(text) => text.parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!("`seq`: {text:?} is not an unsigned integer"))
        })?,
    };
    let side = |name: &str, value: Option<String>| match value.as_deref() {
        None | Some("") => Ok(DEFAULT_CONTEXT),
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|count| *count <= MAX_CONTEXT)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "`{name}`: {text:?} is not a number from 0 to {MAX_CONTEXT}"
                ))
            }),
    };
    // Only ever narrows: a tenant the caller cannot read leaves nothing to search (404).
    let tenants = match params.tenant.filter(|tenant| !tenant.is_empty()) {
        Some(tenant) => reader
            .tenants
            .into_iter()
            .filter(|readable| *readable == tenant)
            .collect(),
        None => reader.tenants,
    };
    Ok(ContextRequest {
        tenants,
        stream,
        seq,
        before: side("before", params.before)?,
        after: side("after", params.after)?,
    })
}

/// Parses the 16 hex digits `HitJson` writes a stream as.
fn parse_stream(text: &str) -> Option<u64> {
    if text.len() != 16 || !text.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(text, 16).ok()
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use crate::api::AppState;
    use crate::api::test_support::{get, state_with, worker_record};
    use crate::index::writer::LogEntry;

    /// 2026-11-28T00:00:00Z.
    const MIDNIGHT: i64 = 1_795_824_000_000_000;

    /// Worker `w-1` (stream ab) writes seqs 0..6, one a second, 3 before midnight; `w-2`
    /// (stream cd) interleaves. Tenant `other-team` holds the same records but is not readable.
    async fn state_with_records(dir: &std::path::Path) -> AppState {
        let entry = |node: &str, stream: u64, seq: u64| {
            let level = if seq == 3 { "ERROR" } else { "INFO" };
            let ts_micros = MIDNIGHT - 3_000_000 + seq as i64 * 1_000_000;
            worker_record(
                ts_micros,
                node,
                (stream, seq),
                level,
                &format!("{node} line {seq}"),
            )
        };
        let entries: Vec<LogEntry> = (0..6)
            .flat_map(|seq| [entry("w-1", 0xab, seq), entry("w-2", 0xcd, seq)])
            .collect();
        state_with(dir, entries).await
    }

    fn messages(json: &serde_json::Value, side: &str) -> Vec<String> {
        json[side]
            .as_array()
            .expect("a list of hits")
            .iter()
            .map(|hit| hit["message"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    #[tokio::test]
    async fn context_in_the_middle_of_a_stream_across_midnight() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = state_with_records(dir.path()).await;
        let (status, json) = get(
            &state,
            "/api/v1/logs/context?stream=00000000000000ab&seq=3&before=2&after=1",
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(json["hit"]["ts"], "2026-11-28T00:00:00.000000Z");
        assert_eq!(json["before"][1]["ts"], "2026-11-27T23:59:59.000000Z");
        insta::assert_json_snapshot!(json);
    }

    #[tokio::test]
    async fn context_at_the_start_of_a_stream_uses_the_default_sides() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = state_with_records(dir.path()).await;
        let (status, json) =
            get(&state, "/api/v1/logs/context?stream=00000000000000CD&seq=0").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(messages(&json, "before"), Vec::<String>::new());
        assert_eq!(json["hit"]["message"], "w-2 line 0");
        assert_eq!(
            messages(&json, "after"),
            [
                "w-2 line 1",
                "w-2 line 2",
                "w-2 line 3",
                "w-2 line 4",
                "w-2 line 5"
            ]
        );
    }

    #[tokio::test]
    async fn unknown_record_is_404() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = state_with_records(dir.path()).await;
        for query in [
            "stream=00000000000000ab&seq=6",
            "stream=00000000000000ef&seq=0",
        ] {
            let (status, json) = get(&state, &format!("/api/v1/logs/context?{query}")).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{query}");
            let message = json["error"].as_str().unwrap_or_default();
            assert!(message.starts_with("no record with stream"), "{message}");
        }
    }

    #[tokio::test]
    async fn bad_parameters_are_400_naming_the_parameter() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = state_with_records(dir.path()).await;
        for (query, named) in [
            ("seq=1", "`stream`"),
            ("stream=ab&seq=1", "`stream`"),
            ("stream=00000000000000zz&seq=1", "`stream`"),
            ("stream=00000000000000ab", "`seq`"),
            ("stream=00000000000000ab&seq=-1", "`seq`"),
            ("stream=00000000000000ab&seq=1&before=1001", "`before`"),
            ("stream=00000000000000ab&seq=1&after=some", "`after`"),
        ] {
            let (status, json) = get(&state, &format!("/api/v1/logs/context?{query}")).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
            let message = json["error"].as_str().unwrap_or_default();
            assert!(message.contains(named), "{query}: {message}");
        }
    }
}
