//! The tonic transport between nodes: openraft's RPCs plus Forward (writes), ReadIndex
//! (linearizable reads on followers) and Join. Payloads are bincode inside a protobuf
//! `Blob`; every call carries the cluster secret, checked in constant time.

pub mod client;
pub mod server;

pub mod pb {
    tonic::include_proto!("relay.raft.v1");
}

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// Metadata key carrying the cluster secret.
pub const SECRET_HEADER: &str = "x-cluster-secret";

/// Why a forwarded call did not produce an answer; the caller may retry elsewhere.
#[derive(Clone, Debug, Serialize, Deserialize, thiserror::Error)]
pub enum ForwardError {
    #[error("not the leader (leader: {0:?})")]
    NotLeader(Option<crate::NodeId>),
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("failed: {0}")]
    Failed(String),
}

pub fn blob<T: Serialize>(value: &T) -> Result<pb::Blob, tonic::Status> {
    bincode::serialize(value)
        .map(|data| pb::Blob { data })
        .map_err(|e| tonic::Status::internal(format!("encode: {e}")))
}

pub fn unblob<T: DeserializeOwned>(blob: &pb::Blob) -> Result<T, tonic::Status> {
    bincode::deserialize(&blob.data).map_err(|e| tonic::Status::invalid_argument(format!("decode: {e}")))
}

/// Constant-time equality of a presented secret with the configured one.
pub fn secret_matches(presented: &[u8], expected: &[u8]) -> bool {
    presented.len() == expected.len() && bool::from(presented.ct_eq(expected))
}
