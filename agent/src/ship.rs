//! Sends records to the collector on one long-lived `Ingest.Push` stream: batches them, seals
//! each batch into a queue (the on-disk spool in tail mode), sends queued batches oldest first
//! with at most `max_unacked_batches` in flight, and drops a batch only once the collector
//! acks it; after a reconnect (jittered, capped backoff) it resends from the oldest queued.
//!
//! The rule a reader must not miss: records are taken and sealed whether or not the collector
//! is reachable, until the queue is full; then no records are taken and the tailers block
//! (backpressure). Checkpoints move only on acks, strictly in batch order.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use afterglow_proto::v1::{self as wire, PushResponse};
use bytes::Bytes;
use rand::Rng;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, sleep_until};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::metadata::MetadataValue;
use tonic::transport::Endpoint;

use crate::checkpoint::CheckpointStore;
use crate::config::{ShipConfig, TlsConfig};
use crate::metrics::AgentMetrics;
use crate::record::{LogRecord, RecordChunk, Scrape, StreamInfo};
use crate::spool::{BatchQueue, SealedBatch};

const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// How long a stopping agent waits for the acks of what it has sent.
const SHUTDOWN_ACK_WAIT: Duration = Duration::from_secs(5);
/// How soon a batch that could not be sealed (spool write failed) is tried again.
const SEAL_RETRY: Duration = Duration::from_secs(1);

/// Ships records from `records` to the collector at `collector_url` until `records` closes
/// and every batch is acked, or until `shutdown` plus a grace period.
pub struct Shipper {
    endpoint: Endpoint,
    /// The collector's URL, as configured: named in every log line about the connection.
    collector_url: String,
    token: Option<String>,
    /// Where the token is read from again before each connection (`token_file`).
    token_file: Option<PathBuf>,
    config: ShipConfig,
    records: mpsc::Receiver<RecordChunk>,
    scrapes: mpsc::Receiver<Scrape>,
    queue: BatchQueue,
    /// Batches sent on the current connection, oldest first, and whether each is acked.
    in_flight: BTreeMap<u64, bool>,
    checkpoints: Option<Arc<CheckpointStore>>,
    metrics: Arc<AgentMetrics>,
    records_closed: bool,
    scrapes_closed: bool,
    /// The batch being filled; it survives disconnects.
    building: BatchBuilder,
    /// A full batch the queue could not take yet (spool write failed).
    unsealed: Option<SealedBatch>,
    /// When the batch being filled must be sealed even if not full.
    seal_deadline: Option<Instant>,
    /// `config.batch_linger`, parsed once.
    batch_linger: Duration,
}

/// Why a connection ended.
enum Disconnect {
    /// Every record is shipped and acked: stop.
    Done,
    /// The stream failed: reconnect after a backoff.
    Failed(String),
    /// TLS with the collector failed (unknown CA, certificate refused): reconnect after a
    /// backoff, but a human likely has to act.
    TlsFailed(String),
    /// The collector refused the token (none, unknown, or without `ingest`): reconnect after
    /// a backoff, as a token may be added to the collector, but a human likely has to act.
    TokenRefused(String),
    /// The collector asked for a pause (the token is over its request rate): reconnect after
    /// the backoff or this long, whichever is longer.
    PushedBack(String, Duration),
}

impl Shipper {
    /// Creates a shipper with an in-memory queue of `max_unacked_batches`; `collector_url`
    /// must be a valid http(s) URL. An https:// URL is reached over TLS as `tls` says.
    pub fn new(
        collector_url: &str,
        tls: &TlsConfig,
        token: Option<String>,
        config: ShipConfig,
        records: mpsc::Receiver<RecordChunk>,
    ) -> crate::Result<Shipper> {
        let endpoint = Endpoint::from_shared(collector_url.to_owned())
            .map_err(|source| crate::Error::CollectorUrl {
                url: collector_url.to_owned(),
                source,
            })?
            .connect_timeout(Duration::from_secs(5))
            .http2_keep_alive_interval(Duration::from_secs(20))
            .keep_alive_timeout(Duration::from_secs(10));
        let endpoint = if collector_url.starts_with("https://") {
            let tls_config = crate::tls::client_tls_config(tls).map_err(|source| {
                crate::Error::ReadTlsFiles {
                    url: collector_url.to_owned(),
                    source,
                }
            })?;
            endpoint
                .tls_config(tls_config)
                .map_err(|source| crate::Error::CollectorUrl {
                    url: collector_url.to_owned(),
                    source,
                })?
        } else {
            endpoint
        };
        // No scrapes unless `with_scrapes`: a channel whose sender is gone.
        let (_, scrapes) = mpsc::channel(1);
        Ok(Shipper {
            endpoint,
            collector_url: collector_url.to_owned(),
            token,
            token_file: None,
            scrapes,
            scrapes_closed: false,
            queue: BatchQueue::in_memory(config.max_unacked_batches),
            batch_linger: config.batch_linger(),
            config,
            records,
            in_flight: BTreeMap::new(),
            checkpoints: None,
            metrics: AgentMetrics::new(),
            records_closed: false,
            building: BatchBuilder::default(),
            unsealed: None,
            seal_deadline: None,
        })
    }

    /// Queues sealed batches in `queue` (the on-disk spool) instead of memory.
    pub fn with_queue(mut self, queue: BatchQueue) -> Shipper {
        self.queue = queue;
        self
    }

    /// Ships the scrapes that arrive on `scrapes` too.
    pub fn with_scrapes(mut self, scrapes: mpsc::Receiver<Scrape>) -> Shipper {
        self.scrapes = scrapes;
        self
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
    /// `SHUTDOWN_ACK_WAIT` after `shutdown` fired (what is spooled is sent by the next run).
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
                    // Whatever was taken goes into the queue, for the next run to send.
                    self.seal();
                    tracing::warn!(queued_batches = self.queue.len(), "stopping with batches the collector has not acked");
                    return;
                }
            };
            self.metrics.reconnects.inc();
            let mut wait = jittered(backoff);
            let collector = &self.collector_url;
            let queued_batches = self.queue.len();
            match outcome {
                Disconnect::Done => return,
                Disconnect::Failed(reason) => {
                    tracing::warn!(%collector, %reason, retry_in = ?wait, queued_batches, "collector unreachable, retrying");
                }
                Disconnect::TlsFailed(reason) => {
                    tracing::error!(%collector, %reason, retry_in = ?wait, queued_batches, "tls with the collector failed (check `[tls] ca`, `cert`, `key` and the collector's certificate), retrying");
                }
                Disconnect::TokenRefused(reason) => {
                    tracing::error!(%collector, %reason, retry_in = ?wait, queued_batches, "the collector refused this agent's token (check `token` or `token_file`, and that its `[[tokens]]` entry can ingest), retrying");
                }
                Disconnect::PushedBack(reason, pause) => {
                    wait = wait.max(pause);
                    tracing::warn!(%collector, %reason, retry_in = ?wait, queued_batches, "the collector asked to slow down, retrying");
                }
            }
            let retry_at = Instant::now() + wait;
            loop {
                // Keep taking and sealing records while the collector is away, until the
                // queue is full; notice the end of input, when a stopping agent with nothing
                // queued need not wait.
                self.report_backpressure();
                tokio::select! {
                    () = sleep_until(retry_at) => break,
                    () = &mut give_up => {
                        // Whatever was taken goes into the queue, for the next run to send.
                    self.seal();
                        return;
                    }
                    record = self.records.recv(), if self.can_take_records() => self.take(record),
                    scrape = self.scrapes.recv(), if self.can_take_scrapes() => self.take_scrape(scrape),
                    () = sleep_until(self.seal_deadline.unwrap_or_else(Instant::now)), if self.seal_deadline.is_some() => self.seal(),
                }
                if self.everything_acked() {
                    return;
                }
            }
            backoff = (backoff * 2).min(self.config.backoff_max());
        }
    }

    /// Whether to take another record: input open, room in the batch and in the queue.
    fn can_take_records(&self) -> bool {
        !self.records_closed && self.has_room()
    }

    /// Whether to take another scrape: as for records.
    fn can_take_scrapes(&self) -> bool {
        !self.scrapes_closed && self.has_room()
    }

    fn has_room(&self) -> bool {
        self.unsealed.is_none() && !self.building.is_full(&self.config) && !self.queue.is_full()
    }

    /// Adds one scrape to the batch being filled, as `take` does a chunk of records.
    fn take_scrape(&mut self, scrape: Option<Scrape>) {
        let Some(scrape) = scrape else {
            self.scrapes_closed = true;
            self.seal();
            return;
        };
        self.building.push_scrape(scrape);
        let linger = self.batch_linger;
        self.seal_deadline
            .get_or_insert_with(|| Instant::now() + linger);
        if self.building.is_full(&self.config) {
            self.seal();
        }
    }

    /// Adds a chunk of records to the batch being filled, sealing it whenever it is full and
    /// when input ends. A chunk is always taken whole: the queue may pass its bound by one.
    fn take(&mut self, chunk: Option<RecordChunk>) {
        let Some(chunk) = chunk else {
            self.records_closed = true;
            self.seal();
            return;
        };
        for record in chunk {
            self.building.push(record);
            let linger = self.batch_linger;
            self.seal_deadline
                .get_or_insert_with(|| Instant::now() + linger);
            if self.building.is_full(&self.config) {
                self.seal();
            }
        }
    }

    /// Moves the batch being filled into the queue. A failed spool write keeps the batch and
    /// tries again soon; no record is taken meanwhile.
    fn seal(&mut self) {
        self.seal_deadline = None;
        if self.unsealed.is_none() && !self.building.is_empty() {
            self.unsealed = Some(std::mem::take(&mut self.building).finish());
        }
        let Some(batch) = &self.unsealed else {
            return;
        };
        match self.queue.push(batch) {
            Ok(number) => {
                tracing::debug!(
                    batch_number = number,
                    records = batch.records,
                    "sealed batch"
                );
                self.unsealed = None;
                self.metrics.unacked_batches.set(self.queue.len() as i64);
            }
            Err(error) => {
                tracing::error!(%error, "cannot spool a batch; retrying");
                self.seal_deadline = Some(Instant::now() + SEAL_RETRY);
            }
        }
    }

    /// Logs when reading pauses for a full queue or resumes, and exposes it as a gauge.
    fn report_backpressure(&mut self) {
        let engaged = self.queue.is_full();
        if engaged == (self.metrics.backpressure.get() == 1) {
            return;
        }
        if engaged {
            tracing::warn!(
                queued_batches = self.queue.len(),
                queued_bytes = self.queue.bytes(),
                "backpressure: the queue of unacked batches is full; reading pauses until the collector acks"
            );
        } else {
            tracing::info!("backpressure released");
        }
        self.metrics.backpressure.set(i64::from(engaged));
    }

    /// Input has ended and the collector has acked everything.
    fn everything_acked(&self) -> bool {
        self.records_closed
            && self.scrapes_closed
            && self.building.is_empty()
            && self.unsealed.is_none()
            && self.queue.is_empty()
    }

    /// Reads the token again from `token_file` before connecting: a token rotated in the
    /// file is used without a restart. A file that cannot be read keeps the token in use.
    pub fn with_token_file(mut self, token_file: Option<PathBuf>) -> Shipper {
        self.token_file = token_file;
        self
    }

    fn reread_token(&mut self) {
        let Some(path) = &self.token_file else {
            return;
        };
        match std::fs::read_to_string(path) {
            Ok(text) if !text.trim().is_empty() => self.token = Some(text.trim().to_owned()),
            Ok(_) => {
                tracing::warn!(path = %path.display(), "the token file is empty; keeping the token read before");
            }
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "cannot read the token file; keeping the token read before");
            }
        }
    }

    async fn connect_and_push(&mut self, backoff: &mut Duration) -> Disconnect {
        self.reread_token();
        let channel = match self.endpoint.connect().await {
            Ok(channel) => channel,
            Err(error) => return connection_failed("cannot connect", &error),
        };
        let (requests, request_stream) = mpsc::channel::<Bytes>(self.config.max_unacked_batches);
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
        let mut responses = match crate::codec::push(channel, request).await {
            Ok(responses) => responses,
            Err(status) => return refused("push refused", &status),
        };
        tracing::info!(queued_batches = self.queue.len(), "connected to collector");
        *backoff = BACKOFF_MIN;
        self.metrics.collector_connected.set(1);
        let outcome = self.pump(&requests, &mut responses).await;
        self.metrics.collector_connected.set(0);
        outcome
    }

    /// Sends queued batches (oldest first, a bounded window), takes records and handles acks
    /// until the stream ends.
    async fn pump(
        &mut self,
        requests: &mpsc::Sender<Bytes>,
        responses: &mut tonic::Streaming<PushResponse>,
    ) -> Disconnect {
        self.in_flight.clear();
        // Records taken before this connection go out at once.
        if !self.building.is_empty() {
            self.seal_deadline = Some(Instant::now());
        }
        let mut send_from = 0;
        loop {
            if self.everything_acked() {
                return Disconnect::Done;
            }
            while self.in_flight.len() < self.config.max_unacked_batches
                && let Some(number) = self.queue.next_from(send_from)
            {
                send_from = number + 1;
                let (request, records) = match self.queue.get(number) {
                    Ok(batch) => batch,
                    Err(error) => {
                        tracing::error!(%error, "dropping a queued batch that cannot be read; its lines are read again from their files");
                        self.queue.remove(number);
                        continue;
                    }
                };
                self.metrics.records_sent.inc_by(records as u64);
                // The request channel holds `max_unacked_batches`, as many as are in flight.
                if requests.try_send(request).is_err() {
                    return Disconnect::Failed("the stream to the collector closed".to_owned());
                }
                self.in_flight.insert(number, false);
            }
            self.report_backpressure();
            tokio::select! {
                record = self.records.recv(), if self.can_take_records() => self.take(record),
                scrape = self.scrapes.recv(), if self.can_take_scrapes() => self.take_scrape(scrape),
                () = sleep_until(self.seal_deadline.unwrap_or_else(Instant::now)), if self.seal_deadline.is_some() => self.seal(),
                response = responses.message() => {
                    match response {
                        Ok(Some(response)) => {
                            for warning in &response.warnings {
                                tracing::warn!(%warning, "the collector did not keep part of a batch");
                                self.metrics.collector_warnings.inc();
                            }
                            self.apply_acks(&response.acked_batch_numbers);
                        }
                        Ok(None) => return Disconnect::Failed("the collector closed the stream".to_owned()),
                        Err(status) => return refused("stream failed", &status),
                    }
                }
            }
        }
    }

    /// Drops acknowledged batches and advances checkpoints, strictly in batch order: an
    /// offset is reported only once every earlier batch is acknowledged too.
    fn apply_acks(&mut self, numbers: &[u64]) {
        for number in numbers {
            if let Some(acked) = self.in_flight.get_mut(number) {
                *acked = true;
            }
        }
        while let Some(entry) = self.in_flight.first_entry() {
            if !*entry.get() {
                break;
            }
            let number = *entry.key();
            entry.remove();
            let stream_ends = self.queue.remove(number);
            self.metrics.batches_acked.inc();
            if let Some(checkpoints) = &self.checkpoints {
                for (stream_id, end_offset) in stream_ends {
                    checkpoints.record_ack(stream_id, end_offset);
                }
            }
        }
        self.metrics.unacked_batches.set(self.queue.len() as i64);
    }
}

/// Collects records into one encoded `PushRequest`, naming each stream once. Records are
/// encoded as they come, so a batch in the making holds no per-record allocations.
#[derive(Default)]
struct BatchBuilder {
    streams: Vec<wire::Stream>,
    stream_indexes: HashMap<u64, u32>,
    /// The `logs` field (3) of the request, encoded.
    encoded: Vec<u8>,
    records: usize,
    text_bytes: usize,
    stream_ends: HashMap<u64, u64>,
    last_stream: Option<(u64, u32)>,
}

impl BatchBuilder {
    /// The index of `stream` in this batch's `streams`, adding it on first use.
    fn stream_index(&mut self, stream: &StreamInfo) -> u32 {
        // Consecutive records mostly share their stream: skip the map lookup for them.
        if let Some((_, index)) = self.last_stream.filter(|(id, _)| *id == stream.id) {
            return index;
        }
        let index = *self.stream_indexes.entry(stream.id).or_insert_with(|| {
            self.streams.push(wire::Stream {
                id: stream.id,
                cluster: stream.cluster.clone(),
                node: stream.node.clone(),
                role: wire::Role::from(stream.role).into(),
                source: stream.source.clone(),
            });
            u32::try_from(self.streams.len() - 1)
                .expect("a batch holds far fewer than 2^32 streams")
        });
        self.last_stream = Some((stream.id, index));
        index
    }

    fn push(&mut self, record: LogRecord) {
        let stream_index = self.stream_index(&record.stream);
        self.text_bytes += record.message.len() + record.logger.len() + record.level.len();
        let stream_end = self
            .stream_ends
            .entry(record.stream.checkpoint_id)
            .or_default();
        *stream_end = (*stream_end).max(record.end_offset);
        encode_log_record(&mut self.encoded, stream_index, &record);
        self.records += 1;
    }

    /// Adds a scrape's families as field 4 (`metric_families`); each series counts as a record.
    /// Scrapes advance no checkpoint.
    fn push_scrape(&mut self, scrape: Scrape) {
        let stream_index = self.stream_index(&scrape.stream);
        for mut family in scrape.families {
            family.stream_index = stream_index;
            let before = self.encoded.len();
            prost::encoding::message::encode(4, &family, &mut self.encoded);
            self.text_bytes += self.encoded.len() - before;
            self.records += family.series.len();
        }
    }

    /// Tells whether the batch has reached the record or byte limit and must be sent.
    fn is_full(&self, config: &ShipConfig) -> bool {
        self.records >= config.batch_max_records || self.text_bytes >= config.batch_max_bytes
    }

    fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// The encoded request (without its batch number) and where its streams end.
    fn finish(mut self) -> SealedBatch {
        for stream in &self.streams {
            prost::encoding::message::encode(2, stream, &mut self.encoded);
        }
        SealedBatch {
            encoded: self.encoded,
            records: self.records,
            stream_ends: self.stream_ends.into_iter().collect(),
        }
    }
}

/// Appends `record` as field 3 (`logs`) of a `PushRequest`, byte for byte as prost encodes a
/// `wire::LogRecord`, without building one: its level and logger stay shared strings.
fn encode_log_record(buffer: &mut Vec<u8>, stream_index: u32, record: &LogRecord) {
    use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};
    let ts = i64::try_from(record.ts.as_nanosecond()).unwrap_or(i64::MAX);
    // Fields at their default value are left out, as proto3 does.
    let varints = [
        (1, u64::from(stream_index)),
        (2, record.seq),
        (3, ts as u64),
    ];
    let strings = [
        (4, &*record.level),
        (5, &*record.logger),
        (6, record.message.as_str()),
    ];
    let varint_len = |(tag, value): (u32, u64)| {
        if value == 0 {
            0
        } else {
            key_len(tag) + encoded_len_varint(value)
        }
    };
    let string_len = |(tag, text): (u32, &str)| {
        if text.is_empty() {
            0
        } else {
            key_len(tag) + encoded_len_varint(text.len() as u64) + text.len()
        }
    };
    let length = varints.into_iter().map(varint_len).sum::<usize>()
        + strings.into_iter().map(string_len).sum::<usize>()
        + [record.truncated, record.ts_inferred]
            .into_iter()
            .zip([7, 8])
            .filter(|(set, _)| *set)
            .map(|(_, tag)| key_len(tag) + 1)
            .sum::<usize>();
    encode_key(3, WireType::LengthDelimited, buffer);
    encode_varint(length as u64, buffer);
    for (tag, value) in varints {
        if value != 0 {
            encode_key(tag, WireType::Varint, buffer);
            encode_varint(value, buffer);
        }
    }
    for (tag, text) in strings {
        if !text.is_empty() {
            encode_key(tag, WireType::LengthDelimited, buffer);
            encode_varint(text.len() as u64, buffer);
            buffer.extend_from_slice(text.as_bytes());
        }
    }
    for (tag, set) in [(7, record.truncated), (8, record.ts_inferred)] {
        if set {
            encode_key(tag, WireType::Varint, buffer);
            encode_varint(1, buffer);
        }
    }
}

/// Why connecting failed: `what`, then `error` and all its sources (tonic's own message,
/// "transport error", says little), telling TLS failures apart.
fn connection_failed(what: &str, error: &(dyn std::error::Error + 'static)) -> Disconnect {
    let reason = format!("{what}: {}", crate::tls::describe(error));
    if crate::tls::is_tls_failure(error) {
        Disconnect::TlsFailed(reason)
    } else {
        Disconnect::Failed(reason)
    }
}

/// Why the collector ended a push with `status`: a refused token, a pause it asked for
/// (`grpc-retry-pushback-ms`), or a connection failure.
fn refused(what: &str, status: &tonic::Status) -> Disconnect {
    let reason = || format!("{what}: {:?}: {}", status.code(), status.message());
    match status.code() {
        tonic::Code::Unauthenticated | tonic::Code::PermissionDenied => {
            Disconnect::TokenRefused(reason())
        }
        tonic::Code::ResourceExhausted => {
            let pushback = status
                .metadata()
                .get("grpc-retry-pushback-ms")
                .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
            match pushback {
                Some(millis) => Disconnect::PushedBack(reason(), Duration::from_millis(millis)),
                None => connection_failed(what, status),
            }
        }
        _ => connection_failed(what, status),
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

    use prost::Message;
    use tonic::codec::CompressionEncoding;

    use super::*;
    use crate::config::{AgentConfig, Role};
    use crate::record::StreamInfo;

    fn record(stream: &Arc<StreamInfo>, seq: u64, message: &str) -> LogRecord {
        LogRecord {
            stream: Arc::clone(stream),
            seq,
            end_offset: seq + 1,
            ts: jiff::Timestamp::UNIX_EPOCH,
            level: Arc::from("INFO"),
            logger: Arc::from("distributed.worker"),
            message: message.to_owned(),
            truncated: false,
            ts_inferred: false,
        }
    }

    fn stream(id: u64, source: &str) -> Arc<StreamInfo> {
        Arc::new(StreamInfo {
            id,
            checkpoint_id: id,
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
        let sealed = batch.finish();
        let mut stream_ends = sealed.stream_ends;
        stream_ends.sort();
        assert_eq!(stream_ends, [(1, 21), (2, 1)]);
        assert_eq!(sealed.records, 4);
        let request = wire::PushRequest::decode(&sealed.encoded[..]).expect("a whole PushRequest");
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
    fn scrapes_share_the_batch_with_records_point_at_their_stream_and_advance_no_checkpoint() {
        let (log, target) = (stream(1, "/a.log"), stream(9, "http://h:8787/metrics"));
        let family = |name: &str| wire::MetricFamily {
            stream_index: 99,
            name: name.to_owned(),
            r#type: wire::MetricType::Gauge.into(),
            help: String::new(),
            series: vec![wire::MetricSeries {
                metric: name.to_owned(),
                labels: Vec::new(),
                samples: vec![wire::Sample {
                    ts_unix_millis: 1000,
                    value: 1.5,
                }],
                seq: 1000,
            }],
        };
        let mut batch = BatchBuilder::default();
        batch.push(record(&log, 0, "m"));
        batch.push_scrape(Scrape {
            stream: Arc::clone(&target),
            families: vec![family("a"), family("b")],
        });
        let sealed = batch.finish();
        assert_eq!(sealed.records, 3);
        assert_eq!(sealed.stream_ends, [(1, 1)]);
        let request = wire::PushRequest::decode(&sealed.encoded[..]).expect("a whole PushRequest");
        assert_eq!(request.logs.len(), 1);
        let mut expected = [family("a"), family("b")];
        for family in &mut expected {
            family.stream_index = 1;
        }
        assert_eq!(request.metric_families, expected);
        assert_eq!(request.streams[1].source, "http://h:8787/metrics");
    }

    #[test]
    fn records_are_encoded_as_prost_encodes_them() {
        let a = stream(1, "/a.log");
        let mut edge = record(&a, 0, "");
        edge.ts = jiff::Timestamp::from_nanosecond(-1_500).expect("valid");
        edge.level = Arc::from("");
        edge.truncated = true;
        let mut inferred = record(&a, 9, "a print");
        inferred.ts_inferred = true;
        for (stream_index, record) in [(0, record(&a, 7, "a message")), (300, edge), (2, inferred)]
        {
            let mut ours = Vec::new();
            encode_log_record(&mut ours, stream_index, &record);
            let wire = wire::LogRecord {
                stream_index,
                seq: record.seq,
                ts_unix_nanos: i64::try_from(record.ts.as_nanosecond()).expect("fits"),
                level: record.level.to_string(),
                logger: record.logger.to_string(),
                message: record.message.clone(),
                truncated: record.truncated,
                ts_inferred: record.ts_inferred,
            };
            let mut theirs = Vec::new();
            prost::encoding::message::encode(3, &wire, &mut theirs);
            assert_eq!(ours, theirs);
        }
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
            request: tonic::Request<tonic::Streaming<wire::PushRequest>>,
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
                        warnings: Vec::new(),
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
        let shipper = Shipper::new(
            &format!("http://{addr}"),
            &TlsConfig::default(),
            None,
            config,
            receiver,
        )
        .expect("valid url");
        let stream = stream(1, "/a.log");
        for seq in 0..500 {
            records
                .send(vec![record(&stream, seq, "m")])
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
    fn refused_tokens_and_pushback_are_told_from_other_failures() {
        let token = refused("push refused", &tonic::Status::unauthenticated("no token"));
        assert!(matches!(token, Disconnect::TokenRefused(reason) if reason.contains("no token")));
        let forbidden = refused(
            "push refused",
            &tonic::Status::permission_denied("read only"),
        );
        assert!(matches!(forbidden, Disconnect::TokenRefused(_)));

        let mut over_rate = tonic::Status::resource_exhausted("over the rate; retry in 750 ms");
        over_rate
            .metadata_mut()
            .insert("grpc-retry-pushback-ms", "750".parse().expect("ascii"));
        assert!(matches!(
            refused("stream failed", &over_rate),
            Disconnect::PushedBack(_, pause) if pause == Duration::from_millis(750)
        ));
        // A full disk gives no pushback: an ordinary failure with the usual backoff.
        let disk = tonic::Status::resource_exhausted("the collector's disk is full");
        assert!(matches!(
            refused("stream failed", &disk),
            Disconnect::Failed(_)
        ));
        let down = tonic::Status::unavailable("shutting down");
        assert!(matches!(
            refused("stream failed", &down),
            Disconnect::Failed(_)
        ));
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
