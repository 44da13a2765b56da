//! The gRPC `Ingest.Push` service: validates each batch, hands it to the index writer and
//! acks its number once it is durable. Acks go out in batch order, while later batches are
//! already being written (a bounded number per connection).
//!
//! The rule a reader must not miss: the tenant comes from the connection's credential (for
//! now the single default tenant), never from the payload.

use std::pin::Pin;

use afterglow_proto::v1::ingest_server::Ingest;
use afterglow_proto::v1::{PushRequest, PushResponse, Role};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use crate::error::Error;
use crate::index::writer::{LogEntry, LogWriter, WriteOutcome};

/// Batches of one connection being written but not yet acked.
const IN_FLIGHT_BATCHES_PER_CONNECTION: usize = 64;

/// The tenant of every record while the collector has no tokens configured.
pub const DEFAULT_TENANT: &str = "default";

/// Serves `Ingest.Push`.
pub struct IngestService {
    writer: LogWriter,
}

impl IngestService {
    /// Creates the service writing into `writer`.
    pub fn new(writer: LogWriter) -> IngestService {
        IngestService { writer }
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Status {
        match error {
            Error::WriterStopped => Status::unavailable("the collector is shutting down; retry"),
            Error::CommitFailed(reason) => {
                Status::unavailable(format!("the batch could not be stored ({reason}); retry"))
            }
            other => Status::internal(other.to_string()),
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
        let tenant = DEFAULT_TENANT.to_owned();
        let mut batches = request.into_inner();
        let (in_flight, mut in_flight_receiver) = mpsc::channel::<(
            u64,
            oneshot::Receiver<crate::Result<WriteOutcome>>,
        )>(IN_FLIGHT_BATCHES_PER_CONNECTION);
        let (responses, response_stream) = mpsc::channel(IN_FLIGHT_BATCHES_PER_CONNECTION);
        let writer = self.writer.clone();
        let error_responses = responses.clone();
        tokio::spawn(async move {
            while let Some(batch) = batches.next().await {
                let batch = match batch {
                    Ok(batch) => batch,
                    Err(status) => {
                        tracing::debug!(%status, "agent stream ended with an error");
                        return;
                    }
                };
                let number = batch.batch_number;
                let entries = match entries_from_batch(batch) {
                    Ok(entries) => entries,
                    Err(status) => {
                        let _ = error_responses.send(Err(status)).await;
                        return;
                    }
                };
                // Submitted here, in batch order; only the wait for durability runs apart.
                let durable = match writer.submit(tenant.clone(), entries).await {
                    Ok(durable) => durable,
                    Err(error) => {
                        let _ = error_responses.send(Err(Status::from(error))).await;
                        return;
                    }
                };
                if in_flight.send((number, durable)).await.is_err() {
                    return;
                }
            }
        });
        tokio::spawn(async move {
            while let Some((number, durable)) = in_flight_receiver.recv().await {
                let answer = match durable.await {
                    Ok(Ok(outcome)) => {
                        tracing::debug!(
                            batch_number = number,
                            added = outcome.added,
                            duplicates = outcome.duplicates,
                            "batch durable"
                        );
                        Ok(PushResponse {
                            acked_batch_numbers: vec![number],
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

/// Checks a batch and turns it into index entries. Every problem names the field.
fn entries_from_batch(batch: PushRequest) -> Result<Vec<LogEntry>, Status> {
    let invalid = |message: String| {
        Status::invalid_argument(format!("batch {}: {message}", batch.batch_number))
    };
    for (index, stream) in batch.streams.iter().enumerate() {
        if stream.cluster.is_empty() || stream.node.is_empty() {
            return Err(invalid(format!(
                "streams[{index}]: cluster and node must not be empty"
            )));
        }
    }
    let mut entries = Vec::with_capacity(batch.logs.len());
    for (index, record) in batch.logs.iter().enumerate() {
        let stream = usize::try_from(record.stream_index)
            .ok()
            .and_then(|at| batch.streams.get(at))
            .ok_or_else(|| {
                invalid(format!(
                    "logs[{index}].stream_index {} is out of range: the batch names {} streams",
                    record.stream_index,
                    batch.streams.len()
                ))
            })?;
        entries.push(LogEntry {
            ts_micros: record.ts_unix_nanos.div_euclid(1000),
            cluster: stream.cluster.clone(),
            node: stream.node.clone(),
            role: role_name(stream.role).to_owned(),
            source: stream.source.clone(),
            level: record.level.to_ascii_uppercase(),
            logger: record.logger.clone(),
            message: record.message.clone(),
            stream: stream.id,
            seq: record.seq,
        });
    }
    Ok(entries)
}

fn role_name(role: i32) -> &'static str {
    match Role::try_from(role) {
        Ok(Role::Scheduler) => "scheduler",
        Ok(Role::Worker) => "worker",
        Ok(Role::Nanny) => "nanny",
        Ok(Role::Client) => "client",
        Ok(Role::Other | Role::Unspecified) | Err(_) => "other",
    }
}
