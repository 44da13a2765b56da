//! TLS on the collector's two listeners (`[tls]`): the rustls server configuration built from
//! the PEM files, reloaded when the files change, and a listener that hands out connections
//! only once their handshake is done, for axum (`axum::serve::Listener`) and tonic alike.
//!
//! The rule a reader must not miss: every handshake runs in a task of its own, under
//! `HANDSHAKE_TIMEOUT`; the accept loop never waits for one, so a slow or silent client holds
//! up no other client.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::Stream;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use crate::connections::{AdmittedStream, AdmittingListener, ConnectionInfo};
use crate::telemetry::CollectorMetrics;

/// Longest a client may take to complete its handshake; then the connection is closed.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the certificate files are looked at to see whether they changed.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// ALPN protocols of the HTTP listener (API and web UI).
pub const HTTP_ALPN: &[&[u8]] = &[b"h2", b"http/1.1"];
/// ALPN protocols of the gRPC listener.
pub const GRPC_ALPN: &[&[u8]] = &[b"h2"];
/// Handshaken connections waiting for the server to take them.
const ACCEPTED_QUEUE: usize = 64;

/// The files TLS is made of, from `[tls]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, the collector's own certificate first.
    pub cert: PathBuf,
    /// PEM private key of that certificate (PKCS#8, RSA or SEC1).
    pub key: PathBuf,
    /// PEM certificates of the CAs client certificates must be signed by; `None`: no client
    /// certificate is asked for.
    pub client_ca: Option<PathBuf>,
}

/// Why the TLS files cannot be used; each names the `[tls]` key and the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("`tls.{key}`: cannot read {}", path.display())]
    Read {
        key: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`tls.{key}`: {} is not PEM", path.display())]
    Pem {
        key: &'static str,
        path: PathBuf,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    #[error("`tls.{key}`: {} holds no PEM certificate", path.display())]
    NoCertificate { key: &'static str, path: PathBuf },
    #[error("`tls.key`: {} holds no PEM private key (PKCS#8, RSA or SEC1)", path.display())]
    NoPrivateKey {
        path: PathBuf,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    #[error("`tls.client_ca`: {} holds a certificate that is not a usable CA", path.display())]
    BadClientCa {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("`tls.client_ca`: cannot verify client certificates with {}", path.display())]
    ClientVerifier {
        path: PathBuf,
        #[source]
        source: rustls::server::VerifierBuilderError,
    },
    #[error("`tls.cert` and `tls.key`: the key in {} does not go with the certificate in {}", key.display(), cert.display())]
    CertificateAndKey {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: rustls::Error,
    },
}

/// `error` and its sources on one line, as `config check` and logs show it.
pub fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The rustls provider: ring, the one every TLS user in this workspace builds with.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        key,
        path: path.to_owned(),
        source,
    })
}

fn certificates(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(key, path)?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            key,
            path: path.to_owned(),
            source,
        })?;
    if certificates.is_empty() {
        return Err(TlsError::NoCertificate {
            key,
            path: path.to_owned(),
        });
    }
    Ok(certificates)
}

/// Reads and checks the files and builds the server configuration (without ALPN, which each
/// listener sets). Blocks on file reads: call it outside async code, or at start-up.
pub fn load_server_config(files: &TlsFiles) -> Result<ServerConfig, TlsError> {
    let chain = certificates("cert", &files.cert)?;
    let key_pem = read("key", &files.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|source| TlsError::NoPrivateKey {
        path: files.key.clone(),
        source,
    })?;
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions");
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for certificate in certificates("client_ca", path)? {
                roots
                    .add(certificate)
                    .map_err(|source| TlsError::BadClientCa {
                        path: path.clone(),
                        source,
                    })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|source| TlsError::ClientVerifier {
                    path: path.clone(),
                    source,
                })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    // rustls checks here that the key is the certificate's.
    builder
        .with_single_cert(chain, key)
        .map_err(|source| TlsError::CertificateAndKey {
            cert: files.cert.clone(),
            key: files.key.clone(),
            source,
        })
}

/// What is looked at to tell that a file changed: modification time and length.
type FileStamp = Option<(SystemTime, u64)>;

async fn stamp(path: &Path) -> FileStamp {
    let metadata = tokio::fs::metadata(path).await.ok()?;
    Some((metadata.modified().ok()?, metadata.len()))
}

async fn stamps(files: &TlsFiles) -> Vec<FileStamp> {
    let mut stamps = vec![stamp(&files.cert).await, stamp(&files.key).await];
    if let Some(client_ca) = &files.client_ca {
        stamps.push(stamp(client_ca).await);
    }
    stamps
}

/// Loads `files` and keeps loading them whenever they change (looked at every
/// `POLL_INTERVAL`) until `shutdown`: the receiver always holds the last configuration that
/// loaded. A broken new file is logged and the configuration in force stays.
pub async fn watch_files(
    files: TlsFiles,
    shutdown: CancellationToken,
) -> Result<watch::Receiver<Arc<ServerConfig>>, TlsError> {
    let mut last_stamps = stamps(&files).await;
    let initial = load_server_config(&files)?;
    let (sender, receiver) = watch::channel(Arc::new(initial));
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(POLL_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            let now = stamps(&files).await;
            if now == last_stamps {
                continue;
            }
            // Tried once per change: a half-written pair (new certificate, old key) fails here
            // and loads at the next look, once the key has changed too.
            last_stamps = now;
            let loading = files.clone();
            match tokio::task::spawn_blocking(move || load_server_config(&loading)).await {
                Ok(Ok(config)) => {
                    tracing::info!(cert = %files.cert.display(), "tls certificate reloaded; new connections get it");
                    sender.send_replace(Arc::new(config));
                }
                Ok(Err(error)) => {
                    tracing::error!(error = %describe(&error), "the changed tls files are rejected; the certificate in force stays");
                }
                Err(error) => {
                    tracing::error!(%error, "loading the tls files failed unexpectedly; the certificate in force stays");
                }
            }
        }
    });
    Ok(receiver)
}

/// A TLS listener: accepts admitted TCP connections, runs their handshakes concurrently, and
/// yields the connections whose handshake succeeded.
pub struct TlsListener {
    accepted: mpsc::Receiver<(TlsStream<AdmittedStream>, SocketAddr)>,
    local_addr: SocketAddr,
}

/// Where a listener's configuration comes from and what it counts under.
pub struct TlsListenerSettings {
    /// The configuration in force (see [`watch_files`]).
    pub configs: watch::Receiver<Arc<ServerConfig>>,
    /// ALPN protocols offered, in order of preference.
    pub alpn: &'static [&'static [u8]],
    /// `http` or `grpc`: the label failed handshakes are counted under.
    pub name: &'static str,
    /// Where failed handshakes are counted.
    pub metrics: Arc<CollectorMetrics>,
}

impl TlsListener {
    /// Starts accepting on `tcp` until `shutdown`.
    pub fn start(
        tcp: AdmittingListener,
        settings: TlsListenerSettings,
        shutdown: CancellationToken,
    ) -> std::io::Result<TlsListener> {
        let local_addr = tcp.local_addr()?;
        let (sender, accepted) = mpsc::channel(ACCEPTED_QUEUE);
        tokio::spawn(accept_connections(tcp, settings, sender, shutdown));
        Ok(TlsListener {
            accepted,
            local_addr,
        })
    }

    /// The handshaken connections as tonic's `serve_with_incoming` takes them.
    pub fn into_incoming(
        self,
    ) -> impl Stream<Item = std::io::Result<TlsStream<AdmittedStream>>> + Send + 'static {
        ReceiverStream::new(self.accepted).map(|(stream, _)| Ok(stream))
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<AdmittedStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(accepted) => accepted,
            // The accept loop stops only at shutdown, which stops the server too.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}

fn acceptor(config: &ServerConfig, alpn: &[&[u8]]) -> TlsAcceptor {
    let mut config = config.clone();
    config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
    TlsAcceptor::from(Arc::new(config))
}

impl<'a> axum::extract::connect_info::Connected<axum::serve::IncomingStream<'a, TlsListener>>
    for ConnectionInfo
{
    fn connect_info(stream: axum::serve::IncomingStream<'a, TlsListener>) -> Self {
        stream.io().get_ref().0.info().clone()
    }
}

async fn accept_connections(
    mut tcp: AdmittingListener,
    mut settings: TlsListenerSettings,
    accepted: mpsc::Sender<(TlsStream<AdmittedStream>, SocketAddr)>,
    shutdown: CancellationToken,
) {
    let mut tls = acceptor(&settings.configs.borrow_and_update(), settings.alpn);
    loop {
        // Accept errors (out of descriptors and the like) are waited out inside `accept`.
        let (socket, peer) = tokio::select! {
            () = shutdown.cancelled() => return,
            connection = tcp.accept() => connection,
        };
        if settings.configs.has_changed().unwrap_or(false) {
            tls = acceptor(&settings.configs.borrow_and_update(), settings.alpn);
        }
        let tls = tls.clone();
        let accepted = accepted.clone();
        let metrics = Arc::clone(&settings.metrics);
        let name = settings.name;
        tokio::spawn(async move {
            let failure = match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(socket)).await {
                Ok(Ok(stream)) => {
                    // The server is gone only at shutdown: the connection is dropped with it.
                    let _ = accepted.send((stream, peer)).await;
                    return;
                }
                Ok(Err(error)) => error.to_string(),
                Err(_) => format!("no handshake within {HANDSHAKE_TIMEOUT:?}"),
            };
            tracing::debug!(listener = name, %peer, error = %failure, "tls handshake failed");
            metrics.tls_handshake_failed(name);
        });
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use crate::config::LimitsConfig;
    use crate::connections::ConnectionTable;

    /// Certificate files in a temporary directory: a server certificate for `localhost` and,
    /// as `client_ca`, the CA that signed it.
    pub(crate) struct TestFiles {
        _dir: tempfile::TempDir,
        pub(crate) files: TlsFiles,
    }

    pub(crate) fn write_certificates() -> Result<TestFiles, Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate()?;
        let cert =
            CertificateParams::new(vec!["localhost".to_owned()])?.signed_by(&key, &issuer)?;
        let files = TlsFiles {
            cert: dir.path().join("collector.crt"),
            key: dir.path().join("collector.key"),
            client_ca: Some(dir.path().join("clients-ca.crt")),
        };
        std::fs::write(&files.cert, cert.pem())?;
        std::fs::write(&files.key, key.serialize_pem())?;
        std::fs::write(files.client_ca.as_ref().expect("set above"), ca.pem())?;
        Ok(TestFiles { _dir: dir, files })
    }

    #[test]
    fn good_files_load_and_each_bad_file_is_named() -> Result<(), Box<dyn std::error::Error>> {
        let test = write_certificates()?;
        load_server_config(&test.files)?;

        let missing = TlsFiles {
            cert: test.files.cert.with_file_name("absent.crt"),
            ..test.files.clone()
        };
        let error = describe(&load_server_config(&missing).expect_err("no such file"));
        assert!(
            error.starts_with("`tls.cert`: cannot read") && error.contains("absent.crt"),
            "{error}"
        );

        let swapped = TlsFiles {
            key: test.files.cert.clone(),
            ..test.files.clone()
        };
        let error = describe(&load_server_config(&swapped).expect_err("a certificate is no key"));
        assert!(
            error.starts_with("`tls.key`: ") && error.contains("no PEM private key"),
            "{error}"
        );

        let other_key = test.files.key.with_file_name("other.key");
        std::fs::write(&other_key, KeyPair::generate()?.serialize_pem())?;
        let mismatched = TlsFiles {
            key: other_key,
            ..test.files.clone()
        };
        let error = describe(&load_server_config(&mismatched).expect_err("not its key"));
        assert!(
            error.contains("does not go with the certificate"),
            "{error}"
        );

        let not_a_ca = TlsFiles {
            client_ca: Some(test.files.key.clone()),
            ..test.files
        };
        let error = describe(&load_server_config(&not_a_ca).expect_err("a key is no CA"));
        assert!(
            error.starts_with("`tls.client_ca`: ") && error.contains("no PEM certificate"),
            "{error}"
        );
        Ok(())
    }

    /// A client that never speaks holds its own handshake task only: the next client's
    /// handshake completes, and the silent one is counted as failed once it times out.
    #[tokio::test]
    async fn a_silent_client_does_not_hold_up_the_next_handshake()
    -> Result<(), Box<dyn std::error::Error>> {
        let test = write_certificates()?;
        let files = TlsFiles {
            client_ca: None,
            ..test.files.clone()
        };
        let shutdown = CancellationToken::new();
        let configs = watch_files(files.clone(), shutdown.clone()).await?;
        let metrics = Arc::new(CollectorMetrics::new());
        let tcp = TcpListener::bind("127.0.0.1:0").await?;
        let limits = LimitsConfig::default().connection_limits();
        let table = ConnectionTable::new(limits, 100, Arc::clone(&metrics));
        let mut listener = TlsListener::start(
            AdmittingListener::new(tcp, "http", table),
            TlsListenerSettings {
                configs,
                alpn: HTTP_ALPN,
                name: "http",
                metrics: Arc::clone(&metrics),
            },
            shutdown.clone(),
        )?;
        let address = axum::serve::Listener::local_addr(&listener)?;
        let _silent = TcpStream::connect(address).await?;

        let mut roots = RootCertStore::empty();
        let ca_pem = std::fs::read(test.files.client_ca.as_ref().expect("written"))?;
        for certificate in CertificateDer::pem_slice_iter(&ca_pem) {
            roots.add(certificate?)?;
        }
        let client_config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config));
        let client = tokio::spawn(async move {
            let tcp = TcpStream::connect(address).await?;
            let mut stream = connector
                .connect(rustls_pki_types::ServerName::try_from("localhost")?, tcp)
                .await?;
            stream.write_all(b"ping").await?;
            let mut answer = [0; 4];
            stream.read_exact(&mut answer).await?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(answer)
        });
        let (mut server_side, _) = tokio::time::timeout(
            Duration::from_secs(5),
            axum::serve::Listener::accept(&mut listener),
        )
        .await?;
        let mut ping = [0; 4];
        server_side.read_exact(&mut ping).await?;
        server_side.write_all(b"pong").await?;
        assert_eq!(&ping, b"ping");
        let answer = client.await?.map_err(|error| error.to_string())?;
        assert_eq!(&answer, b"pong");
        assert!(
            !metrics
                .encode()
                .contains("afterglow_collector_tls_handshakes_failed_total{listener=\"http\"}"),
            "the silent client has not failed yet"
        );
        shutdown.cancel();
        Ok(())
    }
}
