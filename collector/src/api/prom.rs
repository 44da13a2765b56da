//! The Prometheus HTTP API over stored series (`/api/v1/query`, `query_range`, `series`,
//! `labels`, `label/{name}/values`, plus the `status/buildinfo`, `metadata` and
//! `query_exemplars` stubs Grafana asks for), so Grafana and PromQL clients work unchanged.
//! Responses follow Prometheus's JSON byte for byte (float-second timestamps, values as
//! Go-formatted strings), and errors use its `{"status":"error","errorType":…}` shape, not
//! `ApiError`'s.

use std::time::Duration;

use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use promql_parser::parser::Expr;

use crate::api::AppState;
use crate::promql::{
    self, DEFAULT_TIMEOUT, MAX_POINTS_PER_SERIES, QueryError, QueryOptions, Value, format_value,
};
use crate::series::select::{Labels, Matcher, SelectError};

/// "Everything" for series and label queries without `start`/`end` (±73 million years, far
/// from i64 overflow in the store's arithmetic).
const MIN_TIME_MS: i64 = i64::MIN / 4;
const MAX_TIME_MS: i64 = i64::MAX / 4;

/// The version reported to clients: Grafana enables features by Prometheus version, and
/// this API answers as Prometheus 3 does.
const COMPATIBLE_PROMETHEUS_VERSION: &str = "3.0.0";

/// An error answered in Prometheus's shape.
#[derive(Debug)]
pub struct PromError {
    status: StatusCode,
    error_type: &'static str,
    message: String,
}

impl PromError {
    /// A 400 `bad_data`.
    fn bad_data(message: impl Into<String>) -> PromError {
        PromError {
            status: StatusCode::BAD_REQUEST,
            error_type: "bad_data",
            message: message.into(),
        }
    }

    /// A 400 naming the parameter, as Prometheus's `invalidParamError`.
    fn invalid_parameter(name: &str, message: impl std::fmt::Display) -> PromError {
        PromError::bad_data(format!("invalid parameter \"{name}\": {message}"))
    }

    fn internal(message: impl Into<String>) -> PromError {
        PromError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error_type: "internal",
            message: message.into(),
        }
    }
}

impl From<QueryError> for PromError {
    fn from(error: QueryError) -> PromError {
        let message = error.to_string();
        let (status, error_type) = match error {
            QueryError::Parse(_) | QueryError::BadQuery(_) => {
                return PromError::invalid_parameter("query", message);
            }
            QueryError::Unsupported(_) | QueryError::Execution(_) | QueryError::TooManySamples => {
                (StatusCode::UNPROCESSABLE_ENTITY, "execution")
            }
            QueryError::Timeout => (StatusCode::SERVICE_UNAVAILABLE, "timeout"),
            QueryError::Storage(_) => {
                tracing::error!(error = %message, "series store failed during a query");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        };
        PromError {
            status,
            error_type,
            message,
        }
    }
}

impl From<SelectError> for PromError {
    fn from(error: SelectError) -> PromError {
        PromError::from(QueryError::from(error))
    }
}

impl IntoResponse for PromError {
    fn into_response(self) -> Response {
        let body = format!(
            "{{\"status\":\"error\",\"errorType\":\"{}\",\"error\":{}}}",
            self.error_type,
            json_string(&self.message)
        );
        json_response(self.status, body)
    }
}

fn json_response(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// `{"status":"success","data":…}` around already-encoded `data`.
fn success(data: &str, warnings: &[String]) -> Response {
    let mut body = format!("{{\"status\":\"success\",\"data\":{data}");
    if !warnings.is_empty() {
        let encoded: Vec<String> = warnings.iter().map(|w| json_string(w)).collect();
        body.push_str(&format!(",\"warnings\":[{}]", encoded.join(",")));
    }
    body.push('}');
    json_response(StatusCode::OK, body)
}

/// A JSON string literal.
fn json_string(text: &str) -> String {
    serde_json::to_string(text).expect("a string always serializes")
}

/// Request parameters: the form body (POST) first, then the query string, as Go's
/// `r.Form`; a single-valued parameter is its first occurrence.
struct Params(Vec<(String, String)>);

impl Params {
    async fn read(request: Request) -> Result<Params, PromError> {
        let Query(mut pairs) = Query::<Vec<(String, String)>>::try_from_uri(request.uri())
            .map_err(|error| {
                PromError::bad_data(format!("cannot parse the query string: {error}"))
            })?;
        let is_form = request.method() == Method::POST
            && request
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
        if is_form {
            let Form(mut body_pairs) = Form::<Vec<(String, String)>>::from_request(request, &())
                .await
                .map_err(|error| {
                    PromError::bad_data(format!("cannot parse the form body: {error}"))
                })?;
            body_pairs.append(&mut pairs);
            pairs = body_pairs;
        }
        Ok(Params(pairs))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    fn get_non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|value| !value.is_empty())
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .collect()
    }
}

/// Parses a time as Prometheus does: unix seconds with a fraction (rounded to the
/// millisecond) or RFC 3339.
fn parse_time(text: &str) -> Result<i64, String> {
    let cannot = || format!("cannot parse {text:?} to a valid timestamp");
    if let Ok(seconds) = text.parse::<f64>() {
        if !seconds.is_finite() || seconds.abs() > 9.2e15 {
            return Err(cannot());
        }
        let whole = seconds.trunc();
        let fraction_ms = ((seconds - whole) * 1000.0).round();
        return Ok(whole as i64 * 1000 + fraction_ms as i64);
    }
    text.parse::<jiff::Timestamp>()
        .map(|ts| ts.as_millisecond())
        .map_err(|_| cannot())
}

/// Parses a duration as Prometheus does: seconds as a float, or `1h30m`-style with units
/// `y w d h m s ms` in that order. Returns nanoseconds.
fn parse_duration_ns(text: &str) -> Result<i64, String> {
    if let Ok(seconds) = text.parse::<f64>() {
        let nanos = seconds * 1e9;
        if !nanos.is_finite() || nanos > i64::MAX as f64 || nanos < i64::MIN as f64 {
            return Err(format!(
                "cannot parse {text:?} to a valid duration. It overflows int64"
            ));
        }
        return Ok(nanos as i64);
    }
    parse_prometheus_duration_ms(text)
        .and_then(|ms| ms.checked_mul(1_000_000))
        .ok_or_else(|| format!("cannot parse {text:?} to a valid duration"))
}

/// Prometheus's `model.ParseDuration`, in milliseconds.
fn parse_prometheus_duration_ms(text: &str) -> Option<i64> {
    const UNITS: [(&str, i64); 7] = [
        ("y", 365 * 24 * 3_600_000),
        ("w", 7 * 24 * 3_600_000),
        ("d", 24 * 3_600_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ];
    if text == "0" {
        return Some(0);
    }
    if text.is_empty() {
        return None;
    }
    let mut rest = text;
    let mut next_unit = 0;
    let mut total: i64 = 0;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 {
            return None;
        }
        let count: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let position = UNITS[next_unit..]
            .iter()
            .position(|(name, _)| *name == unit)?;
        let (_, unit_ms) = UNITS[next_unit + position];
        next_unit += position + 1;
        total = total.checked_add(count.checked_mul(unit_ms)?)?;
    }
    Some(total)
}

/// The query options of a request: `timeout` (capped by the default) and
/// `lookback_delta`.
fn query_options(params: &Params) -> Result<QueryOptions, PromError> {
    let mut options = QueryOptions::default();
    if let Some(text) = params.get_non_empty("timeout") {
        let nanos = parse_duration_ns(text)
            .map_err(|error| PromError::invalid_parameter("timeout", error))?;
        let asked = Duration::from_nanos(u64::try_from(nanos).unwrap_or(0));
        options.timeout = asked.min(DEFAULT_TIMEOUT);
    }
    if let Some(text) = params.get_non_empty("lookback_delta") {
        let nanos = parse_duration_ns(text).map_err(|error| {
            PromError::bad_data(format!("error parsing lookback delta duration: {error}"))
        })?;
        if nanos > 0 {
            options.lookback_delta_ms = nanos / 1_000_000;
        }
    }
    Ok(options)
}

fn required_time(params: &Params, name: &str) -> Result<i64, PromError> {
    parse_time(params.get(name).unwrap_or(""))
        .map_err(|error| PromError::invalid_parameter(name, error))
}

fn optional_time(params: &Params, name: &str, default: i64) -> Result<i64, PromError> {
    match params.get_non_empty(name) {
        None => Ok(default),
        Some(text) => parse_time(text).map_err(|error| PromError::invalid_parameter(name, error)),
    }
}

/// The `match[]` selectors, each as store matcher sets, flattened ("any of them").
fn match_selectors(params: &Params) -> Result<Vec<Vec<Matcher>>, PromError> {
    let mut sets = Vec::new();
    for text in params.all("match[]") {
        let selector = match promql::parse(text) {
            Ok(Expr::VectorSelector(selector)) => selector,
            Ok(_) => {
                return Err(PromError::invalid_parameter(
                    "match[]",
                    format!("{text:?} is not a series selector"),
                ));
            }
            Err(error) => return Err(PromError::invalid_parameter("match[]", error)),
        };
        sets.extend(promql::matcher_sets(&selector).map_err(PromError::from)?);
    }
    Ok(sets)
}

/// The `limit` parameter (0 or absent: no limit).
fn limit(params: &Params) -> Result<usize, PromError> {
    match params.get_non_empty("limit") {
        None => Ok(0),
        Some(text) => text.parse::<usize>().map_err(|_| {
            PromError::invalid_parameter("limit", "limit must be a non-negative number")
        }),
    }
}

/// Runs blocking work (store reads, evaluation) off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, PromError> + Send + 'static,
) -> Result<T, PromError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| PromError::internal("the query failed unexpectedly"))?
}

/// `GET|POST /api/v1/query?query=&time=&timeout=&lookback_delta=`
pub async fn query(State(state): State<AppState>, request: Request) -> Response {
    respond(instant(state, request).await)
}

async fn instant(state: AppState, request: Request) -> Result<Response, PromError> {
    let params = Params::read(request).await?;
    let now_ms = jiff::Timestamp::now().as_millisecond();
    let time_ms = optional_time(&params, "time", now_ms)?;
    let options = query_options(&params)?;
    let text = params.get("query").unwrap_or("").to_owned();
    let source = (state.series)(state.readable_tenants.to_vec());
    let value = blocking(move || {
        Ok(promql::instant_query(
            source.as_ref(),
            &text,
            time_ms,
            &options,
        )?)
    })
    .await?;
    Ok(success(&encode_query_data(&value), &[]))
}

/// `GET|POST /api/v1/query_range?query=&start=&end=&step=&timeout=&lookback_delta=`
pub async fn query_range(State(state): State<AppState>, request: Request) -> Response {
    respond(range(state, request).await)
}

async fn range(state: AppState, request: Request) -> Result<Response, PromError> {
    let params = Params::read(request).await?;
    let start_ms = required_time(&params, "start")?;
    let end_ms = required_time(&params, "end")?;
    if end_ms < start_ms {
        return Err(PromError::invalid_parameter(
            "end",
            "end timestamp must not be before start time",
        ));
    }
    let step_ns = parse_duration_ns(params.get("step").unwrap_or(""))
        .map_err(|error| PromError::invalid_parameter("step", error))?;
    if step_ns <= 0 {
        return Err(PromError::invalid_parameter(
            "step",
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    let step_ms = (step_ns / 1_000_000).max(1);
    if (end_ms - start_ms).saturating_mul(1_000_000) / step_ns > MAX_POINTS_PER_SERIES {
        return Err(PromError::bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    let options = query_options(&params)?;
    let text = params.get("query").unwrap_or("").to_owned();
    let source = (state.series)(state.readable_tenants.to_vec());
    let value = blocking(move || {
        Ok(promql::range_query(
            source.as_ref(),
            &text,
            start_ms,
            end_ms,
            step_ms,
            &options,
        )?)
    })
    .await?;
    Ok(success(&encode_query_data(&value), &[]))
}

/// `GET|POST /api/v1/series?match[]=&start=&end=&limit=`
pub async fn series(State(state): State<AppState>, request: Request) -> Response {
    respond(series_list(state, request).await)
}

async fn series_list(state: AppState, request: Request) -> Result<Response, PromError> {
    let params = Params::read(request).await?;
    let start_ms = optional_time(&params, "start", MIN_TIME_MS)?;
    let end_ms = optional_time(&params, "end", MAX_TIME_MS)?;
    let sets = match_selectors(&params)?;
    if sets.is_empty() {
        return Err(PromError::bad_data("no match[] parameter provided"));
    }
    let limit = limit(&params)?;
    let source = (state.series)(state.readable_tenants.to_vec());
    let mut found = blocking(move || Ok(source.series(&sets, start_ms, end_ms)?)).await?;
    found.sort();
    let warnings = truncate(&mut found, limit);
    let encoded: Vec<String> = found.iter().map(encode_labels).collect();
    Ok(success(&format!("[{}]", encoded.join(",")), &warnings))
}

/// `GET|POST /api/v1/labels?match[]=&start=&end=&limit=`
pub async fn labels(State(state): State<AppState>, request: Request) -> Response {
    respond(label_names(state, request).await)
}

async fn label_names(state: AppState, request: Request) -> Result<Response, PromError> {
    let params = Params::read(request).await?;
    let start_ms = optional_time(&params, "start", MIN_TIME_MS)?;
    let end_ms = optional_time(&params, "end", MAX_TIME_MS)?;
    let sets = match_selectors(&params)?;
    let limit = limit(&params)?;
    let source = (state.series)(state.readable_tenants.to_vec());
    let mut names = blocking(move || Ok(source.label_names(&sets, start_ms, end_ms)?)).await?;
    let warnings = truncate(&mut names, limit);
    Ok(success(&encode_strings(&names), &warnings))
}

/// `GET|POST /api/v1/label/{name}/values?match[]=&start=&end=&limit=`
pub async fn label_values(
    State(state): State<AppState>,
    Path(name): Path<String>,
    request: Request,
) -> Response {
    respond(values_of_label(state, name, request).await)
}

async fn values_of_label(
    state: AppState,
    name: String,
    request: Request,
) -> Result<Response, PromError> {
    let params = Params::read(request).await?;
    if name.is_empty() {
        return Err(PromError::bad_data(format!("invalid label name: {name:?}")));
    }
    let start_ms = optional_time(&params, "start", MIN_TIME_MS)?;
    let end_ms = optional_time(&params, "end", MAX_TIME_MS)?;
    let sets = match_selectors(&params)?;
    let limit = limit(&params)?;
    let source = (state.series)(state.readable_tenants.to_vec());
    let mut values =
        blocking(move || Ok(source.label_values(&name, &sets, start_ms, end_ms)?)).await?;
    let warnings = truncate(&mut values, limit);
    Ok(success(&encode_strings(&values), &warnings))
}

/// `GET /api/v1/status/buildinfo`: what Grafana reads to pick its Prometheus dialect.
pub async fn buildinfo() -> Response {
    let body = serde_json::json!({
        "status": "success",
        "data": {
            "version": COMPATIBLE_PROMETHEUS_VERSION,
            "revision": concat!("afterglow-collector-", env!("CARGO_PKG_VERSION")),
            "branch": "",
            "buildUser": "",
            "buildDate": "",
            "goVersion": "",
        }
    });
    Json(body).into_response()
}

/// `GET /api/v1/metadata`: no metric metadata is stored; an empty answer keeps Grafana's
/// metric browser working.
pub async fn metadata() -> Response {
    success("{}", &[])
}

/// `GET|POST /api/v1/query_exemplars`: no exemplars are stored; Grafana's Explore asks.
pub async fn query_exemplars() -> Response {
    success("[]", &[])
}

fn respond(result: Result<Response, PromError>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

/// Keeps the first `limit` items (0: all), with Prometheus's warning when it cut.
fn truncate<T>(items: &mut Vec<T>, limit: usize) -> Vec<String> {
    if limit > 0 && items.len() > limit {
        items.truncate(limit);
        return vec!["results truncated due to limit".to_owned()];
    }
    Vec::new()
}

/// A timestamp as Prometheus writes it: seconds, with exactly the milliseconds as a
/// fraction when there are any (`1700000000.5` is written `1700000000.500`).
fn encode_timestamp(ts_ms: i64) -> String {
    let sign = if ts_ms < 0 { "-" } else { "" };
    let magnitude = ts_ms.unsigned_abs();
    let (seconds, millis) = (magnitude / 1000, magnitude % 1000);
    if millis == 0 {
        format!("{sign}{seconds}")
    } else {
        format!("{sign}{seconds}.{millis:03}")
    }
}

fn encode_point(ts_ms: i64, value: f64) -> String {
    format!("[{},\"{}\"]", encode_timestamp(ts_ms), format_value(value))
}

fn encode_labels(labels: &Labels) -> String {
    let pairs: Vec<String> = labels
        .iter()
        .map(|(name, value)| format!("{}:{}", json_string(name), json_string(value)))
        .collect();
    format!("{{{}}}", pairs.join(","))
}

fn encode_strings(items: &[String]) -> String {
    let encoded: Vec<String> = items.iter().map(|item| json_string(item)).collect();
    format!("[{}]", encoded.join(","))
}

/// The `data` of a query answer: `{"resultType":…,"result":…}`.
fn encode_query_data(value: &Value) -> String {
    let result = match value {
        Value::Scalar(ts_ms, number) => encode_point(*ts_ms, *number),
        Value::String(ts_ms, text) => {
            format!("[{},{}]", encode_timestamp(*ts_ms), json_string(text))
        }
        Value::Vector(samples) => {
            let items: Vec<String> = samples
                .iter()
                .map(|sample| {
                    format!(
                        "{{\"metric\":{},\"value\":{}}}",
                        encode_labels(&sample.labels),
                        encode_point(sample.timestamp_ms, sample.value)
                    )
                })
                .collect();
            format!("[{}]", items.join(","))
        }
        Value::Matrix(series) => {
            let items: Vec<String> = series
                .iter()
                .map(|one| {
                    let points: Vec<String> = one
                        .points
                        .iter()
                        .map(|&(ts_ms, number)| encode_point(ts_ms, number))
                        .collect();
                    format!(
                        "{{\"metric\":{},\"values\":[{}]}}",
                        encode_labels(&one.labels),
                        points.join(",")
                    )
                })
                .collect();
            format!("[{}]", items.join(","))
        }
    };
    format!(
        "{{\"resultType\":\"{}\",\"result\":{result}}}",
        value.result_type()
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::{encode_timestamp, parse_duration_ns, parse_time};
    use crate::api::{AppState, router};
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
        AppState {
            store: Arc::new(LogStore::open(dir).expect("store opens")),
            readable_tenants: Arc::new(vec!["default".to_owned()]),
            series: Arc::new(move |_| Arc::clone(&source)),
        }
    }

    async fn send(
        state: &AppState,
        request: Request<Body>,
    ) -> (StatusCode, String, serde_json::Value) {
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
}
