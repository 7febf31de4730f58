//! The witness log's replicated settings: its origin, how long records are kept, its signing keys
//! (the private halves sealed by the operator's witness secret) and the latest signed checkpoint.
//! Stored in RocksDB and in snapshots, so field changes are format changes.

use serde::{Deserialize, Serialize};

use crate::tlog::{Checkpoint, TlogError, Verifier};

/// Seven years (2557 days, leap days included): how long a witness record is kept by default.
pub const DEFAULT_RETENTION_MS: u64 = 2557 * 86_400_000;
/// Retention bounds: a day to a century.
pub const RETENTION_MIN_MS: u64 = 86_400_000;
pub const RETENTION_MAX_MS: u64 = 36_525 * 86_400_000;
/// The longest sealed private key kept (nonce, 32-byte seed, tag and room to spare).
pub const SEALED_MAX_BYTES: usize = 256;
/// Keys a log may have had (each rotation adds one; all stay published).
pub const KEYS_MAX: usize = 64;
/// The fewest milliseconds between two checkpoints while leaves arrive.
pub const CHECKPOINT_INTERVAL_MIN_MS: u64 = 1000;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WitnessKey {
    pub public_key: [u8; 32],
    /// The Ed25519 seed, sealed (AES-256-GCM) under a key derived from the witness secret; empty
    /// for an operator's key, which stays in the operator's file and is never stored here.
    pub sealed_seed: Vec<u8>,
    pub added_at_ms: u64,
    /// Once retired by a rotation: the largest tree size it may have signed. A checkpoint it
    /// signed of a larger size is a forgery (published, so verifiers can refuse it).
    pub until_size: Option<u64>,
    /// The root at `until_size` (the retiring key's last checkpoint), published with it.
    pub until_root: Option<[u8; 32]>,
}

impl WitnessKey {
    /// The operator holds the private half (`--witness-key-file`).
    pub fn operator_held(&self) -> bool {
        self.sealed_seed.is_empty()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WitnessLog {
    /// The checkpoints' origin line, and every key's name.
    pub origin: String,
    pub retention_ms: u64,
    /// Oldest first; the last one signs.
    pub keys: Vec<WitnessKey>,
}

impl WitnessLog {
    pub fn active(&self) -> Option<&WitnessKey> {
        self.keys.last()
    }

    /// Every key's verifier, oldest first.
    pub fn verifiers(&self) -> Vec<Verifier> {
        self.keys
            .iter()
            .filter_map(|k| Verifier::new(&self.origin, &k.public_key).ok())
            .collect()
    }
}

/// A checkpoint the ledger accepted: its size and root are the log's, its signature verified.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedCheckpoint {
    pub size: u64,
    pub root: [u8; 32],
    pub public_key: [u8; 32],
    /// The signed note, verbatim: what `GET /v1/witness/checkpoint` serves.
    pub note: String,
    pub signed_at_ms: u64,
}

impl SignedCheckpoint {
    pub fn checkpoint(&self) -> Result<Checkpoint, TlogError> {
        let (text, _) = crate::tlog::note::split(&self.note)?;
        Checkpoint::parse(text)
    }
}
