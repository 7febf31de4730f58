//! Witness log operations: install or rotate the signing key, and record a signed checkpoint.
//! Leaves are not an operation of their own: a witnessed baton's write appends one in the same
//! step.

use serde::{Deserialize, Serialize};

use crate::command::{Command, Outcome};
use crate::witness::{SignedCheckpoint, WitnessLog};
use crate::Op;

/// Add a signing key and make it the one that signs. `first`: only if the log has no key yet
/// (the founding leader's; a second leader's racing one changes nothing). The private half
/// travels sealed under the operator's witness secret, never in the clear. The origin is fixed by
/// the first key; `retention_ms` applies to records appended from now on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddWitnessKey {
    pub origin: String,
    pub public_key: [u8; 32],
    pub sealed_seed: Vec<u8>,
    pub retention_ms: u64,
    pub first: bool,
}
op!(AddWitnessKey(AddWitnessKey) -> WitnessLog, Outcome::WitnessKeyAdded { log } => log);

/// The leader signed the checkpoint of the first `size` leaves, whose root it computed from its
/// applied state. The ledger recomputes the root and checks the signature by the active key, so
/// no size ever has two roots and a checkpoint never goes back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignCheckpoint {
    pub size: u64,
    pub root: [u8; 32],
    pub public_key: [u8; 32],
    pub signature: Vec<u8>,
}
op!(SignCheckpoint(SignCheckpoint) -> SignedCheckpoint, Outcome::CheckpointSigned { checkpoint } => checkpoint);
