//! The JSON shapes the spec names. Handlers build their bodies with `json!`, so these describe
//! them; schemathesis (in the suite) checks live answers against them, which is what keeps the two
//! from drifting. Fields a lease kind adds are optional here and named for the kind.
#![allow(dead_code)]

use serde_json::Value;
use utoipa::ToSchema;

/// Every error but an x402 offer.
#[derive(ToSchema)]
pub struct Error {
    /// Always `error`.
    #[schema(example = "error")]
    status: String,
    error: ErrorDetail,
}

#[derive(ToSchema)]
pub struct ErrorDetail {
    /// A stable, machine-readable code (README, "Errors").
    #[schema(example = "not_found")]
    code: String,
    /// What went wrong, for people.
    message: String,
    /// The request's id, also in the `X-Request-Id` header and the node's logs.
    #[schema(example = "req_01JQ8Z3M4N5P6Q7R8S9T0V1W2X")]
    request_id: String,
}

/// x402 v1's 402 body (its `error` is a string), with the project's code and request id beside
/// it; the v2 offer is in the `PAYMENT-REQUIRED` header (base64 JSON).
#[derive(ToSchema)]
#[schema(title = "PaymentRequired")]
pub struct PaymentRequired {
    #[schema(rename = "x402Version", example = 1)]
    x402_version: u8,
    error: String,
    /// What a payment for this request must be: scheme, network, amount, asset, payTo.
    accepts: Vec<Object>,
    #[schema(example = "error")]
    status: String,
    #[schema(example = "payment_required")]
    code: String,
    request_id: String,
}

/// A 402: an x402 offer, or an account whose balance does not cover the price.
#[derive(ToSchema)]
#[allow(clippy::large_enum_variant)]
pub enum Payment402 {
    Offer(PaymentRequired),
    Balance(Error),
}

/// A JSON object; its fields are described in the operation's text.
#[derive(ToSchema)]
#[schema(value_type = Object)]
pub struct Object(Value);

/// One read or write of a lease.
#[derive(ToSchema)]
pub struct AccessEvent {
    at: String,
    actor: String,
}

/// What a paid create answers: the lease, its price and who paid, and the kind's own fields.
#[derive(ToSchema)]
pub struct Receipt {
    #[schema(example = "ok")]
    status: String,
    /// `account` or `wallet`.
    actor_type: String,
    owner: String,
    lease_id: String,
    expires_at: String,
    duration_seconds: u64,
    #[schema(example = "1.0 hour")]
    duration_human: String,
    /// Micro-USDC, as a string (it can exceed 2^53).
    #[schema(example = "1500")]
    cost_micros: String,
    paid_usdc: f64,
    ledger_id: String,
}

/// A lease as its owner sees it in listings.
#[derive(ToSchema)]
pub struct Lease {
    lease_id: String,
    ledger_id: String,
    /// `storage`, `mailbox`, `checkpoint` or `baton`.
    kind: String,
    /// `active`, `expired` or `deleted`.
    status: String,
    created_at: String,
    expires_at: String,
    duration_seconds: u64,
    duration_human: String,
    cost_micros: String,
    paid_usdc: f64,
    access_count: u64,
    access_history: Vec<AccessEvent>,
    deleted_at: Option<String>,
    expired_at: Option<String>,
    /// Storage.
    object_key: Option<String>,
    file_name: Option<String>,
    content_type: Option<String>,
    size_bytes: Option<u64>,
    blake3: Option<String>,
    /// Checkpoint.
    workflow_id: Option<String>,
    max_body_bytes: Option<u64>,
    version: Option<u64>,
    updated_at: Option<String>,
    /// Mailbox.
    capacity_bytes: Option<u64>,
    used_bytes: Option<u64>,
    message_count: Option<u64>,
    max_message_bytes: Option<u64>,
    max_messages: Option<u64>,
    keep_on_read: Option<bool>,
    webhook_url: Option<String>,
    /// Baton: `replace`, `append` or `patch`.
    write: Option<String>,
}

/// Raw bytes.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct Binary(Vec<u8>);

/// One page of the caller's leases.
#[derive(ToSchema)]
pub struct LeasePage {
    #[schema(example = "ok")]
    status: String,
    count: u64,
    leases: Vec<Lease>,
    /// Pass as `cursor` for the next page; `null` on the last.
    next_cursor: Option<String>,
}

/// An account and its balance.
#[derive(ToSchema)]
pub struct Account {
    #[schema(example = "ok")]
    status: String,
    account_id: String,
    /// Micro-USDC, as a string.
    balance_micros: String,
    balance_usdc: f64,
    created_at: String,
}

/// One charge.
#[derive(ToSchema)]
pub struct Charge {
    ledger_id: String,
    lease_id: String,
    amount_micros: String,
    amount_usdc: f64,
    /// `null` for a wallet, which has no balance.
    balance_after_micros: Option<String>,
    /// `balance` or `x402`.
    payment_method: String,
    created_at: String,
}

/// One page of the caller's charges, newest first.
#[derive(ToSchema)]
pub struct BillingPage {
    status: String,
    count: u64,
    items: Vec<Charge>,
    next_cursor: Option<String>,
}

/// A new claim link; the token and URL are shown once (`null` on an idempotent replay).
#[derive(ToSchema)]
pub struct HandoffCreated {
    status: String,
    handoff_id: String,
    handoff_token: Option<String>,
    claim_url: Option<String>,
    lease_id: String,
    max_claims: u64,
    delete_on_claim: bool,
    require_post: bool,
    expires_at: String,
    lease_expires_at: String,
}

/// A live claim link, without its secret.
#[derive(ToSchema)]
pub struct HandoffEntry {
    handoff_id: String,
    token_prefix: String,
    claims_remaining: u64,
    max_claims: u64,
    delete_on_claim: bool,
    require_post: bool,
    created_at: String,
    expires_at: String,
}

/// A lease's live claim links.
#[derive(ToSchema)]
pub struct HandoffList {
    status: String,
    lease_id: String,
    count: u64,
    handoffs: Vec<HandoffEntry>,
}

/// A queued message's metadata.
#[derive(ToSchema)]
pub struct MessageEntry {
    id: String,
    size_bytes: u64,
    content_type: String,
    received_at: String,
}

/// A mailbox's queue, in arrival order.
#[derive(ToSchema)]
pub struct MailboxQueue {
    status: String,
    lease_id: String,
    count: u64,
    used_bytes: u64,
    capacity_bytes: u64,
    expires_at: String,
    items: Vec<MessageEntry>,
}

/// A checkpoint's state after a write.
#[derive(ToSchema)]
pub struct CheckpointWritten {
    status: String,
    lease_id: String,
    workflow_id: String,
    version: u64,
    size_bytes: u64,
    updated_at: String,
    expires_at: String,
}

/// A lease deleted now.
#[derive(ToSchema)]
pub struct LeaseDeleted {
    status: String,
    lease_id: String,
    deleted: bool,
    refund_micros: String,
}

/// What a storage lease would cost now.
#[derive(ToSchema)]
pub struct Quote {
    status: String,
    #[schema(rename = "priceUsdc")]
    price_usdc: f64,
    #[schema(rename = "priceMicros")]
    price_micros: String,
    cost_micros: String,
    #[schema(rename = "expiresAt")]
    expires_at: String,
    size_bytes: u64,
    duration_seconds: u64,
    duration_human: String,
}

/// An upload's state.
#[derive(ToSchema)]
pub struct UploadView {
    upload_id: String,
    /// `pending`, `complete`, `abandoned`, …
    status: String,
    size_bytes: u64,
    expires_at: String,
    created_at: String,
    lease_id: Option<String>,
    blake3: Option<String>,
    sha256: Option<String>,
    /// A scratch upload's key.
    input_key: Option<String>,
    /// A tus upload's bytes received.
    offset: Option<u64>,
}

/// A session token.
#[derive(ToSchema)]
pub struct Session {
    status: String,
    token: String,
    #[schema(example = "Bearer")]
    token_type: String,
    /// The account id, or a wallet's checksummed address.
    subject: String,
    session_id: String,
    expires_at: String,
}

/// A baton in the owner's list.
#[derive(ToSchema)]
pub struct BatonSummary {
    baton_id: String,
    write: String,
    state: String,
    size_bytes: u64,
    used_bytes: u64,
    egress_remaining_bytes: u64,
    version: u64,
    price_micros: u64,
    created_at: String,
    expires_at: String,
}

/// One page of the owner's batons, newest first.
#[derive(ToSchema)]
pub struct BatonPage {
    status: String,
    batons: Vec<BatonSummary>,
    next_cursor: Option<String>,
}

/// One entry of an append baton.
#[derive(ToSchema)]
pub struct Entry {
    seq: u64,
    size_bytes: u64,
    hash: String,
    prev_hash: Option<String>,
    at: String,
    content: String,
}

/// A page of entries.
#[derive(ToSchema)]
pub struct EntryPage {
    status: String,
    baton_id: String,
    entries: Vec<Entry>,
    next_after: Option<u64>,
    has_more: bool,
    entry_count: u64,
    head_hash: Option<String>,
    egress_remaining_bytes: u64,
}

/// A sharing token as its owner lists it (never the secret).
#[derive(ToSchema)]
pub struct TokenEntry {
    token_id: String,
    /// Always `null` in a listing.
    token: Option<String>,
    prefix: String,
    scope: String,
    read_cap: Option<u32>,
    reads: u32,
    reads_remaining: Option<u32>,
    expires_at: Option<String>,
    created_at: String,
}

/// A baton's sharing tokens.
#[derive(ToSchema)]
pub struct TokenList {
    status: String,
    baton_id: String,
    tokens: Vec<TokenEntry>,
}

/// A baton's content after a write.
#[derive(ToSchema)]
pub struct BatonWritten {
    status: String,
    baton_id: String,
    version: u64,
    size_bytes: u64,
    content_sha256: Option<String>,
    updated_at: String,
    expires_at: String,
}

/// An entry appended.
#[derive(ToSchema)]
pub struct EntryAppended {
    status: String,
    baton_id: String,
    seq: u64,
    size_bytes: u64,
    hash: String,
    prev_hash: Option<String>,
    at: String,
    version: u64,
    used_bytes: u64,
}
