//! Generated gRPC types of the `afterglow.v1` wire contract, shared by agent and collector.
//! This crate is the only thing the two sides share: change it only by adding fields.

#![allow(unreachable_pub, clippy::all)]

/// The `afterglow.v1` package: `Ingest.Push` and its messages.
pub mod v1 {
    tonic::include_proto!("afterglow.v1");
}
