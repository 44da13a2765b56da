//! Deep nesting and huge inputs at every query entry point, through the router, on a runtime
//! whose threads have the collector's 2 MiB stacks: log queries on every log route, PromQL
//! on every Prometheus route, times and cursors. Each request is answered, with data or a
//! client error; none may overflow a stack, which aborts the whole process (a log query
//! 350 parentheses deep did, ingest of every tenant with it).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use proptest::prelude::*;
use tower::ServiceExt;

use crate::api::test_support::{send_bytes, state_with, worker_record};
use crate::api::{AppState, router};
use crate::index::query_bounds::MAX_LOG_QUERY_DEPTH;
use crate::promql::tests::MemorySource;
use crate::series::select::SeriesSource;

/// The stack of every tokio thread in the collector (`Runtime::new()`'s default).
const COLLECTOR_STACK_BYTES: usize = 2 * 1024 * 1024;

/// A runtime like the collector's: worker and blocking threads with 2 MiB stacks.
fn collector_like_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_stack_size(COLLECTOR_STACK_BYTES)
        .enable_all()
        .build()
        .expect("runtime starts")
}

/// Records of two workers and one counter series, so that queries have something to run on.
async fn populated_state(dir: &std::path::Path) -> AppState {
    let base = 1_795_780_800_000_000;
    let records = (0..20u64)
        .map(|seq| {
            worker_record(
                base + seq as i64 * 1_000_000,
                if seq % 2 == 0 { "w-1" } else { "w-2" },
                (7, seq),
                "INFO",
                "task finished",
            )
        })
        .collect();
    let mut state = state_with(dir, records).await;
    let mut source = MemorySource::default();
    source.add(
        &vec![
            ("__name__".to_owned(), "dask_tasks_total".to_owned()),
            ("instance".to_owned(), "w-1".to_owned()),
        ],
        &(0..40)
            .map(|i| (1_795_780_800_000 + i * 15_000, i as f64))
            .collect::<Vec<_>>(),
    );
    let source: Arc<dyn SeriesSource> = Arc::new(source);
    state.series = Arc::new(move |_, _| Arc::clone(&source));
    state
}

/// Every byte but ASCII letters and digits percent-encoded.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() {
                (byte as char).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

/// Every query entry point with `input` in one of its parameters: a GET for each while the
/// URI stays under the `http` crate's 64 kB, and a form POST to each Prometheus route.
fn requests_carrying(input: &str) -> Vec<Request<Body>> {
    let value = encode(input);
    let range = "start=1795780800&end=1795781400";
    let mut uris: Vec<String> = [
        "/api/v1/logs/search?q=",
        "/api/v1/logs/search?facets=level&count=true&q=",
        "/api/v1/logs/histogram?q=",
        "/api/v1/logs/export?q=",
        "/api/v1/logs/tail?q=",
        "/api/v1/logs/search?cursor=",
        "/api/v1/logs/search?start=",
        "/api/v1/logs/search?end=",
        "/api/v1/logs/histogram?step=",
        "/api/v1/logs/context?stream=0000000000000007&seq=",
        "/api/v1/query?time=1795781000&query=",
        "/api/v1/query?query=up&time=",
        "/api/v1/series?match[]=",
        "/api/v1/labels?match[]=",
        "/api/v1/label/instance/values?match[]=",
    ]
    .iter()
    .map(|route| format!("{route}{value}"))
    .collect();
    uris.push(format!("/api/v1/query_range?{range}&step=15&query={value}"));
    uris.push(format!(
        "/api/v1/query_range?query=up&end=1795781400&step=15&start={value}"
    ));
    uris.push(format!("/api/v1/query_range?query=up&{range}&step={value}"));
    let gets = uris
        .into_iter()
        .filter(|uri| uri.len() < 65_000)
        .map(|uri| {
            Request::get(uri)
                .body(Body::empty())
                .expect("request builds")
        });
    let forms = [
        ("/api/v1/query", format!("time=1795781000&query={value}")),
        (
            "/api/v1/query_range",
            format!("{range}&step=15&query={value}"),
        ),
        ("/api/v1/series", format!("match[]={value}")),
    ]
    .into_iter()
    .map(|(route, form)| {
        Request::post(route)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(form))
            .expect("request builds")
    });
    gets.chain(forms).collect()
}

/// `request` answered on one of `runtime`'s worker threads: the status and, but for the
/// endless live tail, the body.
fn send_on(
    runtime: &tokio::runtime::Runtime,
    state: &AppState,
    request: Request<Body>,
) -> (StatusCode, String) {
    let state = state.clone();
    runtime
        .block_on(runtime.spawn(async move {
            if request.uri().path().ends_with("/tail") {
                let response = router(state).oneshot(request).await;
                return (response.expect("router answers").status(), String::new());
            }
            let (status, _, bytes) = send_bytes(&state, request).await;
            (status, String::from_utf8_lossy(&bytes).into_owned())
        }))
        .expect("the handler did not panic")
}

/// `GET uri` as `send_on` answers it.
fn get_on(runtime: &tokio::runtime::Runtime, state: &AppState, uri: &str) -> (StatusCode, String) {
    let request = Request::get(uri)
        .body(Body::empty())
        .expect("request builds");
    send_on(runtime, state, request)
}

/// Answered with data or the caller's error; never a failure of the collector's own.
fn assert_answered(what: &str, status: StatusCode, body: &str) {
    assert!(
        status.is_success()
            || status.is_client_error()
            || status == StatusCode::SERVICE_UNAVAILABLE,
        "{} answered {status}: {body}",
        &what[..what.len().min(120)]
    );
}

/// `core` wrapped `depth` times in `open` … `close`.
fn nested(open: &str, close: &str, depth: usize, core: &str) -> String {
    format!("{}{core}{}", open.repeat(depth), close.repeat(depth))
}

const LOG_ROUTES: [&str; 4] = [
    "/api/v1/logs/search?q=",
    "/api/v1/logs/histogram?q=",
    "/api/v1/logs/export?q=",
    "/api/v1/logs/tail?q=",
];

#[test]
fn log_queries_from_the_hostile_report_are_refused_on_every_log_route() {
    let runtime = collector_like_runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let state = runtime.block_on(populated_state(dir.path()));
    let deep_groups = nested("(", ")", 350, "task");
    let many_nots = format!("{}task", "NOT ".repeat(1500));
    for query in [&deep_groups, &many_nots] {
        for route in LOG_ROUTES {
            let uri = format!("{route}{}", encode(query));
            let (status, body) = get_on(&runtime, &state, &uri);
            assert_eq!(status, StatusCode::BAD_REQUEST, "{route}: {body}");
            if !route.contains("tail") {
                assert!(body.contains("at most 64"), "{route}: {body}");
            }
        }
    }
}

#[test]
fn log_queries_at_the_depth_bound_run_and_one_level_more_is_refused() {
    let runtime = collector_like_runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let state = runtime.block_on(populated_state(dir.path()));
    // Each with a term that is not negated at its top: a query of exclusions alone is refused
    // for that reason, whatever its depth. `NOT (` opens two levels at once.
    let forms = [
        ("", "(", ")", 1),
        ("task ", "NOT ", "", 1),
        ("", "task NOT (", ")", 2),
        ("", "message:(", ")", 1),
        ("", "task -(", ")", 1),
    ];
    for (prefix, open, close, levels_each) in forms {
        let levels = MAX_LOG_QUERY_DEPTH / levels_each;
        let at_bound = prefix.to_owned() + &nested(open, close, levels, "level:INFO");
        let over = prefix.to_owned() + &nested(open, close, levels + 1, "level:INFO");
        for route in LOG_ROUTES {
            let (status, body) = get_on(&runtime, &state, &format!("{route}{}", encode(&at_bound)));
            assert_eq!(
                status,
                StatusCode::OK,
                "{open:?} at the bound on {route}: {body}"
            );
            let (status, body) = get_on(&runtime, &state, &format!("{route}{}", encode(&over)));
            assert_eq!(
                status,
                StatusCode::BAD_REQUEST,
                "{open:?} past the bound on {route}: {body}"
            );
        }
    }
}

/// Nesting of the log language, PromQL, JSON (cursors) and times, any depth up to thousands.
fn deep_input() -> impl Strategy<Value = String> {
    let forms = prop::sample::select(vec![
        ("(", ")", "task"),
        ("NOT ", "", "task"),
        ("NOT (", ")", "task"),
        ("message:(", ")", "task"),
        ("-(", ")", "task"),
        ("+(", ")", "task"),
        ("abs(", ")", "dask_tasks_total"),
        ("sum by (instance) (", ")", "dask_tasks_total"),
        ("-", "", "dask_tasks_total"),
        ("1+", "", "1"),
        ("max_over_time((", ")[5m:1m])", "dask_tasks_total"),
        ("[", "]", "0"),
        ("{\"a\":", "}", "0"),
        ("now-", "", "1h"),
        ("\"", "", "x"),
    ]);
    (forms, 0usize..4_000).prop_map(|((open, close, core), depth)| nested(open, close, depth, core))
}

/// One piece repeated up to 400 kB: more than a URI holds (those go as forms, under the 2 MB
/// body limit).
fn huge_input() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "a ",
        "a OR ",
        "(a) ",
        "9",
        "f",
        "1e308",
        "x{a=\"b\"} or ",
        "\\",
        "%",
        "🦀",
    ]);
    (pieces, 1usize..400_000).prop_map(|(piece, bytes)| piece.repeat(bytes / piece.len() + 1))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn deep_and_huge_inputs_are_answered_at_every_entry_point(
        input in prop_oneof![deep_input(), huge_input()]
    ) {
        let runtime = collector_like_runtime();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut state = runtime.block_on(populated_state(dir.path()));
        state.search_timeout = Duration::from_secs(60);
        for request in requests_carrying(&input) {
            let what = format!("{} {}", request.method(), request.uri());
            let (status, body) = send_on(&runtime, &state, request);
            assert_answered(&what, status, &body);
        }
    }
}
