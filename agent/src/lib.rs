//! The Afterglow agent: tails Dask log files (or runs a Dask process and reads its output,
//! `wrap`) and ships their records to a collector.
//! `run` owns the tasks and their shutdown; everything else is in one module per idea.

pub mod config;
pub mod error;
pub mod fingerprint;
pub mod format;
pub mod multiline;
pub mod record;
pub mod ship;
pub mod tail;
pub mod wrap;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use config::AgentConfig;
pub use error::{Error, Result};

use crate::ship::Shipper;
use crate::tail::{NodeIdentity, Tailer};

/// Runs the agent until `shutdown` fires, then closes open records, ships what was read and
/// waits briefly for the collector's acks.
pub async fn run(config: AgentConfig, shutdown: CancellationToken) -> Result<()> {
    let token = config.read_token().map_err(|source| Error::ReadTokenFile {
        path: config.token_file.clone().unwrap_or_default(),
        source,
    })?;
    let (records, records_receiver) = mpsc::channel(config.ship.batch_max_records * 2);
    let shipper = Shipper::new(
        &config.collector,
        token,
        config.ship.clone(),
        records_receiver,
    )?;
    let node = NodeIdentity {
        cluster: config.cluster.clone(),
        node: config.node.clone(),
    };
    let timezone = config.timezone();
    tracing::info!(collector = %config.collector, cluster = %config.cluster, node = %config.node, "agent starting");
    let mut tailers = Vec::new();
    for logs in &config.logs {
        let tailer = Tailer::new(
            logs.clone(),
            node.clone(),
            timezone.clone(),
            records.clone(),
        );
        let tailer_shutdown = shutdown.clone();
        let thread = std::thread::Builder::new()
            .name("afterglow-tail".to_owned())
            .spawn(move || tailer.run(tailer_shutdown))
            .map_err(Error::SpawnTailer)?;
        tailers.push(thread);
    }
    drop(records);
    let shipping = tokio::spawn(shipper.run(shutdown.clone()));
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
    shipping.await.expect("the shipper does not panic");
    tracing::info!("agent stopped");
    Ok(())
}
