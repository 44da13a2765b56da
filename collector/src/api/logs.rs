//! `GET /api/v1/logs/*`: log search over the caller's tenants.

use axum::Json;
use axum::extract::{Query, State};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::api::time::parse_time;
use crate::api::{ApiError, AppState};
use crate::index::search::{self, Hit, MAX_LIMIT, SearchRequest, SortKey, SortOrder};

/// Hits per page when `limit` is not given.
const DEFAULT_LIMIT: usize = 100;

/// Query parameters of `/api/v1/logs/search`, all optional.
#[derive(Debug, Default, Deserialize)]
pub struct SearchParams {
    q: Option<String>,
    start: Option<String>,
    end: Option<String>,
    limit: Option<String>,
    order: Option<String>,
    cursor: Option<String>,
}

/// The JSON answer of `/api/v1/logs/search`.
#[derive(Debug, Serialize)]
pub struct SearchResponse {
    hits: Vec<HitJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// One hit as JSON; `stream` is hex because JavaScript numbers cannot hold a u64.
#[derive(Debug, Serialize)]
pub struct HitJson {
    ts: String,
    cluster: String,
    node: String,
    role: String,
    source: String,
    level: String,
    logger: String,
    message: String,
    stream: String,
    seq: u64,
}

impl From<Hit> for HitJson {
    fn from(hit: Hit) -> HitJson {
        HitJson {
            ts: format_ts(hit.key.ts_micros),
            cluster: hit.cluster,
            node: hit.key.node,
            role: hit.role,
            source: hit.key.source,
            level: hit.level,
            logger: hit.logger,
            message: hit.message,
            stream: format!("{:016x}", hit.key.stream),
            seq: hit.key.seq,
        }
    }
}

/// RFC 3339 in UTC with microseconds, so that strings sort like times.
fn format_ts(ts_micros: i64) -> String {
    let ts = Timestamp::from_microsecond(ts_micros).unwrap_or(Timestamp::UNIX_EPOCH);
    ts.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// `GET /api/v1/logs/search?q=&start=&end=&limit=&order=asc|desc&cursor=`
pub async fn search(
    State(state): State<AppState>,
    Query(params): Query<SearchParams>,
) -> Result<Json<SearchResponse>, ApiError> {
    let request = search_request(&state, params, Timestamp::now())?;
    let store = state.store.clone();
    let page = tokio::task::spawn_blocking(move || search::search(&store, &request))
        .await
        .map_err(|_| ApiError::internal("the search failed unexpectedly"))??;
    Ok(Json(SearchResponse {
        next_cursor: page.next.map(|key| key.to_cursor()),
        hits: page.hits.into_iter().map(HitJson::from).collect(),
    }))
}

fn search_request(
    state: &AppState,
    params: SearchParams,
    now: Timestamp,
) -> Result<SearchRequest, ApiError> {
    let time = |name: &str, value: Option<String>| {
        value
            .filter(|text| !text.trim().is_empty())
            .map(|text| {
                parse_time(&text, now)
                    .map_err(|error| ApiError::bad_request(format!("`{name}`: {error}")))
            })
            .transpose()
    };
    let start = time("start", params.start)?;
    let end = time("end", params.end)?;
    let limit = match params.limit.as_deref().filter(|text| !text.is_empty()) {
        None => DEFAULT_LIMIT,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|limit| (1..=MAX_LIMIT).contains(limit))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "`limit`: {text:?} is not a number from 1 to {MAX_LIMIT}"
                ))
            })?,
    };
    let order = match params.order.as_deref().unwrap_or("asc") {
        "asc" | "" => SortOrder::Asc,
        "desc" => SortOrder::Desc,
        other => {
            return Err(ApiError::bad_request(format!(
                "`order`: {other:?} is not \"asc\" or \"desc\""
            )));
        }
    };
    let after =
        match params.cursor.as_deref().filter(|text| !text.is_empty()) {
            None => None,
            Some(cursor) => Some(SortKey::from_cursor(cursor).ok_or_else(|| {
                ApiError::bad_request("`cursor`: not a cursor returned by this API")
            })?),
        };
    Ok(SearchRequest {
        tenants: state.readable_tenants.as_ref().clone(),
        query: params.q.unwrap_or_default(),
        start,
        end,
        limit,
        order,
        after,
    })
}
