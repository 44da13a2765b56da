//! Re-reading the collector's configuration file while it runs: on SIGHUP, and when the file's
//! contents change (looked at every `POLL_INTERVAL`; polling also sees the symlink swaps of a
//! Kubernetes ConfigMap, which file events miss). A file that parses and validates is
//! published on a watch channel; one with errors is logged, problem by problem, and the
//! settings in force stay. Each consumer decides which settings it follows live; the others
//! take effect at the next start.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::CollectorConfig;

/// How often the file is read to see whether it changed.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// What a watched configuration file gives.
#[derive(Clone)]
pub struct ConfigWatch {
    /// The settings in force: the last file that parsed and validated.
    pub config: watch::Receiver<Arc<CollectorConfig>>,
    /// How many new files were rejected for their errors (as Prometheus's
    /// `prometheus_config_last_reload_successful` tells of its own).
    pub rejected: watch::Receiver<u64>,
}

/// Starts watching `path`, whose contents gave `initial`, until `shutdown`. Must be called
/// inside a tokio runtime: the SIGHUP handler is in place when this returns.
pub fn watch_config(
    path: PathBuf,
    initial: CollectorConfig,
    shutdown: CancellationToken,
) -> ConfigWatch {
    let (sender, config) = watch::channel(Arc::new(initial));
    let (rejections, rejected) = watch::channel(0);
    let mut hangups = signal(SignalKind::hangup())
        .inspect_err(|error| tracing::warn!(%error, "no SIGHUP handler: the configuration is reloaded when its file changes only"))
        .ok();
    let mut last_text = std::fs::read_to_string(&path).ok();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(POLL_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let hangup = async {
                match hangups.as_mut() {
                    Some(hangups) => hangups.recv().await,
                    None => std::future::pending().await,
                }
            };
            let asked = tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticks.tick() => false,
                _ = hangup => true,
            };
            let text = match tokio::fs::read_to_string(&path).await {
                Ok(text) => text,
                Err(error) => {
                    if asked {
                        tracing::error!(path = %path.display(), %error, "cannot read the configuration file; the settings in force stay");
                    }
                    continue;
                }
            };
            if !asked && last_text.as_deref() == Some(text.as_str()) {
                continue;
            }
            last_text = Some(text.clone());
            match CollectorConfig::parse(&text) {
                Ok(config) => {
                    tracing::info!(path = %path.display(), "configuration reloaded");
                    sender.send_replace(Arc::new(config));
                }
                Err(problems) => {
                    for problem in &problems {
                        tracing::error!(path = %path.display(), %problem, "the new configuration is rejected; the settings in force stay");
                    }
                    rejections.send_modify(|count| *count += 1);
                }
            }
        }
    });
    ConfigWatch { config, rejected }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_text(max_open_partitions: usize) -> String {
        format!("[search]\nmax_open_partitions = {max_open_partitions}\n")
    }

    /// Waits (at most 10 s) until `receiver` has a new value, and returns it.
    async fn next<T: Clone>(receiver: &mut watch::Receiver<T>) -> T {
        tokio::time::timeout(Duration::from_secs(10), receiver.changed())
            .await
            .expect("a value is published within 10 s")
            .expect("the watcher runs");
        receiver.borrow_and_update().clone()
    }

    fn watching(text: &str) -> (tempfile::TempDir, PathBuf, ConfigWatch, CancellationToken) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("collector.toml");
        std::fs::write(&path, text).expect("written");
        let initial = CollectorConfig::load(&path).expect("valid");
        let shutdown = CancellationToken::new();
        let watch = watch_config(path.clone(), initial, shutdown.clone());
        (dir, path, watch, shutdown)
    }

    #[tokio::test]
    async fn a_changed_file_is_published_and_a_broken_one_keeps_the_settings_in_force() {
        let (_dir, path, mut watch, shutdown) = watching(&config_text(3));
        assert_eq!(watch.config.borrow().search.max_open_partitions, 3);

        std::fs::write(&path, config_text(5)).expect("written");
        assert_eq!(next(&mut watch.config).await.search.max_open_partitions, 5);

        std::fs::write(&path, "[search]\nmax_open_partitions = 0\n").expect("written");
        assert_eq!(next(&mut watch.rejected).await, 1);
        assert!(!watch.config.has_changed().expect("the watcher runs"));
        assert_eq!(watch.config.borrow().search.max_open_partitions, 5);

        std::fs::write(&path, config_text(7)).expect("written");
        assert_eq!(next(&mut watch.config).await.search.max_open_partitions, 7);
        assert_eq!(*watch.rejected.borrow(), 1);
        shutdown.cancel();
    }

    #[tokio::test]
    async fn sighup_reads_the_file_again() {
        let (_dir, _path, mut watch, shutdown) = watching(&config_text(3));
        // Polling publishes changed contents only: an unchanged file published again can
        // only come from the SIGHUP.
        rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::HUP)
            .expect("SIGHUP sent to this test process");
        assert_eq!(
            next(&mut watch.config).await.search.max_open_partitions,
            3,
            "the same file, read again on SIGHUP"
        );
        shutdown.cancel();
    }
}
