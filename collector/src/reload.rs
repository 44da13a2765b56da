//! Re-reading the collector's configuration file while it runs: on SIGHUP, and when the file's
//! contents change (looked at every `POLL_INTERVAL`; polling also sees the symlink swaps of a
//! Kubernetes ConfigMap, which file events miss). A file that parses and validates is
//! published on a watch channel; one with errors is logged, problem by problem, and the
//! settings in force stay. Each consumer decides which settings it follows live: the tokens
//! (with `[limits] requests_per_second_per_token`) and `[retention]`; the others take effect at
//! the next start, and a reload that changes one of them says so, naming it
//! (`settings_needing_restart`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::{
    CollectorConfig, IndexConfig, LimitsConfig, ListenConfig, MetricsConfig, QueryConfig,
    SearchConfig, TlsConfig, WalConfig,
};

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
    let started = initial.clone();
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
            match CollectorConfig::parse_file_text(&text, &afterglow_plumbing::process_environment)
            {
                Ok(config) => {
                    tracing::info!(path = %path.display(), "configuration reloaded: [[tokens]], [limits] requests_per_second_per_token and [retention] now apply");
                    for setting in settings_needing_restart(&started, &config) {
                        tracing::warn!(path = %path.display(), setting, "the file changes {setting}, which applies only at start: restart the collector to apply it (it keeps running with the value it started with)");
                    }
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

/// The settings that differ between `started`, the configuration the collector started
/// with, and `new`, among those that apply only at start (every one but the tokens, the
/// per-token request rate and `[retention]`), named as in the file.
pub fn settings_needing_restart(
    started: &CollectorConfig,
    new: &CollectorConfig,
) -> Vec<&'static str> {
    // Whole destructuring, no `..`: a new setting does not compile until it is sorted into
    // live or restart-only here.
    let CollectorConfig {
        data_dir,
        allow_unauthenticated,
        tokens: _,
        listen: ListenConfig { http, grpc },
        tls: TlsConfig {
            cert,
            key,
            client_ca,
        },
        index: IndexConfig { commit_interval },
        limits:
            LimitsConfig {
                max_batch_records,
                max_batch_bytes,
                max_in_flight_bytes,
                min_free_disk_bytes,
                requests_per_second_per_token: _,
                max_connections_per_listener,
                max_connections_per_peer,
                reserved_descriptors,
                header_read_timeout,
                idle_timeout,
            },
        wal: WalConfig {
            fsync,
            fsync_interval,
        },
        metrics:
            MetricsConfig {
                max_series_per_tenant,
                query_timeout,
                lookback_delta,
            },
        search:
            SearchConfig {
                timeout,
                max_open_partitions,
                max_tail_clients,
                max_tail_clients_per_tenant,
            },
        query: QueryConfig {
            max_samples,
            max_concurrent,
        },
        retention: _,
    } = started;
    let changes = [
        ("data_dir", *data_dir != new.data_dir),
        (
            "allow_unauthenticated",
            *allow_unauthenticated != new.allow_unauthenticated,
        ),
        ("listen.http", *http != new.listen.http),
        ("listen.grpc", *grpc != new.listen.grpc),
        ("tls.cert", *cert != new.tls.cert),
        ("tls.key", *key != new.tls.key),
        ("tls.client_ca", *client_ca != new.tls.client_ca),
        (
            "index.commit_interval",
            *commit_interval != new.index.commit_interval,
        ),
        (
            "limits.max_batch_records",
            *max_batch_records != new.limits.max_batch_records,
        ),
        (
            "limits.max_batch_bytes",
            *max_batch_bytes != new.limits.max_batch_bytes,
        ),
        (
            "limits.max_in_flight_bytes",
            *max_in_flight_bytes != new.limits.max_in_flight_bytes,
        ),
        (
            "limits.min_free_disk_bytes",
            *min_free_disk_bytes != new.limits.min_free_disk_bytes,
        ),
        (
            "limits.max_connections_per_listener",
            *max_connections_per_listener != new.limits.max_connections_per_listener,
        ),
        (
            "limits.max_connections_per_peer",
            *max_connections_per_peer != new.limits.max_connections_per_peer,
        ),
        (
            "limits.reserved_descriptors",
            *reserved_descriptors != new.limits.reserved_descriptors,
        ),
        (
            "limits.header_read_timeout",
            *header_read_timeout != new.limits.header_read_timeout,
        ),
        (
            "limits.idle_timeout",
            *idle_timeout != new.limits.idle_timeout,
        ),
        ("wal.fsync", *fsync != new.wal.fsync),
        (
            "wal.fsync_interval",
            *fsync_interval != new.wal.fsync_interval,
        ),
        (
            "metrics.max_series_per_tenant",
            *max_series_per_tenant != new.metrics.max_series_per_tenant,
        ),
        (
            "metrics.query_timeout",
            *query_timeout != new.metrics.query_timeout,
        ),
        (
            "metrics.lookback_delta",
            *lookback_delta != new.metrics.lookback_delta,
        ),
        ("search.timeout", *timeout != new.search.timeout),
        (
            "search.max_open_partitions",
            *max_open_partitions != new.search.max_open_partitions,
        ),
        (
            "search.max_tail_clients",
            *max_tail_clients != new.search.max_tail_clients,
        ),
        (
            "search.max_tail_clients_per_tenant",
            *max_tail_clients_per_tenant != new.search.max_tail_clients_per_tenant,
        ),
        ("query.max_samples", *max_samples != new.query.max_samples),
        (
            "query.max_concurrent",
            *max_concurrent != new.query.max_concurrent,
        ),
    ];
    changes
        .into_iter()
        .filter_map(|(name, changed)| changed.then_some(name))
        .collect()
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
    async fn a_reloaded_file_has_its_environment_references_expanded() {
        let (_dir, path, mut watch, shutdown) = watching(&config_text(3));
        std::fs::write(
            &path,
            "[retention]\nmax_age = \"${AFTERGLOW_TEST_SURELY_UNSET_VARIABLE:-72h}\"\n",
        )
        .expect("written");
        let reloaded = next(&mut watch.config).await;
        assert_eq!(reloaded.retention.max_age.as_deref(), Some("72h"));
        assert_eq!(*watch.rejected.borrow(), 0);
        shutdown.cancel();
    }

    #[test]
    fn settings_that_apply_only_at_start_are_named_when_changed() {
        let started = CollectorConfig::parse(
            "data_dir = \"/tmp/afterglow-test-a\"\n[listen]\nhttp = \"127.0.0.1:7700\"\n[search]\nmax_tail_clients = 8\n",
        )
        .expect("valid");
        let live_only = CollectorConfig::parse(
            "data_dir = \"/tmp/afterglow-test-a\"\n[listen]\nhttp = \"127.0.0.1:7700\"\n[search]\nmax_tail_clients = 8\n[limits]\nrequests_per_second_per_token = 5.0\n[retention]\nmax_age = \"72h\"\n",
        )
        .expect("valid");
        assert_eq!(
            settings_needing_restart(&started, &live_only),
            Vec::<&str>::new(),
            "tokens' rate and retention apply live"
        );
        let moved = CollectorConfig::parse(
            "data_dir = \"/tmp/afterglow-test-b\"\n[listen]\nhttp = \"127.0.0.1:7710\"\n[search]\nmax_tail_clients = 8\n[wal]\nfsync = \"interval\"\n[retention]\nmax_age = \"72h\"\n",
        )
        .expect("valid");
        assert_eq!(
            settings_needing_restart(&started, &moved),
            ["data_dir", "listen.http", "wal.fsync"]
        );
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
