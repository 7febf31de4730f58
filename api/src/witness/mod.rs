//! The witness transparency log over HTTP: the leader's checkpoint signer ([`signer`]), the
//! signing key sealed under the operator's witness secret ([`seal`]), and the public routes
//! ([`routes`]): `/.well-known/relay-witness`, `/v1/witness/checkpoint`,
//! `/v1/witness/consistency` and `/v1/baton/{id}/witness`.

pub mod routes;
pub mod seal;
pub mod signer;

use std::time::Duration;

use relay_raft::tlog::Signer;

/// The node's witness settings (`--witness-*`).
#[derive(Clone, Debug)]
pub struct WitnessSettings {
    /// The log's origin when this node founds it (else `relay.witness/<key hash>`).
    pub origin: Option<String>,
    /// How long records appended from now on are kept.
    pub retention_ms: u64,
    /// Seals and opens the signing key: derived from the witness secret.
    pub seal_key: [u8; 32],
    /// A signing key the operator supplied: installed (rotated to) when it is not the active one.
    pub operator_key: Option<Signer>,
    /// How often the leader looks for new leaves to sign (at least a second).
    pub interval: Duration,
}

impl WitnessSettings {
    /// Settings for tests and tools: the seal key from `secret`, defaults otherwise.
    pub fn from_secret(secret: &[u8]) -> WitnessSettings {
        WitnessSettings {
            origin: None,
            retention_ms: relay_raft::witness::DEFAULT_RETENTION_MS,
            seal_key: seal::derive_key(secret),
            operator_key: None,
            interval: Duration::from_millis(relay_raft::witness::CHECKPOINT_INTERVAL_MIN_MS),
        }
    }
}
