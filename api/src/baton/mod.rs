//! Batons (`/v1/baton…`): the configurable storage object. One module per concern:
//!
//! - [`shape`]: the five groups as JSON, the preconfigs, defaults and ceilings, the quote;
//! - [`create`]: `POST /v1/baton/quote` and `POST /v1/baton` (the purchase path);
//! - [`content`]: reading (`GET`, ranges, entries) and writing (`PUT`, `POST …/entries`), each
//!   read one ledger step that counts egress and read caps;
//! - [`manage`]: meta, tokens, extend, delete and restore, lifecycle, the owner's listing;
//! - [`access`]: who acts: the owner, or a sharing token's holder (`bt_…`).
//!
//! Every rule (sizes, budgets, caps, scopes, expiry, burn, tombstones) is the ledger's
//! ([`relay_raft::sm::batons`]); handlers parse, run one operation and render.

pub mod access;
pub mod content;
pub mod create;
pub mod manage;
pub mod shape;

use axum::extract::rejection::PathRejection;
use axum::extract::Path;
use relay_raft::baton::{Baton, Shape, WriteKind};
use relay_raft::{Lease, LeaseKind};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// The most content one request carries (a first write, a replace); larger needs the upload path.
pub const CONTENT_INLINE_MAX: u64 = 3 << 20;

/// The ceilings a node puts on batons (`--baton-*`).
#[derive(Clone, Debug)]
pub struct BatonLimits {
    pub max_size_bytes: u64,
    pub max_egress_bytes: u64,
    pub max_tokens: u32,
    pub max_entries: u64,
    pub max_entry_bytes: u64,
    pub max_per_owner: u64,
}

impl Default for BatonLimits {
    fn default() -> Self {
        BatonLimits {
            max_size_bytes: 1 << 30,
            max_egress_bytes: 1 << 40,
            max_tokens: relay_raft::baton::TOKENS_MAX,
            max_entries: 10_000,
            max_entry_bytes: 64 << 10,
            max_per_owner: 10_000,
        }
    }
}

pub fn text_type() -> &'static str {
    "text/plain; charset=utf-8"
}

pub fn render_time(ms: u64) -> String {
    crate::render::timestamp(ms)
}

/// The baton inside a lease; baton operations answer only batons, so another kind is a bug.
pub fn baton_of(lease: &Lease) -> ApiResult<&Baton> {
    match &lease.kind {
        LeaseKind::Baton(b) => Ok(b),
        other => Err(ApiError::Internal(format!(
            "baton operation answered a {}",
            other.name()
        ))),
    }
}

/// A baton's shape as it stands (capacity after extensions).
pub fn shape_of(lease: &Lease, b: &Baton) -> Shape {
    relay_raft::sm::pricing::shape_of(b, lease.duration_seconds)
}

/// A lease as this node knows it, looked for again after a read barrier when this node has not
/// applied it yet (made through another node a moment ago). Kinds and owners never change, so a
/// view that has it is good enough to decide who may ask.
pub async fn lease_anywhere(state: &AppState, lease_id: &str) -> ApiResult<Option<Lease>> {
    match state.ledger.reader().lease(lease_id)? {
        Some(lease) => Ok(Some(lease)),
        None => Ok(state.ledger.linearizable().await?.lease(lease_id)?),
    }
}

/// `btn_` and a ULID; anything else cannot exist (404).
pub fn id_param(path: Result<Path<String>, PathRejection>) -> ApiResult<String> {
    match path {
        Ok(Path(id)) if crate::ids::is_baton_id(&id) => Ok(id),
        _ => Err(ApiError::NotFound("baton")),
    }
}

/// A write's bytes fit the baton as far as this node can tell before proposing: the size
/// (with `used` bytes already held), an entry's ceiling, text where text is due. The ledger checks
/// again against the baton as it stands.
pub fn check_write(state: &AppState, write: WriteKind, size_bytes: u64, used: u64, bytes: &[u8]) -> ApiResult<()> {
    let len = bytes.len() as u64;
    if write.appends() && len > state.config.baton.max_entry_bytes {
        return Err(ApiError::TooLarge {
            what: "entry",
            limit: state.config.baton.max_entry_bytes,
        });
    }
    if used.saturating_add(len) > size_bytes {
        return Err(ApiError::TooLarge {
            what: "content (the baton's size_bytes)",
            limit: size_bytes,
        });
    }
    if write.is_text() && std::str::from_utf8(bytes).is_err() {
        return Err(ApiError::InvalidValue {
            field: "content",
            reason: format!("a {} baton holds UTF-8 text", write.name()),
        });
    }
    Ok(())
}
