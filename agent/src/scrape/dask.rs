//! Dask discovery: reads the scheduler's workers page (`/info/main/workers.html`) every
//! `poll_interval`, and keeps one scrape task for the scheduler and one per worker
//! (`http://{host}:{services.dashboard}/metrics`), labelled with the worker's `worker` name and
//! `worker_addr` address. The identity document (`/json/identity.json`) is the fallback, for a
//! scheduler that does not serve that page.
//!
//! The rule a reader must not miss: discovery must not write errors into the scheduler's log,
//! the log Afterglow exists to search. While workers run tasks, Dask (2026.8) fails to
//! serialize the identity document (tuple keys in the workers' metrics) and logs each failed
//! request as an `ERROR` with a traceback, so that document is asked for only when the workers
//! page cannot be read. A worker is keyed by its name, which survives restarts; a restart
//! under a new address updates the running task (its old series get staleness markers, the
//! new ones start), and a worker that left is ended with staleness markers. When the scheduler
//! cannot be asked, the targets stay as they were (they then report `up` 0 if they are gone
//! too).

use std::collections::HashMap;

use serde::Deserialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::config::{DaskConfig, Role};
use crate::scrape::{ScrapeContext, ScrapeTiming, Target, TargetIdentity, http, run_target};

/// Largest identity document or workers page read (a few KiB per worker).
const MAX_PAGE_BYTES: u64 = 64 << 20;

/// The parts of `/json/identity.json` discovery needs.
#[derive(Debug, Deserialize)]
struct Identity {
    #[serde(default)]
    workers: HashMap<String, WorkerIdentity>,
}

#[derive(Debug, Deserialize)]
struct WorkerIdentity {
    #[serde(default)]
    name: Option<serde_json::Value>,
    #[serde(default)]
    id: Option<String>,
    host: String,
    #[serde(default)]
    services: HashMap<String, serde_json::Value>,
}

/// The workers a scheduler page lists, and the ones it lists that cannot be scraped (why),
/// or why the page cannot be read.
pub type Found = Result<(Vec<DiscoveredWorker>, Vec<String>), String>;

/// A worker to scrape, as the scheduler reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredWorker {
    pub name: String,
    /// The worker's Dask address, e.g. `tcp://10.0.0.5:40123`.
    pub address: String,
    pub host: String,
    pub metrics_url: Url,
}

/// Reads the workers out of an identity document; workers without a dashboard port are
/// skipped and named in the returned problems.
pub fn workers_from_identity(document: &[u8]) -> Found {
    let identity: Identity = serde_json::from_slice(document)
        .map_err(|error| format!("not a Dask identity document: {error}"))?;
    let mut workers = Vec::new();
    let mut problems = Vec::new();
    for (address, worker) in identity.workers {
        let name = match &worker.name {
            Some(serde_json::Value::String(name)) => name.clone(),
            Some(serde_json::Value::Number(number)) => number.to_string(),
            _ => worker.id.clone().unwrap_or_else(|| address.clone()),
        };
        let port = worker
            .services
            .get("dashboard")
            .and_then(serde_json::Value::as_u64);
        match discovered(name, address, worker.host, port) {
            Ok(found) => workers.push(found),
            Err(problem) => problems.push(problem),
        }
    }
    workers.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((workers, problems))
}

/// Reads the workers out of the scheduler's workers page (`/info/main/workers.html`): per
/// table row, the address (the first link), the name (the second cell) and the dashboard
/// link `../../proxy/{port}/{host}/status`. A row without an address is an error, not a
/// worker skipped: the page's layout is not the one known, and its workers cannot be told.
pub fn workers_from_table(page: &[u8]) -> Found {
    let page = String::from_utf8_lossy(page);
    if !page.contains("<table") {
        return Err("not a Dask workers page: no table".to_owned());
    }
    let mut workers = Vec::new();
    let mut problems = Vec::new();
    for row in page.split("<tr").skip(1) {
        let cells: Vec<&str> = row
            .split("<td")
            .skip(1)
            .map(|cell| cell.split("</td>").next().unwrap_or_default())
            .collect();
        let (Some(address_cell), Some(name_cell)) = (cells.first(), cells.get(1)) else {
            continue; // the header row
        };
        let Some(address) = between(address_cell, "\">", "</a>") else {
            return Err("not a Dask workers page: a row has no worker address".to_owned());
        };
        let address = unescape_html(address);
        let name = unescape_html(name_cell.trim_start_matches('>').trim());
        let dashboard = between(row, "href=\"../../proxy/", "/status\"")
            .and_then(|link| link.split_once('/'))
            .and_then(|(port, host)| Some((port.parse::<u64>().ok()?, unescape_html(host))));
        let found = match dashboard {
            Some((port, host)) => discovered(name, address, host, Some(port)),
            None => discovered(name, address, String::new(), None),
        };
        match found {
            Ok(found) => workers.push(found),
            Err(problem) => problems.push(problem),
        }
    }
    workers.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((workers, problems))
}

/// The text of `text` between the first `start` and the next `end`.
fn between<'t>(text: &'t str, start: &str, end: &str) -> Option<&'t str> {
    let after = &text[text.find(start)? + start.len()..];
    Some(&after[..after.find(end)?])
}

/// Undoes the escapes Tornado's templates apply (`xhtml_escape`).
fn unescape_html(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// A worker to scrape at its dashboard port, or why it cannot be.
fn discovered(
    name: String,
    address: String,
    host: String,
    dashboard_port: Option<u64>,
) -> Result<DiscoveredWorker, String> {
    let Some(port) = dashboard_port else {
        return Err(format!("worker {name} ({address}) has no dashboard port"));
    };
    let bracketed = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.clone()
    };
    match Url::parse(&format!("http://{bracketed}:{port}/metrics")) {
        Ok(metrics_url) => Ok(DiscoveredWorker {
            name,
            address,
            host,
            metrics_url,
        }),
        Err(error) => Err(format!("worker {name} ({address}): bad host: {error}")),
    }
}

/// The scheduler's two lists of workers, in the order they are asked.
struct WorkerSources {
    /// `/info/main/workers.html`: Dask renders it whatever its workers do.
    table_url: Url,
    /// `/json/identity.json`: fails, with an `ERROR` in the scheduler's log, while workers
    /// run tasks.
    identity_url: Url,
    /// The scheduler answered that it has no workers page (404, or another page): the
    /// identity document is asked first until the workers page answers again.
    table_absent: bool,
}

/// Why a page gave no workers, and whether the scheduler does not serve it at all.
struct AskError {
    problem: String,
    absent: bool,
}

impl WorkerSources {
    /// The workers, from the workers page, or from the identity document when the page
    /// cannot be read.
    async fn ask(&mut self, timing: &ScrapeTiming) -> Found {
        if self.table_absent {
            let identity_error = match ask(&self.identity_url, workers_from_identity, timing).await
            {
                Ok(found) => return Ok(found),
                Err(error) => error,
            };
            return match ask(&self.table_url, workers_from_table, timing).await {
                Ok(found) => {
                    self.table_absent = false;
                    Ok(found)
                }
                Err(table_error) => Err(self.both_failed(&table_error, &identity_error)),
            };
        }
        let table_error = match ask(&self.table_url, workers_from_table, timing).await {
            Ok(found) => return Ok(found),
            Err(error) => error,
        };
        if table_error.absent {
            tracing::info!(url = %self.table_url, problem = %table_error.problem, "the Dask scheduler has no workers page; asking its identity document first");
            self.table_absent = true;
        }
        match ask(&self.identity_url, workers_from_identity, timing).await {
            Ok(found) => Ok(found),
            Err(identity_error) => Err(self.both_failed(&table_error, &identity_error)),
        }
    }

    fn both_failed(&self, table_error: &AskError, identity_error: &AskError) -> String {
        format!(
            "{}: {}; and {}: {}",
            self.table_url, table_error.problem, self.identity_url, identity_error.problem
        )
    }
}

/// Fetches `url` and reads the workers out of it with `read`.
async fn ask(
    url: &Url,
    read: fn(&[u8]) -> Found,
    timing: &ScrapeTiming,
) -> Result<(Vec<DiscoveredWorker>, Vec<String>), AskError> {
    let page = http::get(
        url,
        "application/json, text/html",
        timing.timeout,
        MAX_PAGE_BYTES,
    )
    .await
    .map_err(|error| AskError {
        absent: matches!(error, http::FetchError::Status(404)),
        problem: error.to_string(),
    })?;
    read(&page.body).map_err(|problem| AskError {
        problem,
        absent: true,
    })
}

/// A running scrape task: where to send its new target, and how to end it.
struct Running {
    target: watch::Sender<Target>,
    removed: CancellationToken,
}

/// Who the discovered targets belong to.
pub struct Discovery {
    pub config: DaskConfig,
    pub cluster: String,
    pub node: String,
}

impl Discovery {
    /// Polls the scheduler every `poll_interval` and keeps the scrape tasks in step with what
    /// it reports, until `shutdown`.
    pub async fn run(self, context: ScrapeContext, shutdown: CancellationToken) {
        let urls = self.config.scheduler_url().and_then(|base| {
            let join = |path: &str| base.join(path).map_err(|error| error.to_string());
            Ok((
                base.clone(),
                join("metrics")?,
                WorkerSources {
                    table_url: join("info/main/workers.html")?,
                    identity_url: join("json/identity.json")?,
                    table_absent: false,
                },
            ))
        });
        let (base_url, scheduler_url, mut sources) = match urls {
            Ok(urls) => urls,
            Err(error) => {
                tracing::error!(%error, "cannot use [dask] scheduler");
                return;
            }
        };
        let timing = self.config.timing();
        let mut running: HashMap<String, Running> = HashMap::new();
        let mut tasks = tokio::task::JoinSet::new();
        // The scheduler itself: always a target.
        self.update(
            &mut running,
            &mut tasks,
            "scheduler".to_owned(),
            self.scheduler_target(scheduler_url, &timing),
            &context,
            &shutdown,
        );
        let mut last_problem: Option<String> = None;
        let mut poll = tokio::time::interval(self.config.poll_interval());
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = poll.tick() => {}
            }
            let fetched = sources.ask(&timing).await;
            let (workers, problems) = match fetched {
                Ok(found) => found,
                Err(problem) => {
                    if last_problem.as_deref() != Some(&problem) {
                        tracing::warn!(url = %base_url, %problem, "cannot ask the Dask scheduler for its workers; keeping the known targets");
                    }
                    last_problem = Some(problem);
                    continue;
                }
            };
            if last_problem.take().is_some() {
                tracing::info!(url = %base_url, "the Dask scheduler answers again");
            }
            for problem in problems {
                tracing::debug!(%problem, "worker not scraped");
            }
            let mut seen = Vec::with_capacity(workers.len());
            for worker in workers {
                let key = format!("worker/{}", worker.name);
                let target = self.worker_target(&worker, &timing);
                self.update(
                    &mut running,
                    &mut tasks,
                    key.clone(),
                    target,
                    &context,
                    &shutdown,
                );
                seen.push(key);
            }
            running.retain(|key, task| {
                let keep = key == "scheduler" || seen.contains(key);
                if !keep {
                    tracing::info!(worker = %key.trim_start_matches("worker/"), "Dask worker left; ending its series");
                    task.removed.cancel();
                }
                keep
            });
        }
        // The tasks see `shutdown` too; wait for them so that their last scrapes are handed over.
        while tasks.join_next().await.is_some() {}
    }

    /// Starts a task for `key`, or hands a running one its changed target.
    fn update(
        &self,
        running: &mut HashMap<String, Running>,
        tasks: &mut tokio::task::JoinSet<()>,
        key: String,
        target: Target,
        context: &ScrapeContext,
        shutdown: &CancellationToken,
    ) {
        if let Some(task) = running.get(&key) {
            if *task.target.borrow() != target {
                tracing::info!(%key, url = %target.url, "Dask target moved");
                let _ = task.target.send(target);
            }
            return;
        }
        tracing::info!(%key, url = %target.url, "scraping Dask target");
        let (sender, receiver) = watch::channel(target);
        let removed = CancellationToken::new();
        tasks.spawn(run_target(
            receiver,
            context.clone(),
            shutdown.clone(),
            removed.clone(),
        ));
        running.insert(
            key,
            Running {
                target: sender,
                removed,
            },
        );
    }

    fn scheduler_target(&self, url: Url, timing: &ScrapeTiming) -> Target {
        let identity = TargetIdentity {
            cluster: &self.cluster,
            node: &self.node,
            agent_node: &self.node,
            role: Role::Scheduler,
            key: "dask-scheduler",
        };
        Target::new(url, identity, self.config.labels.clone(), timing)
    }

    fn worker_target(&self, worker: &DiscoveredWorker, timing: &ScrapeTiming) -> Target {
        let key = format!("dask-worker/{}", worker.name);
        let identity = TargetIdentity {
            cluster: &self.cluster,
            node: &worker.host,
            agent_node: &self.node,
            role: Role::Worker,
            key: &key,
        };
        let labels = self.config.labels.clone().into_iter().chain([
            ("worker".to_owned(), worker.name.clone()),
            ("worker_addr".to_owned(), worker.address.clone()),
        ]);
        Target::new(worker.metrics_url.clone(), identity, labels, timing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(name, address, host, metrics URL)` of each worker.
    fn summary(workers: &[DiscoveredWorker]) -> Vec<(&str, &str, &str, &str)> {
        workers
            .iter()
            .map(|worker| {
                (
                    worker.name.as_str(),
                    worker.address.as_str(),
                    worker.host.as_str(),
                    worker.metrics_url.as_str(),
                )
            })
            .collect()
    }

    #[test]
    fn the_real_identity_document_lists_every_worker_with_its_dashboard() {
        let document =
            include_bytes!("../../../tests/fixtures/dask/http/scheduler-identity-idle.json");
        let (workers, problems) = workers_from_identity(document).expect("parses");
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            summary(&workers),
            [
                (
                    "worker-1",
                    "tcp://127.0.0.1:42737",
                    "127.0.0.1",
                    "http://127.0.0.1:8791/metrics"
                ),
                (
                    "worker-2",
                    "tcp://127.0.0.1:43841",
                    "127.0.0.1",
                    "http://127.0.0.1:8792/metrics"
                ),
                (
                    "worker-3",
                    "tcp://127.0.0.1:42787",
                    "127.0.0.1",
                    "http://127.0.0.1:8793/metrics"
                ),
            ]
        );
    }

    #[test]
    fn numeric_names_ipv6_hosts_and_missing_dashboards_are_handled() {
        let document = br#"{"workers": {
            "tcp://[::1]:4000": {"name": 3, "host": "::1", "services": {"dashboard": 9000}},
            "tcp://10.0.0.1:4000": {"id": "w-x", "host": "10.0.0.1", "services": {}}
        }}"#;
        let (workers, problems) = workers_from_identity(document).expect("parses");
        assert_eq!(workers.len(), 1);
        assert_eq!(workers[0].name, "3");
        assert_eq!(workers[0].metrics_url.as_str(), "http://[::1]:9000/metrics");
        assert_eq!(
            problems,
            ["worker w-x (tcp://10.0.0.1:4000) has no dashboard port"]
        );
    }

    #[test]
    fn the_real_workers_page_gives_the_same_workers_as_the_identity_document_would() {
        // From a scheduler with `w-1` (with a nanny) and a worker named `<b>&7`.
        let page = include_bytes!("../../../tests/fixtures/dask/http/scheduler-workers.html");
        let (workers, problems) = workers_from_table(page).expect("parses");
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            summary(&workers),
            [
                (
                    "<b>&7",
                    "tcp://127.0.0.1:46781",
                    "127.0.0.1",
                    "http://127.0.0.1:34095/metrics"
                ),
                (
                    "w-1",
                    "tcp://127.0.0.1:45871",
                    "127.0.0.1",
                    "http://127.0.0.1:35587/metrics"
                ),
            ]
        );
    }

    #[test]
    fn a_workers_row_without_a_dashboard_is_a_problem_and_other_pages_are_errors() {
        let page = br#"<table><tr><th> Worker </th></tr>
            <tr ><td><a href="../worker/x.html">tcp://[::1]:4000</a></td><td> 3 </td>
            <td> <a href="../../proxy/9000/::1/status">dashboard</a> </td></tr>
            <tr ><td><a href="../worker/y.html">tcp://10.0.0.1:4000</a></td><td> w-x </td>
            <td> </td></tr></table>"#;
        let (workers, problems) = workers_from_table(page).expect("parses");
        assert_eq!(workers.len(), 1);
        assert_eq!(workers[0].name, "3");
        assert_eq!(workers[0].metrics_url.as_str(), "http://[::1]:9000/metrics");
        assert_eq!(
            problems,
            ["worker w-x (tcp://10.0.0.1:4000) has no dashboard port"]
        );
        let error = workers_from_table(b"{}").expect_err("not a page");
        assert!(error.starts_with("not a Dask workers page"), "{error}");
    }

    #[test]
    fn a_page_that_is_not_an_identity_document_is_a_clear_error() {
        let error = workers_from_identity(b"<html>").expect_err("not JSON");
        assert!(error.starts_with("not a Dask identity document"), "{error}");
    }
}
