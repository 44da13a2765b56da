//! `GET /api/v1/logs/histogram`: matching records per time bucket, split by level, for the
//! volume chart above search results. Empty buckets are answered too, so that a chart needs no
//! gap filling.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Query, State};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::api::access::Reader;
use crate::api::logs::FilterParams;
use crate::api::time::time_param;
use crate::api::{ApiError, AppState, within_budget};
use crate::index::histogram::{self, HistogramRequest, MAX_BUCKETS, automatic_step, bucket_count};
use crate::index::query::FieldFilter;

/// At most this many buckets when neither `step` nor `buckets` is given.
const DEFAULT_BUCKETS: usize = 60;
/// The range when `start` is not given: this long before `end` (Loki's default).
const DEFAULT_RANGE: SignedDuration = SignedDuration::from_secs(3600);

/// Query parameters of `/api/v1/logs/histogram`, all optional.
#[derive(Debug, Default, Deserialize)]
pub struct HistogramParams {
    q: Option<String>,
    start: Option<String>,
    end: Option<String>,
    step: Option<String>,
    buckets: Option<String>,
}

/// The JSON answer of `/api/v1/logs/histogram`.
#[derive(Debug, Serialize)]
pub struct HistogramResponse {
    step_ms: i64,
    buckets: Vec<BucketJson>,
}

/// One bucket: its start (RFC 3339, UTC) and counts per level.
#[derive(Debug, Serialize)]
pub struct BucketJson {
    start: String,
    counts: BTreeMap<String, u64>,
    total: u64,
}

/// `GET /api/v1/logs/histogram?q=&start=&end=&step=5m` or `&buckets=60`, and search's
/// `filter=` and `exclude=`
///
/// Counts the records of the caller's tenants matching `q` (search's syntax) and the filters in
/// `[start, end)`, per bucket and level. As in Loki's `query_range`, `end` defaults to now and
/// `start` to one hour before `end`; times take the forms search takes. `step` (`30s`, `5m`,
/// `1h`, `1d`; a bare number is seconds) fixes the bucket width; without it the smallest of
/// 1s, 5s, 10s, 30s, 1m, 5m, 10m, 30m, 1h, 3h, 6h, 12h, 1d (then whole days) giving at most
/// `buckets` buckets (default 60, at most 1000) is chosen. Buckets are aligned to multiples of
/// the step since the Unix epoch (so `1d` buckets are UTC days), like Quickwit's
/// `date_histogram`; the first and last may reach outside the range, but only records inside
/// it are counted. More than `buckets` (or 1000) buckets for a given `step` is a 400.
pub async fn histogram(
    State(state): State<AppState>,
    reader: Reader,
    FilterParams(filters): FilterParams,
    Query(params): Query<HistogramParams>,
) -> Result<Json<HistogramResponse>, ApiError> {
    let request = histogram_request(reader, params, filters, Timestamp::now())?;
    let store = state.store.clone();
    let found = within_budget(&state, "histogram", move || {
        histogram::histogram(&store, &request)
    })
    .await?;
    let buckets = found
        .buckets
        .into_iter()
        .zip(0..)
        .map(|(counts, index)| {
            let start_micros = found.first_bucket_micros + index * found.step_micros;
            BucketJson {
                start: Timestamp::from_microsecond(start_micros)
                    .unwrap_or(Timestamp::UNIX_EPOCH)
                    .to_string(),
                total: counts.values().sum(),
                counts,
            }
        })
        .collect();
    Ok(Json(HistogramResponse {
        step_ms: found.step_micros / 1000,
        buckets,
    }))
}

fn histogram_request(
    reader: Reader,
    params: HistogramParams,
    filters: Vec<FieldFilter>,
    now: Timestamp,
) -> Result<HistogramRequest, ApiError> {
    let time = |name: &str, value: Option<String>| time_param(name, value, now);
    let end = time("end", params.end)?.unwrap_or(now);
    let start = match time("start", params.start)? {
        Some(start) => start,
        None => end
            .checked_sub(DEFAULT_RANGE)
            .map_err(|_| ApiError::bad_request("`end`: too early to start an hour before"))?,
    };
    if end <= start {
        return Err(ApiError::bad_request(format!(
            "`end`: {end} is not after `start` {start}"
        )));
    }
    let max_buckets = match params.buckets.as_deref().filter(|text| !text.is_empty()) {
        None => None,
        Some(text) => Some(
            text.parse::<usize>()
                .ok()
                .filter(|count| (1..=MAX_BUCKETS).contains(count))
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "`buckets`: {text:?} is not a number from 1 to {MAX_BUCKETS}"
                    ))
                })?,
        ),
    };
    let step = match params.step.as_deref().filter(|text| !text.is_empty()) {
        None => automatic_step(start, end, max_buckets.unwrap_or(DEFAULT_BUCKETS)),
        Some(text) => {
            let step = parse_step(text).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "`step`: {text:?} is not a duration like \"30s\", \"5m\", \"1h\" or \"1d\""
                ))
            })?;
            let limit = max_buckets.unwrap_or(MAX_BUCKETS);
            let count = bucket_count(start, end, step);
            if count > limit as u64 {
                return Err(ApiError::bad_request(format!(
                    "`step`: {text} gives {count} buckets, more than the {limit} allowed"
                )));
            }
            step
        }
    };
    Ok(HistogramRequest {
        tenants: reader.tenants,
        query: params.q.unwrap_or_default(),
        filters,
        start,
        end,
        step,
    })
}

/// `30s`, `5m`, `1h`, `1d`, `1w`, or a bare number of seconds; positive.
fn parse_step(text: &str) -> Option<SignedDuration> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let count: i64 = text[..digits_end].parse().ok()?;
    let unit_secs: i64 = match &text[digits_end..] {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return None,
    };
    let secs = count.checked_mul(unit_secs).filter(|secs| *secs > 0)?;
    Some(SignedDuration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::parse_step;
    use crate::api::AppState;
    use crate::api::test_support::{get, state_with, worker_record};
    use crate::index::writer::LogEntry;

    /// 2026-11-28T00:00:00Z.
    const MIDNIGHT: i64 = 1_795_824_000_000_000;

    /// Around midnight: 23:58:10 INFO, 23:59:20 ERROR, 23:59:30 INFO, 00:00:00 ERROR,
    /// 00:02:59 WARNING; tenant `other-team` (not readable) holds the same records.
    async fn state_with_records(dir: &std::path::Path) -> AppState {
        let records = [
            (MIDNIGHT - 110_000_000, "INFO", "Start worker"),
            (MIDNIGHT - 40_000_000, "ERROR", "Compute Failed"),
            (MIDNIGHT - 30_000_000, "INFO", "heartbeat"),
            (MIDNIGHT, "ERROR", "Compute Failed again"),
            (
                MIDNIGHT + 179_000_000,
                "WARNING",
                "Event loop was unresponsive",
            ),
        ];
        let entries: Vec<LogEntry> = records
            .iter()
            .zip(0..)
            .map(|((ts_micros, level, message), seq)| {
                worker_record(*ts_micros, "w-1", (0xab, seq), level, message)
            })
            .collect();
        state_with(dir, entries).await
    }

    fn totals(json: &serde_json::Value) -> Vec<u64> {
        json["buckets"]
            .as_array()
            .expect("buckets")
            .iter()
            .map(|bucket| bucket["total"].as_u64().unwrap_or_default())
            .collect()
    }

    #[tokio::test]
    async fn fixed_step_splits_levels_across_midnight_with_empty_buckets() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = state_with_records(dir.path()).await;
        let (status, json) = get(
            &state,
            "/api/v1/logs/histogram?start=2026-11-27T23:58:00Z&end=2026-11-28T00:03:00Z&step=1m",
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(totals(&json), [1, 2, 1, 0, 1]);
        insta::assert_json_snapshot!(json);
    }

    #[tokio::test]
    async fn automatic_step_is_nice_and_within_the_bucket_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = state_with_records(dir.path()).await;
        let range = "start=2026-11-27T23:00:00Z&end=2026-11-28T01:00:00Z";
        let (_, json) = get(&state, &format!("/api/v1/logs/histogram?{range}")).await;
        assert_eq!(
            json["step_ms"], 300_000,
            "120 minutes in at most 60 buckets"
        );
        assert_eq!(totals(&json).len(), 24);
        assert_eq!(totals(&json)[11..13], [3, 2]);
        let (_, json) = get(&state, &format!("/api/v1/logs/histogram?{range}&buckets=2")).await;
        assert_eq!(json["step_ms"], 3_600_000);
        assert_eq!(totals(&json), [3, 2]);
        assert_eq!(json["buckets"][1]["start"], "2026-11-28T00:00:00Z");
        assert_eq!(json["buckets"][1]["counts"]["ERROR"], 1);
        assert_eq!(json["buckets"][1]["counts"]["WARNING"], 1);
    }

    #[tokio::test]
    async fn the_query_filters_what_is_counted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = state_with_records(dir.path()).await;
        let (_, json) = get(
            &state,
            "/api/v1/logs/histogram?q=failed&start=2026-11-27T23:58:00Z&end=2026-11-28T00:03:00Z&step=60",
        )
        .await;
        assert_eq!(totals(&json), [0, 1, 1, 0, 0]);
    }

    #[tokio::test]
    async fn range_defaults_to_the_hour_before_now() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = state_with_records(dir.path()).await;
        let (status, json) = get(&state, "/api/v1/logs/histogram?step=1m").await;
        assert_eq!(status, StatusCode::OK);
        let count = totals(&json).len();
        assert!((60..=61).contains(&count), "{count} one-minute buckets");
        let (_, json) = get(
            &state,
            "/api/v1/logs/histogram?end=2026-11-28T00:01:00Z&step=1h",
        )
        .await;
        assert_eq!(totals(&json), [3, 1], "23:01 to 00:01 in hour buckets");
    }

    #[tokio::test]
    async fn bad_parameters_are_400_naming_the_parameter() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = state_with_records(dir.path()).await;
        for (query, named) in [
            ("q=level:(ERROR", "bad query"),
            ("start=yesterday", "`start`"),
            ("end=now-1y", "`end`"),
            ("start=now&end=now-1h", "`end`"),
            ("step=0s", "`step`"),
            ("step=5min", "`step`"),
            ("step=1s&start=now-1d", "`step`"),
            ("step=1m&buckets=10", "`step`"),
            ("buckets=0", "`buckets`"),
            ("buckets=1001", "`buckets`"),
        ] {
            let (status, json) = get(&state, &format!("/api/v1/logs/histogram?{query}")).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
            let message = json["error"].as_str().unwrap_or_default();
            assert!(message.contains(named), "{query}: {message}");
        }
    }

    #[test]
    fn steps_take_a_unit_or_seconds() {
        let secs = |text| parse_step(text).map(|step| step.as_secs());
        assert_eq!(secs("30s"), Some(30));
        assert_eq!(secs("5m"), Some(300));
        assert_eq!(secs("1h"), Some(3600));
        assert_eq!(secs("1d"), Some(86_400));
        assert_eq!(secs("90"), Some(90));
        for bad in ["", "0", "m", "1y", "-1m", "1.5m"] {
            assert_eq!(secs(bad), None, "{bad:?}");
        }
    }
}
