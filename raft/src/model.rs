//! What the ledger stores. Every type here is serialized into RocksDB and into snapshots, so field
//! changes are format changes.

use serde::{Deserialize, Serialize};

/// A prepaid account. Balances are integer micro-USDC and can never go negative.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub account_id: String,
    pub balance_micros: u64,
    pub created_at_ms: u64,
}

/// Who touched a lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessActor {
    Owner,
    Claim,
}

/// One entry of a lease's access history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    pub at_ms: u64,
    pub actor: AccessActor,
}

/// The variant-specific part of a lease.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LeaseKind {
    /// Raw bytes in the object store.
    Storage {
        object_key: String,
        file_name: String,
        content_type: String,
        size_bytes: u64,
        /// blake3 of the whole object, hex.
        blake3_hex: String,
    },
    /// A versioned JSON cell addressed by its owner's `workflow_id`.
    Checkpoint(Checkpoint),
    /// A queue anyone holding the drop token may append to; its owner polls it.
    Mailbox(Mailbox),
    /// A prepaid object configured along five groups ([`crate::baton`]).
    Baton(Box<crate::baton::Baton>),
}

/// A Mailbox lease's settings and occupancy. Its messages live in the `messages` column family.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mailbox {
    /// The reserved (and paid for) total size of queued messages.
    pub capacity_bytes: u64,
    pub max_message_bytes: u64,
    pub max_messages: u64,
    /// Whether picking a message up leaves it queued.
    pub keep_on_read: bool,
    /// blake3 of the drop token, hex; the token itself is never stored.
    pub drop_token_hash_hex: String,
    pub webhook: Option<Webhook>,
    pub used_bytes: u64,
    pub message_count: u64,
    /// The sequence number the next message gets (arrival order).
    pub next_seq: u64,
    /// Webhook deliveries queued and not yet done (bounded, so one slow receiver cannot grow the
    /// replicated queue without end).
    pub webhooks_pending: u64,
}

/// Where a Mailbox announces each drop (Standard Webhooks), and the key that signs them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    pub url: String,
    /// `whsec_<base64>`: the HMAC-SHA256 key is the base64 part, decoded.
    pub secret: String,
}

/// One queued message. Its bytes are inline (`bodies`, key `lease_id ‖ 0 ‖ seq`) or an object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub seq: u64,
    pub received_at_ms: u64,
    pub content_type: String,
    pub body: BodyRef,
}

/// A webhook still to be delivered (at least once). It holds no copy of the message: an inline
/// body is read from the queue when the attempt is made, and a message picked up (or deleted)
/// before then is announced without its bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub lease_id: String,
    pub seq: u64,
    pub due_ms: u64,
    /// Attempts made so far.
    pub attempts: u32,
    pub received_at_ms: u64,
    pub size_bytes: u64,
    pub content_type: String,
    /// The mailbox's owner, whose share of the queue this delivery takes.
    pub owner: String,
}

/// The current state of a Checkpoint lease. Only the latest body exists; superseded bodies are
/// deleted when they are replaced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub workflow_id: String,
    /// The reserved (and paid for) capacity; no write may exceed it.
    pub max_body_bytes: u64,
    /// 1 for the body given at create, plus one per write.
    pub version: u64,
    pub updated_at_ms: u64,
    pub body: BodyRef,
}

/// Where a body lives: inline in the ledger (`bodies` column family, keyed by lease id) or as
/// an object in the object store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BodyRef {
    pub size_bytes: u64,
    pub blake3_hex: String,
    /// `None`: the bytes ride in the ledger.
    pub object_key: Option<String>,
}

impl LeaseKind {
    pub fn name(&self) -> &'static str {
        match self {
            LeaseKind::Storage { .. } => "storage",
            LeaseKind::Checkpoint(_) => "checkpoint",
            LeaseKind::Mailbox(_) => "mailbox",
            LeaseKind::Baton(_) => "baton",
        }
    }

    /// The bytes a lease of this kind is charged for: the object's size, the checkpoint's
    /// reserved body, the mailbox's capacity.
    pub fn billable_bytes(&self) -> u64 {
        match self {
            LeaseKind::Storage { size_bytes, .. } => *size_bytes,
            LeaseKind::Checkpoint(c) => c.max_body_bytes,
            LeaseKind::Mailbox(m) => m.capacity_bytes,
            LeaseKind::Baton(b) => b.size_bytes,
        }
    }

    /// Object store keys this lease holds bytes under.
    pub fn object_keys(&self) -> Vec<String> {
        match self {
            LeaseKind::Storage { object_key, .. } => vec![object_key.clone()],
            LeaseKind::Checkpoint(c) => c.body.object_key.iter().cloned().collect(),
            // Message objects are tracked per message, in the `messages` column family.
            LeaseKind::Mailbox(_) => Vec::new(),
            // Entries ride in the ledger; only a single object's content may be an object.
            LeaseKind::Baton(b) => b.content.iter().filter_map(|c| c.object_key.clone()).collect(),
        }
    }
}

/// A claim token issued for a lease: whoever presents the token may claim the lease's content,
/// at most `max_claims` times, until `expires_at_ms`, unless it is revoked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handoff {
    pub handoff_id: String,
    pub lease_id: String,
    pub owner: String,
    /// blake3 of the token, hex; the token itself is never stored.
    pub token_hash_hex: String,
    /// The token's first characters, for the owner's listing.
    pub token_prefix: String,
    pub max_claims: u32,
    pub claims_remaining: u32,
    /// The final claim deletes the lease (after its content is streamed).
    pub delete_on_claim: bool,
    /// Claims must be POSTs, so link previewers that GET every URL cannot burn the token.
    pub require_post: bool,
    pub created_at_ms: u64,
    pub expires_at_ms: u64,
    pub revoked: bool,
}

/// Where a lease is in its life. `Active` leases are served until `expires_at_ms`; the others are
/// tombstones kept for the owner's audit trail until they are purged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LeaseState {
    Active,
    Expired { at_ms: u64 },
    Deleted { at_ms: u64 },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub lease_id: String,
    pub ledger_id: String,
    pub owner: String,
    pub kind: LeaseKind,
    pub created_at_ms: u64,
    pub expires_at_ms: u64,
    pub duration_seconds: u64,
    pub cost_micros: u64,
    pub state: LeaseState,
    pub access_count: u64,
    /// The most recent accesses, oldest first, at most [`crate::sm::ACCESS_HISTORY_MAX`].
    pub recent_access: Vec<Access>,
}

impl Lease {
    /// Whether the lease may be served at cluster time `now_ms`. Expiry is judged here, at read
    /// time, so a lease is gone at `expires_at_ms` whether or not the sweeper has run.
    pub fn is_live_at(&self, now_ms: u64) -> bool {
        self.state == LeaseState::Active && now_ms < self.expires_at_ms
    }

    /// The status shown to the owner at `now_ms`.
    pub fn status_at(&self, now_ms: u64) -> &'static str {
        match self.state {
            LeaseState::Active if now_ms < self.expires_at_ms => "active",
            LeaseState::Active | LeaseState::Expired { .. } => "expired",
            LeaseState::Deleted { .. } => "deleted",
        }
    }
}

/// What the ledger keeps of an x402 payment until its authorization expires: the lease it paid
/// for and how its settlement went. Its key is the authorization's `(from, nonce)`, which can
/// pay once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct X402Record {
    pub lease_id: String,
    pub value_micros: u64,
    pub valid_before_ms: u64,
    pub settlement: Settlement,
    /// The facilitator request that settles it, kept while it is pending so that any leader can
    /// settle it after the node that took it is gone.
    #[serde(with = "crate::bytes::option")]
    pub settle_request: Option<Vec<u8>>,
    /// Settle attempts whose outcome was unknown, and when the last was made.
    pub attempts: u32,
    pub last_attempt_ms: u64,
}

/// Where an x402 payment's settlement stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Settlement {
    /// The lease is written; no settlement is known yet. As a [`crate::ops::SettleX402`]: an
    /// attempt was made and its outcome is unknown.
    Pending,
    /// Settled on chain by this transaction.
    Settled { transaction: String, network: String },
    /// The facilitator refused; the lease was voided.
    Failed { reason: String },
}

/// A signed-in session (a wallet by Sign-In with Ethereum, or an account by its API key): the
/// bearer token names it, and it acts for `subject` until it expires or is revoked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub session_id: String,
    /// The account id, or the wallet's checksummed address.
    pub subject: String,
    pub created_at_ms: u64,
    pub expires_at_ms: u64,
    pub revoked: bool,
    /// The API key (blake3, hex) that opened it: the session ends with that key.
    pub opened_by_key: Option<String>,
}

/// A key that signs session tokens (HMAC-SHA256), by its id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionKey {
    pub kid: String,
    pub key: Vec<u8>,
}

/// One charge: what a create cost, paid how, and the balance it left (an account's; a wallet
/// keeps no balance here).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charge {
    pub ledger_id: String,
    pub lease_id: String,
    pub amount_micros: u64,
    pub balance_after_micros: Option<u64>,
    /// `balance` or `x402`.
    pub method: String,
    pub at_ms: u64,
}

/// An API key as its account's owner sees it: never the key, only its id and first characters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyInfo {
    /// The first 16 hex digits of the key's blake3.
    pub key_id: String,
    /// The key's first characters, as shown once at issue (empty for keys from before).
    pub prefix: String,
    pub created_at_ms: u64,
}
