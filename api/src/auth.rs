//! `Authorization: Bearer rs_live_…` → the account it acts for.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use crate::error::ApiError;
use crate::state::AppState;

pub const API_KEY_PREFIX: &str = "rs_live_";
/// The account `relay serve` creates on first start; its key may also administer the cluster.
pub const BOOTSTRAP_ACCOUNT_ID: &str = "acct_bootstrap";
const API_KEY_MAX_LEN: usize = 128;

/// The authenticated account behind a request.
pub struct Caller {
    pub account_id: String,
}

/// The hash an API key is stored under; the key itself is never stored.
pub fn key_hash(key: &str) -> [u8; 32] {
    *blake3::hash(key.as_bytes()).as_bytes()
}

/// Whether `key` has the shape of an API key (prefix, length, alphabet).
pub fn is_well_formed_key(key: &str) -> bool {
    key.len() <= API_KEY_MAX_LEN
        && key.len() >= API_KEY_PREFIX.len() + 16
        && key.starts_with(API_KEY_PREFIX)
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let value = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or(ApiError::Unauthorized("missing Authorization: Bearer rs_live_… header"))?;
        let value = value
            .to_str()
            .map_err(|_| ApiError::Unauthorized("malformed Authorization header"))?;
        let key = value
            .strip_prefix("Bearer ")
            .map(str::trim)
            .ok_or(ApiError::Unauthorized("Authorization must be Bearer rs_live_…"))?;
        if !is_well_formed_key(key) {
            return Err(ApiError::Unauthorized("malformed API key"));
        }
        // The lookup is by hash, so response time says nothing about how much of a key matched.
        match state.ledger.reader().account_for_key_hash(&key_hash(key))? {
            Some(account_id) => Ok(Caller { account_id }),
            None => Err(ApiError::Unauthorized("unknown API key")),
        }
    }
}
