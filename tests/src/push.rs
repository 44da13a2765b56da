//! Pushing batches to a collector over gRPC as an agent does, for tests that need records an
//! agent would not send on demand (a chosen `seq`, a flag set by hand).

use afterglow_proto::v1::ingest_client::IngestClient;
use afterglow_proto::v1::{LogRecord, PushRequest, Role, Stream};
use anyhow::{Context, Result, bail};

/// Sends `request` on a new `Push` stream to `grpc_url` and waits for its ack.
pub fn push(grpc_url: &str, request: PushRequest) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let number = request.batch_number;
        let mut client = IngestClient::connect(grpc_url.to_owned())
            .await
            .with_context(|| format!("connect to {grpc_url}"))?;
        let (sender, receiver) = tokio::sync::mpsc::channel(1);
        sender.send(request).await?;
        let mut acks = client
            .push(tokio_stream::wrappers::ReceiverStream::new(receiver))
            .await?
            .into_inner();
        let wait = tokio::time::timeout(crate::PATIENCE, async {
            while let Some(response) = acks.message().await? {
                if response.acked_batch_numbers.contains(&number) {
                    return Ok(());
                }
            }
            bail!("the collector closed the stream before acking batch {number}")
        });
        let acked = wait.await.context("no ack within the patience")?;
        // Kept open until the ack: closing first may end the stream before it is answered.
        drop(sender);
        acked
    })
}

/// A batch numbered `batch_number` of `records` from one worker stream `stream` of cluster
/// `cluster` on `node`.
pub fn batch(
    batch_number: u64,
    (stream, cluster, node): (u64, &str, &str),
    records: Vec<LogRecord>,
) -> PushRequest {
    PushRequest {
        batch_number,
        streams: vec![Stream {
            id: stream,
            cluster: cluster.to_owned(),
            node: node.to_owned(),
            role: Role::Worker.into(),
            source: format!("/var/log/dask/{node}.log"),
        }],
        logs: records,
        metric_families: Vec::new(),
    }
}

/// A record of the batch's only stream at `ts_unix_nanos`, numbered `seq`.
pub fn record(seq: u64, ts_unix_nanos: i64, message: &str) -> LogRecord {
    LogRecord {
        stream_index: 0,
        seq,
        ts_unix_nanos,
        level: "INFO".to_owned(),
        logger: "distributed.worker".to_owned(),
        message: message.to_owned(),
        ..LogRecord::default()
    }
}
