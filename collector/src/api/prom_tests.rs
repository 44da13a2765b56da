//! The Prometheus API over HTTP (axum `oneshot`): JSON shapes, GET and POST, errors.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::{encode_timestamp, parse_duration_ns, parse_time};
use crate::api::prom_limits::{PromLimits, QUERY_PLACE_WAIT};
use crate::api::{AppState, router};
use crate::config::DEFAULT_MAX_OPEN_PARTITIONS;
use crate::index::partition::LogStore;
use crate::promql::tests::MemorySource;
use crate::series::select::{Labels, SeriesSource};

fn labels(pairs: &[(&str, &str)]) -> Labels {
    let mut labels: Labels = pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect();
    labels.sort();
    labels
}

/// Two counters sampled every 15 s from 1_795_780_800 s (2026-11-27T12:00:00Z) for 10 min,
/// and a gauge with a NaN and infinities.
fn state(dir: &std::path::Path) -> AppState {
    const BASE_MS: i64 = 1_795_780_800_000;
    let mut source = MemorySource::default();
    for (instance, per_step) in [("w-1", 3.0), ("w-2", 5.0)] {
        let samples: Vec<(i64, f64)> = (0..=40)
            .map(|i| (BASE_MS + i * 15_000, i as f64 * per_step))
            .collect();
        source.add(
            &labels(&[
                ("__name__", "dask_tasks_total"),
                ("cluster", "nightly-etl"),
                ("instance", instance),
            ]),
            &samples,
        );
    }
    for (kind, value) in [
        ("nan", f64::NAN),
        ("inf", f64::INFINITY),
        ("ninf", f64::NEG_INFINITY),
    ] {
        source.add(
            &labels(&[("__name__", "odd_gauge"), ("kind", kind)]),
            &[(BASE_MS, value)],
        );
    }
    let source: Arc<dyn SeriesSource> = Arc::new(source);
    let mut state = crate::api::test_support::state_reading(
        Arc::new(LogStore::open(dir, DEFAULT_MAX_OPEN_PARTITIONS).expect("store opens")),
        &["default"],
    );
    state.series = Arc::new(move |_, _| Arc::clone(&source));
    state
}

async fn send(state: &AppState, request: Request<Body>) -> (StatusCode, String, serde_json::Value) {
    let response = router(state.clone())
        .oneshot(request)
        .await
        .expect("router answers");
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body reads")
        .to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, content_type, json)
}

async fn get(state: &AppState, uri: &str) -> (StatusCode, serde_json::Value) {
    let request = Request::get(uri)
        .body(Body::empty())
        .expect("request builds");
    let (status, _, json) = send(state, request).await;
    (status, json)
}

async fn raw_body(state: &AppState, uri: &str) -> String {
    let request = Request::get(uri)
        .body(Body::empty())
        .expect("request builds");
    let response = router(state.clone())
        .oneshot(request)
        .await
        .expect("router answers");
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body reads")
        .to_bytes();
    String::from_utf8(bytes.to_vec()).expect("utf-8")
}

async fn post_form(state: &AppState, uri: &str, form: &str) -> (StatusCode, serde_json::Value) {
    let request = Request::post(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form.to_owned()))
        .expect("request builds");
    let (status, _, json) = send(state, request).await;
    (status, json)
}

#[tokio::test]
async fn instant_query_answers_a_vector_in_prometheus_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = state(dir.path());
    let (status, json) = get(
        &state,
        "/api/v1/query?query=sum%20by%20(cluster)%20(rate(dask_tasks_total%5B1m%5D))&time=1795781400",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    insta::assert_json_snapshot!(json, @r#"
    {
      "data": {
        "result": [
          {
            "metric": {
              "cluster": "nightly-etl"
            },
            "value": [
              1795781400,
              "0.5333333333333333"
            ]
          }
        ],
        "resultType": "vector"
      },
      "status": "success"
    }
    "#);
}

#[tokio::test]
async fn post_form_body_gives_the_same_answer_as_get() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = state(dir.path());
    let (_, by_get) = get(
        &state,
        "/api/v1/query?query=dask_tasks_total&time=1795781400.5",
    )
    .await;
    let (status, by_post) = post_form(
        &state,
        "/api/v1/query?time=1795781400.5",
        "query=dask_tasks_total",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_get, by_post);
    assert_eq!(by_post["data"]["result"].as_array().map(Vec::len), Some(2));
    // The body wins over the query string, as Go's `r.FormValue`.
    let (_, overridden) = post_form(
        &state,
        "/api/v1/query?query=nothing&time=1795781400",
        "query=dask_tasks_total",
    )
    .await;
    assert_eq!(
        overridden["data"]["result"].as_array().map(Vec::len),
        Some(2)
    );
}

#[tokio::test]
async fn range_query_answers_a_matrix_with_float_second_timestamps() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = state(dir.path());
    let body = raw_body(
        &state,
        "/api/v1/query_range?query=dask_tasks_total%7Binstance%3D%22w-1%22%7D&start=2026-11-27T12:00:00Z&end=2026-11-27T12:00:45.5Z&step=15s",
    )
    .await;
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"dask_tasks_total","cluster":"nightly-etl","instance":"w-1"},"values":[[1795780800,"0"],[1795780815,"3"],[1795780830,"6"],[1795780845,"9"]]}]}}"#
    );
    let (status, json) = get(
        &state,
        "/api/v1/query_range?query=time()&start=1795780800&end=1795780801&step=0.5",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    insta::assert_json_snapshot!(json["data"], @r#"
    {
      "result": [
        {
          "metric": {},
          "values": [
            [
              1795780800,
              "1795780800"
            ],
            [
              1795780800.5,
              "1795780800.5"
            ],
            [
              1795780801,
              "1795780801"
            ]
          ]
        }
      ],
      "resultType": "matrix"
    }
    "#);
}

#[tokio::test]
async fn scalar_string_and_special_values_are_encoded_as_prometheus_does() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = state(dir.path());
    assert_eq!(
        raw_body(&state, "/api/v1/query?query=1%2F3&time=1795780800.25").await,
        r#"{"status":"success","data":{"resultType":"scalar","result":[1795780800.250,"0.3333333333333333"]}}"#
    );
    assert_eq!(
        raw_body(&state, "/api/v1/query?query=%22a%5C%22b%22&time=10").await,
        r#"{"status":"success","data":{"resultType":"string","result":[10,"a\"b"]}}"#
    );
    let (_, json) = get(&state, "/api/v1/query?query=odd_gauge&time=1795780800").await;
    let mut values: Vec<String> = json["data"]["result"]
        .as_array()
        .expect("a vector")
        .iter()
        .map(|sample| sample["value"][1].as_str().expect("a string").to_owned())
        .collect();
    values.sort();
    assert_eq!(values, ["+Inf", "-Inf", "NaN"]);
}

#[tokio::test]
async fn errors_have_prometheus_types_and_statuses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = state(dir.path());
    let cases = [
        (
            "/api/v1/query?query=rate(x",
            StatusCode::BAD_REQUEST,
            "bad_data",
            "invalid parameter \"query\"",
        ),
        (
            "/api/v1/query?query=up&time=yesterday",
            StatusCode::BAD_REQUEST,
            "bad_data",
            "invalid parameter \"time\": cannot parse \"yesterday\" to a valid timestamp",
        ),
        (
            "/api/v1/query?query=mad_over_time(up%5B1m%5D)",
            StatusCode::UNPROCESSABLE_ENTITY,
            "execution",
            "function mad_over_time is not supported",
        ),
        (
            "/api/v1/query?query=up&timeout=0s",
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "query timed out in expression evaluation",
        ),
        (
            "/api/v1/query_range?query=up&end=10&step=1",
            StatusCode::BAD_REQUEST,
            "bad_data",
            "invalid parameter \"start\"",
        ),
        (
            "/api/v1/query_range?query=up&start=10&end=5&step=1",
            StatusCode::BAD_REQUEST,
            "bad_data",
            "end timestamp must not be before start time",
        ),
        (
            "/api/v1/query_range?query=up&start=0&end=5&step=0",
            StatusCode::BAD_REQUEST,
            "bad_data",
            "zero or negative query resolution step widths are not accepted",
        ),
        (
            "/api/v1/query_range?query=up&start=0&end=5&step=often",
            StatusCode::BAD_REQUEST,
            "bad_data",
            "invalid parameter \"step\": cannot parse \"often\" to a valid duration",
        ),
        (
            "/api/v1/query_range?query=up&start=0&end=86400&step=1",
            StatusCode::BAD_REQUEST,
            "bad_data",
            "exceeded maximum resolution of 11,000 points per timeseries",
        ),
        (
            "/api/v1/query_range?query=up%5B5m%5D&start=0&end=5&step=1",
            StatusCode::BAD_REQUEST,
            "bad_data",
            "invalid expression type \"range vector\" for range query",
        ),
        (
            "/api/v1/series",
            StatusCode::BAD_REQUEST,
            "bad_data",
            "no match[] parameter provided",
        ),
        (
            "/api/v1/series?match[]=up%2B1",
            StatusCode::BAD_REQUEST,
            "bad_data",
            "invalid parameter \"match[]\"",
        ),
    ];
    for (uri, status, error_type, message) in cases {
        let (actual_status, json) = get(&state, uri).await;
        assert_eq!(actual_status, status, "{uri}: {json}");
        assert_eq!(json["status"], "error", "{uri}");
        assert_eq!(json["errorType"], error_type, "{uri}");
        let text = json["error"].as_str().unwrap_or_default();
        assert!(text.contains(message), "{uri}: {text}");
    }
    let (status, json) = get(&state, "/api/v1/query?query=mad_over_time(up%5B1m%5D)").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    insta::assert_json_snapshot!(json, @r#"
    {
      "error": "function mad_over_time is not supported",
      "errorType": "execution",
      "status": "error"
    }
    "#);
}

#[tokio::test]
async fn series_labels_and_values_list_matching_series() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = state(dir.path());
    let (status, json) = get(
        &state,
        "/api/v1/series?match[]=dask_tasks_total%7Binstance%3D%22w-2%22%7D&match[]=odd_gauge%7Bkind%3D%22nan%22%7D",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    insta::assert_json_snapshot!(json, @r#"
    {
      "data": [
        {
          "__name__": "dask_tasks_total",
          "cluster": "nightly-etl",
          "instance": "w-2"
        },
        {
          "__name__": "odd_gauge",
          "kind": "nan"
        }
      ],
      "status": "success"
    }
    "#);
    let (_, names) = get(&state, "/api/v1/labels").await;
    assert_eq!(
        names["data"],
        serde_json::json!(["__name__", "cluster", "instance", "kind"])
    );
    let (_, names) = post_form(&state, "/api/v1/labels", "match[]=odd_gauge").await;
    assert_eq!(names["data"], serde_json::json!(["__name__", "kind"]));
    let (_, values) = get(&state, "/api/v1/label/__name__/values").await;
    assert_eq!(
        values["data"],
        serde_json::json!(["dask_tasks_total", "odd_gauge"])
    );
    let (_, limited) = get(&state, "/api/v1/label/kind/values?limit=1").await;
    assert_eq!(limited["data"], serde_json::json!(["inf"]));
    assert_eq!(
        limited["warnings"],
        serde_json::json!(["results truncated due to limit"])
    );
    let (_, outside) = get(&state, "/api/v1/label/kind/values?start=0&end=10").await;
    assert_eq!(outside["data"], serde_json::json!([]));
}

#[tokio::test]
async fn buildinfo_and_metadata_answer_for_grafana() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = state(dir.path());
    let (status, json) = get(&state, "/api/v1/status/buildinfo").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["status"], "success");
    assert!(
        json["data"]["version"]
            .as_str()
            .is_some_and(|v| v.starts_with('3'))
    );
    let (status, json) = get(&state, "/api/v1/metadata").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json, serde_json::json!({"status": "success", "data": {}}));
    let (status, json) = post_form(&state, "/api/v1/query_exemplars", "query=up").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json, serde_json::json!({"status": "success", "data": []}));
}

/// Found by `scripts/fuzz api_time`: the points of a range query were counted in i64, so two
/// extreme times overflowed (a panic in debug builds) and a long span times 10^6 saturated,
/// letting 122 million points per series through.
#[tokio::test]
async fn fuzz_range_query_points_are_counted_without_overflow() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = state(dir.path());
    for (start, end, step) in [
        ("0", "122202220999820", "999820"),
        ("-9200000000000000", "9200000000000000", "1"),
        ("-9200000000000000", "9200000000000000", "292y"),
    ] {
        let uri = format!("/api/v1/query_range?query=1&start={start}&end={end}&step={step}");
        let (status, json) = get(&state, &uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(json["errorType"], "bad_data", "{uri}");
        let text = json["error"].as_str().unwrap_or_default();
        assert!(text.contains("11,000 points"), "{uri}: {text}");
    }
}

/// `afterglow_collector_queries_refused_total{reason}` as `/metrics` shows it (0 if absent).
fn refused(state: &AppState, reason: &str) -> f64 {
    let line = format!("afterglow_collector_queries_refused_total{{reason=\"{reason}\"}} ");
    state
        .metrics
        .encode()
        .lines()
        .find_map(|text| text.strip_prefix(&line)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// `[query] max_samples` is the configured one, a query over it is answered 422
/// in Prometheus's words and naming the setting, and the refusal is counted.
#[tokio::test]
async fn a_query_over_max_samples_is_answered_422_naming_the_limit_and_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut state = state(dir.path());
    // One series' 41 samples read and 41 points made fit; both series' twice that do not.
    let options = crate::promql::QueryOptions {
        max_samples: 100,
        ..crate::promql::QueryOptions::default()
    };
    state.prom_limits = Arc::new(PromLimits::new(options, 4));
    let range = "&start=1795780800&end=1795781400&step=15s";
    let (status, json) = get(
        &state,
        &format!("/api/v1/query_range?query=dask_tasks_total%7Binstance%3D%22w-1%22%7D{range}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(refused(&state, "max_samples"), 0.0);

    let (status, json) = get(
        &state,
        &format!("/api/v1/query_range?query=dask_tasks_total{range}"),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{json}");
    assert_eq!(json["status"], "error");
    assert_eq!(json["errorType"], "execution");
    let message = json["error"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(
            "query processing would load too many samples into memory in query execution"
        ) && message.contains("more than 100 samples ([query] max_samples)"),
        "{message}"
    );
    assert_eq!(refused(&state, "max_samples"), 1.0);
}

/// At most `[query] max_concurrent` queries are evaluated at once; one more waits
/// for a place, and is answered 503 `unavailable` (counted) when none comes in time.
#[tokio::test(start_paused = true)]
async fn a_query_without_a_place_waits_for_one_then_is_answered_503_and_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut state = state(dir.path());
    state.prom_limits = Arc::new(PromLimits::new(crate::promql::QueryOptions::default(), 1));
    let query = "/api/v1/query?query=dask_tasks_total&time=1795781400";
    // The only place, taken as a running query would.
    let running = state
        .prom_limits
        .place(&state.metrics)
        .await
        .expect("a free place");
    let started = tokio::time::Instant::now();
    let (status, json) = get(&state, query).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{json}");
    assert_eq!(json["errorType"], "unavailable");
    let message = json["error"].as_str().unwrap_or_default();
    assert!(message.contains("[query] max_concurrent"), "{message}");
    assert!(
        started.elapsed() >= QUERY_PLACE_WAIT,
        "it waited for a place first"
    );
    assert_eq!(refused(&state, "max_concurrent"), 1.0);

    // A place freed while a query waits is taken by it.
    let waiting = tokio::spawn({
        let state = state.clone();
        async move { get(&state, query).await }
    });
    tokio::time::sleep(QUERY_PLACE_WAIT / 2).await;
    drop(running);
    let (status, json) = waiting.await.expect("the request ends");
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(refused(&state, "max_concurrent"), 1.0);
}

#[test]
fn times_and_durations_parse_as_in_prometheus() {
    assert_eq!(parse_time("1795780800"), Ok(1_795_780_800_000));
    assert_eq!(parse_time("1795780800.1234"), Ok(1_795_780_800_123));
    assert_eq!(parse_time("-1.5"), Ok(-1_500));
    assert_eq!(
        parse_time("2026-11-27T13:00:00.5+01:00"),
        Ok(1_795_780_800_500)
    );
    assert!(parse_time("now").is_err());
    assert!(parse_time("NaN").is_err());
    // Seconds only, however many digits, as Prometheus: never milliseconds.
    assert_eq!(parse_time("253402300799"), Ok(253_402_300_799_000));
    assert_eq!(parse_time("1700000000000"), Ok(1_700_000_000_000_000));
    assert_eq!(parse_duration_ns("15"), Ok(15_000_000_000));
    assert_eq!(parse_duration_ns("0.5"), Ok(500_000_000));
    assert_eq!(parse_duration_ns("1m30s"), Ok(90_000_000_000));
    assert_eq!(parse_duration_ns("1h5ms"), Ok(3_600_005_000_000));
    assert_eq!(parse_duration_ns("1d"), Ok(86_400_000_000_000));
    assert!(
        parse_duration_ns("30s1m").is_err(),
        "units must be in order"
    );
    assert!(parse_duration_ns("").is_err());
    assert!(parse_duration_ns("5x").is_err());
}

#[test]
fn timestamps_keep_exactly_their_milliseconds() {
    assert_eq!(encode_timestamp(1_795_780_800_000), "1795780800");
    assert_eq!(encode_timestamp(1_795_780_800_500), "1795780800.500");
    assert_eq!(encode_timestamp(1_795_780_800_007), "1795780800.007");
    assert_eq!(encode_timestamp(-1_500), "-1.500");
    assert_eq!(encode_timestamp(0), "0");
}

/// To a caller of several tenants each series says its tenant (`tenant` label), so
/// that `sum by (tenant)` works and a pushed `tenant` label (stored `exported_tenant`) cannot
/// pass for another team; a caller of one tenant sees no `tenant` label.
#[tokio::test]
async fn series_carry_their_tenant_for_a_caller_of_several() {
    use afterglow_proto::v1::{Label, MetricFamily, MetricSeries, PushRequest, Sample, Stream};

    use crate::series::{SeriesConfig, SeriesStore};

    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(
        SeriesStore::open(&dir.path().join("series"), SeriesConfig::default()).expect("opens"),
    );
    let now_ms = jiff::Timestamp::now().as_millisecond();
    let push = |labels: &[(&str, &str)], value: f64| PushRequest {
        streams: vec![Stream {
            id: 1,
            cluster: "c".to_owned(),
            node: "n".to_owned(),
            role: 2,
            source: "http://n:8787/metrics".to_owned(),
        }],
        metric_families: vec![MetricFamily {
            name: "up".to_owned(),
            series: vec![MetricSeries {
                metric: "up".to_owned(),
                labels: labels
                    .iter()
                    .map(|(name, value)| Label {
                        name: (*name).to_owned(),
                        value: (*value).to_owned(),
                    })
                    .collect(),
                samples: vec![Sample {
                    ts_unix_millis: now_ms - 1000,
                    value,
                }],
                seq: 1,
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    store.append("team-a", &push(&[("tenant", "team-b")], 1.0));
    store.append("team-b", &push(&[], 2.0));
    let logs = Arc::new(
        LogStore::open(&dir.path().join("logs"), DEFAULT_MAX_OPEN_PARTITIONS).expect("opens"),
    );
    let state_of = |tenants: &[&str]| {
        let mut state = crate::api::test_support::state_reading(Arc::clone(&logs), tenants);
        let store = Arc::clone(&store);
        state.series =
            Arc::new(move |tenants, tenant_label| store.source_labeled(tenants, tenant_label));
        state
    };
    let both = state_of(&["team-a", "team-b"]);
    let (status, json) = get(&both, "/api/v1/series?match%5B%5D=up").await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(
        json["data"],
        serde_json::json!([
            {"__name__": "up", "exported_tenant": "team-b", "tenant": "team-a"},
            {"__name__": "up", "tenant": "team-b"},
        ])
    );
    let (_, json) = get(&both, "/api/v1/query?query=sum%20by%20(tenant)%20(up)").await;
    let mut sums: Vec<(String, String)> = json["data"]["result"]
        .as_array()
        .expect("a vector")
        .iter()
        .map(|sample| {
            (
                sample["metric"]["tenant"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                sample["value"][1].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    sums.sort();
    assert_eq!(
        sums,
        [
            ("team-a".to_owned(), "1".to_owned()),
            ("team-b".to_owned(), "2".to_owned())
        ]
    );
    let (_, json) = get(&both, "/api/v1/query?query=up%7Btenant%3D%22team-b%22%7D").await;
    assert_eq!(
        json["data"]["result"].as_array().map(Vec::len),
        Some(1),
        "{json}"
    );
    assert_eq!(json["data"]["result"][0]["value"][1], "2");
    let (_, json) = get(&both, "/api/v1/label/tenant/values").await;
    assert_eq!(json["data"], serde_json::json!(["team-a", "team-b"]));

    // A reader of team-a alone: no `tenant` label, and `tenant="team-b"` finds nothing.
    let one = state_of(&["team-a"]);
    let (_, json) = get(&one, "/api/v1/query?query=up").await;
    assert_eq!(
        json["data"]["result"][0]["metric"],
        serde_json::json!({"__name__": "up", "exported_tenant": "team-b"})
    );
    let (_, json) = get(&one, "/api/v1/query?query=up%7Btenant%3D%22team-b%22%7D").await;
    assert_eq!(json["data"]["result"], serde_json::json!([]));
}
