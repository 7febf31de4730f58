//! Transparency-log formats and proofs, in open formats so that tools Relay did not write can
//! check them: RFC 6962/9162 Merkle trees ([`merkle`]), C2SP signed-note with Ed25519
//! ([`note`]), tlog-checkpoint ([`checkpoint`]) and tlog-proof ([`proof`]), Relay's witness record
//! ([`record`]), and the offline checks `relay verify` runs ([`verify`]). Pure: no storage, no
//! clock, no network.

pub mod checkpoint;
pub mod merkle;
pub mod note;
pub mod proof;
pub mod record;
pub mod verify;

#[cfg(test)]
mod kat_tests;
#[cfg(test)]
mod prop_tests;

pub use checkpoint::Checkpoint;
pub use merkle::{Hash, Hashes, MemTree};
pub use note::{Signer, Verifier};
pub use proof::TlogProof;
pub use record::Record;

/// Why a proof, note or record does not check out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlogError {
    #[error("malformed: {0}")]
    Malformed(String),
    #[error("no signature by a known key")]
    UnknownKey,
    #[error("bad signature: {0}")]
    BadSignature(String),
    #[error("not included: {0}")]
    NotIncluded(String),
    #[error("inconsistent: {0}")]
    Inconsistent(String),
    #[error("mismatch: {0}")]
    Mismatch(String),
}
