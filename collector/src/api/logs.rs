//! `GET /api/v1/logs/search`: log search over the caller's tenants, a page of hits with its
//! cursor, and on request the exact count and facet counts of the whole query. Facet filters
//! come as their own repeated parameters (`filter=node:a`, `exclude=level:INFO`), not in `q`,
//! so that each facet can be counted without its own filter (`index::facets`).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::api::access::Reader;
use crate::api::time::time_param;
use crate::api::{ApiError, AppState, within_budget};
use crate::index::facets::{self, FacetRequest};
use crate::index::query::FieldFilter;
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
    facets: Option<String>,
    count: Option<String>,
}

/// The most `filter` and `exclude` parameters one request may have: each filtered field costs
/// the facet counts one more pass, and a person keeps a handful.
pub const MAX_FILTERS: usize = 64;

/// The facet filters of a request: every `filter=field:value` and `exclude=field:value`
/// parameter, in order. Search, histogram and export take them.
#[derive(Debug, Default)]
pub struct FilterParams(pub Vec<FieldFilter>);

impl<S: Send + Sync> FromRequestParts<S> for FilterParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
        let mut filters = Vec::new();
        for (name, value) in pairs {
            let exclude = match name.as_str() {
                "filter" => false,
                "exclude" => true,
                _ => continue,
            };
            if filters.len() == MAX_FILTERS {
                return Err(ApiError::bad_request(format!(
                    "`{name}`: at most {MAX_FILTERS} `filter` and `exclude` parameters"
                )));
            }
            filters.push(
                FieldFilter::parse(&value, exclude)
                    .map_err(|error| ApiError::bad_request(format!("`{name}`: {error}")))?,
            );
        }
        Ok(FilterParams(filters))
    }
}

/// The JSON answer of `/api/v1/logs/search`.
#[derive(Debug, Serialize)]
pub struct SearchResponse {
    hits: Vec<HitJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
    /// With `count=true`: every match of the query and range, not one page.
    #[serde(skip_serializing_if = "Option::is_none")]
    count: Option<u64>,
    /// With `facets=tenant,level,node,…`: per field, the matches of each value.
    #[serde(skip_serializing_if = "Option::is_none")]
    facets: Option<BTreeMap<String, BTreeMap<String, u64>>>,
}

/// One hit as JSON; `stream` is hex because JavaScript numbers cannot hold a u64. `tenant`
/// is given to callers who read several tenants (`Reader::spans_tenants`), left out for a
/// caller of one (it is always theirs).
#[derive(Debug, Serialize)]
pub struct HitJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant: Option<String>,
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
    /// Present (true) only when the agent cut the message at its size limit.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    truncated: bool,
    /// Present (true) only when the agent gave the record its time, the line having none.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    ts_inferred: bool,
}

impl HitJson {
    /// `hit` as JSON, with its tenant when `with_tenant`.
    pub fn new(hit: Hit, with_tenant: bool) -> HitJson {
        HitJson {
            tenant: with_tenant.then_some(hit.tenant),
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
            truncated: hit.truncated,
            ts_inferred: hit.ts_inferred,
        }
    }
}

/// RFC 3339 in UTC with microseconds, so that strings sort like times.
pub(crate) fn format_ts(ts_micros: i64) -> String {
    let ts = Timestamp::from_microsecond(ts_micros).unwrap_or(Timestamp::UNIX_EPOCH);
    ts.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// `GET /api/v1/logs/search?q=&start=&end=&limit=&order=asc|desc&cursor=&facets=&count=`
/// `&filter=field:value&exclude=field:value…`
pub async fn search(
    State(state): State<AppState>,
    reader: Reader,
    FilterParams(filters): FilterParams,
    Query(mut params): Query<SearchParams>,
) -> Result<Json<SearchResponse>, ApiError> {
    let fields = match params.facets.take().filter(|text| !text.trim().is_empty()) {
        None => Vec::new(),
        Some(text) => facets::facet_fields(&text)
            .map_err(|error| ApiError::bad_request(format!("`facets`: {error}")))?,
    };
    let count = match params.count.take().as_deref() {
        None | Some("" | "false" | "0") => false,
        Some("true" | "1") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "`count`: {other:?} is not \"true\" or \"false\""
            )));
        }
    };
    let with_tenant = reader.spans_tenants();
    let request = search_request(reader, params, filters, Timestamp::now())?;
    let counting = (count || !fields.is_empty()).then(|| FacetRequest {
        tenants: request.tenants.clone(),
        query: request.query.clone(),
        filters: request.filters.clone(),
        start: request.start,
        end: request.end,
        fields,
    });
    let store = state.store.clone();
    let (page, counted) = within_budget(&state, "search", move || {
        let page = search::search(&store, &request)?;
        let counted = counting
            .map(|counting| facets::facets(&store, &counting))
            .transpose()?;
        Ok((page, counted))
    })
    .await?;
    let (total, facets) = match counted {
        Some(counted) => (Some(counted.total), Some(counted.fields)),
        None => (None, None),
    };
    Ok(Json(SearchResponse {
        next_cursor: page.next.map(|key| key.to_cursor()),
        hits: page
            .hits
            .into_iter()
            .map(|hit| HitJson::new(hit, with_tenant))
            .collect(),
        count: total.filter(|_| count),
        facets: facets.filter(|fields| !fields.is_empty()),
    }))
}

pub(crate) fn search_request(
    reader: Reader,
    params: SearchParams,
    filters: Vec<FieldFilter>,
    now: Timestamp,
) -> Result<SearchRequest, ApiError> {
    let time = |name: &str, value: Option<String>| time_param(name, value, now);
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
        tenants: reader.tenants,
        query: params.q.unwrap_or_default(),
        filters,
        start,
        end,
        limit,
        order,
        after,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use axum::http::StatusCode;

    use crate::api::AppState;
    use crate::api::test_support::{get, get_bytes, state_reading, state_with, worker_record};

    async fn state_with_records(dir: &std::path::Path) -> AppState {
        let record = |ts_micros, seq, level: &str, message: &str| {
            worker_record(ts_micros, "w-1", (0xab, seq), level, message)
        };
        let entries = vec![
            record(
                1_795_787_813_599_000,
                0,
                "INFO",
                "Start worker at: tcp://127.0.0.1:42737",
            ),
            record(
                1_795_787_884_595_000,
                101,
                "ERROR",
                "Compute Failed\nKey:       fails-42",
            ),
            record(
                1_795_787_919_503_000,
                307,
                "INFO",
                "Worker process 5100 was killed by signal 9",
            ),
        ];
        state_with(dir, entries).await
    }

    #[tokio::test]
    async fn search_answers_hits_of_readable_tenants_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = state_with_records(dir.path()).await;
        let (status, json) = get(
            &state,
            "/api/v1/logs/search?q=level:ERROR%20OR%20signal&order=desc",
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        insta::assert_json_snapshot!(json);
    }

    #[tokio::test]
    async fn pages_carry_a_cursor_until_the_last() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = state_with_records(dir.path()).await;
        let (_, first) = get(&state, "/api/v1/logs/search?limit=2").await;
        let cursor = first["next_cursor"].as_str().expect("a second page exists");
        let (_, second) = get(
            &state,
            &format!("/api/v1/logs/search?limit=2&cursor={cursor}"),
        )
        .await;
        assert_eq!(second["hits"].as_array().map(Vec::len), Some(1));
        assert_eq!(second.get("next_cursor"), None);
        assert_eq!(second["hits"][0]["seq"], 307);
    }

    #[tokio::test]
    async fn bad_parameters_are_400_naming_the_parameter() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = state_with_records(dir.path()).await;
        for (query, named) in [
            ("q=level:(ERROR", "bad query"),
            ("start=yesterday", "`start`"),
            ("end=now-1y", "`end`"),
            ("limit=0", "`limit`"),
            ("limit=many", "`limit`"),
            ("order=sideways", "`order`"),
            ("cursor=zz", "`cursor`"),
            ("facets=level,message", "`facets`"),
            ("count=maybe", "`count`"),
        ] {
            let (status, json) = get(&state, &format!("/api/v1/logs/search?{query}")).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
            let message = json["error"].as_str().unwrap_or_default();
            assert!(message.contains(named), "{query}: {message}");
        }
    }

    #[tokio::test]
    async fn time_range_bounds_the_hits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = state_with_records(dir.path()).await;
        let (_, json) = get(
            &state,
            "/api/v1/logs/search?start=2026-11-27T13:58:00Z&end=1795787919503",
        )
        .await;
        let seqs: Vec<&serde_json::Value> = json["hits"]
            .as_array()
            .expect("hits")
            .iter()
            .map(|hit| &hit["seq"])
            .collect();
        assert_eq!(seqs, [101], "start is inclusive, end exclusive");
    }

    #[tokio::test]
    async fn count_and_facets_cover_every_match_not_one_page() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = state_with_records(dir.path()).await;
        let (status, json) = get(
            &state,
            "/api/v1/logs/search?q=*&limit=1&count=true&facets=level,node,cluster",
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(json["hits"].as_array().map(Vec::len), Some(1));
        assert!(json["next_cursor"].is_string());
        insta::assert_json_snapshot!(
            serde_json::json!({"count": json["count"], "facets": json["facets"]})
        );
        // Narrowed by the query and the range; without `count`, no count.
        let (_, narrowed) = get(
            &state,
            "/api/v1/logs/search?q=level:INFO&facets=level&start=2026-11-27T00:00:00Z",
        )
        .await;
        assert!(narrowed.get("count").is_none(), "{narrowed}");
        assert_eq!(narrowed["facets"]["level"], serde_json::json!({"INFO": 2}));
        let (_, plain) = get(&state, "/api/v1/logs/search?q=*").await;
        assert!(plain.get("facets").is_none() && plain.get("count").is_none());
    }

    /// A caller of several tenants is told each hit's tenant (search, export,
    /// context), can filter and facet on `tenant`; a caller of one tenant asking for another
    /// gets nothing, never the other's records.
    #[tokio::test]
    async fn hits_name_their_tenant_and_tenant_filters_never_widen_access() {
        let dir = tempfile::tempdir().expect("tempdir");
        let one = state_with_records(dir.path()).await;
        let both = state_reading(Arc::clone(&one.store), &["default", "other-team"]);
        let tenants = |json: &serde_json::Value| -> Vec<String> {
            json["hits"]
                .as_array()
                .expect("hits")
                .iter()
                .map(|hit| hit["tenant"].as_str().unwrap_or("(none)").to_owned())
                .collect()
        };
        let (status, json) = get(&both, "/api/v1/logs/search?q=*&facets=tenant").await;
        assert_eq!(status, StatusCode::OK, "{json}");
        let mut all = tenants(&json);
        all.sort();
        assert_eq!(
            all,
            [
                "default",
                "default",
                "default",
                "other-team",
                "other-team",
                "other-team"
            ]
        );
        assert_eq!(
            json["facets"]["tenant"],
            serde_json::json!({"default": 3, "other-team": 3})
        );
        let (_, json) = get(&both, "/api/v1/logs/search?q=tenant:other-team").await;
        assert_eq!(tenants(&json), ["other-team"; 3]);
        let (_, json) = get(
            &both,
            "/api/v1/logs/search?q=level:ERROR%20-tenant:other-team",
        )
        .await;
        assert_eq!(tenants(&json), ["default"]);

        // Export and context carry it too; context can name the tenant of a shared stream.
        let (_, _, bytes) = get_bytes(&both, "/api/v1/logs/export?q=tenant:other-team").await;
        let exported: Vec<serde_json::Value> = String::from_utf8_lossy(&bytes)
            .lines()
            .map(|line| serde_json::from_str(line).expect("json"))
            .collect();
        assert_eq!(exported.len(), 3);
        assert!(exported.iter().all(|hit| hit["tenant"] == "other-team"));
        let context = "/api/v1/logs/context?stream=00000000000000ab&seq=101";
        let (_, json) = get(&both, &format!("{context}&tenant=other-team")).await;
        assert_eq!(json["hit"]["tenant"], "other-team", "{json}");
        assert_eq!(json["before"][0]["tenant"], "other-team", "{json}");

        // The reader of `default` alone: no `tenant` field, and other-team stays unreadable.
        let (status, json) = get(
            &one,
            "/api/v1/logs/search?q=tenant:other-team&count=true&facets=tenant",
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(json["hits"], serde_json::json!([]));
        assert_eq!(json["count"], 0);
        assert_eq!(json["facets"]["tenant"], serde_json::json!({}));
        let (_, json) = get(&one, "/api/v1/logs/search?q=*").await;
        assert_eq!(tenants(&json), ["(none)"; 3]);
        let (status, _) = get(&one, &format!("{context}&tenant=other-team")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (_, _, bytes) = get_bytes(&one, "/api/v1/logs/export?q=tenant:other-team").await;
        assert!(bytes.is_empty());
        let (status, json) = get(&one, "/api/v1/logs/search?q=tenant:%22other%22*").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{json}");
    }

    #[tokio::test]
    async fn a_search_over_its_time_budget_is_503_saying_so() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut state = state_with_records(dir.path()).await;
        state.search_timeout = Duration::ZERO;
        for uri in [
            "/api/v1/logs/search?q=*",
            "/api/v1/logs/histogram?q=*&start=2026-11-27T00:00:00Z&end=2026-11-28T00:00:00Z",
            "/api/v1/clusters",
        ] {
            let (status, json) = get(&state, uri).await;
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{uri}");
            let message = json["error"].as_str().unwrap_or_default();
            assert!(message.contains("[search] timeout"), "{uri}: {message}");
        }
        let (status, content_type, body) = get_bytes(&state, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            content_type.as_deref(),
            Some(crate::telemetry::CONTENT_TYPE)
        );
        let text = String::from_utf8_lossy(&body);
        for query in ["search", "histogram", "cluster summary"] {
            let line =
                format!("afterglow_collector_queries_over_budget_total{{query=\"{query}\"}} 1");
            assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
