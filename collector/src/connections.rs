//! Connection admission on both listeners, plain and TLS: caps per listener, per peer address
//! and on the descriptors connections may take, and the header-read and idle timeouts.
//!
//! The one rule: connections never take the descriptors kept in reserve (`[limits]
//! reserved_descriptors`) for the WAL, the index and the series store. A connection past a cap
//! is closed as soon as it is accepted, and a connection with no request in flight is closed
//! once it has had its time (`header_read_timeout` before its first request, `idle_timeout`
//! after one); a request in flight, a live tail or an agent's stream, is never cut.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::http::{Extensions, Request, Response};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};

use crate::telemetry::CollectorMetrics;

/// How long the accept loop waits after an error such as "too many open files" before it
/// accepts again: long enough not to spin, short enough that a freed descriptor is used soon.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The caps and timeouts of `[limits]` that concern connections, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Most connections open at once on one listener.
    pub max_per_listener: usize,
    /// Most connections open at once from one peer address, both listeners together.
    pub max_per_peer: usize,
    /// Descriptors kept for everything but connections.
    pub reserved_descriptors: u64,
    /// Longest a new connection may take to send its first complete request.
    pub header_read_timeout: Duration,
    /// Longest a connection that has been served may stay with no request in flight.
    pub idle_timeout: Duration,
}

/// Why a connection was closed as soon as it was accepted (the `reason` label of
/// `afterglow_collector_connections_refused_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its peer address already holds `max_per_peer` connections.
    Peer,
    /// Its listener already holds `max_per_listener` connections.
    Listener,
    /// Connections already hold every descriptor outside the reserve.
    Descriptors,
}

impl Refusal {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Peer => "peer",
            Refusal::Listener => "listener",
            Refusal::Descriptors => "descriptors",
        }
    }
}

/// Why the descriptor budget cannot be set.
#[derive(Debug, thiserror::Error)]
#[error(
    "the open-file limit ({limit}) leaves no descriptor for connections: {open} are open and `limits.reserved_descriptors` keeps {reserved}; raise the limit (ulimit -n, LimitNOFILE=) or lower the reserve"
)]
pub struct NoDescriptorsLeft {
    pub limit: u64,
    pub open: u64,
    pub reserved: u64,
}

/// Raises the soft open-file limit to the hard one, as servers do, and returns how many
/// connections may be open at once: the limit less the descriptors open now and `reserved`.
pub fn descriptor_budget(reserved: u64) -> Result<usize, NoDescriptorsLeft> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limits = getrlimit(Resource::Nofile);
    if limits.current != limits.maximum {
        let raised = rustix::process::Rlimit {
            current: limits.maximum,
            maximum: limits.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => limits = raised,
            Err(error) => {
                tracing::warn!(%error, "cannot raise the soft open-file limit to the hard one")
            }
        }
    }
    let limit = limits.current.unwrap_or(u64::MAX);
    // Counted once, at start: every later descriptor is a connection or comes out of the reserve.
    let open = std::fs::read_dir("/proc/self/fd").map_or(0, |entries| entries.count() as u64);
    let budget = limit.saturating_sub(open).saturating_sub(reserved);
    if budget == 0 {
        return Err(NoDescriptorsLeft {
            limit,
            open,
            reserved,
        });
    }
    let max_connections = usize::try_from(budget).unwrap_or(usize::MAX);
    tracing::info!(
        open_files_limit = limit,
        open_now = open,
        reserved,
        max_connections,
        "descriptor budget"
    );
    Ok(max_connections)
}

/// What is open now, under one lock.
#[derive(Debug, Default)]
struct OpenConnections {
    total: usize,
    per_listener: HashMap<&'static str, usize>,
    per_peer: HashMap<IpAddr, usize>,
}

/// The connections of both listeners, counted against the caps. Shared by the listeners.
#[derive(Debug)]
pub struct ConnectionTable {
    limits: ConnectionLimits,
    max_connections: usize,
    open: Mutex<OpenConnections>,
    metrics: Arc<CollectorMetrics>,
}

impl ConnectionTable {
    /// A table admitting at most `max_connections` in all (see [`descriptor_budget`]).
    pub fn new(
        limits: ConnectionLimits,
        max_connections: usize,
        metrics: Arc<CollectorMetrics>,
    ) -> Arc<ConnectionTable> {
        Arc::new(ConnectionTable {
            limits,
            max_connections,
            open: Mutex::new(OpenConnections::default()),
            metrics,
        })
    }

    /// Takes a slot for a connection from `peer` on `listener`, or says which cap it is past
    /// (and counts the refusal). The slot is given back when dropped.
    pub fn admit(
        self: &Arc<Self>,
        listener: &'static str,
        peer: IpAddr,
    ) -> Result<ConnectionSlot, Refusal> {
        let refusal = {
            let mut open = self.open.lock().expect("no panic while holding the lock");
            let on_listener = open.per_listener.get(listener).copied().unwrap_or(0);
            let from_peer = open.per_peer.get(&peer).copied().unwrap_or(0);
            if from_peer >= self.limits.max_per_peer {
                Some(Refusal::Peer)
            } else if on_listener >= self.limits.max_per_listener {
                Some(Refusal::Listener)
            } else if open.total >= self.max_connections {
                Some(Refusal::Descriptors)
            } else {
                open.total += 1;
                *open.per_listener.entry(listener).or_default() += 1;
                *open.per_peer.entry(peer).or_default() += 1;
                None
            }
        };
        if let Some(refusal) = refusal {
            self.metrics.connection_refused(listener, refusal.as_str());
            return Err(refusal);
        }
        self.metrics.connections_open(listener).inc();
        Ok(ConnectionSlot {
            table: Arc::clone(self),
            listener,
            peer,
        })
    }

    fn release(&self, listener: &'static str, peer: IpAddr) {
        {
            let mut open = self.open.lock().expect("no panic while holding the lock");
            open.total -= 1;
            if let Some(count) = open.per_listener.get_mut(listener) {
                *count -= 1;
            }
            if let Some(count) = open.per_peer.get_mut(&peer) {
                *count -= 1;
                if *count == 0 {
                    open.per_peer.remove(&peer);
                }
            }
        }
        self.metrics.connections_open(listener).dec();
    }
}

/// One admitted connection's place in the table, given back when dropped.
#[derive(Debug)]
pub struct ConnectionSlot {
    table: Arc<ConnectionTable>,
    listener: &'static str,
    peer: IpAddr,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.table.release(self.listener, self.peer);
    }
}

/// Whether a connection has requests in flight, and since when it has had none.
#[derive(Debug)]
pub struct ConnectionActivity {
    state: Mutex<ActivityState>,
}

#[derive(Debug)]
struct ActivityState {
    in_flight: usize,
    /// When the connection was accepted, or when its last request in flight ended.
    idle_since: Instant,
    /// Whether a request has come on it (a new connection has `header_read_timeout`).
    served: bool,
}

/// Which timeout closes an idle connection (the `reason` label of
/// `afterglow_collector_connections_timed_out_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IdleTimeout {
    /// No complete first request within `header_read_timeout`.
    Header,
    /// No request in flight for `idle_timeout`.
    Idle,
}

impl ConnectionActivity {
    fn new() -> Arc<ConnectionActivity> {
        Arc::new(ConnectionActivity {
            state: Mutex::new(ActivityState {
                in_flight: 0,
                idle_since: Instant::now(),
                served: false,
            }),
        })
    }

    /// Marks a request in flight until the returned guard is dropped.
    pub fn begin_request(self: &Arc<Self>) -> RequestInFlight {
        let mut state = self.state.lock().expect("no panic while holding the lock");
        state.in_flight += 1;
        state.served = true;
        RequestInFlight {
            activity: Arc::clone(self),
        }
    }

    /// When the connection is to be closed if nothing changes, and by which timeout; `None`
    /// while a request is in flight.
    fn deadline(&self, limits: &ConnectionLimits) -> Option<(Instant, IdleTimeout)> {
        let state = self.state.lock().expect("no panic while holding the lock");
        if state.in_flight > 0 {
            None
        } else if state.served {
            Some((state.idle_since + limits.idle_timeout, IdleTimeout::Idle))
        } else {
            Some((
                state.idle_since + limits.header_read_timeout,
                IdleTimeout::Header,
            ))
        }
    }
}

/// A request in flight on a connection; dropped when its response has been sent or dropped.
#[derive(Debug)]
pub struct RequestInFlight {
    activity: Arc<ConnectionActivity>,
}

impl Drop for RequestInFlight {
    fn drop(&mut self) {
        let mut state = self
            .activity
            .state
            .lock()
            .expect("no panic while holding the lock");
        state.in_flight -= 1;
        if state.in_flight == 0 {
            state.idle_since = Instant::now();
        }
    }
}

/// What servers learn of an admitted connection: its peer and its activity. axum puts it in
/// requests as `ConnectInfo`, tonic as is (or inside `TlsConnectInfo`).
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    /// The peer's address.
    pub peer: SocketAddr,
    /// The connection's requests in flight.
    pub activity: Arc<ConnectionActivity>,
}

/// An admitted TCP connection: holds its slot, and ends with a `TimedOut` read error once it
/// has been idle too long.
#[derive(Debug)]
pub struct AdmittedStream {
    tcp: TcpStream,
    info: ConnectionInfo,
    /// Wakes the reader to look at the deadline again; never later than the deadline.
    check: Pin<Box<Sleep>>,
    slot: ConnectionSlot,
}

impl AdmittedStream {
    fn new(tcp: TcpStream, peer: SocketAddr, slot: ConnectionSlot) -> AdmittedStream {
        let limits = slot.table.limits;
        let first_check = limits.header_read_timeout.min(limits.idle_timeout);
        AdmittedStream {
            tcp,
            info: ConnectionInfo {
                peer,
                activity: ConnectionActivity::new(),
            },
            check: Box::pin(tokio::time::sleep(first_check)),
            slot,
        }
    }

    /// The connection's peer and activity.
    pub fn info(&self) -> &ConnectionInfo {
        &self.info
    }

    /// `Ready(error)` once the connection is past its deadline; otherwise `Pending`, with the
    /// check armed to wake `cx`.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Error> {
        let limits = self.slot.table.limits;
        loop {
            ready!(self.check.as_mut().poll(cx));
            let now = Instant::now();
            match self.info.activity.deadline(&limits) {
                Some((deadline, timeout)) if deadline <= now => {
                    let (reason, after) = match timeout {
                        IdleTimeout::Header => ("header", limits.header_read_timeout),
                        IdleTimeout::Idle => ("idle", limits.idle_timeout),
                    };
                    tracing::debug!(listener = self.slot.listener, peer = %self.info.peer, reason, "closing an idle connection");
                    self.slot
                        .table
                        .metrics
                        .connection_timed_out(self.slot.listener, reason);
                    return Poll::Ready(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("no request in flight for {after:?} ({reason} timeout)"),
                    ));
                }
                Some((deadline, _)) => self.check.as_mut().reset(deadline),
                // A request in flight: look again later; its end starts a full idle timeout.
                None => self.check.as_mut().reset(now + limits.idle_timeout),
            }
        }
    }
}

impl AsyncRead for AdmittedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if let Poll::Ready(result) = Pin::new(&mut this.tcp).poll_read(cx, buf) {
            return Poll::Ready(result);
        }
        // Servers always wait to read on a connection they keep: this is where idle ends.
        this.poll_deadline(cx).map(Err)
    }
}

impl AsyncWrite for AdmittedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }
}

impl tonic::transport::server::Connected for AdmittedStream {
    type ConnectInfo = ConnectionInfo;

    fn connect_info(&self) -> ConnectionInfo {
        self.info.clone()
    }
}

/// A TCP listener that hands out only admitted connections: one past a cap is closed at once.
#[derive(Debug)]
pub struct AdmittingListener {
    tcp: TcpListener,
    name: &'static str,
    table: Arc<ConnectionTable>,
    backoff: Option<Pin<Box<Sleep>>>,
}

impl AdmittingListener {
    /// Admits the connections `tcp` accepts into `table` as listener `name` (`http`, `grpc`).
    pub fn new(
        tcp: TcpListener,
        name: &'static str,
        table: Arc<ConnectionTable>,
    ) -> AdmittingListener {
        AdmittingListener {
            tcp,
            name,
            table,
            backoff: None,
        }
    }

    /// The listener's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The address listened on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    /// The next admitted connection. Accept errors are waited out, never returned.
    pub fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<(AdmittedStream, SocketAddr)> {
        loop {
            if let Some(backoff) = &mut self.backoff {
                ready!(backoff.as_mut().poll(cx));
                self.backoff = None;
            }
            match ready!(self.tcp.poll_accept(cx)) {
                Ok((tcp, peer)) => match self.table.admit(self.name, peer.ip()) {
                    Ok(slot) => return Poll::Ready((AdmittedStream::new(tcp, peer, slot), peer)),
                    // Dropped: closed at once.
                    Err(refusal) => {
                        tracing::debug!(listener = self.name, %peer, reason = refusal.as_str(), "connection refused");
                    }
                },
                // The peer gave up before we took the connection: nothing to wait for.
                Err(error) if is_connection_error(&error) => {}
                Err(error) => {
                    // Out of descriptors and the like: wait rather than spin.
                    tracing::warn!(listener = self.name, %error, "cannot accept a connection");
                    self.backoff = Some(Box::pin(tokio::time::sleep(ACCEPT_BACKOFF)));
                }
            }
        }
    }

    /// The next admitted connection.
    pub async fn accept(&mut self) -> (AdmittedStream, SocketAddr) {
        std::future::poll_fn(|cx| self.poll_accept(cx)).await
    }
}

fn is_connection_error(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

impl axum::serve::Listener for AdmittingListener {
    type Io = AdmittedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (AdmittedStream, SocketAddr) {
        AdmittingListener::accept(self).await
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        AdmittingListener::local_addr(self)
    }
}

/// The connections as tonic's `serve_with_incoming` takes them.
impl tokio_stream::Stream for AdmittingListener {
    type Item = std::io::Result<AdmittedStream>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut()
            .poll_accept(cx)
            .map(|(stream, _)| Some(Ok(stream)))
    }
}

impl<'a> axum::extract::connect_info::Connected<axum::serve::IncomingStream<'a, AdmittingListener>>
    for ConnectionInfo
{
    fn connect_info(stream: axum::serve::IncomingStream<'a, AdmittingListener>) -> Self {
        stream.io().info().clone()
    }
}

/// Finds the connection a request came on, wherever its server put it.
fn connection_of(extensions: &Extensions) -> Option<&ConnectionInfo> {
    extensions
        .get::<axum::extract::ConnectInfo<ConnectionInfo>>()
        .map(|info| &info.0)
        .or_else(|| extensions.get::<ConnectionInfo>())
        .or_else(|| {
            extensions
                .get::<tonic::transport::server::TlsConnectInfo<ConnectionInfo>>()
                .map(|info| info.get_ref())
        })
}

/// Marks each request in flight on its connection until its response body is done, so that
/// the idle timeout spares connections with live requests (a tail, an agent's stream).
#[derive(Debug, Clone, Copy, Default)]
pub struct InFlightLayer;

impl<S> tower::Layer<S> for InFlightLayer {
    type Service = InFlight<S>;

    fn layer(&self, inner: S) -> InFlight<S> {
        InFlight { inner }
    }
}

/// The service of [`InFlightLayer`].
#[derive(Debug, Clone)]
pub struct InFlight<S> {
    inner: S,
}

impl<S, RequestBody, ResponseBody> tower::Service<Request<RequestBody>> for InFlight<S>
where
    S: tower::Service<Request<RequestBody>, Response = Response<ResponseBody>>,
    S::Future: Send + 'static,
{
    type Response = Response<InFlightBody<ResponseBody>>;
    type Error = S::Error;
    type Future =
        Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<RequestBody>) -> Self::Future {
        let in_flight =
            connection_of(request.extensions()).map(|info| info.activity.begin_request());
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|body| InFlightBody {
                body,
                _in_flight: in_flight,
            }))
        })
    }
}

/// A response body that keeps its request in flight until it is dropped.
#[derive(Debug)]
pub struct InFlightBody<B> {
    body: B,
    _in_flight: Option<RequestInFlight>,
}

impl<B: http_body::Body + Unpin> http_body::Body for InFlightBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            max_per_listener: 3,
            max_per_peer: 2,
            reserved_descriptors: 0,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }

    fn peer(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn each_cap_refuses_and_a_dropped_slot_is_given_back() {
        let metrics = Arc::new(CollectorMetrics::new());
        let table = ConnectionTable::new(limits(), 5, Arc::clone(&metrics));

        let first = table.admit("http", peer(2)).expect("under every cap");
        let _second = table.admit("grpc", peer(2)).expect("under every cap");
        // The per-peer cap counts both listeners.
        assert_eq!(table.admit("http", peer(2)).err(), Some(Refusal::Peer));
        drop(first);
        let _third = table
            .admit("http", peer(2))
            .expect("the dropped slot is free again");

        let _others = [
            table.admit("http", peer(3)).expect("under every cap"),
            table.admit("http", peer(4)).expect("under every cap"),
        ];
        assert_eq!(table.admit("http", peer(5)).err(), Some(Refusal::Listener));
        let _grpc = table.admit("grpc", peer(5)).expect("another listener");
        // Five open: the descriptor budget is spent on every listener.
        assert_eq!(
            table.admit("grpc", peer(6)).err(),
            Some(Refusal::Descriptors)
        );

        let text = metrics.encode();
        for reason in ["peer", "listener", "descriptors"] {
            assert!(
                text.contains(&format!("reason=\"{reason}\"")),
                "{reason} counted: {text}"
            );
        }
        assert!(
            text.contains("afterglow_collector_connections_open{listener=\"http\"} 3"),
            "{text}"
        );
    }

    #[test]
    fn slots_of_many_peers_are_all_given_back() {
        let table = ConnectionTable::new(limits(), 1000, Arc::new(CollectorMetrics::new()));
        let slots: Vec<_> = (1..=3)
            .map(|last| table.admit("http", peer(last)).expect("under every cap"))
            .collect();
        drop(slots);
        let open = table.open.lock().expect("not poisoned");
        assert_eq!(open.total, 0);
        assert!(open.per_peer.is_empty());
        assert_eq!(open.per_listener.get("http"), Some(&0));
    }

    #[test]
    fn a_request_in_flight_holds_off_the_idle_deadline() {
        let limits = limits();
        let before_accept = Instant::now();
        let activity = ConnectionActivity::new();
        let (deadline, timeout) = activity.deadline(&limits).expect("idle when accepted");
        assert_eq!(timeout, IdleTimeout::Header);
        assert!(deadline >= before_accept + limits.header_read_timeout);
        assert!(deadline <= Instant::now() + limits.header_read_timeout);

        let first = activity.begin_request();
        let second = activity.begin_request();
        assert_eq!(activity.deadline(&limits), None, "in flight: no deadline");
        drop(first);
        assert_eq!(activity.deadline(&limits), None, "one still in flight");
        let before_end = Instant::now();
        drop(second);
        let (deadline, timeout) = activity.deadline(&limits).expect("idle again");
        assert_eq!(timeout, IdleTimeout::Idle);
        assert!(deadline >= before_end + limits.idle_timeout);
        assert!(deadline <= Instant::now() + limits.idle_timeout);
    }

    async fn listener(
        limits: ConnectionLimits,
    ) -> std::io::Result<(AdmittingListener, SocketAddr, Arc<CollectorMetrics>)> {
        let metrics = Arc::new(CollectorMetrics::new());
        let tcp = TcpListener::bind("127.0.0.1:0").await?;
        let address = tcp.local_addr()?;
        let table = ConnectionTable::new(limits, 100, Arc::clone(&metrics));
        Ok((AdmittingListener::new(tcp, "http", table), address, metrics))
    }

    #[tokio::test]
    async fn a_connection_past_the_peer_cap_is_closed_at_once() -> std::io::Result<()> {
        let (mut listener, address, _) = listener(limits()).await?;
        let _held = [
            TcpStream::connect(address).await?,
            TcpStream::connect(address).await?,
        ];
        let mut refused = TcpStream::connect(address).await?;
        let accepting = tokio::spawn(async move {
            let mut admitted = Vec::new();
            loop {
                admitted.push(listener.accept().await);
            }
        });
        let mut byte = [0; 1];
        let read = tokio::time::timeout(Duration::from_secs(5), refused.read(&mut byte)).await?;
        assert!(
            matches!(read, Ok(0)) || read.is_err(),
            "the third connection is closed: {read:?}"
        );
        accepting.abort();
        Ok(())
    }

    #[tokio::test]
    async fn a_silent_connection_ends_at_the_header_timeout_and_a_served_one_at_idle()
    -> std::io::Result<()> {
        let limits = ConnectionLimits {
            header_read_timeout: Duration::from_millis(200),
            idle_timeout: Duration::from_millis(400),
            ..limits()
        };
        let (mut listener, address, metrics) = listener(limits).await?;
        let _silent = TcpStream::connect(address).await?;
        let (mut server_side, _) = listener.accept().await;
        let accepted = Instant::now();
        let mut buffer = [0; 16];
        let error = tokio::time::timeout(Duration::from_secs(5), server_side.read(&mut buffer))
            .await?
            .expect_err("times out");
        assert_eq!(error.kind(), std::io::ErrorKind::TimedOut);
        assert!(accepted.elapsed() >= limits.header_read_timeout - Duration::from_millis(5));

        let mut client = TcpStream::connect(address).await?;
        let (mut server_side, _) = listener.accept().await;
        let request = server_side.info().activity.begin_request();
        client.write_all(b"ping").await?;
        server_side.read_exact(&mut buffer[..4]).await?;
        // In flight for longer than both timeouts: still open.
        let read =
            tokio::time::timeout(limits.idle_timeout * 2, server_side.read(&mut buffer)).await;
        assert!(read.is_err(), "nothing to read, and no timeout: {read:?}");
        let idle_from = Instant::now();
        drop(request);
        let error = tokio::time::timeout(Duration::from_secs(5), server_side.read(&mut buffer))
            .await?
            .expect_err("times out");
        assert_eq!(error.kind(), std::io::ErrorKind::TimedOut);
        assert!(idle_from.elapsed() >= limits.idle_timeout);
        let text = metrics.encode();
        for reason in ["header", "idle"] {
            assert!(
                text.contains(&format!(
                    "afterglow_collector_connections_timed_out_total{{listener=\"http\",reason=\"{reason}\"}} 1"
                )),
                "{text}"
            );
        }
        Ok(())
    }
}
