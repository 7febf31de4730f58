//! The ledger's vocabulary: every state change is one [`Command`], answered by one [`Response`].
//!
//! Domain outcomes (not found, gone, insufficient balance) are values of [`Response`], never Raft
//! errors: a Raft error means "not applied, or unknown".

use serde::{Deserialize, Serialize};

use crate::model::{Handoff, Lease, LeaseKind};
use crate::ops;

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

/// Every state change, in the order of the log's encoding (variants are only ever appended). Each
/// payload is an [`crate::ops::Op`] that names its own answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    CreateAccount(ops::CreateAccount),
    AddApiKey(ops::AddApiKey),
    AddAdminKey(ops::AddAdminKey),
    /// Debit the owner the price of the lease (by the prices in the ledger) and create it, or do
    /// neither.
    CreateLease(NewLease),
    RecordAccess(ops::RecordAccess),
    DeleteLease(ops::DeleteLease),
    ExpireDue(ops::ExpireDue),
    RecordObjectsDeleted(ops::RecordObjectsDeleted),
    ReleaseBytes(ops::ReleaseBytes),
    CreateCheckpoint(ops::CreateCheckpoint),
    WriteCheckpoint(ops::WriteCheckpoint),
    ConsumeCheckpoint(ops::ConsumeCheckpoint),
    DeleteCheckpoint(ops::DeleteCheckpoint),
    CreateMailbox(ops::CreateMailbox),
    DropMessage(ops::DropMessage),
    PickupMessage(ops::PickupMessage),
    DeleteMessage(ops::DeleteMessage),
    CreateHandoff(ops::CreateHandoff),
    Claim(ops::Claim),
    RevokeHandoff(ops::RevokeHandoff),
    /// Several requests committed as one Raft entry (group commit: one log fsync for all).
    /// Each is applied on its own, in order, with its own idempotency key; a batch may not
    /// contain a batch.
    Batch(Vec<Request>),
    WebhooksAttempted(ops::WebhooksAttempted),
    SetPricing(ops::SetPricing),
    PayX402(ops::PayX402),
    SettleX402(ops::SettleX402),
    AddSessionKey(ops::AddSessionKey),
    OpenSession(ops::OpenSession),
    RevokeSession(ops::RevokeSession),
    TopUp(ops::TopUp),
    IssueApiKey(ops::IssueApiKey),
    RevokeApiKey(ops::RevokeApiKey),
    CreateBaton(ops::CreateBaton),
    WriteBaton(ops::WriteBaton),
    AppendEntry(ops::AppendEntry),
    ReadBaton(ops::ReadBaton),
    IssueTokens(ops::IssueTokens),
    RevokeToken(ops::RevokeToken),
    ExtendBaton(ops::ExtendBaton),
    DeleteBaton(ops::DeleteBaton),
    RestoreBaton(ops::RestoreBaton),
    SetLifecycle(ops::SetLifecycle),
    SetBatonRates(ops::SetBatonRates),
    BeginUpload(ops::BeginUpload),
    CreateWithUpload(ops::CreateWithUpload),
    CompleteUpload(ops::CompleteUpload),
    TusAppend(ops::TusAppend),
    FinishTus(ops::FinishTus),
    EndUpload(ops::EndUpload),
    FillFromTus(ops::FillFromTus),
    AddWitnessKey(ops::AddWitnessKey),
    SignCheckpoint(ops::SignCheckpoint),
    RecordAccesses(ops::RecordAccesses),
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
    LeaseCreated(ops::LeaseCreated),
    AccessRecorded {
        lease: Lease,
    },
    LeaseDeleted {
        lease: Lease,
    },
    Swept(ops::Swept),
    ObjectsDeleted {
        count: u32,
    },
    BytesReleased {
        released: bool,
    },
    CheckpointWritten {
        lease: Lease,
    },
    CheckpointConsumed(ops::CheckpointConsumed),
    MessageDropped(ops::MessageDropped),
    MessagePicked(ops::MessagePicked),
    MessageDeleted,
    WebhooksRecorded {
        found: u32,
    },
    /// The answers of a [`Command::Batch`], in order.
    Batch(Vec<Response>),
    HandoffCreated(ops::HandoffCreated),
    Claimed(ops::Claimed),
    HandoffRevoked {
        handoff: Handoff,
    },
    /// The prices now in force.
    PricingSet {
        pricing: crate::pricing::Pricing,
    },
    /// An x402 payment's record after its settlement was recorded.
    X402Settled {
        record: crate::model::X402Record,
    },
    SessionKeyAdded,
    SessionOpened {
        session: crate::model::Session,
    },
    SessionRevoked {
        session: crate::model::Session,
    },
    ToppedUp {
        account: crate::model::Account,
    },
    ApiKeyIssued {
        key: crate::model::ApiKeyInfo,
    },
    ApiKeyRevoked {
        key: crate::model::ApiKeyInfo,
    },
    /// A baton after a write, delete, restore or lifecycle change.
    BatonChanged {
        lease: Lease,
    },
    EntryAppended(ops::EntryAppended),
    BatonRead(ops::BatonRead),
    TokensIssued {
        tokens: Vec<crate::baton::BatonToken>,
    },
    TokenRevoked {
        token: crate::baton::BatonToken,
    },
    BatonRatesSet {
        rates: crate::baton::BatonRates,
    },
    BatonExtended(ops::BatonExtended),
    /// An upload's record after it began, took a chunk, completed or ended.
    UploadChanged {
        upload: crate::upload::Upload,
    },
    WitnessKeyAdded {
        log: crate::witness::WitnessLog,
    },
    CheckpointSigned {
        checkpoint: crate::witness::SignedCheckpoint,
    },
    AccessesRecorded {
        /// How many of the batch's accesses found their lease still in the ledger.
        recorded: u32,
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
    /// This payment authorization (`from`, `nonce`) has paid before.
    #[error("this payment authorization was already used")]
    PaymentReused,
    /// The authorization pays another amount than the ledger's price (the prices changed, or it
    /// was made for another request).
    #[error("the payment is for {paid_micros} micro-USDC but the price is {price_micros}")]
    PriceMismatch { paid_micros: u64, price_micros: u64 },
    /// The authorization's validBefore has passed by the cluster clock.
    #[error("the payment authorization has expired")]
    PaymentExpired,
    /// This sign-in nonce already opened a session.
    #[error("this sign-in nonce was already used")]
    NonceReused,
    #[error("session not found")]
    SessionNotFound,
    #[error("API key not found")]
    KeyNotFound,
    #[error("range not satisfiable for content of {size} bytes")]
    RangeNotSatisfiable { size: u64 },
    /// The read would pass the baton's read budget; nothing was served.
    #[error("the read needs {needed} bytes of egress but {remaining} remain")]
    EgressExhausted { remaining: u64, needed: u64 },
    /// The token's read cap is consumed.
    #[error("this token has no reads left")]
    ReadCapExhausted,
    /// The token's scope does not allow this.
    #[error("this token's scope does not allow {0}")]
    Scope(String),
    /// Unknown, revoked or expired sharing token.
    #[error("invalid or expired baton token")]
    TokenInvalid,
    #[error("a baton may have at most {0} tokens")]
    TooManyTokens(u32),
    #[error("a baton may hold at most {0} entries")]
    TooManyEntries(u64),
    #[error("an owner may have at most {0} live batons")]
    TooManyBatons(u64),
    /// A limit (time, read budget, read caps) was already hit: the baton cannot be extended.
    #[error("{0}")]
    LimitReached(String),
    /// The operation does not apply to this write kind (an append on a single baton...).
    #[error("{0}")]
    WrongWriteKind(String),
    #[error("entry not found")]
    EntryNotFound,
    /// No such sharing token on this baton (the owner's view).
    #[error("token not found")]
    TokenNotFound,
    /// Unknown upload, or another owner's (indistinguishable).
    #[error("upload not found")]
    UploadNotFound,
    /// The upload was abandoned, ended, or (scratch) is past its life.
    #[error("upload is gone")]
    UploadGone,
    /// The lease's content is still being uploaded.
    #[error("the content is still being uploaded")]
    UploadPending,
    /// The upload already completed; its bytes cannot change.
    #[error("the upload is already complete")]
    UploadComplete,
    /// What the store holds is not what was declared (size or hash).
    #[error("{0}")]
    UploadMismatch(String),
    /// A tus PATCH at another offset than the upload's.
    #[error("the upload's offset is {offset}")]
    OffsetMismatch { offset: u64 },
    /// The owner's free scratch tier is full (count or bytes).
    #[error("{0}")]
    ScratchQuota(String),
    /// The owner has as many tus uploads in progress (or bytes declared) as it may.
    #[error("{0}")]
    TusQuota(String),
    /// A witnessed single or overwrite baton has as many witnessed versions as it may hold
    /// entries: each is a record kept for the witness retention.
    #[error("a witnessed baton may have at most {0} versions")]
    TooManyVersions(u64),
}
