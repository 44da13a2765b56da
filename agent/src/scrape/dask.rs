//! Dask discovery: polls the scheduler's `/json/identity.json`, and keeps one scrape task for
//! the scheduler and one per worker (`http://{host}:{services.dashboard}/metrics`), labelled
//! with the worker's `worker` name and `worker_addr` address.
//!
//! The rule a reader must not miss: a worker is keyed by its name, which survives restarts;
//! a restart under a new address updates the running task (its old series get staleness
//! markers, the new ones start), and a worker that left is ended with staleness markers. When
//! the scheduler cannot be asked, the targets stay as they were (they then report `up` 0 if
//! they are gone too).

use std::collections::HashMap;

use serde::Deserialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::config::{DaskConfig, Role};
use crate::scrape::{ScrapeContext, ScrapeTiming, Target, TargetIdentity, http, run_target};

/// Largest identity document read (a few KiB per worker).
const MAX_IDENTITY_BYTES: u64 = 64 << 20;

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
pub fn workers_from_identity(
    document: &[u8],
) -> Result<(Vec<DiscoveredWorker>, Vec<String>), String> {
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
        let Some(port) = worker
            .services
            .get("dashboard")
            .and_then(serde_json::Value::as_u64)
        else {
            problems.push(format!("worker {name} ({address}) has no dashboard port"));
            continue;
        };
        let host = if worker.host.contains(':') {
            format!("[{}]", worker.host)
        } else {
            worker.host.clone()
        };
        match Url::parse(&format!("http://{host}:{port}/metrics")) {
            Ok(metrics_url) => workers.push(DiscoveredWorker {
                name,
                address,
                host: worker.host,
                metrics_url,
            }),
            Err(error) => problems.push(format!("worker {name} ({address}): bad host: {error}")),
        }
    }
    workers.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((workers, problems))
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
        let identity_url = match self.config.scheduler_url().and_then(|url| {
            url.join("json/identity.json")
                .map_err(|error| error.to_string())
        }) {
            Ok(url) => url,
            Err(error) => {
                tracing::error!(%error, "cannot use [dask] scheduler");
                return;
            }
        };
        let timing = self.config.timing();
        let mut running: HashMap<String, Running> = HashMap::new();
        let mut tasks = tokio::task::JoinSet::new();
        // The scheduler itself: always a target.
        let scheduler_url = identity_url
            .join("../metrics")
            .unwrap_or_else(|_| identity_url.clone());
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
            let fetched = http::get(
                &identity_url,
                "application/json",
                timing.timeout,
                MAX_IDENTITY_BYTES,
            )
            .await
            .map_err(|error| error.to_string())
            .and_then(|page| workers_from_identity(&page.body));
            let (workers, problems) = match fetched {
                Ok(found) => found,
                Err(problem) => {
                    if last_problem.as_deref() != Some(&problem) {
                        tracing::warn!(url = %identity_url, %problem, "cannot ask the Dask scheduler for its workers; keeping the known targets");
                    }
                    last_problem = Some(problem);
                    continue;
                }
            };
            if last_problem.take().is_some() {
                tracing::info!(url = %identity_url, "the Dask scheduler answers again");
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

    #[test]
    fn the_real_identity_document_lists_every_worker_with_its_dashboard() {
        let document =
            include_bytes!("../../../tests/fixtures/dask/http/scheduler-identity-idle.json");
        let (workers, problems) = workers_from_identity(document).expect("parses");
        assert!(problems.is_empty(), "{problems:?}");
        let found: Vec<(&str, &str, &str)> = workers
            .iter()
            .map(|worker| {
                (
                    worker.name.as_str(),
                    worker.address.as_str(),
                    worker.metrics_url.as_str(),
                )
            })
            .collect();
        assert_eq!(
            found,
            [
                (
                    "worker-1",
                    "tcp://127.0.0.1:42737",
                    "http://127.0.0.1:8791/metrics"
                ),
                (
                    "worker-2",
                    "tcp://127.0.0.1:43841",
                    "http://127.0.0.1:8792/metrics"
                ),
                (
                    "worker-3",
                    "tcp://127.0.0.1:42787",
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
    fn a_page_that_is_not_an_identity_document_is_a_clear_error() {
        let error = workers_from_identity(b"<html>").expect_err("not JSON");
        assert!(error.starts_with("not a Dask identity document"), "{error}");
    }
}
