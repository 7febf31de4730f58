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

/// `scope` is the account the key belongs to, so two accounts can use the same key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyKey {
    pub scope: String,
    pub key: String,
}

/// The most requests one [`Command::Batch`] may carry.
pub const BATCH_MAX: usize = 512;

/// Maximum length of a client-supplied idempotency key.
pub const IDEMPOTENCY_KEY_MAX_LEN: usize = 128;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Create an account with an opening balance. Creating an existing account is a no-op.
    CreateAccount { account_id: String, balance_micros: u64 },
    /// Let an API key (stored as its blake3 hash, hex) act for an account.
    AddApiKey { account_id: String, key_hash_hex: String },
    /// Debit the owner and create the lease, or do neither.
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
        inline_body: Option<Vec<u8>>,
    },
    /// Replace a checkpoint's body, version + 1; with `if_version`, only if the current version
    /// is that one (compare-and-set).
    WriteCheckpoint {
        owner: String,
        workflow_id: String,
        if_version: Option<u64>,
        body: BodyRef,
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
    /// lease live, and (when it requires POST) the claim made with POST. The final claim of a
    /// `delete_on_claim` handoff deletes the lease, holding its content for the stream.
    Claim { token_hash_hex: String, post: bool },
    /// The owner revokes a handoff; completed claims stand.
    RevokeHandoff { owner: String, handoff_id: String },
    /// Several requests committed as one Raft entry (group commit: one log fsync for all).
    /// Each is applied on its own, in order, with its own idempotency key; a batch may not
    /// contain a batch.
    Batch(Vec<Request>),
    /// The webhook worker's results, batched (at most [`crate::sm::mailbox::WEBHOOK_BATCH_MAX`]).
    WebhooksAttempted { results: Vec<WebhookResult> },
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

/// Everything a new lease needs; IDs are generated before proposing so `apply` stays pure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewLease {
    pub lease_id: String,
    pub ledger_id: String,
    pub owner: String,
    pub kind: LeaseKind,
    pub duration_seconds: u64,
    pub cost_micros: u64,
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
        inline_body: Option<Vec<u8>>,
    },
    MessageDropped {
        lease_id: String,
        message: Message,
    },
    /// `removed`: the message is gone from the queue (its object, if any, queued for deletion).
    MessagePicked {
        message: Message,
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
    /// `closed` when this claim deleted it.
    Claimed {
        handoff: Handoff,
        lease: Lease,
        closed: bool,
    },
    HandoffRevoked {
        handoff: Handoff,
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
}
