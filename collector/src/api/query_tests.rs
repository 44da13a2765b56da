//! The query language through the router, on records written by the real writer: wildcards on
//! keyword fields, addresses searched as phrases, refusals that say why (never a silent
//! nothing), and facet filters as their own parameters, each facet counted without its own
//! field's filter.

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::api::AppState;
use crate::api::test_support::{get, get_bytes, state_reading, state_with, worker_record};
use crate::index::writer::LogEntry;

/// 2026-11-27T13:56:53Z.
const BASE_MICROS: i64 = 1_795_787_813_000_000;

/// Seven records of cluster `nightly-etl`, one a second, for tenant `default` (readable) and
/// `other-team`:
/// 0. w-1 INFO `distributed.worker`: "Start worker at: tcp://127.0.0.1:34667"
/// 1. w-1 ERROR `distributed.worker.state_machine`: "Compute Failed"
/// 2. w-2 WARNING `distributed.worker`: "Event loop was unresponsive in Worker"
/// 3. w-2 INFO `distributed.worker_memory`: "Unmanaged memory use is high"
/// 4. scheduler-0 INFO `distributed.scheduler`: "Scheduler at: tcp://scheduler:8786"
/// 5. scheduler-0 INFO `distributed.core`: "Receive client connection from 10.0.0.7:51234"
/// 6. w-2 no level, no logger: "afterglow-print 7 from w-2"
async fn state_with_records(dir: &std::path::Path) -> AppState {
    let record = |node: &str, level: &str, logger: &str, message: &str| {
        let mut entry = worker_record(0, node, (u64::from(node.as_bytes()[0]), 0), level, message);
        entry.logger = logger.to_owned();
        if node.starts_with("scheduler") {
            entry.role = "scheduler".to_owned();
        }
        entry
    };
    let records = [
        record(
            "w-1",
            "INFO",
            "distributed.worker",
            "Start worker at: tcp://127.0.0.1:34667",
        ),
        record(
            "w-1",
            "ERROR",
            "distributed.worker.state_machine",
            "Compute Failed",
        ),
        record(
            "w-2",
            "WARNING",
            "distributed.worker",
            "Event loop was unresponsive in Worker",
        ),
        record(
            "w-2",
            "INFO",
            "distributed.worker_memory",
            "Unmanaged memory use is high",
        ),
        record(
            "scheduler-0",
            "INFO",
            "distributed.scheduler",
            "Scheduler at: tcp://scheduler:8786",
        ),
        record(
            "scheduler-0",
            "INFO",
            "distributed.core",
            "Receive client connection from 10.0.0.7:51234",
        ),
        record("w-2", "", "", "afterglow-print 7 from w-2"),
    ];
    let entries: Vec<LogEntry> = records
        .into_iter()
        .zip(0..)
        .map(|(mut entry, seq)| {
            entry.ts_micros = BASE_MICROS + seq * 1_000_000;
            entry.seq = seq as u64;
            entry
        })
        .collect();
    state_with(dir, entries).await
}

/// `GET /api/v1/logs/search?{params}`: the status and the body.
async fn search(state: &AppState, params: &str) -> (StatusCode, Value) {
    get(state, &format!("/api/v1/logs/search?{params}")).await
}

/// The seqs of the hits of `q` (URL-encoded by the caller), or the error.
async fn seqs(state: &AppState, params: &str) -> Result<Vec<u64>, String> {
    let (status, json) = search(state, params).await;
    if status != StatusCode::OK {
        return Err(format!("{status}: {}", json["error"]));
    }
    Ok(json["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .map(|hit| hit["seq"].as_u64().expect("seq"))
        .collect())
}

/// `query` as a URL query value: every byte but letters and digits percent-encoded.
fn encoded(query: &str) -> String {
    query
        .bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() {
                char::from(byte).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

async fn found(state: &AppState, query: &str) -> Result<Vec<u64>, String> {
    seqs(state, &format!("q={}", encoded(query))).await
}

/// `logger:distributed.worker*` found nothing, silently. A trailing `*` on a keyword
/// field is a prefix of the raw value (the logger, its children, and any name it starts);
/// without `*` the field matches one value, as before.
#[tokio::test]
async fn keyword_wildcards_match_raw_prefixes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = state_with_records(dir.path()).await;
    for (query, expected) in [
        ("logger:distributed.worker*", vec![0, 1, 2, 3]),
        ("logger:distributed.*", vec![0, 1, 2, 3, 4, 5]),
        ("logger:distributed.worker.*", vec![1]),
        ("logger:distributed.worker", vec![0, 2]),
        ("logger:*memory", vec![3]),
        ("logger:distributed.worker* AND level:INFO", vec![0, 3]),
        (
            "logger:(distributed.worker.* OR distributed.core)",
            vec![1, 5],
        ),
        ("node:w-*", vec![0, 1, 2, 3, 6]),
        ("node:w-* -node:w-2", vec![0, 1]),
        ("cluster:nightly*", vec![0, 1, 2, 3, 4, 5, 6]),
        ("source:/var/log/dask/scheduler*", vec![4, 5]),
        ("role:sched*", vec![4, 5]),
        // Quoted, a `*` is part of the value: no logger has one.
        ("logger:\"distributed.worker*\"", vec![]),
        // Every record has a message: `message:*` is everything, as `*` is.
        ("message:*", vec![0, 1, 2, 3, 4, 5, 6]),
        // In the message, a `*` ends a word.
        ("unrespons*", vec![2]),
        ("Unmanaged mem*", vec![3]),
    ] {
        assert_eq!(found(&state, query).await, Ok(expected), "{query}");
    }
    // `tenant:` takes wildcards too, among the tenants the caller reads.
    let both = state_reading(Arc::clone(&state.store), &["default", "other-team"]);
    let (status, json) = search(
        &both,
        &format!("q={}", encoded("tenant:other* AND Compute")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["hits"][0]["tenant"], "other-team", "{json}");
    assert_eq!(json["hits"].as_array().map(Vec::len), Some(1));
}

/// Worker addresses pasted unquoted were a syntax error (`tcp://…`) or an unknown
/// field (`127.0.0.1:34667`, `scheduler:8786`). They are searched as phrases.
#[tokio::test]
async fn addresses_are_searched_as_phrases() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = state_with_records(dir.path()).await;
    for (query, expected) in [
        ("tcp://127.0.0.1:34667", vec![0]),
        ("127.0.0.1:34667", vec![0]),
        ("scheduler:8786", vec![4]),
        ("tcp://scheduler:8786", vec![4]),
        ("10.0.0.7:51234", vec![5]),
        ("role:worker AND tcp://127.0.0.1:34667", vec![0]),
        ("tcp://127.0.0.1:34667 OR scheduler:8786", vec![0, 4]),
        ("-tcp://127.0.0.1:34667 AND \"Start worker\"", vec![]),
        ("(tcp://127.0.0.1:34667)", vec![0]),
        ("message:tcp://scheduler:8786", vec![4]),
        // Another port is another address.
        ("127.0.0.1:34668", vec![]),
    ] {
        assert_eq!(found(&state, query).await, Ok(expected), "{query}");
    }
    // The depth bound still holds around an address.
    let deep = format!("{}tcp://127.0.0.1:34667{}", "(".repeat(65), ")".repeat(65));
    let refused = found(&state, &deep).await.expect_err("too deep");
    assert!(refused.contains("65 levels"), "{refused}");
}

/// A query the engine cannot run as written is a 400 that says why, on every route
/// that takes one; never a silent 0.
#[tokio::test]
async fn queries_that_cannot_run_as_written_are_400_saying_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = state_with_records(dir.path()).await;
    for (query, says) in [
        ("foo:bar", "`foo` is not a field"),
        ("scheduler:abc", "`scheduler` is not a field"),
        ("level:ERROR AND nosuch:x*", "`nosuch` is not a field"),
        ("nosuch:tcp://a:1", "`nosuch` is not a field"),
        ("wor*ker", "`*` ends a word"),
        ("*worker", "`*` ends a word"),
        ("seq:1*", "takes no wildcard"),
        ("logger:/distributed.*/", "regular expressions"),
        ("level:IN [ERROR WARN*]", "no wildcard"),
        ("tenant:[a TO b]", "tenant"),
    ] {
        let q = encoded(query);
        for route in ["search", "histogram", "export"] {
            let (status, _, body) = get_bytes(&state, &format!("/api/v1/logs/{route}?q={q}")).await;
            let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            assert_eq!(status, StatusCode::BAD_REQUEST, "{route} {query}: {json}");
            let message = json["error"].as_str().unwrap_or_default();
            assert!(message.contains(says), "{route} {query}: {message}");
        }
    }
    // What an unknown field's message offers works.
    assert_eq!(found(&state, "\"scheduler:8786\"").await, Ok(vec![4]));
}

/// Facet filters are their own parameters, and each facet is counted without its own
/// field's filter (Kibana's and Grafana's way): keeping `node:w-1` leaves every node's count
/// visible, while the other facets and the count follow the filter.
#[tokio::test]
async fn facet_filters_narrow_everything_but_their_own_facet() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = state_with_records(dir.path()).await;
    let (status, json) = search(
        &state,
        "q=*&filter=node:w-1&facets=node,level,logger&count=true",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["count"], 2);
    assert_eq!(json["hits"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        json["facets"]["node"],
        json!({"scheduler-0": 2, "w-1": 2, "w-2": 3})
    );
    assert_eq!(json["facets"]["level"], json!({"ERROR": 1, "INFO": 1}));

    // Two values of a field are alternatives; an exclusion rules its value out, and its own
    // facet still counts it.
    let (_, json) = search(
        &state,
        "q=*&filter=node:w-1&filter=node:w-2&exclude=level:INFO&facets=node,level&count=true",
    )
    .await;
    assert_eq!(json["count"], 3, "{json}");
    assert_eq!(json["facets"]["node"], json!({"w-1": 1, "w-2": 2}));
    assert_eq!(
        json["facets"]["level"],
        json!({"": 1, "ERROR": 1, "INFO": 2, "WARNING": 1})
    );

    // With the typed query: `q` and the other filters bound every facet.
    let (_, json) = search(
        &state,
        &format!(
            "q={}&filter=level:INFO&facets=node,level&count=true",
            encoded("logger:distributed.*")
        ),
    )
    .await;
    assert_eq!(json["count"], 4, "{json}");
    assert_eq!(
        json["facets"]["node"],
        json!({"scheduler-0": 2, "w-1": 1, "w-2": 1})
    );
    assert_eq!(
        json["facets"]["level"],
        json!({"ERROR": 1, "INFO": 4, "WARNING": 1})
    );

    // The empty value is a value: records without a level.
    assert_eq!(seqs(&state, "filter=level:").await, Ok(vec![6]));
    assert_eq!(
        seqs(&state, "filter=node:w-2&exclude=level:").await,
        Ok(vec![2, 3])
    );
}

/// The same filters bound histograms and exports, and `tenant` is one of them.
#[tokio::test]
async fn histogram_export_and_tenants_take_the_filters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = state_with_records(dir.path()).await;
    let (status, json) = get(
        &state,
        "/api/v1/logs/histogram?start=2026-11-27T13:56:00Z&end=2026-11-27T13:58:00Z&step=1m&filter=node:w-2&exclude=level:WARNING",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let totals: Vec<u64> = json["buckets"]
        .as_array()
        .expect("buckets")
        .iter()
        .map(|bucket| bucket["total"].as_u64().unwrap_or_default())
        .collect();
    assert_eq!(totals, [2, 0]);

    let (status, _, body) = get_bytes(
        &state,
        "/api/v1/logs/export?filter=role:scheduler&filter=node:w-1&q=*",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        String::from_utf8_lossy(&body).is_empty(),
        "no record is both"
    );
    let (_, _, body) = get_bytes(&state, "/api/v1/logs/export?filter=role:scheduler").await;
    let exported: Vec<u64> = String::from_utf8_lossy(&body)
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).expect("json")["seq"]
                .as_u64()
                .expect("seq")
        })
        .collect();
    assert_eq!(exported, [4, 5]);

    let both = state_reading(Arc::clone(&state.store), &["default", "other-team"]);
    let (_, json) = search(
        &both,
        "q=Compute&filter=tenant:other-team&facets=tenant&count=true",
    )
    .await;
    assert_eq!(json["count"], 1, "{json}");
    assert_eq!(json["hits"][0]["tenant"], "other-team");
    assert_eq!(
        json["facets"]["tenant"],
        json!({"default": 1, "other-team": 1})
    );
    let (_, json) = search(&both, "q=Compute&exclude=tenant:default&count=true").await;
    assert_eq!(json["count"], 1, "{json}");
    // A tenant filter never reaches past the readable tenants.
    let (_, json) = search(&state, "q=Compute&filter=tenant:other-team&count=true").await;
    assert_eq!(json["count"], 0, "{json}");
}

#[tokio::test]
async fn bad_filters_are_400_naming_the_parameter() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = state_with_records(dir.path()).await;
    let too_many = "filter=node:w-1&".repeat(crate::api::logs::MAX_FILTERS) + "exclude=node:w-2";
    for (params, says) in [
        (too_many.as_str(), "at most 64"),
        ("filter=node", "`filter`"),
        ("filter=message:x", "`filter`"),
        ("exclude=nosuch:x", "`exclude`"),
    ] {
        for route in ["search", "histogram", "export"] {
            let (status, json) = get(&state, &format!("/api/v1/logs/{route}?{params}")).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{route} {params}");
            let message = json["error"].as_str().unwrap_or_default();
            assert!(message.contains(says), "{route} {params}: {message}");
        }
    }
}
