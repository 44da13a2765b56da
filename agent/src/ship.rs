//! Sends records to the collector on one long-lived `Ingest.Push` stream: batches them,
//! keeps every batch until the collector acks it, and resends unacked batches in order after
//! a reconnect (jittered, capped backoff).
//!
//! The rule a reader must not miss: a batch leaves memory only when acked. While
//! `max_unacked_batches` are waiting, no new records are taken, so the tailers block.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use afterglow_proto::v1::ingest_client::IngestClient;
use afterglow_proto::v1::{self as wire, PushRequest, PushResponse};
use rand::Rng;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, sleep_until};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::codec::CompressionEncoding;
use tonic::metadata::MetadataValue;
use tonic::transport::Endpoint;

use crate::checkpoint::CheckpointStore;
use crate::config::ShipConfig;
use crate::metrics::AgentMetrics;
use crate::record::LogRecord;

const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// How long a stopping agent waits for the acks of what it has sent.
const SHUTDOWN_ACK_WAIT: Duration = Duration::from_secs(5);

/// Ships records from `records` to the collector at `collector_url` until `records` closes
/// and every batch is acked, or until `shutdown` plus a grace period.
pub struct Shipper {
    endpoint: Endpoint,
    token: Option<String>,
    config: ShipConfig,
    records: mpsc::Receiver<LogRecord>,
    unacked: BTreeMap<u64, UnackedBatch>,
    checkpoints: Option<Arc<CheckpointStore>>,
    metrics: Arc<AgentMetrics>,
    next_batch_number: u64,
    records_closed: bool,
    /// The batch being filled. It lives here, not in one connection's loop, so that records
    /// taken before a disconnect are sent after the reconnect.
    building: BatchBuilder,
}

/// Why a connection ended.
enum Disconnect {
    /// Every record is shipped and acked: stop.
    Done,
    /// The stream failed: reconnect after a backoff.
    Failed(String),
}

impl Shipper {
    /// Creates a shipper; `collector_url` must be a valid http(s) URL.
    pub fn new(
        collector_url: &str,
        token: Option<String>,
        config: ShipConfig,
        records: mpsc::Receiver<LogRecord>,
    ) -> crate::Result<Shipper> {
        let endpoint = Endpoint::from_shared(collector_url.to_owned())
            .map_err(|source| crate::Error::CollectorUrl {
                url: collector_url.to_owned(),
                source,
            })?
            .connect_timeout(Duration::from_secs(5))
            .http2_keep_alive_interval(Duration::from_secs(20))
            .keep_alive_timeout(Duration::from_secs(10));
        Ok(Shipper {
            endpoint,
            token,
            config,
            records,
            unacked: BTreeMap::new(),
            checkpoints: None,
            metrics: AgentMetrics::new(),
            next_batch_number: 1,
            records_closed: false,
            building: BatchBuilder::default(),
        })
    }

    /// Reports acknowledged offsets of file streams to `checkpoints`.
    pub fn with_checkpoints(mut self, checkpoints: Arc<CheckpointStore>) -> Shipper {
        self.checkpoints = Some(checkpoints);
        self
    }

    /// Counts into `metrics` instead of a private registry.
    pub fn with_metrics(mut self, metrics: Arc<AgentMetrics>) -> Shipper {
        self.metrics = metrics;
        self
    }

    /// Runs until everything is shipped after the record channel closed, or until
    /// `SHUTDOWN_ACK_WAIT` after `shutdown` fired.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut backoff = BACKOFF_MIN;
        let give_up = async {
            shutdown.cancelled().await;
            sleep(SHUTDOWN_ACK_WAIT).await;
        };
        tokio::pin!(give_up);
        loop {
            let outcome = tokio::select! {
                outcome = self.connect_and_push(&mut backoff) => outcome,
                () = &mut give_up => {
                    tracing::warn!(unacked_batches = self.unacked.len(), "stopping with batches the collector has not acked");
                    return;
                }
            };
            match outcome {
                Disconnect::Done => return,
                Disconnect::Failed(reason) => {
                    self.metrics.reconnects.inc();
                    let wait = jittered(backoff);
                    tracing::warn!(%reason, retry_in = ?wait, unacked_batches = self.unacked.len(), "collector unreachable, retrying");
                    let retry_at = Instant::now() + wait;
                    loop {
                        tokio::select! {
                            () = sleep_until(retry_at) => break,
                            () = &mut give_up => return,
                            // Keep filling the batch while waiting, and notice the end of
                            // input: with nothing unacked, a stopping agent need not wait.
                            record = self.records.recv(), if !self.building.is_full(&self.config) && !self.records_closed => {
                                match record {
                                    Some(record) => self.building.push(record),
                                    None => self.records_closed = true,
                                }
                                if self.everything_acked() {
                                    return;
                                }
                            }
                        }
                    }
                    backoff = (backoff * 2).min(self.config.backoff_max());
                }
            }
        }
    }

    /// Logs when reading starts or stops waiting for acks, and exposes it as a gauge.
    fn report_backpressure(&mut self, engaged: bool) {
        if engaged == (self.metrics.backpressure.get() == 1) {
            return;
        }
        if engaged {
            tracing::warn!(
                unacked_batches = self.unacked.len(),
                "backpressure: waiting for the collector's acks before reading more"
            );
        } else {
            tracing::info!("backpressure released");
        }
        self.metrics.backpressure.set(i64::from(engaged));
    }

    /// Input has ended and the collector has acked everything.
    fn everything_acked(&self) -> bool {
        self.records_closed && self.building.is_empty() && self.unacked.is_empty()
    }

    async fn connect_and_push(&mut self, backoff: &mut Duration) -> Disconnect {
        let channel = match self.endpoint.connect().await {
            Ok(channel) => channel,
            Err(error) => return Disconnect::Failed(format!("cannot connect: {error}")),
        };
        let mut client = IngestClient::new(channel)
            .send_compressed(CompressionEncoding::Zstd)
            .accept_compressed(CompressionEncoding::Zstd);
        let (requests, request_stream) =
            mpsc::channel::<PushRequest>(self.config.max_unacked_batches);
        let mut request = tonic::Request::new(ReceiverStream::new(request_stream));
        if let Some(token) = &self.token {
            match MetadataValue::try_from(format!("Bearer {token}")) {
                Ok(value) => {
                    request.metadata_mut().insert("authorization", value);
                }
                Err(_) => {
                    return Disconnect::Failed(
                        "the token has characters not allowed in a header".to_owned(),
                    );
                }
            }
        }
        // Resend what the previous connection left unacked, oldest first, before the call
        // starts so that order is kept.
        for batch in self.unacked.values() {
            if requests
                .try_send(PushRequest::clone(&batch.request))
                .is_err()
            {
                break;
            }
        }
        let mut responses = match client.push(request).await {
            Ok(response) => response.into_inner(),
            Err(status) => return Disconnect::Failed(format!("push refused: {status}")),
        };
        tracing::info!(
            resent_batches = self.unacked.len(),
            "connected to collector"
        );
        *backoff = BACKOFF_MIN;
        self.metrics.collector_connected.set(1);
        let outcome = self.pump(&requests, &mut responses).await;
        self.metrics.collector_connected.set(0);
        outcome
    }

    /// Moves records into batches and acks out of `unacked` until the stream ends.
    async fn pump(
        &mut self,
        requests: &mpsc::Sender<PushRequest>,
        responses: &mut tonic::Streaming<PushResponse>,
    ) -> Disconnect {
        // Records taken before this connection go out at once.
        let mut linger_deadline: Option<Instant> = (!self.building.is_empty()).then(Instant::now);
        loop {
            if self.everything_acked() {
                return Disconnect::Done;
            }
            let unacked_full = self.unacked.len() >= self.config.max_unacked_batches;
            self.report_backpressure(unacked_full);
            let must_send = !self.building.is_empty()
                && (self.records_closed || self.building.is_full(&self.config));
            if must_send && !unacked_full {
                if let Err(reason) = self.send_batch(requests) {
                    return Disconnect::Failed(reason);
                }
                linger_deadline = None;
            }
            let can_take_records = !self.records_closed && !self.building.is_full(&self.config);
            tokio::select! {
                record = self.records.recv(), if can_take_records => {
                    match record {
                        Some(record) => {
                            self.building.push(record);
                            linger_deadline.get_or_insert_with(|| Instant::now() + self.config.batch_linger());
                        }
                        None => self.records_closed = true,
                    }
                }
                () = sleep_until(linger_deadline.unwrap_or_else(Instant::now)), if linger_deadline.is_some() && !unacked_full => {
                    linger_deadline = None;
                    if !self.building.is_empty()
                        && let Err(reason) = self.send_batch(requests) {
                            return Disconnect::Failed(reason);
                        }
                }
                response = responses.message() => {
                    match response {
                        Ok(Some(response)) => {
                            self.apply_acks(&response.acked_batch_numbers);
                        }
                        Ok(None) => return Disconnect::Failed("the collector closed the stream".to_owned()),
                        Err(status) => return Disconnect::Failed(format!("stream failed: {status}")),
                    }
                }
            }
        }
    }

    /// Sends the batch being filled and keeps it until it is acked.
    fn send_batch(&mut self, requests: &mpsc::Sender<PushRequest>) -> Result<(), String> {
        let number = self.next_batch_number;
        self.next_batch_number += 1;
        let (request, stream_ends) = std::mem::take(&mut self.building).finish(number);
        let request = Arc::new(request);
        tracing::debug!(
            batch_number = number,
            records = request.logs.len(),
            "sending batch"
        );
        self.metrics.records_sent.inc_by(request.logs.len() as u64);
        self.unacked.insert(
            number,
            UnackedBatch {
                request: Arc::clone(&request),
                stream_ends,
                acked: false,
            },
        );
        self.metrics.unacked_batches.set(self.unacked.len() as i64);
        // The request channel holds `max_unacked_batches`, as many as `unacked` may, so it
        // is never full here; a closed channel means the stream is gone.
        requests
            .try_send(PushRequest::clone(&request))
            .map_err(|_| "the stream to the collector closed".to_owned())
    }
}

/// A batch sent and not yet acknowledged, with where each of its streams ends.
struct UnackedBatch {
    request: Arc<PushRequest>,
    /// (stream id, offset after the stream's last record in this batch).
    stream_ends: Vec<(u64, u64)>,
    acked: bool,
}

impl Shipper {
    /// Drops acknowledged batches and advances checkpoints, strictly in batch order: an
    /// offset is reported only once every earlier batch is acknowledged too.
    fn apply_acks(&mut self, numbers: &[u64]) {
        for number in numbers {
            if let Some(batch) = self.unacked.get_mut(number) {
                batch.acked = true;
            }
        }
        while let Some(entry) = self.unacked.first_entry() {
            if !entry.get().acked {
                break;
            }
            let batch = entry.remove();
            self.metrics.batches_acked.inc();
            if let Some(checkpoints) = &self.checkpoints {
                for (stream_id, end_offset) in batch.stream_ends {
                    checkpoints.record_ack(stream_id, end_offset);
                }
            }
        }
        self.metrics.unacked_batches.set(self.unacked.len() as i64);
    }
}

/// Collects records into one `PushRequest`, naming each stream once.
#[derive(Default)]
struct BatchBuilder {
    streams: Vec<wire::Stream>,
    stream_indexes: HashMap<u64, u32>,
    logs: Vec<wire::LogRecord>,
    text_bytes: usize,
    stream_ends: HashMap<u64, u64>,
}

impl BatchBuilder {
    fn push(&mut self, record: LogRecord) {
        let stream_index = *self
            .stream_indexes
            .entry(record.stream.id)
            .or_insert_with(|| {
                self.streams.push(wire::Stream {
                    id: record.stream.id,
                    cluster: record.stream.cluster.clone(),
                    node: record.stream.node.clone(),
                    role: wire::Role::from(record.stream.role).into(),
                    source: record.stream.source.clone(),
                });
                u32::try_from(self.streams.len() - 1)
                    .expect("a batch holds far fewer than 2^32 streams")
            });
        self.text_bytes += record.message.len() + record.logger.len() + record.level.len();
        let stream_end = self.stream_ends.entry(record.stream.id).or_default();
        *stream_end = (*stream_end).max(record.end_offset);
        self.logs.push(wire::LogRecord {
            stream_index,
            seq: record.seq,
            ts_unix_nanos: i64::try_from(record.ts.as_nanosecond()).unwrap_or(i64::MAX),
            level: record.level,
            logger: record.logger,
            message: record.message,
            truncated: record.truncated,
        });
    }

    /// Tells whether the batch has reached the record or byte limit and must be sent.
    fn is_full(&self, config: &ShipConfig) -> bool {
        self.logs.len() >= config.batch_max_records || self.text_bytes >= config.batch_max_bytes
    }

    fn is_empty(&self) -> bool {
        self.logs.is_empty()
    }

    fn finish(self, batch_number: u64) -> (PushRequest, Vec<(u64, u64)>) {
        let request = PushRequest {
            batch_number,
            streams: self.streams,
            logs: self.logs,
            metric_families: Vec::new(),
        };
        (request, self.stream_ends.into_iter().collect())
    }
}

/// A wait between half and all of `backoff`, so that many agents do not reconnect at once.
fn jittered(backoff: Duration) -> Duration {
    let half = backoff / 2;
    half + rand::rng().random_range(Duration::ZERO..=half)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::{AgentConfig, Role};
    use crate::record::StreamInfo;

    fn record(stream: &Arc<StreamInfo>, seq: u64, message: &str) -> LogRecord {
        LogRecord {
            stream: Arc::clone(stream),
            seq,
            end_offset: seq + 1,
            ts: jiff::Timestamp::UNIX_EPOCH,
            level: "INFO".to_owned(),
            logger: "distributed.worker".to_owned(),
            message: message.to_owned(),
            truncated: false,
        }
    }

    fn stream(id: u64, source: &str) -> Arc<StreamInfo> {
        Arc::new(StreamInfo {
            id,
            cluster: "c".to_owned(),
            node: "n".to_owned(),
            role: Role::Worker,
            source: source.to_owned(),
        })
    }

    #[test]
    fn a_batch_names_each_stream_once_and_records_point_at_it() {
        let (a, b) = (stream(1, "/a.log"), stream(2, "/b.log"));
        let mut batch = BatchBuilder::default();
        for (seq, stream) in [(0, &a), (0, &b), (10, &a), (20, &a)] {
            batch.push(record(stream, seq, "m"));
        }
        let (request, mut stream_ends) = batch.finish(9);
        stream_ends.sort();
        assert_eq!(stream_ends, [(1, 21), (2, 1)]);
        assert_eq!(request.batch_number, 9);
        let ids: Vec<u64> = request.streams.iter().map(|stream| stream.id).collect();
        assert_eq!(ids, [1, 2]);
        let pointers: Vec<(u32, u64)> = request
            .logs
            .iter()
            .map(|log| (log.stream_index, log.seq))
            .collect();
        assert_eq!(pointers, [(0, 0), (1, 0), (0, 10), (0, 20)]);
    }

    #[test]
    fn a_batch_is_full_at_either_limit() {
        let mut config = AgentConfig::embedded_default().ship;
        config.batch_max_records = 3;
        config.batch_max_bytes = 1000;
        let a = stream(1, "/a.log");
        let mut by_count = BatchBuilder::default();
        for seq in 0..3 {
            assert!(!by_count.is_full(&config));
            by_count.push(record(&a, seq, "short"));
        }
        assert!(by_count.is_full(&config));
        let mut by_bytes = BatchBuilder::default();
        by_bytes.push(record(&a, 0, &"x".repeat(1000)));
        assert!(by_bytes.is_full(&config));
    }

    /// A collector stand-in whose first Push stream fails at its first batch (a crash) and
    /// whose later streams ack every batch, remembering every seq received.
    #[derive(Default)]
    struct CrashingOnceIngest {
        connections: std::sync::atomic::AtomicUsize,
        received: Arc<std::sync::Mutex<std::collections::BTreeSet<u64>>>,
    }

    #[tonic::async_trait]
    impl afterglow_proto::v1::ingest_server::Ingest for CrashingOnceIngest {
        type PushStream = std::pin::Pin<
            Box<dyn tokio_stream::Stream<Item = Result<PushResponse, tonic::Status>> + Send>,
        >;

        async fn push(
            &self,
            request: tonic::Request<tonic::Streaming<PushRequest>>,
        ) -> Result<tonic::Response<Self::PushStream>, tonic::Status> {
            use tokio_stream::StreamExt;
            let connection = self
                .connections
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let received = Arc::clone(&self.received);
            let mut batches = request.into_inner();
            let (answers, answer_stream) = mpsc::channel(64);
            tokio::spawn(async move {
                while let Some(Ok(batch)) = batches.next().await {
                    if connection == 0 {
                        let _ = answers
                            .send(Err(tonic::Status::unavailable("crashed")))
                            .await;
                        return;
                    }
                    received
                        .lock()
                        .expect("not poisoned")
                        .extend(batch.logs.iter().map(|log| log.seq));
                    let ack = PushResponse {
                        acked_batch_numbers: vec![batch.batch_number],
                    };
                    if answers.send(Ok(ack)).await.is_err() {
                        return;
                    }
                }
            });
            Ok(tonic::Response::new(Box::pin(ReceiverStream::new(
                answer_stream,
            ))))
        }
    }

    /// Regression: records of the batch being filled were dropped when the stream failed.
    #[tokio::test]
    async fn records_taken_before_a_disconnect_are_sent_after_the_reconnect() {
        let ingest = Arc::new(CrashingOnceIngest::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tonic::transport::Server::builder()
            .add_service(
                afterglow_proto::v1::ingest_server::IngestServer::from_arc(Arc::clone(&ingest))
                    .accept_compressed(CompressionEncoding::Zstd),
            )
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
        tokio::spawn(server);

        let mut config = AgentConfig::embedded_default().ship;
        config.batch_max_records = 7;
        config.batch_linger = "5ms".to_owned();
        config.backoff_max = "100ms".to_owned();
        let (records, receiver) = mpsc::channel(1000);
        let shipper =
            Shipper::new(&format!("http://{addr}"), None, config, receiver).expect("valid url");
        let stream = stream(1, "/a.log");
        for seq in 0..500 {
            records
                .send(record(&stream, seq, "m"))
                .await
                .expect("shipper alive");
        }
        drop(records);
        tokio::time::timeout(
            Duration::from_secs(30),
            shipper.run(CancellationToken::new()),
        )
        .await
        .expect("everything is acked in time");
        let received = ingest.received.lock().expect("not poisoned").clone();
        assert_eq!(received, (0..500).collect(), "every record arrives");
        assert!(ingest.connections.load(std::sync::atomic::Ordering::SeqCst) >= 2);
    }

    #[test]
    fn backoff_is_jittered_within_half_and_all() {
        for _ in 0..100 {
            let wait = jittered(Duration::from_millis(800));
            assert!(
                (Duration::from_millis(400)..=Duration::from_millis(800)).contains(&wait),
                "{wait:?}"
            );
        }
    }
}
