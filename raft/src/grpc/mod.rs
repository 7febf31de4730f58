//! The tonic transport between nodes: openraft's RPCs plus Forward (writes), ReadIndex
//! (linearizable reads on followers) and Join. Payloads are bincode inside a protobuf
//! `Blob`; every call carries the cluster secret, checked in constant time.

pub mod client;
pub mod identity;
pub mod server;
pub mod tls;

pub mod pb {
    tonic::include_proto!("relay.raft.v1");
}

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// Metadata key carrying the cluster secret.
pub const SECRET_HEADER: &str = "x-cluster-secret";
/// The format of what nodes send each other (these RPCs and their bincode payloads); every call
/// carries it in [`FORMAT_HEADER`] and a node refuses calls in another.
/// 2: a read index answers the leader's clock with the index (`reads::ReadPoint`), and the log
/// carries `RecordAccesses`. Nodes of format 1 and 2 do not talk: upgrade a cluster from 1 by
/// stopping every node, replacing the binary, and starting them again.
pub const RPC_FORMAT: u32 = 2;
pub const FORMAT_HEADER: &str = "x-relay-format";

/// Refuses a call that does not say it is in [`RPC_FORMAT`], naming both formats.
pub fn check_format(metadata: &tonic::metadata::MetadataMap) -> Result<(), tonic::Status> {
    let found = metadata
        .get(FORMAT_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u32>().ok());
    match found {
        Some(RPC_FORMAT) => Ok(()),
        Some(other) => Err(tonic::Status::failed_precondition(format!(
            "this node speaks inter-node format {RPC_FORMAT}; the caller sent format {other}"
        ))),
        None => Err(tonic::Status::failed_precondition(format!(
            "this node speaks inter-node format {RPC_FORMAT}; the caller named none (a relay from before format 1)"
        ))),
    }
}

/// Marks an outgoing call with [`RPC_FORMAT`].
pub fn mark_format<T>(request: &mut tonic::Request<T>) {
    request
        .metadata_mut()
        .insert(FORMAT_HEADER, tonic::metadata::MetadataValue::from(RPC_FORMAT));
}
/// The largest message between nodes, either way. Entries are at most
/// [`crate::command::ENTRY_MAX_BYTES`] and one AppendEntries call carries at most
/// [`APPEND_MAX_BYTES`] of them, so replication always fits.
pub const MESSAGE_MAX_BYTES: usize = 64 << 20;
/// The most entry bytes one AppendEntries call carries (always at least one entry); a longer run is
/// sent in several calls, each of which must complete within openraft's heartbeat interval.
pub const APPEND_MAX_BYTES: u64 = crate::command::ENTRY_MAX_BYTES;

/// Why a forwarded call did not produce an answer; the caller may retry elsewhere.
#[derive(Clone, Debug, Serialize, Deserialize, thiserror::Error)]
pub enum ForwardError {
    #[error("not the leader (leader: {0:?})")]
    NotLeader(Option<crate::NodeId>),
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("failed: {0}")]
    Failed(String),
    #[error("command of {size_bytes} bytes exceeds the {limit_bytes}-byte entry limit")]
    TooLarge { size_bytes: u64, limit_bytes: u64 },
}

pub fn blob<T: Serialize>(value: &T) -> Result<pb::Blob, tonic::Status> {
    bincode::serialize(value)
        .map(|data| pb::Blob { data })
        .map_err(|e| tonic::Status::internal(format!("encode: {e}")))
}

pub fn unblob<T: DeserializeOwned>(blob: &pb::Blob) -> Result<T, tonic::Status> {
    decode(&blob.data).map_err(|e| tonic::Status::invalid_argument(format!("decode: {e}")))
}

/// Decodes what another node (or anyone on the network) sent: the same encoding as
/// `bincode::serialize`, but no length prefix may claim more than a message can hold, so forged
/// input cannot make the decoder allocate without bound.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, bincode::Error> {
    use bincode::Options;
    bincode::options()
        .with_fixint_encoding()
        .allow_trailing_bytes()
        .with_limit(MESSAGE_MAX_BYTES as u64)
        .deserialize(bytes)
}

/// Constant-time equality of a presented secret with the configured one.
pub fn secret_matches(presented: &[u8], expected: &[u8]) -> bool {
    presented.len() == expected.len() && bool::from(presented.ct_eq(expected))
}

#[cfg(test)]
mod tests {
    use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
    use proptest::prelude::*;

    use super::*;
    use crate::command::{Command, IdempotencyKey, Request};
    use crate::{NodeId, RelayNode, TypeConfig};

    fn sample() -> Request {
        Request {
            now_ms: 7,
            idempotency: Some(IdempotencyKey::internal("s", "k")),
            command: Command::Batch(vec![Request {
                now_ms: 0,
                idempotency: Some(IdempotencyKey::internal("a|POST /x", "k2")),
                command: Command::DeleteLease(crate::ops::DeleteLease {
                    owner: "acct_a".into(),
                    lease_id: "lse_1".into(),
                }),
            }]),
        }
    }

    /// Everything a peer (or anyone reaching the Raft port) can send is decoded without panics
    /// and without allocating what a forged length claims.
    fn decode_all(bytes: &[u8]) {
        let _ = decode::<Request>(bytes);
        let _ = decode::<AppendEntriesRequest<TypeConfig>>(bytes);
        let _ = decode::<VoteRequest<NodeId>>(bytes);
        let _ = decode::<InstallSnapshotRequest<TypeConfig>>(bytes);
        let _ = decode::<(NodeId, RelayNode)>(bytes);
        let _ = decode::<identity::IdentifyRequest>(bytes);
        let _ = decode::<identity::IdentifyResponse>(bytes);
        let _ = decode::<Result<crate::Response, ForwardError>>(bytes);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            decode_all(&bytes);
        }

        /// Valid encodings with a byte changed, cut short or extended.
        #[test]
        fn damaged_encodings_never_panic(at in any::<prop::sample::Index>(), to in any::<u8>(), cut in any::<prop::sample::Index>()) {
            let mut bytes = bincode::serialize(&sample()).unwrap();
            let i = at.index(bytes.len());
            bytes[i] = to;
            decode_all(&bytes);
            decode_all(&bytes[..cut.index(bytes.len())]);
        }
    }

    /// A call in another inter-node format, or naming none, is refused with both formats named.
    #[test]
    fn calls_in_another_format_are_refused() {
        let mut request = tonic::Request::new(());
        let e = check_format(request.metadata()).unwrap_err();
        assert_eq!(e.code(), tonic::Code::FailedPrecondition);
        assert!(
            e.message().contains(&format!("format {RPC_FORMAT}")) && e.message().contains("named none"),
            "{}",
            e.message()
        );
        request.metadata_mut().insert(FORMAT_HEADER, "1".parse().unwrap());
        let e = check_format(request.metadata()).unwrap_err();
        assert!(
            e.message().contains(&format!("speaks inter-node format {RPC_FORMAT}"))
                && e.message().contains("sent format 1"),
            "{}",
            e.message()
        );
        let mut ok = tonic::Request::new(());
        mark_format(&mut ok);
        assert!(check_format(ok.metadata()).is_ok());
    }

    /// The decoder reads what `bincode::serialize` writes, and refuses a length past the limit.
    #[test]
    fn the_decoder_matches_the_encoder_and_bounds_lengths() {
        let r = sample();
        assert_eq!(decode::<Request>(&bincode::serialize(&r).unwrap()).unwrap(), r);
        let mut forged = 0u64.to_le_bytes().to_vec(); // now_ms
        forged.push(1); // Some(idempotency)
        forged.extend_from_slice(&u64::MAX.to_le_bytes()); // a scope "u64::MAX bytes long"
        assert!(decode::<Request>(&forged).is_err());
    }
}
