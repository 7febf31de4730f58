//! Baton operations: create, write, append, read (the one step that counts egress and read caps),
//! share, extend, delete and restore, and the baton rates.

use serde::{Deserialize, Serialize};

use super::LeaseCreated;
use crate::baton::{BatonRates, BatonToken, Disposal, Entry, NewToken};
use crate::command::{Command, NewLease, Outcome};
use crate::model::{BodyRef, Lease};
use crate::Op;

/// Who acts on a baton: its owner, or the holder of a sharing token (by the token's blake3, hex).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Actor {
    Owner(String),
    Token(String),
}

/// Content that replaces a single or overwrite baton's (or starts an append baton as its first
/// entry, inline only).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Content {
    pub body: BodyRef,
    #[serde(with = "crate::bytes::option")]
    pub inline: Option<Vec<u8>>,
    /// SHA-256 of the bytes, hex (checked by the ledger when they are inline).
    pub sha256_hex: String,
    pub content_type: String,
}

/// Debit the payer the shape's price and create a baton (`new.kind` is an empty Baton), with its
/// first content and its sharing tokens. `batons_max` bounds the owner's live batons.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateBaton {
    pub new: NewLease,
    pub content: Option<Content>,
    pub tokens: Vec<NewToken>,
    pub batons_max: u64,
}
op!(CreateBaton(CreateBaton) -> LeaseCreated, Outcome::LeaseCreated(created) => created);

/// Replace a single or overwrite baton's content; with `if_version`, only at that version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteBaton {
    pub lease_id: String,
    pub actor: Actor,
    pub if_version: Option<u64>,
    pub content: Content,
}
op!(WriteBaton(WriteBaton) -> Lease, Outcome::BatonChanged { lease } => lease);

/// Append one entry (inline) to an append baton.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendEntry {
    pub lease_id: String,
    pub actor: Actor,
    #[serde(with = "crate::bytes")]
    pub content: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryAppended {
    pub lease: Lease,
    pub entry: Entry,
}
op!(AppendEntry(AppendEntry) -> EntryAppended, Outcome::EntryAppended(appended) => appended);

/// A byte range as asked: `start-`, `start-last` or the last `suffix` bytes. The ledger resolves it
/// against the content's size at the read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RangeSpec {
    From(u64),
    FromTo(u64, u64),
    Suffix(u64),
}

/// What a read serves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadTarget {
    /// The content (single/overwrite: the object; append kinds: the entries in order), or a range.
    Content { range: Option<RangeSpec> },
    /// Up to `limit` entries after sequence number `after`.
    Entries { after: u64, limit: u32 },
    /// One entry.
    Entry { seq: u64 },
}

/// Count one read: the egress it serves against the budget (refused whole if it would pass it),
/// one read against the token's cap; the final capped read of a burn-after-reading baton deletes
/// it, holding its content for this read's stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadBaton {
    pub lease_id: String,
    pub actor: Actor,
    pub target: ReadTarget,
}

/// What the read may serve: bytes `start..end` of the content (`total` long) as it stood at the
/// read, which are the inline content's (`inline`, whole), the object's, or the entries'
/// `1..=upto_seq`; or the `entries` listed (their bytes are read from the ledger's state).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatonRead {
    pub lease: Lease,
    pub start: u64,
    pub end: u64,
    pub total: u64,
    #[serde(with = "crate::bytes::option")]
    pub inline: Option<Vec<u8>>,
    pub upto_seq: u64,
    pub entries: Vec<Entry>,
    /// This read burned the baton: its bytes are held until `ReleaseBytes`.
    pub closed: bool,
    pub token: Option<BatonToken>,
}
op!(ReadBaton(ReadBaton) -> BatonRead, Outcome::BatonRead(read) => read);

/// Issue sharing tokens on the owner's live baton: at most `tokens_max` at once (the proposing
/// node's ceiling, never above [`crate::baton::TOKENS_MAX`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueTokens {
    pub owner: String,
    pub lease_id: String,
    pub tokens: Vec<NewToken>,
    pub tokens_max: u32,
}
op!(IssueTokens(IssueTokens) -> Vec<BatonToken>, Outcome::TokensIssued { tokens } => tokens);

/// Revoke (forget) one sharing token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeToken {
    pub owner: String,
    pub lease_id: String,
    pub token_id: String,
}
op!(RevokeToken(RevokeToken) -> BatonToken, Outcome::TokenRevoked { token } => token);

/// Add time, size or read budget to a live baton that has hit no limit, charged the price of what
/// is added. The ceilings are the proposing node's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtendBaton {
    pub owner: String,
    pub lease_id: String,
    pub add_seconds: u64,
    pub add_size_bytes: u64,
    pub add_egress_bytes: u64,
    pub max_duration_seconds: u64,
    pub max_size_bytes: u64,
    pub max_egress_bytes: u64,
}

/// The baton grown, what the extension cost, and the owner's balance after it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatonExtended {
    pub lease: Lease,
    pub charged_micros: u64,
    pub balance_micros: u64,
}
op!(ExtendBaton(ExtendBaton) -> BatonExtended, Outcome::BatonExtended(extended) => extended);

/// Delete by the owner: by the baton's disposal (a restorable tombstone, or gone), or gone now
/// with `hard`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteBaton {
    pub owner: String,
    pub lease_id: String,
    pub hard: bool,
}
op!(DeleteBaton(DeleteBaton) -> Lease, Outcome::BatonChanged { lease } => lease);

/// Bring a tombstoned baton back within its grace period, intact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreBaton {
    pub owner: String,
    pub lease_id: String,
}
op!(RestoreBaton(RestoreBaton) -> Lease, Outcome::BatonChanged { lease } => lease);

/// Change a live baton's lifecycle group; a field left `None` keeps its value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetLifecycle {
    pub owner: String,
    pub lease_id: String,
    pub burn_after_reading: Option<bool>,
    pub disposal: Option<Disposal>,
}
op!(SetLifecycle(SetLifecycle) -> Lease, Outcome::BatonChanged { lease } => lease);

/// Change the baton rates (an admin's act); a figure left `None` keeps its value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetBatonRates {
    pub egress_micros_per_gb: Option<u64>,
    pub witness_fee_micros: Option<u64>,
}
op!(SetBatonRates(SetBatonRates) -> BatonRates, Outcome::BatonRatesSet { rates } => rates);
