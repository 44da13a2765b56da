//! The Prometheus HTTP API over stored series (`/api/v1/query`, `query_range`, `series`,
//! `labels`, `label/{name}/values`, plus the `status/buildinfo`, `metadata` and
//! `query_exemplars` stubs Grafana asks for), so Grafana and PromQL clients work unchanged.
//! Responses follow Prometheus's JSON byte for byte (float-second timestamps, values as
//! Go-formatted strings), and errors use its `{"status":"error","errorType":…}` shape, not
//! `ApiError`'s.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use promql_parser::parser::Expr;

use crate::api::AppState;
use crate::api::access::Reader;
use crate::api::prom_limits::{QUERY_PLACE_WAIT, QueryRefusal};
use crate::promql::{self, MAX_POINTS_PER_SERIES, QueryError, QueryOptions, Value, format_value};
use crate::series::select::{Labels, Matcher, SelectError, SeriesSource, TenantLabel};

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

    /// A 503 `unavailable`: the collector cannot take the query now.
    fn unavailable(message: impl Into<String>) -> PromError {
        PromError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            error_type: "unavailable",
            message: message.into(),
        }
    }

    /// The 422 of a query over `[query] max_samples`, in Prometheus's words and ours.
    fn too_many_samples(max_samples: usize) -> PromError {
        PromError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            error_type: "execution",
            message: format!(
                "{}: it would hold more than {max_samples} samples ([query] max_samples); narrow the selector or the time range, or use a coarser step",
                QueryError::TooManySamples
            ),
        }
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

/// The query options of a request: the configured `defaults`, with its `timeout` (which
/// may only lower the default) and `lookback_delta`.
fn query_options(params: &Params, defaults: &QueryOptions) -> Result<QueryOptions, PromError> {
    let mut options = defaults.clone();
    if let Some(text) = params.get_non_empty("timeout") {
        let nanos = parse_duration_ns(text)
            .map_err(|error| PromError::invalid_parameter("timeout", error))?;
        let asked = Duration::from_nanos(u64::try_from(nanos).unwrap_or(0));
        options.timeout = asked.min(defaults.timeout);
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

/// The series of `reader`'s tenants, each labeled `tenant` when it reads several (so that an
/// admin sees which team a series is from, and `sum by (tenant)` works).
fn source_of(state: &AppState, reader: Reader) -> Arc<dyn SeriesSource> {
    let tenant_label = if reader.spans_tenants() {
        TenantLabel::Added
    } else {
        TenantLabel::Omitted
    };
    (state.series)(reader.tenants, tenant_label)
}

/// Runs blocking work (store reads, evaluation) off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, PromError> + Send + 'static,
) -> Result<T, PromError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| PromError::internal("the query failed unexpectedly"))?
}

/// Evaluates a PromQL query in one of the `[query] max_concurrent` places, off the async
/// threads, and encodes its answer there too (the answer is the largest thing a query
/// holds): the response body. A query over `[query] max_samples` is answered 422, one that
/// finds no place 503; both are counted.
async fn evaluate(
    state: &AppState,
    query: impl FnOnce() -> Result<Value, QueryError> + Send + 'static,
) -> Result<String, PromError> {
    let limits = &state.prom_limits;
    let Some(place) = limits.place(&state.metrics).await else {
        return Err(PromError::unavailable(format!(
            "the collector is evaluating as many queries as it may at once ({}, [query] max_concurrent) and none ended within {} s; retry later",
            limits.max_concurrent(),
            QUERY_PLACE_WAIT.as_secs()
        )));
    };
    let max_samples = limits.defaults.max_samples;
    let metrics = Arc::clone(&state.metrics);
    blocking(move || {
        // Held until the answer is encoded, even if the client has gone.
        let _place = place;
        match query() {
            Ok(value) => Ok(encode_query_answer(&value)),
            Err(QueryError::TooManySamples) => {
                metrics.query_refused(QueryRefusal::MaxSamples.as_str());
                Err(PromError::too_many_samples(max_samples))
            }
            Err(error) => Err(error.into()),
        }
    })
    .await
}

/// `GET|POST /api/v1/query?query=&time=&timeout=&lookback_delta=`
pub async fn query(State(state): State<AppState>, reader: Reader, request: Request) -> Response {
    respond(instant(state, reader, request).await)
}

async fn instant(state: AppState, reader: Reader, request: Request) -> Result<Response, PromError> {
    let params = Params::read(request).await?;
    let now_ms = jiff::Timestamp::now().as_millisecond();
    let time_ms = optional_time(&params, "time", now_ms)?;
    let options = query_options(&params, &state.prom_limits.defaults)?;
    let text = params.get("query").unwrap_or("").to_owned();
    let source = source_of(&state, reader);
    let body = evaluate(&state, move || {
        promql::instant_query(source.as_ref(), &text, time_ms, &options)
    })
    .await?;
    Ok(json_response(StatusCode::OK, body))
}

/// Reads the `start`, `end` and `step` of a range query (absent ones as `""`) as
/// Prometheus checks them: `(start_ms, end_ms, step_ms)`. Public for the fuzz targets.
#[doc(hidden)]
pub fn range_grid(start: &str, end: &str, step: &str) -> Result<(i64, i64, i64), PromError> {
    let start_ms =
        parse_time(start).map_err(|error| PromError::invalid_parameter("start", error))?;
    let end_ms = parse_time(end).map_err(|error| PromError::invalid_parameter("end", error))?;
    if end_ms < start_ms {
        return Err(PromError::invalid_parameter(
            "end",
            "end timestamp must not be before start time",
        ));
    }
    let step_ns =
        parse_duration_ns(step).map_err(|error| PromError::invalid_parameter("step", error))?;
    if step_ns <= 0 {
        return Err(PromError::invalid_parameter(
            "step",
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    let step_ms = (step_ns / 1_000_000).max(1);
    // In i128: the span of two extreme times overflows i64, and a saturated product let
    // 122 million points through (found by `scripts/fuzz api_time`).
    let points = (i128::from(end_ms) - i128::from(start_ms)) * 1_000_000 / i128::from(step_ns);
    if points > i128::from(MAX_POINTS_PER_SERIES) {
        return Err(PromError::bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    Ok((start_ms, end_ms, step_ms))
}

/// `GET|POST /api/v1/query_range?query=&start=&end=&step=&timeout=&lookback_delta=`
pub async fn query_range(
    State(state): State<AppState>,
    reader: Reader,
    request: Request,
) -> Response {
    respond(range(state, reader, request).await)
}

async fn range(state: AppState, reader: Reader, request: Request) -> Result<Response, PromError> {
    let params = Params::read(request).await?;
    let (start_ms, end_ms, step_ms) = range_grid(
        params.get("start").unwrap_or(""),
        params.get("end").unwrap_or(""),
        params.get("step").unwrap_or(""),
    )?;
    let options = query_options(&params, &state.prom_limits.defaults)?;
    let text = params.get("query").unwrap_or("").to_owned();
    let source = source_of(&state, reader);
    let body = evaluate(&state, move || {
        promql::range_query(source.as_ref(), &text, start_ms, end_ms, step_ms, &options)
    })
    .await?;
    Ok(json_response(StatusCode::OK, body))
}

/// `GET|POST /api/v1/series?match[]=&start=&end=&limit=`
pub async fn series(State(state): State<AppState>, reader: Reader, request: Request) -> Response {
    respond(series_list(state, reader, request).await)
}

async fn series_list(
    state: AppState,
    reader: Reader,
    request: Request,
) -> Result<Response, PromError> {
    let params = Params::read(request).await?;
    let start_ms = optional_time(&params, "start", MIN_TIME_MS)?;
    let end_ms = optional_time(&params, "end", MAX_TIME_MS)?;
    let sets = match_selectors(&params)?;
    if sets.is_empty() {
        return Err(PromError::bad_data("no match[] parameter provided"));
    }
    let limit = limit(&params)?;
    let source = source_of(&state, reader);
    let mut found = blocking(move || Ok(source.series(&sets, start_ms, end_ms)?)).await?;
    found.sort();
    let warnings = truncate(&mut found, limit);
    let encoded: Vec<String> = found.iter().map(encode_labels).collect();
    Ok(success(&format!("[{}]", encoded.join(",")), &warnings))
}

/// `GET|POST /api/v1/labels?match[]=&start=&end=&limit=`
pub async fn labels(State(state): State<AppState>, reader: Reader, request: Request) -> Response {
    respond(label_names(state, reader, request).await)
}

async fn label_names(
    state: AppState,
    reader: Reader,
    request: Request,
) -> Result<Response, PromError> {
    let params = Params::read(request).await?;
    let start_ms = optional_time(&params, "start", MIN_TIME_MS)?;
    let end_ms = optional_time(&params, "end", MAX_TIME_MS)?;
    let sets = match_selectors(&params)?;
    let limit = limit(&params)?;
    let source = source_of(&state, reader);
    let mut names = blocking(move || Ok(source.label_names(&sets, start_ms, end_ms)?)).await?;
    let warnings = truncate(&mut names, limit);
    Ok(success(&encode_strings(&names), &warnings))
}

/// `GET|POST /api/v1/label/{name}/values?match[]=&start=&end=&limit=`
pub async fn label_values(
    State(state): State<AppState>,
    reader: Reader,
    Path(name): Path<String>,
    request: Request,
) -> Response {
    respond(values_of_label(state, reader, name, request).await)
}

async fn values_of_label(
    state: AppState,
    reader: Reader,
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
    let source = source_of(&state, reader);
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

/// Appends `[seconds,"value"]`.
fn write_point(out: &mut String, ts_ms: i64, value: f64) {
    let _ = write!(
        out,
        "[{},\"{}\"]",
        encode_timestamp(ts_ms),
        format_value(value)
    );
}

fn encode_labels(labels: &Labels) -> String {
    let mut out = String::new();
    write_labels(&mut out, labels);
    out
}

/// Appends `{"name":"value",…}`.
fn write_labels(out: &mut String, labels: &Labels) {
    out.push('{');
    for (at, (name, value)) in labels.iter().enumerate() {
        if at > 0 {
            out.push(',');
        }
        out.push_str(&json_string(name));
        out.push(':');
        out.push_str(&json_string(value));
    }
    out.push('}');
}

fn encode_strings(items: &[String]) -> String {
    let encoded: Vec<String> = items.iter().map(|item| json_string(item)).collect();
    format!("[{}]", encoded.join(","))
}

/// Bytes a point usually takes in an answer (`[1795780800.123,"42.5"],`): what the body is
/// allocated for up front, so that it does not grow by doubling.
const ANSWER_BYTES_PER_POINT: usize = 32;

/// The whole answer to a query, `{"status":"success","data":{"resultType":…,"result":…}}`,
/// written into one string (no string per point: the answer is the largest thing a query
/// holds).
fn encode_query_answer(value: &Value) -> String {
    let points = match value {
        Value::Scalar(..) | Value::String(..) => 1,
        Value::Vector(samples) => samples.len(),
        Value::Matrix(series) => series.iter().map(|one| one.points.len() + 4).sum(),
    };
    let mut out = String::with_capacity(points.saturating_mul(ANSWER_BYTES_PER_POINT));
    let _ = write!(
        out,
        "{{\"status\":\"success\",\"data\":{{\"resultType\":\"{}\",\"result\":",
        value.result_type()
    );
    match value {
        Value::Scalar(ts_ms, number) => write_point(&mut out, *ts_ms, *number),
        Value::String(ts_ms, text) => {
            let _ = write!(out, "[{},{}]", encode_timestamp(*ts_ms), json_string(text));
        }
        Value::Vector(samples) => {
            out.push('[');
            for (at, sample) in samples.iter().enumerate() {
                if at > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                write_labels(&mut out, &sample.labels);
                out.push_str(",\"value\":");
                write_point(&mut out, sample.timestamp_ms, sample.value);
                out.push('}');
            }
            out.push(']');
        }
        Value::Matrix(series) => {
            out.push('[');
            for (at, one) in series.iter().enumerate() {
                if at > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                write_labels(&mut out, &one.labels);
                out.push_str(",\"values\":[");
                for (index, &(ts_ms, number)) in one.points.iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    write_point(&mut out, ts_ms, number);
                }
                out.push_str("]}");
            }
            out.push(']');
        }
    }
    out.push_str("}}");
    out
}

#[cfg(test)]
#[path = "prom_tests.rs"]
mod tests;
