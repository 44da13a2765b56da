//! Opens `Ingest.Push` with batches that are already protobuf-encoded (as they were sealed and
//! spooled), so a batch is encoded once and never decoded or copied into structs again on
//! its way out. Acks are decoded as usual.

use afterglow_proto::v1::PushResponse;
use bytes::{Buf, BufMut, Bytes};
use prost::Message;
use tokio_stream::Stream;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::{Request, Status, Streaming};

const PUSH_PATH: &str = "/afterglow.v1.Ingest/Push";

/// Starts a Push stream on `channel` sending the encoded `PushRequest`s of `request`,
/// compressed with zstd; returns the stream of acks.
pub async fn push(
    channel: Channel,
    request: Request<impl Stream<Item = Bytes> + Send + 'static>,
) -> Result<Streaming<PushResponse>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel)
        .send_compressed(CompressionEncoding::Zstd)
        .accept_compressed(CompressionEncoding::Zstd);
    grpc.ready()
        .await
        .map_err(|error| Status::unavailable(format!("the connection is not ready: {error}")))?;
    let response = grpc
        .streaming(
            request,
            PathAndQuery::from_static(PUSH_PATH),
            EncodedBatchCodec,
        )
        .await?;
    Ok(response.into_inner())
}

/// Writes encoded batches as they are; reads `PushResponse`s.
struct EncodedBatchCodec;

impl Codec for EncodedBatchCodec {
    type Encode = Bytes;
    type Decode = PushResponse;
    type Encoder = EncodedBatchCodec;
    type Decoder = EncodedBatchCodec;

    fn encoder(&mut self) -> Self::Encoder {
        EncodedBatchCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        EncodedBatchCodec
    }
}

impl Encoder for EncodedBatchCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for EncodedBatchCodec {
    type Item = PushResponse;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<PushResponse>, Status> {
        let response = PushResponse::decode(src.copy_to_bytes(src.remaining()))
            .map_err(|error| Status::internal(format!("an ack that does not decode: {error}")))?;
        Ok(Some(response))
    }
}
