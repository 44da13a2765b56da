//! The scrape loop and Dask discovery against real HTTP servers on 127.0.0.1 whose pages the
//! test changes while the loop runs.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use url::Url;

use super::*;
use crate::config::DaskConfig;
use crate::scrape::dask::Discovery;
use crate::scrape::page::STALE_NAN_BITS;

/// Serves `GET path` from a map of path → body that the test can change; a missing path is
/// a 500. Every path asked for is recorded.
#[derive(Clone, Default)]
struct Pages(
    Arc<Mutex<std::collections::HashMap<String, String>>>,
    Arc<Mutex<Vec<String>>>,
);

impl Pages {
    /// How many times `path` was asked for.
    fn asked(&self, path: &str) -> usize {
        let asked = self.1.lock().expect("not poisoned");
        asked.iter().filter(|asked| *asked == path).count()
    }

    fn set(&self, path: &str, body: &str) {
        self.0
            .lock()
            .expect("not poisoned")
            .insert(path.to_owned(), body.to_owned());
    }

    fn remove(&self, path: &str) {
        self.0.lock().expect("not poisoned").remove(path);
    }

    async fn serve(&self) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let port = listener.local_addr().expect("bound").port();
        let pages = self.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let pages = pages.clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buffer = [0; 1024];
                    while !request.windows(4).any(|window| window == b"\r\n\r\n") {
                        match socket.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(read) => request.extend_from_slice(&buffer[..read]),
                        }
                    }
                    let text = String::from_utf8_lossy(&request);
                    let path = text.split(' ').nth(1).unwrap_or("/").to_owned();
                    pages.1.lock().expect("not poisoned").push(path.clone());
                    let body = pages.0.lock().expect("not poisoned").get(&path).cloned();
                    let response = match body {
                        Some(body) => format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        ),
                        None => {
                            "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                                .to_owned()
                        }
                    };
                    let _ = socket.write_all(response.as_bytes()).await;
                });
            }
        });
        port
    }
}

fn timing() -> ScrapeTiming {
    ScrapeTiming {
        interval: Duration::from_millis(50),
        timeout: Duration::from_secs(2),
        max_body_bytes: 1 << 20,
    }
}

/// `(metric, label value of `label`, value)` of every series in a scrape.
fn series(scrape: &Scrape, label: &str) -> Vec<(String, String, f64)> {
    scrape
        .families
        .iter()
        .flat_map(|family| &family.series)
        .map(|series| {
            let value = series
                .labels
                .iter()
                .find(|l| l.name == label)
                .map(|l| l.value.clone())
                .unwrap_or_default();
            (series.metric.clone(), value, series.samples[0].value)
        })
        .collect()
}

fn up(scrape: &Scrape) -> Option<f64> {
    series(scrape, "instance")
        .into_iter()
        .find(|(metric, _, _)| metric == "up")
        .map(|(_, _, value)| value)
}

/// Receives scrapes until one satisfies `done`, for at most 10 s.
async fn scrape_until(
    scrapes: &mut mpsc::Receiver<Scrape>,
    mut done: impl FnMut(&Scrape) -> bool,
) -> Scrape {
    let wanted = async {
        loop {
            let scrape = scrapes.recv().await.expect("the loop runs");
            if done(&scrape) {
                return scrape;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wanted)
        .await
        .expect("the scrape wanted within 10 s")
}

#[tokio::test]
async fn a_target_going_down_and_up_is_reported_with_up_and_staleness_markers() {
    let pages = Pages::default();
    pages.set(
        "/metrics",
        include_str!("../../../tests/fixtures/dask/metrics/worker-1-metrics-t1-idle.prom"),
    );
    let port = pages.serve().await;
    let key = format!("http://127.0.0.1:{port}/metrics");
    let url = Url::parse(&key).expect("valid");
    let identity = TargetIdentity {
        cluster: "c",
        node: "n",
        agent_node: "n",
        role: Role::Worker,
        key: &key,
    };
    let target = Target::new(
        url,
        identity,
        [("team".to_owned(), "a".to_owned())],
        &timing(),
    );
    let (_keep, receiver) = watch::channel(target);
    let (sender, mut scrapes) = mpsc::channel(4);
    let metrics = AgentMetrics::new();
    let context = ScrapeContext {
        scrapes: sender,
        metrics: Arc::clone(&metrics),
    };
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(run_target(
        receiver,
        context,
        shutdown.clone(),
        CancellationToken::new(),
    ));

    let first = scrape_until(&mut scrapes, |scrape| up(scrape) == Some(1.0)).await;
    let found = series(&first, "team");
    assert!(
        found.iter().all(|(_, team, _)| team == "a"),
        "extra labels on every series"
    );
    assert!(
        found
            .iter()
            .any(|(metric, _, _)| metric == "dask_worker_threads")
    );
    let scraped = found
        .iter()
        .find(|(m, _, _)| m == "scrape_samples_scraped")
        .expect("synthetic")
        .2;
    assert_eq!(scraped as usize, found.len() - 3);

    pages.remove("/metrics");
    let down = scrape_until(&mut scrapes, |scrape| up(scrape) == Some(0.0)).await;
    let stale = series(&down, "instance")
        .into_iter()
        .filter(|(_, _, value)| value.to_bits() == STALE_NAN_BITS)
        .count();
    assert_eq!(
        stale, scraped as usize,
        "every scraped series ends when the target fails"
    );
    assert_eq!(metrics.scrape_targets_down.get(), 1);
    assert!(metrics.scrape_failures.get() >= 1);

    pages.set("/metrics", "# TYPE only gauge\nonly 1\nbad line here\n");
    let again = scrape_until(&mut scrapes, |scrape| up(scrape) == Some(1.0)).await;
    assert!(
        series(&again, "instance")
            .iter()
            .any(|(metric, _, value)| metric == "only" && *value == 1.0)
    );
    assert_eq!(metrics.scrape_targets_down.get(), 0);
    assert!(
        metrics.scrape_lines_skipped.get() >= 1,
        "the bad line is counted"
    );

    shutdown.cancel();
    task.await.expect("the loop ends at shutdown");
    assert_eq!(metrics.scrape_targets.get(), 0);
}

#[tokio::test]
async fn discovery_follows_workers_that_join_move_and_leave() {
    let pages = Pages::default();
    let port = pages.serve().await;
    // Every worker's "dashboard" is this same server.
    let identity = |workers: &[(&str, &str)]| {
        let workers: serde_json::Map<String, serde_json::Value> = workers
            .iter()
            .map(|(address, name)| {
                (
                    (*address).to_owned(),
                    serde_json::json!({"name": name, "host": "127.0.0.1", "services": {"dashboard": port}}),
                )
            })
            .collect();
        serde_json::json!({"type": "Scheduler", "workers": workers}).to_string()
    };
    pages.set("/metrics", "dask_scheduler_workers 1\n");
    pages.set(
        "/json/identity.json",
        &identity(&[("tcp://127.0.0.1:1001", "w-1")]),
    );
    let (sender, mut scrapes) = mpsc::channel(16);
    let context = ScrapeContext {
        scrapes: sender,
        metrics: AgentMetrics::new(),
    };
    let discovery = Discovery {
        config: DaskConfig {
            scheduler: format!("http://127.0.0.1:{port}"),
            poll_interval: "50ms".to_owned(),
            interval: "50ms".to_owned(),
            timeout: "2s".to_owned(),
            max_body_bytes: crate::config::ByteSize(1 << 20),
            labels: Default::default(),
        },
        cluster: "c".to_owned(),
        node: "agent-node".to_owned(),
    };
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(discovery.run(context, shutdown.clone()));
    let worker_addr = |scrape: &Scrape| {
        series(scrape, "worker_addr")
            .into_iter()
            .find(|(metric, _, value)| metric == "up" && *value == 1.0)
            .map(|(_, addr, _)| addr)
    };
    let scheduler =
        scrape_until(&mut scrapes, |scrape| scrape.stream.role == Role::Scheduler).await;
    assert_eq!(series(&scheduler, "role")[0].1, "scheduler");
    let first = scrape_until(&mut scrapes, |scrape| worker_addr(scrape).is_some()).await;
    assert_eq!(worker_addr(&first).as_deref(), Some("tcp://127.0.0.1:1001"));
    assert_eq!(series(&first, "worker")[0].1, "w-1");
    let stream_id = first.stream.id;

    // The worker restarts under a new address: same stream, new worker_addr, old series end.
    pages.set(
        "/json/identity.json",
        &identity(&[("tcp://127.0.0.1:2002", "w-1")]),
    );
    let moved = scrape_until(&mut scrapes, |scrape| {
        worker_addr(scrape).as_deref() == Some("tcp://127.0.0.1:2002")
    })
    .await;
    assert_eq!(
        moved.stream.id, stream_id,
        "a worker keeps its stream across restarts"
    );
    let ended: Vec<_> = series(&moved, "worker_addr")
        .into_iter()
        .filter(|(_, _, value)| value.to_bits() == STALE_NAN_BITS)
        .collect();
    assert!(
        !ended.is_empty()
            && ended
                .iter()
                .all(|(_, addr, _)| addr == "tcp://127.0.0.1:1001"),
        "{ended:?}"
    );

    // The worker leaves: every one of its series ends.
    pages.set("/json/identity.json", &identity(&[]));
    let left = scrape_until(&mut scrapes, |scrape| {
        scrape.stream.id == stream_id
            && series(scrape, "worker")
                .iter()
                .all(|(_, _, value)| value.to_bits() == STALE_NAN_BITS)
    })
    .await;
    assert!(
        series(&left, "worker")
            .iter()
            .any(|(metric, _, _)| metric == "up")
    );

    // The scheduler goes away: the targets stay and report down.
    pages.remove("/json/identity.json");
    pages.remove("/metrics");
    scrape_until(&mut scrapes, |scrape| {
        scrape.stream.role == Role::Scheduler && up(scrape) == Some(0.0)
    })
    .await;
    shutdown.cancel();
    task.await.expect("discovery ends at shutdown");
}

/// A worker that lives less than an interval left no sample, because its first
/// scrape waited for its place on the grid. A target is scraped at once when it starts and
/// when it moves, and once more when it leaves if it still answers; one that no longer
/// answers is ended, not reported down.
#[tokio::test]
async fn a_target_is_scraped_at_once_when_it_starts_or_moves_and_once_more_when_it_leaves() {
    let pages = Pages::default();
    pages.set("/first", "life 1\n");
    pages.set("/second", "life 2\n");
    pages.set("/gone", "life 3\n");
    let port = pages.serve().await;
    let hour = ScrapeTiming {
        interval: Duration::from_secs(3600),
        timeout: Duration::from_secs(2),
        max_body_bytes: 1 << 20,
    };
    let target_at = |path: &str, key: &str| {
        let identity = TargetIdentity {
            cluster: "c",
            node: "n",
            agent_node: "n",
            role: Role::Worker,
            key,
        };
        let url = Url::parse(&format!("http://127.0.0.1:{port}{path}")).expect("valid");
        Target::new(url, identity, [], &hour)
    };
    let first = target_at("/first", "dask-worker/brief");
    let offset_ms = first.stream.id % 3_600_000;
    assert!(
        offset_ms > 60_000,
        "the grid's first point is {offset_ms} ms away: far, so that only a scrape at once passes"
    );
    let (sender, mut scrapes) = mpsc::channel(16);
    let context = ScrapeContext {
        scrapes: sender,
        metrics: AgentMetrics::new(),
    };
    let shutdown = CancellationToken::new();
    let removed = CancellationToken::new();
    let (moves, receiver) = watch::channel(first.clone());
    let task = tokio::spawn(run_target(
        receiver,
        context.clone(),
        shutdown.clone(),
        removed.clone(),
    ));
    let life = |scrape: &Scrape| {
        series(scrape, "instance")
            .into_iter()
            .find(|(metric, _, value)| metric == "life" && value.to_bits() != STALE_NAN_BITS)
            .map(|(_, _, value)| value)
    };
    let next = async |scrapes: &mut mpsc::Receiver<Scrape>| {
        tokio::time::timeout(Duration::from_secs(5), scrapes.recv())
            .await
            .expect("a scrape within 5 s, not at the grid's first point")
            .expect("the loop runs")
    };

    let started = next(&mut scrapes).await;
    assert_eq!((up(&started), life(&started)), (Some(1.0), Some(1.0)));

    // The worker restarts under a new address: scraped at once there.
    moves
        .send(target_at("/second", "dask-worker/brief"))
        .expect("the task runs");
    let moved = next(&mut scrapes).await;
    assert_eq!((up(&moved), life(&moved)), (Some(1.0), Some(2.0)));
    assert_eq!(moved.stream.id, first.stream.id);

    // It leaves while its page still answers: one more scrape, then every series ends.
    removed.cancel();
    let last = next(&mut scrapes).await;
    assert_eq!((up(&last), life(&last)), (Some(1.0), Some(2.0)));
    let ended = next(&mut scrapes).await;
    assert!(
        !ended.families.is_empty()
            && series(&ended, "instance")
                .iter()
                .all(|(_, _, value)| value.to_bits() == STALE_NAN_BITS),
        "{:?}",
        series(&ended, "instance")
    );
    task.await.expect("the loop ends when its target leaves");

    // A target that no longer answers when it leaves is ended without an `up` 0.
    let (_keep, receiver) = watch::channel(target_at("/gone", "dask-worker/gone"));
    let removed = CancellationToken::new();
    let task = tokio::spawn(run_target(
        receiver,
        context,
        shutdown.clone(),
        removed.clone(),
    ));
    let started = next(&mut scrapes).await;
    assert_eq!((up(&started), life(&started)), (Some(1.0), Some(3.0)));
    pages.remove("/gone");
    removed.cancel();
    let ended = next(&mut scrapes).await;
    let values = series(&ended, "instance");
    assert!(
        !values.is_empty()
            && values
                .iter()
                .all(|(_, _, value)| value.to_bits() == STALE_NAN_BITS),
        "{values:?}"
    );
    task.await.expect("the loop ends when its target leaves");
    shutdown.cancel();
}

/// Discovery asked for `/json/identity.json` first, which Dask fails (logging an
/// `ERROR` in the scheduler's log) while workers run tasks. The workers page is read, and the
/// identity document asked for only when that page cannot be read.
#[tokio::test]
async fn discovery_reads_the_workers_page_and_the_identity_document_only_as_fallback() {
    let pages = Pages::default();
    let port = pages.serve().await;
    pages.set("/metrics", "dask_worker_threads 1\n");
    pages.set(
        "/info/main/workers.html",
        &format!(
            "<table><tr><th> Worker </th></tr>\
             <tr ><td><a href=\"../worker/x.html\">tcp://127.0.0.1:1001</a></td><td> w-page </td>\
             <td> <a href=\"../../proxy/{port}/127.0.0.1/status\">dashboard</a> </td></tr></table>"
        ),
    );
    pages.set(
        "/json/identity.json",
        &serde_json::json!({"workers": {"tcp://127.0.0.1:1001": {
            "name": "w-identity", "host": "127.0.0.1", "services": {"dashboard": port}}}})
        .to_string(),
    );
    let (sender, mut scrapes) = mpsc::channel(64);
    let context = ScrapeContext {
        scrapes: sender,
        metrics: AgentMetrics::new(),
    };
    let discovery = Discovery {
        config: DaskConfig {
            scheduler: format!("http://127.0.0.1:{port}"),
            poll_interval: "20ms".to_owned(),
            interval: "50ms".to_owned(),
            timeout: "2s".to_owned(),
            max_body_bytes: crate::config::ByteSize(1 << 20),
            labels: Default::default(),
        },
        cluster: "c".to_owned(),
        node: "agent-node".to_owned(),
    };
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(discovery.run(context, shutdown.clone()));
    async fn found(scrapes: &mut mpsc::Receiver<Scrape>, name: &str) {
        scrape_until(scrapes, |scrape| {
            series(scrape, "worker")
                .iter()
                .any(|(metric, worker, value)| metric == "up" && worker == name && *value == 1.0)
        })
        .await;
    }
    found(&mut scrapes, "w-page").await;
    tokio::time::timeout(Duration::from_secs(10), async {
        while pages.asked("/info/main/workers.html") < 5 {
            scrapes.recv().await.expect("the loop runs");
        }
    })
    .await
    .expect("five polls within 10 s");
    assert_eq!(pages.asked("/json/identity.json"), 0);

    // A scheduler whose workers page fails: the identity document is the fallback.
    pages.remove("/info/main/workers.html");
    found(&mut scrapes, "w-identity").await;
    assert!(pages.asked("/json/identity.json") >= 1);
    shutdown.cancel();
    task.await.expect("discovery ends at shutdown");
}
