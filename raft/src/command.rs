//! The ledger's vocabulary: every state change is one [`Command`], answered by one [`Response`].
//!
//! Domain outcomes (not found, gone, insufficient balance) are values of [`Response`], never Raft
//! errors: a Raft error means "not applied, or unknown".

use serde::{Deserialize, Serialize};

use crate::model::{AccessActor, BodyRef, Handoff, Lease, LeaseKind, Message};

/// A command as it travels through the Raft log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The proposing leader's wall clock. The state machine never reads a clock of its own.
    pub now_ms: u64,
    /// Makes a retried command answer with the first answer instead of applying twice.
    pub idempotency: Option<IdempotencyKey>,
    pub command: Command,
}

/// A client's `Idempotency-Key` (or one a node made for its own retries). `scope` names who
/// and where (the account and the route, or a token), so two accounts, or two routes, can use the
/// same key. `fingerprint` is the blake3 of what defines the request (method, route, its defining
/// headers, its body's hash): the same key with another fingerprint is refused, never replayed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyKey {
    pub scope: String,
    pub key: String,
    pub fingerprint: [u8; 32],
}

impl IdempotencyKey {
    /// A key made by a node for its own retries: nothing to compare but the key itself.
    pub fn internal(scope: impl Into<String>, key: impl Into<String>) -> IdempotencyKey {
        IdempotencyKey {
            scope: scope.into(),
            key: key.into(),
            fingerprint: [0; 32],
        }
    }
}

/// The most requests one [`Command::Batch`] may carry.
pub const BATCH_MAX: usize = 512;
/// The largest Raft entry, encoded: a batch stops growing before it would pass this, and a single
/// request larger than this is refused as too large. openraft gives each AppendEntries call one
/// heartbeat interval (50 ms) to be sent, written and fsynced by the follower, so an entry must be
/// small enough to make that on a busy machine; it holds one body of the largest inline size
/// ([`crate::sm::INLINE_BODY_MAX`]) with room to spare.
pub const ENTRY_MAX_BYTES: u64 = 2 << 20;

/// Maximum length of a client-supplied idempotency key.
pub const IDEMPOTENCY_KEY_MAX_LEN: usize = 128;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Create an account with an opening balance. Creating an existing account is a no-op.
    CreateAccount { account_id: String, balance_micros: u64 },
    /// Let an API key (stored as its blake3 hash, hex) act for an account.
    AddApiKey { account_id: String, key_hash_hex: String },
    /// Let an admin key (stored as its blake3 hash, hex) administer the cluster. Admin keys act for
    /// no account, and no account key is ever an admin key.
    AddAdminKey { key_hash_hex: String },
    /// Debit the owner the price of the lease (by the prices in the ledger) and create it, or do
    /// neither.
    CreateLease(NewLease),
    /// Append to a lease's access history. With `owner`, only that owner's lease counts; the
    /// answer carries the lease, so this one write is also the linearizable access check.
    RecordAccess {
        lease_id: String,
        actor: AccessActor,
        owner: Option<String>,
    },
    /// Early delete by the owner; no refund.
    DeleteLease { owner: String, lease_id: String },
    /// Expire due leases, purge old tombstones and idempotency records, at most `max` of each.
    ExpireDue { max: u32 },
    /// The GC worker deleted these objects from the object store.
    RecordObjectsDeleted { object_keys: Vec<String> },
    /// A lease that was closed while its bytes were still being streamed out (a consume, a final
    /// claim) no longer needs them: queue them for deletion now instead of at the hold's end.
    ReleaseBytes { lease_id: String },
    /// Debit the owner and create a Checkpoint lease (`new.kind` is a Checkpoint at version 1)
    /// whose `workflow_id` no live checkpoint of the owner uses. `inline_body` holds the bytes
    /// when the body rides in the ledger.
    CreateCheckpoint {
        new: NewLease,
        #[serde(with = "crate::bytes::option")]
        inline_body: Option<Vec<u8>>,
    },
    /// Replace a checkpoint's body, version + 1; with `if_version`, only if the current version
    /// is that one (compare-and-set).
    WriteCheckpoint {
        owner: String,
        workflow_id: String,
        if_version: Option<u64>,
        body: BodyRef,
        #[serde(with = "crate::bytes::option")]
        inline_body: Option<Vec<u8>>,
    },
    /// Read and delete a checkpoint in one step; the answer carries an inline body.
    ConsumeCheckpoint { owner: String, workflow_id: String },
    /// Early delete of a checkpoint by its owner; no refund.
    DeleteCheckpoint { owner: String, workflow_id: String },
    /// Debit the owner and create a Mailbox lease (`new.kind` is an empty Mailbox).
    CreateMailbox { new: NewLease },
    /// Append a message to the live mailbox whose drop token hashes to `token_hash_hex`, within
    /// its limits; queue its webhook delivery when it has one.
    DropMessage {
        token_hash_hex: String,
        content_type: String,
        body: BodyRef,
        #[serde(with = "crate::bytes::option")]
        inline_body: Option<Vec<u8>>,
    },
    /// The owner picks a message up: it is answered (with its inline bytes) and, unless the
    /// mailbox keeps messages on read, removed.
    PickupMessage { owner: String, lease_id: String, seq: u64 },
    /// The owner removes one message.
    DeleteMessage { owner: String, lease_id: String, seq: u64 },
    /// Issue a claim token for the owner's live lease; `ttl_seconds` is clamped to the lease's
    /// expiry.
    CreateHandoff {
        owner: String,
        lease_id: String,
        handoff_id: String,
        token_hash_hex: String,
        token_prefix: String,
        max_claims: u32,
        delete_on_claim: bool,
        require_post: bool,
        ttl_seconds: u64,
    },
    /// Count one claim: the token must be known, not revoked, not expired, with claims left, its
    /// lease live, and (when it requires POST) the claim made with POST. `served` is the content the
    /// claimer was prepared to serve; it must still be the lease's content (else `ContentChanged`)
    /// and is recorded in the answer, so a replay serves the same thing. The final claim of a
    /// `delete_on_claim` handoff deletes the lease, holding its content for the stream.
    Claim {
        token_hash_hex: String,
        post: bool,
        served: Served,
    },
    /// The owner revokes a handoff; completed claims stand.
    RevokeHandoff { owner: String, handoff_id: String },
    /// Several requests committed as one Raft entry (group commit: one log fsync for all).
    /// Each is applied on its own, in order, with its own idempotency key; a batch may not
    /// contain a batch.
    Batch(Vec<Request>),
    /// The webhook worker's results, batched (at most [`crate::sm::mailbox::WEBHOOK_BATCH_MAX`]).
    WebhooksAttempted { results: Vec<WebhookResult> },
    /// Change the cluster's prices (an admin's act; seeded by the founding node from its flags).
    /// A figure left `None` keeps its value, so two changes of different figures both land.
    SetPricing {
        rate_micros_per_gb_day: Option<u64>,
        min_charge_micros: Option<u64>,
    },
}

/// One delivery attempt: the delivery due at `due_ms` is done (delivered or given up), or
/// retried at `retry_at_ms`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookResult {
    pub due_ms: u64,
    pub lease_id: String,
    pub seq: u64,
    pub retry_at_ms: Option<u64>,
}

/// What a claim serves, as of the moment it is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Served {
    /// A Storage lease's bytes (they never change).
    Object,
    /// A Checkpoint's state at this version.
    Checkpoint { version: u64 },
    /// A Mailbox's messages with a sequence number below `upto_seq` that are still queued.
    Messages { upto_seq: u64 },
}

/// Everything a new lease needs; IDs are generated before proposing so `apply` stays pure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewLease {
    pub lease_id: String,
    pub ledger_id: String,
    pub owner: String,
    pub kind: LeaseKind,
    pub duration_seconds: u64,
}

pub type Response = Result<Outcome, Rejection>;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Raft's own entries (blank, membership) carry no command.
    Noop,
    AccountCreated {
        created: bool,
    },
    ApiKeyAdded,
    AdminKeyAdded,
    LeaseCreated {
        lease: Lease,
        balance_micros: u64,
    },
    AccessRecorded {
        lease: Lease,
    },
    LeaseDeleted {
        lease: Lease,
    },
    Swept {
        expired: u32,
        purged: u32,
        dedup_pruned: u32,
    },
    ObjectsDeleted {
        count: u32,
    },
    BytesReleased {
        released: bool,
    },
    CheckpointWritten {
        lease: Lease,
    },
    /// The lease as it was when consumed (active, with its body reference); `inline_body` holds
    /// the bytes when they rode in the ledger. Object bytes stay until `ReleaseBytes`.
    CheckpointConsumed {
        lease: Lease,
        #[serde(with = "crate::bytes::option")]
        inline_body: Option<Vec<u8>>,
    },
    MessageDropped {
        lease_id: String,
        message: Message,
    },
    /// `removed`: the message is gone from the queue (its object, if any, queued for deletion).
    MessagePicked {
        message: Message,
        #[serde(with = "crate::bytes::option")]
        inline_body: Option<Vec<u8>>,
        removed: bool,
    },
    MessageDeleted,
    WebhooksRecorded {
        found: u32,
    },
    /// The answers of a [`Command::Batch`], in order.
    Batch(Vec<Response>),
    HandoffCreated {
        handoff: Handoff,
        lease_expires_at_ms: u64,
    },
    /// The handoff after this claim, and the lease as it was when claimed (still active);
    /// `closed` when this claim deleted it; `served` what the claimer got.
    Claimed {
        handoff: Handoff,
        lease: Lease,
        closed: bool,
        served: Served,
    },
    HandoffRevoked {
        handoff: Handoff,
    },
    /// The prices now in force.
    PricingSet {
        pricing: crate::pricing::Pricing,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Rejection {
    #[error("account not found")]
    AccountNotFound,
    #[error("lease not found")]
    LeaseNotFound,
    #[error("lease is gone")]
    LeaseGone,
    #[error("a lease with this id already exists")]
    LeaseExists,
    #[error("insufficient balance: {balance_micros} micros available, {needed_micros} needed")]
    InsufficientBalance { balance_micros: u64, needed_micros: u64 },
    #[error("invalid command: {0}")]
    Invalid(String),
    #[error("a live checkpoint with this workflow id already exists")]
    WorkflowExists,
    #[error("version precondition failed: the current version is {current}")]
    VersionMismatch { current: u64 },
    #[error("body of {size_bytes} bytes exceeds the reserved {limit} bytes")]
    TooLarge { size_bytes: u64, limit: u64 },
    #[error("mailbox is full: {0}")]
    MailboxFull(String),
    #[error("message not found")]
    MessageNotFound,
    /// Unknown or revoked token, or another owner's handoff.
    #[error("handoff not found")]
    HandoffNotFound,
    #[error("handoff token has expired")]
    HandoffExpired,
    #[error("handoff token has no claims left")]
    HandoffExhausted,
    #[error("this handoff must be claimed with POST")]
    PostRequired,
    #[error("too many handoffs for this lease (at most {0})")]
    TooManyHandoffs(u32),
    /// The idempotency key was first used for a different request (another fingerprint).
    #[error("this Idempotency-Key was used for a different request")]
    IdempotencyKeyReused,
    /// A claim was prepared against content that changed before it was counted; nothing counted.
    #[error("the content changed while the claim was prepared")]
    ContentChanged,
    /// The mailbox's (or the cluster's) webhook queue is full; nothing was dropped.
    #[error("webhook backlog full: {0}")]
    WebhookBacklog(String),
}
