//! The gRPC `Ingest.Push` service: validates each batch, appends it to the WAL and acks its
//! number once it is fsynced there. Acks go out in batch order, while later batches are
//! already being logged (a bounded number per connection).
//!
//! The rule a reader must not miss: the tenant comes from the stream's bearer token (`auth/`;
//! tenant `default` on a collector without tokens), never from the payload. The token is
//! checked again for each batch, so a token revoked or moved to another tenant by a config
//! reload takes effect on open streams too, and each batch is charged to its request rate.

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use afterglow_proto::v1::ingest_server::Ingest;
use afterglow_proto::v1::{PushRequest, PushResponse};
use prost::Message;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

use crate::auth::{Access, Denied, Need};
use crate::batch::Batch;
use crate::config::LimitsConfig;
use crate::error::Error;
use crate::series::SeriesStore;
use crate::series::labels::relabels_in;
use crate::telemetry::CollectorMetrics;
use crate::wal::Wal;

/// Batches of one connection being logged but not yet acked.
const IN_FLIGHT_BATCHES_PER_CONNECTION: usize = 64;

/// The tenant of every record while the collector has no tokens configured.
pub const DEFAULT_TENANT: &str = "default";

/// Serves `Ingest.Push`.
pub struct IngestService {
    wal: Wal,
    shutdown: CancellationToken,
    limits: LimitsConfig,
    disk: Arc<DiskGuard>,
    series: Arc<SeriesStore>,
    metrics: Arc<CollectorMetrics>,
    access: Arc<Access>,
}

/// Tells whether the data directory has room, looking at most once a second.
pub struct DiskGuard {
    data_dir: PathBuf,
    min_free_bytes: u64,
    checked: std::sync::Mutex<Option<(tokio::time::Instant, u64)>>,
}

impl DiskGuard {
    /// Guards `data_dir`, which must keep `min_free_bytes` free.
    pub fn new(data_dir: PathBuf, min_free_bytes: u64) -> DiskGuard {
        DiskGuard {
            data_dir,
            min_free_bytes,
            checked: std::sync::Mutex::new(None),
        }
    }

    /// Free bytes if they are below the minimum, else `None`.
    fn shortage(&self) -> Option<u64> {
        let mut checked = self
            .checked
            .lock()
            .expect("disk guard lock is not poisoned");
        let now = tokio::time::Instant::now();
        let free = match *checked {
            Some((at, free)) if now.duration_since(at) < std::time::Duration::from_secs(1) => free,
            _ => {
                let free = rustix::fs::statvfs(&self.data_dir)
                    .map(|stats| stats.f_bavail.saturating_mul(stats.f_frsize))
                    .unwrap_or(u64::MAX);
                *checked = Some((now, free));
                free
            }
        };
        (free < self.min_free_bytes).then_some(free)
    }
}

impl IngestService {
    /// Creates the service logging into `wal`. When `shutdown` fires, every Push stream
    /// stops taking batches, acks what it took and ends, so that agents reconnect elsewhere
    /// or later and the server can stop.
    pub fn new(
        wal: Wal,
        shutdown: CancellationToken,
        limits: LimitsConfig,
        disk: Arc<DiskGuard>,
        series: Arc<SeriesStore>,
        metrics: Arc<CollectorMetrics>,
        access: Arc<Access>,
    ) -> IngestService {
        IngestService {
            wal,
            shutdown,
            limits,
            disk,
            series,
            metrics,
            access,
        }
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Status {
        match error {
            Error::WriterStopped => Status::unavailable("the collector is shutting down; retry"),
            error if error.is_storage_full() => Status::resource_exhausted(format!(
                "the collector's disk is full ({error}); the batch is refused, retry later"
            )),
            Error::WalWrite { reason, .. } => {
                Status::unavailable(format!("the batch could not be stored ({reason}); retry"))
            }
            other => Status::internal(other.to_string()),
        }
    }
}

impl From<Denied> for Status {
    fn from(denied: Denied) -> Status {
        match denied {
            Denied::Missing | Denied::Unknown => Status::unauthenticated(denied.to_string()),
            Denied::Forbidden { .. } => Status::permission_denied(denied.to_string()),
            Denied::RateLimited { retry_after, .. } => {
                let mut status = Status::resource_exhausted(denied.to_string());
                // gRPC's retry advice: how long to wait before trying again.
                if let Ok(value) = retry_after.as_millis().to_string().parse() {
                    status
                        .metadata_mut()
                        .insert("grpc-retry-pushback-ms", value);
                }
                status
            }
        }
    }
}

type PushResponseStream = Pin<Box<dyn Stream<Item = Result<PushResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Ingest for IngestService {
    type PushStream = PushResponseStream;

    async fn push(
        &self,
        request: Request<Streaming<PushRequest>>,
    ) -> Result<Response<Self::PushStream>, Status> {
        let authorization = request
            .metadata()
            .get("authorization")
            .map(|value| value.as_bytes());
        self.access.check(authorization, Need::Ingest, "grpc")?;
        let authorization = authorization.map(<[u8]>::to_vec);
        let access = Arc::clone(&self.access);
        let mut batches = request.into_inner();
        let (in_flight, mut in_flight_receiver) = mpsc::channel::<(
            u64,
            oneshot::Receiver<crate::Result<()>>,
            OwnedSemaphorePermit,
            Option<String>,
        )>(IN_FLIGHT_BATCHES_PER_CONNECTION);
        let in_flight_bytes = Arc::new(Semaphore::new(self.limits.max_in_flight_bytes));
        let (responses, response_stream) = mpsc::channel(IN_FLIGHT_BATCHES_PER_CONNECTION);
        let wal = self.wal.clone();
        let shutdown = self.shutdown.clone();
        let limits = self.limits.clone();
        let disk = Arc::clone(&self.disk);
        let series = Arc::clone(&self.series);
        let metrics = Arc::clone(&self.metrics);
        let acks = Arc::clone(&self.metrics);
        let error_responses = responses.clone();
        tokio::spawn(async move {
            loop {
                let batch = tokio::select! {
                    batch = batches.next() => batch,
                    () = shutdown.cancelled() => return,
                };
                let Some(batch) = batch else {
                    return;
                };
                let mut batch = match batch {
                    Ok(batch) => batch,
                    Err(status) => {
                        // A batch over the size limit lands here too: the agent is told why.
                        tracing::debug!(%status, "agent stream ended with an error");
                        let _ = error_responses.send(Err(status)).await;
                        return;
                    }
                };
                let number = batch.batch_number;
                let tenant = match access.check(authorization.as_deref(), Need::Ingest, "grpc") {
                    Ok(grant) => grant.ingest_tenant().to_owned(),
                    Err(denied) => {
                        metrics.refused(denied.reason());
                        let _ = error_responses.send(Err(Status::from(denied))).await;
                        return;
                    }
                };
                if let Some(free) = disk.shortage() {
                    let status = Status::resource_exhausted(format!(
                        "the collector's disk is nearly full ({free} bytes free, below the {} configured as limits.min_free_disk_bytes); batch {number} is refused, retry later",
                        disk.min_free_bytes
                    ));
                    metrics.refused("disk_full");
                    let _ = error_responses.send(Err(status)).await;
                    return;
                }
                if batch.logs.len() > limits.max_batch_records {
                    let status = Status::invalid_argument(format!(
                        "batch {number} has {} records; the limit is {} (limits.max_batch_records)",
                        batch.logs.len(),
                        limits.max_batch_records
                    ));
                    metrics.refused("too_many_records");
                    let _ = error_responses.send(Err(status)).await;
                    return;
                }
                // The agent's labels that collide with the collector's are renamed or dropped
                // by the store (`series::labels`); counted once, here.
                let relabeled = relabels_in(&batch);
                // New series past the tenant's limit are taken out before the WAL; the agent
                // hears why with the ack.
                let warning = series.admit(&tenant, &mut batch);
                if let Some(warning) = &warning {
                    tracing::warn!(%tenant, batch_number = number, %warning, "series refused");
                }
                let encoded = batch.encode_to_vec();
                // Held until the batch is acked: the next batch is not read while this
                // connection has `max_in_flight_bytes` unacked.
                let room = u32::try_from(encoded.len().min(limits.max_in_flight_bytes))
                    .unwrap_or(u32::MAX);
                let Ok(permit) = Arc::clone(&in_flight_bytes).acquire_many_owned(room).await else {
                    return;
                };
                let batch = match Batch::from_request(batch) {
                    Ok(batch) => batch,
                    Err(problem) => {
                        let status = Status::invalid_argument(format!("batch {number}: {problem}"));
                        metrics.refused("invalid");
                        let _ = error_responses.send(Err(status)).await;
                        return;
                    }
                };
                // Appended here, in batch order; only the wait for durability runs apart.
                let records = batch.logs.len() as u64;
                let durable = match wal.append(tenant.clone(), encoded, batch).await {
                    Ok(durable) => {
                        metrics.records_received.inc_by(records);
                        metrics.labels_renamed.inc_by(relabeled.renamed);
                        metrics.labels_dropped.inc_by(relabeled.dropped);
                        durable
                    }
                    Err(error) => {
                        metrics.refused("not_stored");
                        let _ = error_responses.send(Err(Status::from(error))).await;
                        return;
                    }
                };
                if in_flight
                    .send((number, durable, permit, warning))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
        tokio::spawn(async move {
            while let Some((number, durable, _permit, warning)) = in_flight_receiver.recv().await {
                let answer = match durable.await {
                    Ok(Ok(())) => {
                        tracing::trace!(batch_number = number, "batch durable");
                        acks.batches_acked.inc();
                        Ok(PushResponse {
                            acked_batch_numbers: vec![number],
                            warnings: warning.into_iter().collect(),
                        })
                    }
                    Ok(Err(error)) => Err(Status::from(error)),
                    Err(_) => Err(Status::unavailable("the collector is shutting down; retry")),
                };
                let failed = answer.is_err();
                if responses.send(answer).await.is_err() || failed {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(
            response_stream,
        ))))
    }
}

#[cfg(test)]
mod tests {
    use afterglow_proto::v1::ingest_client::IngestClient;
    use afterglow_proto::v1::{LogRecord, Role, Stream};
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;

    use super::*;
    use crate::{BoundAddrs, CollectorConfig};

    /// Starts a collector in this process on free loopback ports.
    async fn start_collector(data_dir: &std::path::Path) -> (BoundAddrs, CancellationToken) {
        start_collector_with(data_dir, "").await
    }

    async fn start_collector_with(
        data_dir: &std::path::Path,
        extra: &str,
    ) -> (BoundAddrs, CancellationToken) {
        let config = CollectorConfig::parse(&format!(
            "data_dir = {:?}\n[listen]\nhttp = \"127.0.0.1:0\"\ngrpc = \"127.0.0.1:0\"\n{extra}",
            data_dir.display().to_string()
        ))
        .expect("valid config");
        let shutdown = CancellationToken::new();
        let (addrs_sender, addrs) = oneshot::channel();
        tokio::spawn(crate::run(config, shutdown.clone(), move |addrs| {
            let _ = addrs_sender.send(addrs);
        }));
        (addrs.await.expect("collector starts"), shutdown)
    }

    fn batch(batch_number: u64, stream_index: u32) -> PushRequest {
        PushRequest {
            batch_number,
            streams: vec![Stream {
                id: 7,
                cluster: "c".to_owned(),
                node: "n".to_owned(),
                role: Role::Worker.into(),
                source: "/w.log".to_owned(),
            }],
            logs: vec![LogRecord {
                stream_index,
                seq: batch_number,
                ts_unix_nanos: 1_795_787_813_599_000_000,
                level: "info".to_owned(),
                logger: "distributed.worker".to_owned(),
                message: format!("record {batch_number}"),
                truncated: false,
                ts_inferred: false,
            }],
            metric_families: Vec::new(),
        }
    }

    async fn push(
        grpc: std::net::SocketAddr,
        batches: Vec<PushRequest>,
    ) -> Result<Vec<u64>, Status> {
        push_as(grpc, None, batches).await
    }

    /// Pushes `batches` on one stream, with `token` as bearer if given: the acked numbers,
    /// or the status that ended the stream.
    async fn push_as(
        grpc: std::net::SocketAddr,
        token: Option<&str>,
        batches: Vec<PushRequest>,
    ) -> Result<Vec<u64>, Status> {
        let mut client = IngestClient::connect(format!("http://{grpc}"))
            .await
            .expect("connects")
            .send_compressed(tonic::codec::CompressionEncoding::Zstd);
        let count = batches.len();
        let mut request = Request::new(tokio_stream::iter(batches));
        if let Some(token) = token {
            let value = format!("Bearer {token}").parse().expect("a header value");
            request.metadata_mut().insert("authorization", value);
        }
        let mut acks = client.push(request).await?.into_inner();
        let mut acked = Vec::new();
        while acked.len() < count {
            match acks.message().await? {
                Some(response) => acked.extend(response.acked_batch_numbers),
                None => break,
            }
        }
        Ok(acked)
    }

    /// `GET /metrics` of the collector at `http`, over a plain socket: the body.
    async fn scrape(http: std::net::SocketAddr) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut socket = tokio::net::TcpStream::connect(http)
            .await
            .expect("connects");
        socket
            .write_all(b"GET /metrics HTTP/1.0\r\nHost: collector\r\n\r\n")
            .await
            .expect("request sent");
        let mut response = String::new();
        socket
            .read_to_string(&mut response)
            .await
            .expect("response read");
        let (head, body) = response.split_once("\r\n\r\n").expect("a head and a body");
        assert!(head.starts_with("HTTP/1.0 200"), "{head}");
        body.to_owned()
    }

    /// The value of the line of `name` (with its labels) in metrics `text`.
    fn metric(text: &str, name: &str) -> Option<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    }

    #[tokio::test]
    async fn acks_batches_in_order_and_serves_health() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (addrs, shutdown) = start_collector(dir.path()).await;
        let acked = push(addrs.grpc, (1..=5).map(|number| batch(number, 0)).collect()).await;
        assert_eq!(acked.expect("push works"), vec![1, 2, 3, 4, 5]);
        let text = scrape(addrs.http).await;
        assert_eq!(
            metric(&text, "afterglow_collector_batches_acked_total"),
            Some(5.0),
            "{text}"
        );
        assert_eq!(
            metric(&text, "afterglow_collector_records_received_total"),
            Some(5.0),
            "{text}"
        );

        let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", addrs.grpc))
            .expect("valid url")
            .connect()
            .await
            .expect("connects");
        let mut health = HealthClient::new(channel);
        let status = health
            .check(HealthCheckRequest {
                service: "afterglow.v1.Ingest".to_owned(),
            })
            .await
            .expect("health answers")
            .into_inner()
            .status;
        assert_eq!(status, i32::from(ServingStatus::Serving));
        shutdown.cancel();
    }

    #[tokio::test]
    async fn a_record_pointing_at_a_missing_stream_is_invalid_argument_naming_the_field() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (addrs, shutdown) = start_collector(dir.path()).await;
        let status = push(addrs.grpc, vec![batch(1, 0), batch(2, 3)])
            .await
            .expect_err("batch 2 is invalid");
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(
            status
                .message()
                .contains("batch 2: logs[0].stream_index 3 is out of range"),
            "{}",
            status.message()
        );
        shutdown.cancel();
    }

    #[tokio::test]
    async fn a_batch_over_the_record_limit_is_invalid_argument() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (addrs, shutdown) =
            start_collector_with(dir.path(), "[limits]\nmax_batch_records = 1\n").await;
        let mut two_records = batch(1, 0);
        two_records.logs.push(two_records.logs[0].clone());
        let status = push(addrs.grpc, vec![two_records])
            .await
            .expect_err("over the limit");
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(
            status.message().contains("has 2 records; the limit is 1"),
            "{}",
            status.message()
        );
        let text = scrape(addrs.http).await;
        assert_eq!(
            metric(
                &text,
                "afterglow_collector_batches_refused_total{reason=\"too_many_records\"}"
            ),
            Some(1.0),
            "{text}"
        );
        shutdown.cancel();
    }

    #[tokio::test]
    async fn batches_flow_under_a_tight_in_flight_bound_and_an_oversized_one_is_refused_naming_the_limit()
     {
        let dir = tempfile::tempdir().expect("tempdir");
        let (addrs, shutdown) = start_collector_with(
            dir.path(),
            "[limits]\nmax_batch_bytes = 400\nmax_in_flight_bytes = 400\n",
        )
        .await;
        let batches: Vec<PushRequest> = (1..=20).map(|number| batch(number, 0)).collect();
        let one = batches[0].encoded_len();
        assert!(
            one * 20 > 400,
            "the batches ({one} bytes each) are more than the bound holds at once"
        );
        let acked = push(addrs.grpc, batches).await.expect("push works");
        assert_eq!(acked, (1..=20).collect::<Vec<_>>());

        let mut oversized = batch(21, 0);
        oversized.logs[0].message = "x".repeat(500);
        let status = push(addrs.grpc, vec![oversized])
            .await
            .expect_err("too large");
        assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status}");
        assert!(status.message().contains("size limit"), "{status}");
        shutdown.cancel();
    }

    #[tokio::test]
    async fn a_nearly_full_disk_refuses_batches_with_resource_exhausted_and_keeps_serving_queries()
    {
        let dir = tempfile::tempdir().expect("tempdir");
        // More free space than any disk has: the collector behaves as if its disk were full.
        let (addrs, shutdown) = start_collector_with(
            dir.path(),
            "[limits]\nmin_free_disk_bytes = 18446744073709551615\n",
        )
        .await;
        let status = push(addrs.grpc, vec![batch(1, 0)])
            .await
            .expect_err("refused");
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(
            status.message().contains("disk is nearly full"),
            "{}",
            status.message()
        );
        let search = tokio::net::TcpStream::connect(addrs.http).await;
        assert!(search.is_ok(), "the HTTP side still answers");
        shutdown.cancel();
    }

    #[tokio::test]
    async fn streams_need_an_ingest_token_and_batches_over_its_rate_get_retry_advice() {
        use crate::auth::token::{digest, hex};
        let dir = tempfile::tempdir().expect("temp dir");
        let entry = |name: &str, secret: &str, can: &str| {
            format!(
                "[[tokens]]\nname = {name:?}\nsha256 = \"{}\"\ntenants = [\"team-a\"]\ncan = [{can:?}]\nrequests_per_second = 1\n",
                hex(&digest(secret))
            )
        };
        let extra = format!(
            "{}{}",
            entry("agents", "ingest-secret", "ingest"),
            entry("readers", "read-secret", "read")
        );
        let (addrs, shutdown) = start_collector_with(dir.path(), &extra).await;

        let refused = push(addrs.grpc, vec![batch(1, 0)]).await;
        assert_eq!(
            refused.expect_err("no token").code(),
            tonic::Code::Unauthenticated
        );
        let refused = push_as(addrs.grpc, Some("guess"), vec![batch(1, 0)]).await;
        assert_eq!(
            refused.expect_err("unknown").code(),
            tonic::Code::Unauthenticated
        );
        let refused = push_as(addrs.grpc, Some("read-secret"), vec![batch(1, 0)]).await;
        assert_eq!(
            refused.expect_err("read-only").code(),
            tonic::Code::PermissionDenied
        );

        // One request per second, bursts of two: the stream and its first batch pass.
        let status = push_as(
            addrs.grpc,
            Some("ingest-secret"),
            vec![batch(1, 0), batch(2, 0)],
        )
        .await
        .expect_err("the second batch is over the rate");
        assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status}");
        let pushback: u64 = status
            .metadata()
            .get("grpc-retry-pushback-ms")
            .and_then(|value| value.to_str().ok()?.parse().ok())
            .expect("retry advice in milliseconds");
        assert!((1..=1000).contains(&pushback), "{pushback}");
        assert!(status.message().contains("retry in"), "{status}");
        // The acked batch is indexed under the token's tenant within the commit interval.
        let indexed = async {
            while !dir.path().join("logs/team-a").exists() {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(10), indexed)
            .await
            .expect("the first batch is stored under the token's tenant");
        assert!(!dir.path().join("logs/default").exists());
        shutdown.cancel();
    }
}
