//! The Afterglow agent: tails Dask log files (or runs a Dask process and reads its output,
//! `wrap`) and ships their records to a collector.
//! `run` owns the tasks and their shutdown; everything else is in one module per idea.

pub mod checkpoint;
pub mod codec;
pub mod config;
pub mod error;
pub mod fingerprint;
pub mod format;
pub mod lines;
pub mod metrics;
pub mod multiline;
pub mod prom;
pub mod record;
pub mod scrape;
pub mod ship;
pub mod spool;
pub mod tail;
pub mod tls;
pub mod wrap;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use config::AgentConfig;
pub use error::{Error, Result};

use crate::checkpoint::{CheckpointStore, Found};
use crate::metrics::AgentMetrics;
use crate::scrape::dask::Discovery;
use crate::scrape::{ScrapeContext, Target, TargetIdentity};
use crate::ship::Shipper;
use crate::spool::BatchQueue;
use crate::tail::{NodeIdentity, Tailer, TailerContext};

/// Scrapes waiting for the shipper before scrape tasks wait.
pub(crate) const SCRAPES_QUEUED: usize = 16;
/// How often acknowledged offsets are written to the checkpoint file.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

/// Runs the agent until `shutdown` fires, then closes open records, ships what was read,
/// waits briefly for the collector's acks and saves the checkpoints.
pub async fn run(config: AgentConfig, shutdown: CancellationToken) -> Result<()> {
    let token = config.read_token().map_err(|source| Error::ReadTokenFile {
        path: config.token_file.clone().unwrap_or_default(),
        source,
    })?;
    let metrics = AgentMetrics::new();
    let (checkpoints, found) = CheckpointStore::open(&config.state_dir)?;
    let checkpoints = Arc::new(checkpoints);
    let chunks = (config.ship.batch_max_records * 2 / record::CHUNK_RECORDS).max(4);
    let (records, records_receiver) = mpsc::channel(chunks);
    let (scrapes, scrapes_receiver) = mpsc::channel(SCRAPES_QUEUED);
    // The spool lives in the locked state directory: one agent per spool.
    let spool = BatchQueue::on_disk(&config.state_dir.join("spool"), config.spool.max_bytes.0)?;
    let shipper = Shipper::new(
        &config.collector,
        &config.tls,
        token,
        config.ship.clone(),
        records_receiver,
    )?
    .with_token_file(config.token_file.clone())
    .with_queue(spool)
    .with_scrapes(scrapes_receiver)
    .with_checkpoints(Arc::clone(&checkpoints))
    .with_metrics(Arc::clone(&metrics));
    tracing::info!(collector = %config.collector, cluster = %config.cluster, node = %config.node, state_dir = %config.state_dir.display(), "agent starting");
    serve_telemetry(&config, &metrics, &shutdown).await;

    let node = NodeIdentity {
        cluster: config.cluster.clone(),
        node: config.node.clone(),
    };
    let mut tailers = Vec::new();
    for logs in &config.logs {
        let context = TailerContext {
            node: node.clone(),
            timezone: config.timezone(),
            records: records.clone(),
            checkpoints: Arc::clone(&checkpoints),
            metrics: Arc::clone(&metrics),
            first_start: found == Found::Nothing,
        };
        let tailer = Tailer::new(logs.clone(), context);
        let tailer_shutdown = shutdown.clone();
        let thread = std::thread::Builder::new()
            .name("afterglow-tail".to_owned())
            .spawn(move || tailer.run(tailer_shutdown))
            .map_err(Error::SpawnTailer)?;
        tailers.push(thread);
    }
    drop(records);
    let scraping = start_scraping(&config, &metrics, scrapes, &shutdown);
    let shipping = tokio::spawn(shipper.run(shutdown.clone()));
    let persisting = tokio::spawn(persist_checkpoints(
        Arc::clone(&checkpoints),
        Arc::clone(&metrics),
        shutdown.clone(),
    ));
    shutdown.cancelled().await;
    // Tailers flush their open records into the channel, then drop their senders, which
    // tells the shipper that nothing more will come.
    tokio::task::spawn_blocking(move || {
        for thread in tailers {
            let _ = thread.join();
        }
    })
    .await
    .expect("joining tailer threads does not panic");
    scraping.join_all().await;
    shipping.await.expect("the shipper does not panic");
    persisting
        .await
        .expect("the checkpoint task does not panic");
    save_checkpoints(&checkpoints, &metrics).await;
    tracing::info!("agent stopped");
    Ok(())
}

/// Starts a scrape task per `[[metrics]]` target and, with `[dask]`, the discovery task.
/// Each ends at `shutdown`, dropping its sender of `scrapes`.
pub(crate) fn start_scraping(
    config: &AgentConfig,
    metrics: &Arc<AgentMetrics>,
    scrapes: mpsc::Sender<record::Scrape>,
    shutdown: &CancellationToken,
) -> tokio::task::JoinSet<()> {
    let context = ScrapeContext {
        scrapes,
        metrics: Arc::clone(metrics),
    };
    let mut tasks = tokio::task::JoinSet::new();
    for target in &config.metrics {
        let url = url::Url::parse(&target.url).expect("validated when loaded");
        let identity = TargetIdentity {
            cluster: &config.cluster,
            node: &config.node,
            agent_node: &config.node,
            role: target.role,
            key: &target.url,
        };
        let target = Target::new(url, identity, target.labels.clone(), &target.timing());
        tracing::info!(url = %target.url, "scraping metrics");
        // A configured target never changes: its sender can go at once.
        let (_, receiver) = tokio::sync::watch::channel(target);
        tasks.spawn(scrape::run_target(
            receiver,
            context.clone(),
            shutdown.clone(),
            CancellationToken::new(),
        ));
    }
    if let Some(dask) = &config.dask {
        let discovery = Discovery {
            config: dask.clone(),
            cluster: config.cluster.clone(),
            node: config.node.clone(),
        };
        tasks.spawn(discovery.run(context, shutdown.clone()));
    }
    tasks
}

/// Starts the `/metrics` endpoint unless it is `"off"`; a port already taken is reported,
/// not fatal: shipping logs matters more than the agent's own metrics.
async fn serve_telemetry(
    config: &AgentConfig,
    metrics: &Arc<AgentMetrics>,
    shutdown: &CancellationToken,
) {
    let Ok(listen) = config.telemetry.listen.parse() else {
        return;
    };
    match metrics::serve_metrics(listen, Arc::clone(metrics), shutdown.clone()).await {
        Ok(addr) => tracing::info!(%addr, "serving the agent's metrics"),
        Err(error) => tracing::error!(%listen, %error, "cannot serve the agent's metrics"),
    }
}

/// Saves acknowledged offsets every `CHECKPOINT_INTERVAL` until shutdown.
async fn persist_checkpoints(
    checkpoints: Arc<CheckpointStore>,
    metrics: Arc<AgentMetrics>,
    shutdown: CancellationToken,
) {
    let mut interval = tokio::time::interval(CHECKPOINT_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => save_checkpoints(&checkpoints, &metrics).await,
            () = shutdown.cancelled() => return,
        }
    }
}

async fn save_checkpoints(checkpoints: &Arc<CheckpointStore>, metrics: &Arc<AgentMetrics>) {
    let checkpoints = Arc::clone(checkpoints);
    match tokio::task::spawn_blocking(move || checkpoints.persist()).await {
        Ok(Ok(true)) => {
            metrics.checkpoint_writes.inc();
        }
        Ok(Ok(false)) => {}
        Ok(Err(error)) => {
            metrics.checkpoint_errors.inc();
            tracing::error!(%error, "cannot save checkpoints");
        }
        Err(_) => tracing::error!("checkpoint task failed"),
    }
}
