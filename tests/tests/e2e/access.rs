//! Tenant isolation through the real binaries: a collector with tokens made by
//! `afterglow-collector token new`, agents of two teams shipping logs and scraped metrics with
//! their ingest tokens (one of them claiming the other team's cluster and tenant label), and
//! every read API asked by every kind of caller — none, a wrong token, ingest-only, a reader of
//! team-a, of team-b, of both, and an admin. Each answer is a refusal (401/403) or exactly the
//! caller's data, and a caller of several tenants is told which tenant each record and series
//! is from.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use afterglow_tests::peers::MetricsServer;
use afterglow_tests::{Agent, Collector, encode, new_token, wait_for};
use anyhow::{Context, Result, bail};
use serde_json::Value;

/// `GET path` with `token` as bearer: the status and the body.
fn get(collector: &Collector, token: Option<&str>, path: &str) -> Result<(u16, String)> {
    collector.get_as(token, path)
}

fn json(body: &str) -> Result<Value> {
    serde_json::from_str(body).with_context(|| format!("JSON: {body}"))
}

/// The distinctive word of each record's message (`isolationmarker <word>`).
fn words_of_hits(hits: &[Value]) -> BTreeSet<String> {
    hits.iter()
        .filter_map(|hit| hit["message"].as_str())
        .filter_map(|message| message.split_whitespace().nth(1))
        .map(str::to_owned)
        .collect()
}

/// The `team_label` of every series in a Prometheus API `data` (vector or matrix or series).
fn team_labels(data: &Value) -> BTreeSet<String> {
    let series = data
        .get("result")
        .and_then(Value::as_array)
        .or_else(|| data.as_array())
        .cloned()
        .unwrap_or_default();
    series
        .iter()
        .filter_map(|item| {
            item.get("metric")
                .unwrap_or(item)
                .get("team_label")
                .and_then(Value::as_str)
        })
        .map(str::to_owned)
        .collect()
}

/// `(word, tenant)` of each hit (`-` for a hit without `tenant`).
fn tenants_of_hits(hits: &[Value]) -> BTreeSet<(String, String)> {
    hits.iter()
        .filter_map(|hit| {
            let word = hit["message"].as_str()?.split_whitespace().nth(1)?;
            Some((
                word.to_owned(),
                hit["tenant"].as_str().unwrap_or("-").to_owned(),
            ))
        })
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|&item| item.to_owned()).collect()
}

/// An agent of cluster `cluster`, node `node`, tailing `log` and scraping `page`, sending with
/// `auth` (a `token = …` or `token_file = …` line).
fn start_agent(
    dir: &Path,
    collector: &Collector,
    (cluster, node): (&str, &str),
    auth: &str,
    log: &Path,
    page: Option<&MetricsServer>,
) -> Result<Agent> {
    let mut config = format!(
        "collector = {:?}\ncluster = {cluster:?}\nnode = {node:?}\n{auth}\n[[logs]]\npaths = [{:?}]\nrole = \"worker\"\nformat = \"dask\"\nstart_at = \"beginning\"\n",
        collector.grpc_url,
        log.display().to_string(),
    );
    if let Some(page) = page {
        config.push_str(&format!(
            "[[metrics]]\nurl = {:?}\nrole = \"worker\"\ninterval = \"1s\"\n",
            page.url("/metrics")
        ));
    }
    Agent::start(dir, node, &config)
}

fn page(text: &'static str) -> Result<MetricsServer> {
    MetricsServer::start(Arc::new(move |path, _| {
        (path == "/metrics").then(|| text.to_owned())
    }))
}

fn log_line(word: &str) -> String {
    format!("2026-11-27 14:00:00,000 - distributed.worker - INFO - isolationmarker {word}\n")
}

/// Who asks, with which token, and what they should see.
struct Caller {
    label: &'static str,
    token: Option<String>,
    /// `None`: refused with this status on every read API.
    refused: Option<u16>,
    words: BTreeSet<String>,
    team_labels: BTreeSet<String>,
    /// (tenant, cluster) pairs in `/api/v1/clusters`.
    clusters: BTreeSet<(String, String)>,
}

#[test]
fn every_read_api_answers_each_caller_with_its_own_tenants_data_only() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (ingest_a, ingest_a_stanza) = new_token("a-agents", "team-a", "ingest")?;
    let (ingest_b, ingest_b_stanza) = new_token("b-agents", "team-b", "ingest")?;
    let (read_a, read_a_stanza) = new_token("a-readers", "team-a", "read")?;
    let (read_b, read_b_stanza) = new_token("b-readers", "team-b", "read")?;
    let (read_ab, read_ab_stanza) = new_token("ab-readers", "team-a,team-b", "read")?;
    let (admin, admin_stanza) = new_token("operators", "", "admin")?;
    let (slow, slow_stanza) = new_token("slow-reader", "team-a", "read")?;
    let config = [
        ingest_a_stanza,
        ingest_b_stanza,
        read_a_stanza,
        read_b_stanza,
        read_ab_stanza,
        admin_stanza,
        format!("{slow_stanza}requests_per_second = 1\n"),
    ]
    .join("\n");
    let collector = Collector::start_with(dir.path(), &dir.path().join("data"), None, &config)?;

    // Team a ships with a token file; team b with the token inline. A's page claims team-b
    // in a label, and a third agent sends with a's token as cluster `etl-b`: both stay a's.
    let page_a = page(
        "# TYPE isolation_metric gauge\nisolation_metric{team_label=\"a\"} 1\nisolation_metric{team_label=\"claimed\",tenant=\"team-b\"} 1\n",
    )?;
    let page_b = page("# TYPE isolation_metric gauge\nisolation_metric{team_label=\"b\"} 1\n")?;
    let page_b_metrics_only = page("# TYPE metrics_only_marker gauge\nmetrics_only_marker 1\n")?;
    let (log_a, log_b, log_claim) = (
        dir.path().join("a.log"),
        dir.path().join("b.log"),
        dir.path().join("claim.log"),
    );
    std::fs::write(&log_a, log_line("alpha"))?;
    std::fs::write(&log_b, log_line("bravo"))?;
    std::fs::write(&log_claim, log_line("claimed"))?;
    let token_file = dir.path().join("a.token");
    std::fs::write(&token_file, format!("{ingest_a}\n"))?;
    let token_file_line = format!("token_file = {:?}", token_file.display().to_string());
    let _agents = [
        start_agent(
            dir.path(),
            &collector,
            ("etl-a", "a-node"),
            &token_file_line,
            &log_a,
            Some(&page_a),
        )?,
        start_agent(
            dir.path(),
            &collector,
            ("etl-b", "b-node"),
            &format!("token = {ingest_b:?}"),
            &log_b,
            Some(&page_b),
        )?,
        start_agent(
            dir.path(),
            &collector,
            ("etl-b", "intruder-node"),
            &format!("token = {ingest_a:?}"),
            &log_claim,
            None,
        )?,
        // Team b's cluster that sends metrics only: no log file.
        Agent::start(
            dir.path(),
            "b-metrics-node",
            &format!(
                "collector = {:?}\ncluster = \"metrics-b\"\nnode = \"b-metrics-node\"\ntoken = {ingest_b:?}\n[[metrics]]\nurl = {:?}\nrole = \"scheduler\"\ninterval = \"1s\"\n",
                collector.grpc_url,
                page_b_metrics_only.url("/metrics")
            ),
        )?,
    ];
    let everything = set(&["alpha", "bravo", "claimed"]);
    let every_label = set(&["a", "b", "claimed"]);
    wait_for("every record and series stored", || {
        let (_, search) = get(
            &collector,
            Some(&admin),
            "/api/v1/logs/search?q=isolationmarker",
        )?;
        let words = words_of_hits(json(&search)?["hits"].as_array().unwrap_or(&Vec::new()));
        let (_, query) = get(
            &collector,
            Some(&admin),
            "/api/v1/query?query=isolation_metric",
        )?;
        let labels = team_labels(&json(&query)?["data"]);
        Ok(if words == everything && labels == every_label {
            Ok(())
        } else {
            Err((words, labels))
        })
    })?;
    wait_for("team b's metrics-only cluster listed", || {
        let (_, body) = get(&collector, Some(&admin), "/api/v1/clusters")?;
        let names: Vec<String> = json(&body)?["clusters"]
            .as_array()
            .map(|clusters| {
                clusters
                    .iter()
                    .filter_map(|cluster| cluster["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        Ok(if names.iter().any(|name| name == "metrics-b") {
            Ok(())
        } else {
            Err(names)
        })
    })?;

    let pair = |tenant: &str, cluster: &str| (tenant.to_owned(), cluster.to_owned());
    let refused = |label, token: Option<&str>, status| Caller {
        label,
        token: token.map(str::to_owned),
        refused: Some(status),
        words: BTreeSet::new(),
        team_labels: BTreeSet::new(),
        clusters: BTreeSet::new(),
    };
    let callers = [
        refused("no token", None, 401),
        refused("wrong token", Some("agt_0123456789abcdef"), 401),
        refused("ingest-only", Some(&ingest_a), 403),
        Caller {
            label: "reader of team-a",
            token: Some(read_a.clone()),
            refused: None,
            words: set(&["alpha", "claimed"]),
            team_labels: set(&["a", "claimed"]),
            clusters: [pair("team-a", "etl-a"), pair("team-a", "etl-b")].into(),
        },
        Caller {
            label: "reader of team-b",
            token: Some(read_b.clone()),
            refused: None,
            words: set(&["bravo"]),
            team_labels: set(&["b"]),
            clusters: [pair("team-b", "etl-b"), pair("team-b", "metrics-b")].into(),
        },
        Caller {
            label: "reader of team-a and team-b",
            token: Some(read_ab.clone()),
            refused: None,
            words: everything.clone(),
            team_labels: every_label.clone(),
            clusters: [
                pair("team-a", "etl-a"),
                pair("team-a", "etl-b"),
                pair("team-b", "etl-b"),
                pair("team-b", "metrics-b"),
            ]
            .into(),
        },
        Caller {
            label: "admin",
            token: Some(admin.clone()),
            refused: None,
            words: everything,
            team_labels: every_label,
            clusters: [
                pair("team-a", "etl-a"),
                pair("team-a", "etl-b"),
                pair("team-b", "etl-b"),
                pair("team-b", "metrics-b"),
            ]
            .into(),
        },
    ];
    // A record of each team, to ask for its context.
    let (_, all) = get(
        &collector,
        Some(&admin),
        "/api/v1/logs/search?q=isolationmarker",
    )?;
    let hits = json(&all)?["hits"].as_array().cloned().unwrap_or_default();
    let context_of = |word: &str| -> Result<String> {
        let hit = hits
            .iter()
            .find(|hit| hit["message"].as_str().is_some_and(|m| m.ends_with(word)))
            .with_context(|| format!("a hit of {word}"))?;
        Ok(format!(
            "/api/v1/logs/context?stream={}&seq={}",
            hit["stream"].as_str().context("stream")?,
            hit["seq"]
        ))
    };
    let contexts = [
        ("alpha", context_of("alpha")?),
        ("bravo", context_of("bravo")?),
        ("claimed", context_of("claimed")?),
    ];
    let q = encode("isolationmarker");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let range = "start=now-30d&end=now%2B1d";
    let read_apis = [
        format!("/api/v1/logs/search?q={q}"),
        format!("/api/v1/logs/histogram?q={q}&{range}"),
        format!("/api/v1/logs/export?q={q}"),
        "/api/v1/clusters".to_owned(),
        "/api/v1/clusters/etl-b".to_owned(),
        "/api/v1/retention".to_owned(),
        "/api/v1/query?query=isolation_metric".to_owned(),
        format!(
            "/api/v1/query_range?query=isolation_metric&start={}&end={}&step=15",
            now - 300,
            now + 60
        ),
        format!("/api/v1/series?{}=isolation_metric", encode("match[]")),
        "/api/v1/label/team_label/values".to_owned(),
        "/api/v1/labels".to_owned(),
        "/api/v1/logs/tail?q=isolationmarker".to_owned(),
        contexts[0].1.clone(),
    ];

    for caller in &callers {
        let token = caller.token.as_deref();
        let who = caller.label;
        if let Some(status) = caller.refused {
            for path in &read_apis {
                let (got, body) = get(&collector, token, path)?;
                assert_eq!(got, status, "{who}: {path} answered {body}");
                assert!(
                    !body.contains("isolation"),
                    "{who}: a refusal of {path} leaks data: {body}"
                );
            }
            let (got, _) = get(&collector, token, "/metrics")?;
            assert_eq!(got, status, "{who}: /metrics");
            continue;
        }

        let (status, body) = get(&collector, token, &read_apis[0])?;
        assert_eq!(status, 200, "{who}: search: {body}");
        let search = json(&body)?;
        assert_eq!(
            words_of_hits(search["hits"].as_array().context("hits")?),
            caller.words,
            "{who}: search"
        );

        // A caller of several tenants is told each record's tenant (the intruder's
        // is team-a's, whatever cluster it claims); a caller of one is not.
        let spans_tenants = caller.label == "admin" || caller.label.contains(" and ");
        let tenant_of_word = |word: &String| -> String {
            if !spans_tenants {
                "-".to_owned()
            } else if word == "bravo" {
                "team-b".to_owned()
            } else {
                "team-a".to_owned()
            }
        };
        let expected_tenants: BTreeSet<(String, String)> = caller
            .words
            .iter()
            .map(|word| (word.clone(), tenant_of_word(word)))
            .collect();
        assert_eq!(
            tenants_of_hits(search["hits"].as_array().context("hits")?),
            expected_tenants,
            "{who}: search hits' tenants"
        );

        let (_, body) = get(&collector, token, &read_apis[1])?;
        let counted: u64 = json(&body)?["buckets"]
            .as_array()
            .context("buckets")?
            .iter()
            .filter_map(|bucket| bucket["total"].as_u64())
            .sum();
        assert_eq!(
            counted,
            caller.words.len() as u64,
            "{who}: histogram {body}"
        );

        let (_, body) = get(&collector, token, &read_apis[2])?;
        let exported: Vec<Value> = body.lines().map(json).collect::<Result<_>>()?;
        assert_eq!(words_of_hits(&exported), caller.words, "{who}: export");
        assert_eq!(
            tenants_of_hits(&exported),
            expected_tenants,
            "{who}: export's tenants"
        );

        let (_, body) = get(&collector, token, "/api/v1/clusters")?;
        let clusters: BTreeSet<(String, String)> = json(&body)?["clusters"]
            .as_array()
            .context("clusters")?
            .iter()
            .map(|cluster| {
                (
                    cluster["tenant"].as_str().unwrap_or("").to_owned(),
                    cluster["name"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        assert_eq!(clusters, caller.clusters, "{who}: clusters");
        // Team b's metrics-only cluster: its page is team b's readers' alone.
        let (status, body) = get(&collector, token, "/api/v1/clusters/metrics-b")?;
        let sees_metrics_b = caller.clusters.contains(&pair("team-b", "metrics-b"));
        assert_eq!(
            status,
            if sees_metrics_b { 200 } else { 404 },
            "{who}: metrics-only cluster: {body}"
        );

        // `etl-b` is a cluster of both tenants: each caller sees the nodes of its own only,
        // and the other tenant's `etl-b` is not found.
        let readable: BTreeSet<String> = caller.clusters.iter().map(|(t, _)| t.clone()).collect();
        let mut nodes_seen = BTreeSet::new();
        for tenant in ["team-a", "team-b"] {
            let path = format!("/api/v1/clusters/etl-b?tenant={tenant}");
            let (status, body) = get(&collector, token, &path)?;
            let expected = if readable.contains(tenant) { 200 } else { 404 };
            assert_eq!(status, expected, "{who}: {path}: {body}");
            for node in ["b-node", "intruder-node"] {
                if body.contains(node) {
                    nodes_seen.insert(node);
                }
            }
        }
        let expected_nodes: BTreeSet<&str> = [
            caller.words.contains("bravo").then_some("b-node"),
            caller.words.contains("claimed").then_some("intruder-node"),
        ]
        .into_iter()
        .flatten()
        .collect();
        assert_eq!(nodes_seen, expected_nodes, "{who}: etl-b's nodes");

        let (_, body) = get(&collector, token, "/api/v1/retention")?;
        for tenant in ["team-a", "team-b"] {
            assert_eq!(
                body.contains(&format!("\"{tenant}\"")),
                readable.contains(tenant),
                "{who}: retention names {tenant}? {body}"
            );
        }

        for path in &read_apis[6..8] {
            let (_, body) = get(&collector, token, path)?;
            assert_eq!(
                team_labels(&json(&body)?["data"]),
                caller.team_labels,
                "{who}: {path}"
            );
        }
        let (_, body) = get(&collector, token, &read_apis[8])?;
        assert_eq!(
            team_labels(&json(&body)?["data"]),
            caller.team_labels,
            "{who}: series"
        );
        let (_, body) = get(&collector, token, &read_apis[9])?;
        let values: BTreeSet<String> = json(&body)?["data"]
            .as_array()
            .context("values")?
            .iter()
            .filter_map(|value| value.as_str().map(str::to_owned))
            .collect();
        assert_eq!(values, caller.team_labels, "{who}: label values");

        for (word, path) in &contexts {
            let (status, _) = get(&collector, token, path)?;
            let expected = if caller.words.contains(*word) {
                200
            } else {
                404
            };
            assert_eq!(status, expected, "{who}: context of {word}");
        }

        let (status, body) = get(&collector, token, "/metrics")?;
        let expected = if caller.label == "admin" { 200 } else { 403 };
        assert_eq!(status, expected, "{who}: /metrics {body}");
    }

    // The admin tells the teams apart. The intruder (team-a's token, cluster etl-b)
    // is team-a's in search, facets and series; `tenant:team-b` leaves it out; its scraped
    // `tenant="team-b"` is kept as `exported_tenant`. A reader of team-a naming team-b gets
    // nothing of team-b's.
    let tenant_search = |token: &str, query: &str| -> Result<Value> {
        let path = format!("/api/v1/logs/search?q={}&facets=tenant", encode(query));
        let (status, body) = get(&collector, Some(token), &path)?;
        assert_eq!(status, 200, "{path}: {body}");
        json(&body)
    };
    let admin_view = tenant_search(&admin, "isolationmarker")?;
    assert_eq!(
        admin_view["facets"]["tenant"],
        serde_json::json!({"team-a": 2, "team-b": 1})
    );
    let only_b = tenant_search(&admin, "isolationmarker AND tenant:team-b")?;
    assert_eq!(
        tenants_of_hits(only_b["hits"].as_array().context("hits")?),
        [("bravo".to_owned(), "team-b".to_owned())].into()
    );
    let not_b = tenant_search(&admin, "isolationmarker -tenant:team-b")?;
    assert_eq!(
        words_of_hits(not_b["hits"].as_array().context("hits")?),
        set(&["alpha", "claimed"])
    );
    let a_asks_for_b = tenant_search(&read_a, "isolationmarker AND tenant:team-b")?;
    assert_eq!(
        a_asks_for_b["hits"],
        serde_json::json!([]),
        "{a_asks_for_b}"
    );
    assert_eq!(a_asks_for_b["facets"]["tenant"], serde_json::json!({}));
    let series_of = |token: &str| -> Result<Vec<Value>> {
        let path = format!("/api/v1/series?{}=isolation_metric", encode("match[]"));
        let (_, body) = get(&collector, Some(token), &path)?;
        Ok(json(&body)?["data"].as_array().cloned().unwrap_or_default())
    };
    let labels_of = |series: &[Value], team_label: &str| -> Result<Value> {
        series
            .iter()
            .find(|labels| labels["team_label"] == team_label)
            .cloned()
            .with_context(|| format!("the series of team_label {team_label}: {series:?}"))
    };
    let admin_series = series_of(&admin)?;
    let claimed = labels_of(&admin_series, "claimed")?;
    assert_eq!(claimed["tenant"], "team-a", "{claimed}");
    assert_eq!(claimed["exported_tenant"], "team-b", "{claimed}");
    assert_eq!(labels_of(&admin_series, "b")?["tenant"], "team-b");
    let (_, body) = get(
        &collector,
        Some(&admin),
        &format!(
            "/api/v1/query?query={}",
            encode("sum by (tenant) (isolation_metric)")
        ),
    )?;
    let sums: BTreeSet<(String, String)> = json(&body)?["data"]["result"]
        .as_array()
        .context("a vector")?
        .iter()
        .map(|sample| {
            (
                sample["metric"]["tenant"]
                    .as_str()
                    .unwrap_or("-")
                    .to_owned(),
                sample["value"][1].as_str().unwrap_or("-").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        sums,
        [
            ("team-a".to_owned(), "2".to_owned()),
            ("team-b".to_owned(), "1".to_owned())
        ]
        .into()
    );
    let a_claimed = labels_of(&series_of(&read_a)?, "claimed")?;
    assert_eq!(
        a_claimed.get("tenant"),
        None,
        "a reader of one tenant sees no tenant label: {a_claimed}"
    );
    assert_eq!(a_claimed["exported_tenant"], "team-b");
    let (_, metrics) = get(&collector, Some(&admin), "/metrics")?;
    let renamed: f64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("afterglow_collector_labels_renamed_total "))
        .and_then(|value| value.parse().ok())
        .context("afterglow_collector_labels_renamed_total")?;
    assert!(renamed >= 1.0, "{renamed}");

    // The live tail: team-a's reader sees a's new line and not b's, sent before it.
    let mut tail = open_tail(&collector, &read_a)?;
    append(&log_b, &log_line("bravo-live"))?;
    wait_for("b's live line stored", || {
        let (_, body) = get(&collector, Some(&admin), "/api/v1/logs/search?q=bravo-live")?;
        let words = words_of_hits(json(&body)?["hits"].as_array().unwrap_or(&Vec::new()));
        Ok(if words.contains("bravo-live") {
            Ok(())
        } else {
            Err(words)
        })
    })?;
    append(&log_a, &log_line("alpha-live"))?;
    let streamed = read_until(&mut tail, "alpha-live")?;
    assert!(
        !streamed.contains("bravo-live"),
        "team-a's tail streamed team-b's record: {streamed}"
    );

    // Over its rate (1 per second, bursts of 2) a token is answered 429 with when to retry.
    let statuses: Vec<u16> = (0..4)
        .map(|_| get(&collector, Some(&slow), "/api/v1/labels").map(|(status, _)| status))
        .collect::<Result<_>>()?;
    assert!(statuses.contains(&429), "{statuses:?}");
    let response = ureq::get(&format!("{}/api/v1/labels", collector.http_url))
        .header("Authorization", &format!("Bearer {slow}"))
        .config()
        .http_status_as_error(false)
        .build()
        .call()?;
    assert_eq!(response.status().as_u16(), 429);
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
        .context("a Retry-After header")?;
    assert!((1..=2).contains(&retry_after), "{retry_after}");

    // Failures are counted, and no token ever reaches the log.
    let (_, metrics) = get(&collector, Some(&admin), "/metrics")?;
    for reason in ["missing", "unknown", "forbidden", "rate_limited"] {
        assert!(
            metrics.contains(&format!(
                "afterglow_collector_auth_failures_total{{protocol=\"http\",reason=\"{reason}\"}}"
            )),
            "{reason} not counted:\n{metrics}"
        );
    }
    let log = collector.process.log();
    for secret in [
        &ingest_a, &ingest_b, &read_a, &read_b, &read_ab, &admin, &slow,
    ] {
        assert!(!log.contains(secret.as_str()), "a token was logged");
    }
    assert!(
        !log.contains("agt_0123456789abcdef"),
        "a wrong token was logged"
    );
    Ok(())
}

#[test]
fn an_agent_token_is_refused_until_added_and_refused_again_once_revoked_without_a_restart()
-> Result<()> {
    let dir = tempfile::tempdir()?;
    let (admin, admin_stanza) = new_token("operators", "", "admin")?;
    let (late, late_stanza) = new_token("late-agents", "team-late", "ingest")?;
    let collector =
        Collector::start_with(dir.path(), &dir.path().join("data"), None, &admin_stanza)?;
    let config_path = dir.path().join("collector-0.toml");
    let config = std::fs::read_to_string(&config_path)?;
    let log = dir.path().join("w.log");
    std::fs::write(&log, log_line("unwelcome"))?;
    let agent = start_agent(
        dir.path(),
        &collector,
        ("etl", "node"),
        &format!("token = {late:?}\n[ship]\nbackoff_max = \"500ms\""),
        &log,
        None,
    )?;
    let refusals = || -> Result<f64> {
        let (_, metrics) = get(&collector, Some(&admin), "/metrics")?;
        Ok(metrics
            .lines()
            .find_map(|line| {
                line.strip_prefix(
                    "afterglow_collector_auth_failures_total{protocol=\"grpc\",reason=\"unknown\"} ",
                )?
                .parse()
                .ok()
            })
            .unwrap_or(0.0))
    };
    wait_for("the refusal counted", || {
        let count = refusals()?;
        Ok(if count > 0.0 { Ok(()) } else { Err(count) })
    })?;
    // The agent says what a human must fix, with the collector's reason.
    agent
        .process
        .wait_for_log("the collector refused this agent's token")?;
    agent
        .process
        .wait_for_log("the bearer token is not one of the collector's tokens")?;
    let search = |word: &str| -> Result<Vec<Value>> {
        let (_, body) = get(
            &collector,
            Some(&admin),
            &format!("/api/v1/logs/search?q={word}"),
        )?;
        Ok(json(&body)?["hits"].as_array().cloned().unwrap_or_default())
    };
    assert!(search("unwelcome")?.is_empty());

    // Added to the running collector's file: the agent's next try is let in, into its tenant.
    std::fs::write(&config_path, format!("{config}\n{late_stanza}"))?;
    let hits = wait_for("the agent's record, once its token is added", || {
        let hits = search("unwelcome")?;
        Ok(if hits.is_empty() { Err(()) } else { Ok(hits) })
    })?;
    let (_, clusters) = get(&collector, Some(&admin), "/api/v1/clusters")?;
    assert_eq!(
        json(&clusters)?["clusters"][0]["tenant"],
        "team-late",
        "{hits:?}"
    );

    // Revoked: the open stream's next batch is refused, and its record is not stored.
    let before = refusals()?;
    std::fs::write(&config_path, &config)?;
    collector
        .process
        .wait_for_log("access tokens loaded tokens=1")?;
    append(&log, &log_line("revoked"))?;
    wait_for("the revoked token's batch refused", || {
        let count = refusals()?;
        Ok(if count > before { Ok(()) } else { Err(count) })
    })?;
    assert!(
        search("revoked")?.is_empty(),
        "a revoked token's record was stored"
    );
    for secret in [&late, &admin] {
        assert!(
            !collector.process.log().contains(secret.as_str()),
            "a token was logged"
        );
    }
    Ok(())
}

#[test]
fn an_agent_rereads_its_token_file_before_each_connection() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (admin, admin_stanza) = new_token("operators", "", "admin")?;
    let (rotated, rotated_stanza) = new_token("rotated-agents", "team-r", "ingest")?;
    let collector = Collector::start_with(
        dir.path(),
        &dir.path().join("data"),
        None,
        &format!("{admin_stanza}\n{rotated_stanza}"),
    )?;
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "agt_the-old-revoked-token\n")?;
    let log = dir.path().join("w.log");
    std::fs::write(&log, log_line("rotated"))?;
    let agent = start_agent(
        dir.path(),
        &collector,
        ("etl", "node"),
        &format!(
            "token_file = {:?}\n[ship]\nbackoff_max = \"500ms\"",
            token_file.display().to_string()
        ),
        &log,
        None,
    )?;
    agent
        .process
        .wait_for_log("the collector refused this agent's token")?;
    // The operator puts the new token in the file; the running agent uses it on its next try.
    std::fs::write(&token_file, format!("{rotated}\n"))?;
    wait_for("the record, sent with the rotated token", || {
        let (_, body) = get(&collector, Some(&admin), "/api/v1/logs/search?q=rotated")?;
        let hits = json(&body)?["hits"].as_array().cloned().unwrap_or_default();
        Ok(if hits.is_empty() { Err(()) } else { Ok(()) })
    })?;
    let (_, clusters) = get(&collector, Some(&admin), "/api/v1/clusters")?;
    assert_eq!(json(&clusters)?["clusters"][0]["tenant"], "team-r");
    Ok(())
}

fn append(path: &Path, text: &str) -> Result<()> {
    let mut file = std::fs::OpenOptions::new().append(true).open(path)?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

/// Opens `/api/v1/logs/tail?q=isolationmarker` with `token`, past the response headers.
fn open_tail(collector: &Collector, token: &str) -> Result<BufReader<TcpStream>> {
    let address = collector
        .http_url
        .strip_prefix("http://")
        .context("an http:// URL")?;
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "GET /api/v1/logs/tail?q=isolationmarker HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
    )?;
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status)?;
    if !status.contains(" 200 ") {
        bail!("tail answered {status}");
    }
    Ok(reader)
}

/// Reads the tail until a line holds `text` (or its read timeout passes), returning all read.
fn read_until(tail: &mut BufReader<TcpStream>, text: &str) -> Result<String> {
    let mut read = String::new();
    loop {
        let mut line = String::new();
        if tail.read_line(&mut line)? == 0 {
            bail!("the tail ended before {text:?}: {read}");
        }
        read.push_str(&line);
        if line.contains(text) {
            return Ok(read);
        }
    }
}

/// A team's reader sees neither another team's retention rules (their cluster globs name its
/// clusters) nor the whole data directory's size, and cannot take every live-tail slot.
#[test]
fn a_team_sees_only_its_retention_rules_and_holds_only_its_share_of_live_tails() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (read_a, read_a_stanza) = new_token("a-readers", "team-a", "read")?;
    let (read_b, read_b_stanza) = new_token("b-readers", "team-b", "read")?;
    let (admin, admin_stanza) = new_token("operators", "", "admin")?;
    let config = format!(
        "{read_a_stanza}\n{read_b_stanza}\n{admin_stanza}\n\
         [search]\nmax_tail_clients = 4\nmax_tail_clients_per_tenant = 2\n\
         [retention]\nmax_age = \"720h\"\n\
         [[retention.rules]]\ntenant = \"team-a\"\ncluster = \"alpha-*\"\nmax_age = \"72h\"\n\
         [[retention.rules]]\ntenant = \"team-b\"\ncluster = \"bravo-secret-*\"\nmax_age = \"24h\"\n"
    );
    let collector = Collector::start_with(dir.path(), &dir.path().join("data"), None, &config)?;

    let (status, body) = get(&collector, Some(&read_a), "/api/v1/retention")?;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("alpha-*"), "team-a's own rule: {body}");
    assert!(
        !body.contains("bravo-secret"),
        "team-b's rule leaked: {body}"
    );
    assert!(json(&body)?["data_dir_bytes"].is_null(), "{body}");
    let (status, body) = get(&collector, Some(&admin), "/api/v1/retention")?;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("alpha-*") && body.contains("bravo-secret-*"),
        "{body}"
    );
    assert!(json(&body)?["data_dir_bytes"].is_u64(), "{body}");

    // Team a holds its share of the slots; its next tail is refused, team b's is not.
    let _held = [
        open_tail(&collector, &read_a)?,
        open_tail(&collector, &read_a)?,
    ];
    let refused = open_tail(&collector, &read_a).expect_err("past team-a's share");
    assert!(refused.to_string().contains(" 503 "), "{refused}");
    let _team_b = open_tail(&collector, &read_b)?;
    Ok(())
}
