//! Typed ledger operations: each [`Command`] carries one of these payloads, and each payload
//! knows the answer it gets ([`Op::Output`]), so a caller runs an operation and receives its own
//! result or its [`Rejection`], never another command's outcome to pick apart.
//!
//! The encoding is the log's: a payload struct encodes exactly as the struct variant it replaced
//! (bincode writes a variant's index and then its fields in order either way), which the golden
//! test at the end of this file holds.

use serde::{Deserialize, Serialize};

use crate::command::{Command, NewLease, Outcome, Rejection, Response, Served, WebhookResult};
use crate::error::LedgerError;
use crate::model::{
    AccessActor, Account, ApiKeyInfo, BodyRef, Handoff, Lease, Message, Session, Settlement, X402Record,
};
use crate::pricing::Pricing;

/// An operation the ledger can run: the command it travels as and the answer it gets.
pub trait Op: Into<Command> {
    /// What the operation answers once applied.
    type Output;
    /// The output out of an outcome, or the outcome back when it answers another operation (a
    /// bug, reported as [`crate::LedgerError::Mismatch`]).
    // Handing the outcome back unboxed costs nothing on the path that matters (the match).
    #[allow(clippy::result_large_err)]
    fn output(outcome: Outcome) -> Result<Self::Output, Outcome>;
}

/// An answer to `O`, typed: its output, its rejection, or why there is none.
// The error is the ledger's own, as every ledger call returns it.
#[allow(clippy::result_large_err)]
pub fn typed<O: Op>(answer: Result<Response, LedgerError>) -> Result<Result<O::Output, Rejection>, LedgerError> {
    match answer? {
        Ok(outcome) => O::output(outcome)
            .map(Ok)
            .map_err(|other| LedgerError::Mismatch(format!("{other:?}"))),
        Err(rejection) => Ok(Err(rejection)),
    }
}

/// Declares `Command::$variant($payload)` an [`Op`] whose output is picked by one pattern.
macro_rules! op {
    ($variant:ident($payload:ty) -> $output:ty, $pattern:pat => $value:expr) => {
        impl From<$payload> for Command {
            fn from(op: $payload) -> Command {
                Command::$variant(op)
            }
        }
        impl Op for $payload {
            type Output = $output;
            fn output(outcome: Outcome) -> Result<$output, Outcome> {
                match outcome {
                    $pattern => Ok($value),
                    other => Err(other),
                }
            }
        }
    };
}

mod baton;
mod upload;
mod witness;
pub use baton::*;
pub use upload::*;
pub use witness::*;

/// Create an account with an opening balance. Creating an existing account is a no-op.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateAccount {
    pub account_id: String,
    pub balance_micros: u64,
}
op!(CreateAccount(CreateAccount) -> bool, Outcome::AccountCreated { created } => created);

/// Let an API key (stored as its blake3 hash, hex) act for an account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddApiKey {
    pub account_id: String,
    pub key_hash_hex: String,
}
op!(AddApiKey(AddApiKey) -> (), Outcome::ApiKeyAdded => ());

/// Let an admin key (stored as its blake3 hash, hex) administer the cluster. Admin keys act for
/// no account, and no account key is ever an admin key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddAdminKey {
    pub key_hash_hex: String,
}
op!(AddAdminKey(AddAdminKey) -> (), Outcome::AdminKeyAdded => ());

/// A paid lease and the payer's balance after paying for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseCreated {
    pub lease: Lease,
    pub balance_micros: u64,
}
op!(CreateLease(NewLease) -> LeaseCreated, Outcome::LeaseCreated(created) => created);

/// Append to a lease's access history. With `owner`, only that owner's lease counts; the answer
/// carries the lease, so this one write is also the linearizable access check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordAccess {
    pub lease_id: String,
    pub actor: AccessActor,
    pub owner: Option<String>,
}
op!(RecordAccess(RecordAccess) -> Lease, Outcome::AccessRecorded { lease } => lease);

/// Accesses already served (after a linearizable check of ownership and expiry), recorded
/// afterwards in one batch: each one counts and joins its lease's history at the time it was
/// judged by. A lease forgotten since is skipped; nothing else is checked again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordAccesses {
    pub accesses: Vec<ServedAccess>,
}
op!(RecordAccesses(RecordAccesses) -> u32, Outcome::AccessesRecorded { recorded } => recorded);

/// One access served: which lease, by whom, and the cluster time it was judged at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServedAccess {
    pub lease_id: String,
    pub actor: AccessActor,
    pub at_ms: u64,
}

/// Early delete by the owner; no refund. Answers the lease as it was.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteLease {
    pub owner: String,
    pub lease_id: String,
}
op!(DeleteLease(DeleteLease) -> Lease, Outcome::LeaseDeleted { lease } => lease);

/// Expire due leases, purge old tombstones and idempotency records, at most `max` of each.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpireDue {
    pub max: u32,
}

/// What one sweep did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Swept {
    pub expired: u32,
    pub purged: u32,
    pub dedup_pruned: u32,
}
op!(ExpireDue(ExpireDue) -> Swept, Outcome::Swept(swept) => swept);

/// The GC worker deleted these objects from the object store. Answers how many were queued.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordObjectsDeleted {
    pub object_keys: Vec<String>,
}
op!(RecordObjectsDeleted(RecordObjectsDeleted) -> u32, Outcome::ObjectsDeleted { count } => count);

/// A lease that was closed while its bytes were still being streamed out (a consume, a final
/// claim) no longer needs them: queue them for deletion now instead of at the hold's end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseBytes {
    pub lease_id: String,
}
op!(ReleaseBytes(ReleaseBytes) -> bool, Outcome::BytesReleased { released } => released);

/// Debit the owner and create a Checkpoint lease (`new.kind` is a Checkpoint at version 1) whose
/// `workflow_id` no live checkpoint of the owner uses. `inline_body` holds the bytes when the
/// body rides in the ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateCheckpoint {
    pub new: NewLease,
    #[serde(with = "crate::bytes::option")]
    pub inline_body: Option<Vec<u8>>,
}
op!(CreateCheckpoint(CreateCheckpoint) -> LeaseCreated, Outcome::LeaseCreated(created) => created);

/// Replace a checkpoint's body, version + 1; with `if_version`, only if the current version is
/// that one (compare-and-set).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteCheckpoint {
    pub owner: String,
    pub workflow_id: String,
    pub if_version: Option<u64>,
    pub body: BodyRef,
    #[serde(with = "crate::bytes::option")]
    pub inline_body: Option<Vec<u8>>,
}
op!(WriteCheckpoint(WriteCheckpoint) -> Lease, Outcome::CheckpointWritten { lease } => lease);

/// Read and delete a checkpoint in one step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumeCheckpoint {
    pub owner: String,
    pub workflow_id: String,
}

/// The lease as it was when consumed (active, with its body reference); `inline_body` holds the
/// bytes when they rode in the ledger. Object bytes stay until [`ReleaseBytes`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointConsumed {
    pub lease: Lease,
    #[serde(with = "crate::bytes::option")]
    pub inline_body: Option<Vec<u8>>,
}
op!(ConsumeCheckpoint(ConsumeCheckpoint) -> CheckpointConsumed, Outcome::CheckpointConsumed(consumed) => consumed);

/// Early delete of a checkpoint by its owner; no refund. Answers the lease as it was.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteCheckpoint {
    pub owner: String,
    pub workflow_id: String,
}
op!(DeleteCheckpoint(DeleteCheckpoint) -> Lease, Outcome::LeaseDeleted { lease } => lease);

/// Debit the owner and create a Mailbox lease (`new.kind` is an empty Mailbox).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateMailbox {
    pub new: NewLease,
}
op!(CreateMailbox(CreateMailbox) -> LeaseCreated, Outcome::LeaseCreated(created) => created);

/// Append a message to the live mailbox whose drop token hashes to `token_hash_hex`, within its
/// limits; queue its webhook delivery when it has one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropMessage {
    pub token_hash_hex: String,
    pub content_type: String,
    pub body: BodyRef,
    #[serde(with = "crate::bytes::option")]
    pub inline_body: Option<Vec<u8>>,
}

/// A message queued, and the mailbox it went to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageDropped {
    pub lease_id: String,
    pub message: Message,
}
op!(DropMessage(DropMessage) -> MessageDropped, Outcome::MessageDropped(dropped) => dropped);

/// The owner picks a message up: it is answered (with its inline bytes) and, unless the mailbox
/// keeps messages on read, removed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PickupMessage {
    pub owner: String,
    pub lease_id: String,
    pub seq: u64,
}

/// `removed`: the message is gone from the queue (its object, if any, queued for deletion).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessagePicked {
    pub message: Message,
    #[serde(with = "crate::bytes::option")]
    pub inline_body: Option<Vec<u8>>,
    pub removed: bool,
}
op!(PickupMessage(PickupMessage) -> MessagePicked, Outcome::MessagePicked(picked) => picked);

/// The owner removes one message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteMessage {
    pub owner: String,
    pub lease_id: String,
    pub seq: u64,
}
op!(DeleteMessage(DeleteMessage) -> (), Outcome::MessageDeleted => ());

/// The webhook worker's results, batched (at most [`crate::sm::mailbox::WEBHOOK_BATCH_MAX`]).
/// Answers how many deliveries were still queued.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhooksAttempted {
    pub results: Vec<WebhookResult>,
}
op!(WebhooksAttempted(WebhooksAttempted) -> u32, Outcome::WebhooksRecorded { found } => found);

/// Issue a claim token for the owner's live lease; `ttl_seconds` is clamped to the lease's
/// expiry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateHandoff {
    pub owner: String,
    pub lease_id: String,
    pub handoff_id: String,
    pub token_hash_hex: String,
    pub token_prefix: String,
    pub max_claims: u32,
    pub delete_on_claim: bool,
    pub require_post: bool,
    pub ttl_seconds: u64,
}

/// The handoff issued, and when its lease expires.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoffCreated {
    pub handoff: Handoff,
    pub lease_expires_at_ms: u64,
}
op!(CreateHandoff(CreateHandoff) -> HandoffCreated, Outcome::HandoffCreated(created) => created);

/// Count one claim: the token must be known, not revoked, not expired, with claims left, its
/// lease live, and (when it requires POST) the claim made with POST. `served` is the content the
/// claimer was prepared to serve; it must still be the lease's content (else `ContentChanged`)
/// and is recorded in the answer, so a replay serves the same thing. The final claim of a
/// `delete_on_claim` handoff deletes the lease, holding its content for the stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub token_hash_hex: String,
    pub post: bool,
    pub served: Served,
}

/// The handoff after this claim, and the lease as it was when claimed (still active); `closed`
/// when this claim deleted it; `served` what the claimer got.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claimed {
    pub handoff: Handoff,
    pub lease: Lease,
    pub closed: bool,
    pub served: Served,
}
op!(Claim(Claim) -> Claimed, Outcome::Claimed(claimed) => claimed);

/// The owner revokes a handoff; completed claims stand. Answers the revoked handoff.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeHandoff {
    pub owner: String,
    pub handoff_id: String,
}
op!(RevokeHandoff(RevokeHandoff) -> Handoff, Outcome::HandoffRevoked { handoff } => handoff);

/// Change the cluster's prices (an admin's act; seeded by the founding node from its flags). A
/// figure left `None` keeps its value, so two changes of different figures both land. Answers
/// the prices now in force.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetPricing {
    pub rate_micros_per_gb_day: Option<u64>,
    pub min_charge_micros: Option<u64>,
}
op!(SetPricing(SetPricing) -> Pricing, Outcome::PricingSet { pricing } => pricing);

/// An x402 payment: an EIP-3009 authorization by `from` (checksummed) to the node's payTo, whose
/// signature the proposing node checked and its facilitator verified. The ledger lets each
/// `(from, nonce)` pay once, only for exactly the price it computes, and only before
/// `valid_before_ms` by the cluster clock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct X402Payment {
    pub from: String,
    /// `0x` + 32 bytes, lowercase hex.
    pub nonce_hex: String,
    pub value_micros: u64,
    pub valid_before_ms: u64,
    /// The facilitator request that settles it (JSON), kept until it is settled.
    pub settle_request: Vec<u8>,
}

/// Create a lease (a `CreateLease`, `CreateCheckpoint` or `CreateMailbox`, owned by the payer)
/// paid by an x402 payment instead of an account's balance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayX402 {
    pub payment: X402Payment,
    pub purchase: Box<Command>,
}
op!(PayX402(PayX402) -> LeaseCreated, Outcome::LeaseCreated(created) => created);

/// What the facilitator said when the payment was settled. A failed settlement voids the lease
/// it paid for in the same step, so nothing half-paid remains.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettleX402 {
    pub from: String,
    pub nonce_hex: String,
    pub settlement: Settlement,
}
op!(SettleX402(SettleX402) -> X402Record, Outcome::X402Settled { record } => record);

/// Add a key that signs session tokens and make it the one new tokens use (seeded by the
/// founding node; rotated by an admin). The newest few keys still verify, so a rotation does not
/// end the sessions already open.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddSessionKey {
    pub kid: String,
    pub key_hex: String,
}
op!(AddSessionKey(AddSessionKey) -> (), Outcome::SessionKeyAdded => ());

/// Open a session for `subject` until `expires_at_ms`. A Sign-In with Ethereum `nonce` opens one
/// session only, so a signed sign-in message cannot be replayed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenSession {
    pub session_id: String,
    pub subject: String,
    pub nonce: Option<String>,
    pub expires_at_ms: u64,
    /// The API key (blake3, hex) that opens it, if one does.
    pub opened_by_key: Option<String>,
}
op!(OpenSession(OpenSession) -> Session, Outcome::SessionOpened { session } => session);

/// End `subject`'s session now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeSession {
    pub session_id: String,
    pub subject: String,
}
op!(RevokeSession(RevokeSession) -> Session, Outcome::SessionRevoked { session } => session);

/// Credit an account (an operator's top-up). Answers the account after it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopUp {
    pub account_id: String,
    pub amount_micros: u64,
}
op!(TopUp(TopUp) -> Account, Outcome::ToppedUp { account } => account);

/// Let a new API key act for an account, listed under its id and first characters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueApiKey {
    pub account_id: String,
    pub key_hash_hex: String,
    pub prefix: String,
}
op!(IssueApiKey(IssueApiKey) -> ApiKeyInfo, Outcome::ApiKeyIssued { key } => key);

/// Stop an API key (by its id) from acting for its account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeApiKey {
    pub account_id: String,
    pub key_id: String,
}
op!(RevokeApiKey(RevokeApiKey) -> ApiKeyInfo, Outcome::ApiKeyRevoked { key } => key);

#[cfg(test)]
mod tests {
    use super::*;

    fn hex_of<T: Serialize>(value: &T) -> String {
        hex::encode(bincode::serialize(value).unwrap())
    }

    /// Bytes written by the struct-variant encoding these payloads replaced: a log or an
    /// idempotency record written before still decodes, and a node of either version replays it.
    #[test]
    fn payloads_encode_as_the_struct_variants_they_replaced() {
        let body = BodyRef {
            size_bytes: 3,
            blake3_hex: "ab".into(),
            object_key: Some("k".into()),
        };
        let commands: Vec<(Command, &str)> = vec![
            (
                CreateAccount {
                    account_id: "acct".into(),
                    balance_micros: 7,
                }
                .into(),
                "000000000400000000000000616363740700000000000000",
            ),
            (
                CreateHandoff {
                    owner: "o".into(),
                    lease_id: "l".into(),
                    handoff_id: "h".into(),
                    token_hash_hex: "t".into(),
                    token_prefix: "p".into(),
                    max_claims: 2,
                    delete_on_claim: true,
                    require_post: false,
                    ttl_seconds: 60,
                }
                .into(),
                "1100000001000000000000006f01000000000000006c0100000000000000680100000000000000740100000000000000700200000001003c00000000000000",
            ),
            (
                DropMessage {
                    token_hash_hex: "t".into(),
                    content_type: "c".into(),
                    body: body.clone(),
                    inline_body: Some(vec![1, 2, 3]),
                }
                .into(),
                "0e0000000100000000000000740100000000000000630300000000000000020000000000000061620101000000000000006b010300000000000000010203",
            ),
            (
                Claim {
                    token_hash_hex: "t".into(),
                    post: true,
                    served: Served::Checkpoint { version: 4 },
                }
                .into(),
                "1200000001000000000000007401010000000400000000000000",
            ),
            (
                SetPricing {
                    rate_micros_per_gb_day: Some(5),
                    min_charge_micros: None,
                }
                .into(),
                "1600000001050000000000000000",
            ),
        ];
        for (command, golden) in &commands {
            assert_eq!(hex_of(command), *golden, "{command:?}");
            let back: Command = bincode::deserialize(&hex::decode(golden).unwrap()).unwrap();
            assert_eq!(&back, command);
        }
        let message = Message {
            seq: 9,
            received_at_ms: 10,
            content_type: "c".into(),
            body,
        };
        let responses: Vec<(Response, &str)> = vec![
            (
                Ok(Outcome::MessagePicked(MessagePicked {
                    message: message.clone(),
                    inline_body: Some(vec![9]),
                    removed: true,
                })),
                "000000000d00000009000000000000000a000000000000000100000000000000630300000000000000020000000000000061620101000000000000006b0101000000000000000901",
            ),
            (
                Ok(Outcome::MessageDropped(MessageDropped {
                    lease_id: "l".into(),
                    message,
                })),
                "000000000c00000001000000000000006c09000000000000000a000000000000000100000000000000630300000000000000020000000000000061620101000000000000006b",
            ),
            (
                Ok(Outcome::Swept(Swept {
                    expired: 1,
                    purged: 2,
                    dedup_pruned: 3,
                })),
                "0000000007000000010000000200000003000000",
            ),
            (Err(Rejection::LeaseGone), "0100000002000000"),
        ];
        for (response, golden) in &responses {
            assert_eq!(hex_of(response), *golden, "{response:?}");
        }
    }

    #[test]
    fn an_op_takes_only_its_own_outcome() {
        let swept = Swept {
            expired: 1,
            purged: 0,
            dedup_pruned: 0,
        };
        assert_eq!(ExpireDue::output(Outcome::Swept(swept)), Ok(swept));
        assert_eq!(ReleaseBytes::output(Outcome::Swept(swept)), Err(Outcome::Swept(swept)));
        assert_eq!(DeleteMessage::output(Outcome::MessageDeleted), Ok(()));
        assert!(DeleteLease::output(Outcome::MessageDeleted).is_err());
    }
}
