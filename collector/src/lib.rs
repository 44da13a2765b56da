//! The Afterglow collector: receives batches from agents over gRPC, logs them in its WAL,
//! indexes them with tantivy, and serves search and the web UI over HTTP. `run` owns the
//! servers, start-up recovery, the retention janitor and shutdown.

pub mod api;
pub mod auth;
pub mod batch;
pub mod budget;
pub mod config;
pub mod connections;
pub mod error;
pub mod index;
pub mod ingest;
mod parallel;
pub mod promql;
pub mod reload;
pub mod retention;
pub mod series;
pub mod telemetry;
pub mod tls;
pub mod wal;

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use afterglow_proto::v1::ingest_server::IngestServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::codec::CompressionEncoding;

pub use config::CollectorConfig;
pub use error::{Error, Result};

use crate::api::AppState;
use crate::connections::{AdmittingListener, ConnectionInfo, ConnectionTable, InFlightLayer};
use crate::index::partition::LogStore;
use crate::index::writer::{LogWriter, WalReplay};
use crate::ingest::IngestService;
use crate::retention::Janitor;
use crate::series::{SeriesConfig, SeriesStore};
use crate::wal::Wal;

/// The addresses the collector actually listens on (a configured port 0 becomes a real one).
#[derive(Debug, Clone, Copy)]
pub struct BoundAddrs {
    pub http: SocketAddr,
    pub grpc: SocketAddr,
}

/// Runs the collector until `shutdown` fires; `on_listening` learns the bound addresses.
/// On shutdown it stops accepting, commits what was received and returns.
pub async fn run(
    config: CollectorConfig,
    shutdown: CancellationToken,
    on_listening: impl FnOnce(BoundAddrs),
) -> Result<()> {
    run_following(config, None, shutdown, on_listening).await
}

/// Runs the collector as `run` does, following `path`, the file `config` was read from: a
/// valid new file (reread on change and on SIGHUP, `reload.rs`) changes the `[retention]`
/// settings at once; its other settings take effect at the next start.
pub async fn run_from_file(
    path: PathBuf,
    config: CollectorConfig,
    shutdown: CancellationToken,
    on_listening: impl FnOnce(BoundAddrs),
) -> Result<()> {
    run_following(config, Some(path), shutdown, on_listening).await
}

async fn run_following(
    config: CollectorConfig,
    path: Option<PathBuf>,
    shutdown: CancellationToken,
    on_listening: impl FnOnce(BoundAddrs),
) -> Result<()> {
    let metrics = Arc::new(telemetry::CollectorMetrics::new());
    let access = Arc::new(auth::Access::new(&config, Arc::clone(&metrics)));
    if !access.has_tokens() {
        tracing::warn!(
            "no [[tokens]] configured: callers are not authenticated, and everything is tenant `default`"
        );
    } else if !config.tls.is_enabled() && !config.listens_on_loopback_only() {
        tracing::warn!(
            "[[tokens]] without [tls] on a non-loopback address: tokens and log lines cross the network in clear text (docs/security.md)"
        );
    }
    let reloads = path.map(|path| {
        let watch = reload::watch_config(path, config.clone(), shutdown.clone());
        tokio::spawn(count_rejected_reloads(
            watch.rejected.clone(),
            Arc::clone(&metrics),
        ));
        watch.config
    });
    // Before the stores list their partitions: a deletion a stop interrupted is finished.
    retention::remove_leftovers(&config.data_dir)?;
    let store = Arc::new(LogStore::open(
        &config.data_dir.join("logs"),
        config.search.max_open_partitions,
    )?);
    let wal_dir = config.data_dir.join("wal");
    let recovered = wal::recover(&wal_dir)?;
    let series = Arc::new(SeriesStore::open(
        &config.data_dir.join("metrics"),
        SeriesConfig {
            max_series_per_tenant: config.metrics.max_series_per_tenant,
        },
    )?);
    let writer = LogWriter::start_with_series(
        Arc::clone(&store),
        config.commit_interval(),
        Some(WalReplay {
            dir: wal_dir.clone(),
            end: recovered.end,
        }),
        Some(Arc::clone(&series)),
    )?;
    let janitor = Arc::new(
        Janitor::new(
            config.data_dir.clone(),
            Arc::clone(&store),
            Arc::clone(&series),
            config.retention.clone(),
            Arc::clone(&metrics),
        )
        .with_log_writer(writer.clone()),
    );
    let wal = Wal::start(
        &wal_dir,
        recovered.next_segment,
        config.fsync_policy(),
        writer.clone(),
    )?;
    // Measured once the stores are open: connections get what is left beyond the reserve.
    let connection_limits = config.limits.connection_limits();
    let connection_table = ConnectionTable::new(
        connection_limits,
        connections::descriptor_budget(connection_limits.reserved_descriptors)?,
        Arc::clone(&metrics),
    );
    let bind = |addr: SocketAddr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Listen {
                addr: addr.to_string(),
                source,
            })
    };
    let http_listener = bind(config.http_addr()).await?;
    let grpc_listener = bind(config.grpc_addr()).await?;
    let local_addr = |listener: &TcpListener, name: &str| {
        listener.local_addr().map_err(|source| Error::Listen {
            addr: name.to_owned(),
            source,
        })
    };
    let addrs = BoundAddrs {
        http: local_addr(&http_listener, "http")?,
        grpc: local_addr(&grpc_listener, "grpc")?,
    };
    // With `[tls]`, both listeners hand out only connections whose handshake succeeded.
    let certificates = match config.tls.files() {
        Some(files) => Some(tls::watch_files(files, shutdown.clone()).await?),
        None => None,
    };
    let tls_listener = |listener: TcpListener, name: &'static str| -> Result<Listening> {
        let listener = AdmittingListener::new(listener, name, Arc::clone(&connection_table));
        let Some(configs) = &certificates else {
            return Ok(Listening::Plain(listener));
        };
        let settings = tls::TlsListenerSettings {
            configs: configs.clone(),
            alpn: if name == "grpc" {
                tls::GRPC_ALPN
            } else {
                tls::HTTP_ALPN
            },
            name,
            metrics: Arc::clone(&metrics),
        };
        tls::TlsListener::start(listener, settings, shutdown.clone())
            .map(Listening::Tls)
            .map_err(|source| Error::Listen {
                addr: name.to_owned(),
                source,
            })
    };
    let http_listener = tls_listener(http_listener, "http")?;
    tracing::info!(http = %addrs.http, grpc = %addrs.grpc, tls = config.tls.is_enabled(), data_dir = %config.data_dir.display(), "collector listening");
    on_listening(addrs);
    if let Some(reloads) = &reloads {
        tokio::spawn(follow_tokens(reloads.clone(), Arc::clone(&access)));
    }
    // Started once the collector is up: a collector that cannot start deletes nothing.
    let retention_task = tokio::spawn(retention::run_periodically(
        Arc::clone(&janitor),
        reloads,
        shutdown.clone(),
    ));

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<IngestServer<IngestService>>()
        .await;
    let ingest = IngestServer::new(IngestService::new(
        wal.clone(),
        shutdown.clone(),
        config.limits.clone(),
        Arc::new(ingest::DiskGuard::new(
            config.data_dir.clone(),
            config.limits.min_free_disk_bytes,
        )),
        Arc::clone(&series),
        Arc::clone(&metrics),
        Arc::clone(&access),
    ))
    // Acks are a few bytes: compressing them would only cost a zstd context each side.
    .accept_compressed(CompressionEncoding::Zstd)
    .max_decoding_message_size(config.limits.max_batch_bytes);
    let grpc_shutdown = shutdown.clone();
    let grpc_router = tonic::transport::Server::builder()
        // Pings find dead agents whose stream, a request in flight, the idle timeout spares.
        .http2_keepalive_interval(Some(connection_limits.idle_timeout))
        .layer(InFlightLayer)
        .add_service(health_service)
        .add_service(ingest);
    let grpc_stopped = async move { grpc_shutdown.cancelled().await };
    let grpc: ServerFuture<tonic::transport::Error> = match tls_listener(grpc_listener, "grpc")? {
        Listening::Plain(listener) => {
            Box::pin(grpc_router.serve_with_incoming_shutdown(listener, grpc_stopped))
        }
        Listening::Tls(listener) => Box::pin(
            grpc_router.serve_with_incoming_shutdown(listener.into_incoming(), grpc_stopped),
        ),
    };

    let state = AppState {
        all_tenants: {
            let (store, series) = (Arc::clone(&store), Arc::clone(&series));
            Arc::new(move || {
                let mut tenants = store.tenants();
                tenants.extend(series.tenants());
                tenants.sort();
                tenants.dedup();
                tenants
            })
        },
        store,
        access,
        series: {
            let series = Arc::clone(&series);
            Arc::new(move |tenants, tenant_label| series.source_labeled(tenants, tenant_label))
        },
        search_timeout: config.search.timeout(),
        tail_clients: Arc::new(api::tail_places::TailPlaces::new(
            config.search.max_tail_clients,
            config.search.tail_clients_per_tenant(),
        )),
        prom_limits: Arc::new(api::prom_limits::PromLimits::from_config(&config)),
        metrics,
        retention: Some(janitor),
    };
    let http_shutdown = shutdown.clone();
    let http_stopped = async move { http_shutdown.cancelled().await };
    let http: ServerFuture<std::io::Error> = match http_listener {
        Listening::Plain(listener) => Box::pin(
            axum::serve(
                listener,
                (api::router(state).layer(InFlightLayer))
                    .into_make_service_with_connect_info::<ConnectionInfo>(),
            )
            .with_graceful_shutdown(http_stopped)
            .into_future(),
        ),
        Listening::Tls(listener) => Box::pin(
            axum::serve(
                listener,
                (api::router(state).layer(InFlightLayer))
                    .into_make_service_with_connect_info::<ConnectionInfo>(),
            )
            .with_graceful_shutdown(http_stopped)
            .into_future(),
        ),
    };
    let (grpc_result, http_result) = tokio::join!(grpc, http);
    wal.shutdown().await;
    writer.shutdown().await;
    if let Err(error) = retention_task.await {
        tracing::error!(%error, "the retention task failed unexpectedly");
    }
    grpc_result.map_err(|error| Error::Serve("grpc", Box::new(error)))?;
    http_result.map_err(|error| Error::Serve("http", Box::new(error)))?;
    tracing::info!("collector stopped");
    Ok(())
}

/// Gives `access` the `[[tokens]]` of each configuration file `reload.rs` accepts.
async fn follow_tokens(
    mut configs: tokio::sync::watch::Receiver<Arc<CollectorConfig>>,
    access: Arc<auth::Access>,
) {
    while configs.changed().await.is_ok() {
        let config = Arc::clone(&configs.borrow_and_update());
        access.reload(&config);
    }
}

/// A listener as bound: plain TCP, or TLS (`[tls]`), admitting connections either way.
enum Listening {
    Plain(AdmittingListener),
    Tls(tls::TlsListener),
}

/// A server running until shutdown, whichever kind of listener it serves.
type ServerFuture<E> =
    std::pin::Pin<Box<dyn std::future::Future<Output = std::result::Result<(), E>> + Send>>;

/// Adds the configuration files `reload.rs` rejects to `metrics`, as they are rejected.
async fn count_rejected_reloads(
    mut rejected: tokio::sync::watch::Receiver<u64>,
    metrics: Arc<telemetry::CollectorMetrics>,
) {
    let mut counted = 0;
    while rejected.changed().await.is_ok() {
        let now = *rejected.borrow_and_update();
        metrics.config_reloads_rejected.inc_by(now - counted);
        counted = now;
    }
}
