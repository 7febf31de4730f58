//! Who is calling. Two kinds of key, never interchangeable:
//!
//! - `rs_live_…`: an agent's API key. It acts for one account ([`Caller`]) and nothing else.
//! - `rs_admin_…`: an admin key. It administers the cluster ([`Admin`]) and acts for no account.
//!
//! A session token (a JWT from `POST /api/auth/siwe` or `/api/auth/session`) also makes a
//! [`Caller`]: the wallet or account it was opened for, while its session lives.
//!
//! The cluster secret (`X-Cluster-Secret`) is also an admin credential. Keys are looked up by
//! their blake3 hash in the ledger; a key's shape is checked before any lookup.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use relay_raft::grpc::secret_matches;

use crate::error::ApiError;
use crate::limits::InFlightGuard;
use crate::state::AppState;

pub const API_KEY_PREFIX: &str = "rs_live_";
pub const ADMIN_KEY_PREFIX: &str = "rs_admin_";
/// The account `relay serve` creates on first start. Its key is an agent's key like any other.
pub const BOOTSTRAP_ACCOUNT_ID: &str = "acct_bootstrap";
const KEY_MAX_LEN: usize = 128;
const KEY_MIN_SECRET_LEN: usize = 16;

/// The authenticated account behind a request. While it lives, it holds one of the account's
/// in-flight slots.
pub struct Caller {
    /// The account id, or for a wallet's session its checksummed address.
    pub account_id: String,
    /// The session the caller proved itself with, if a session token.
    pub session_id: Option<String>,
    /// The API key it proved itself with (blake3), if an API key.
    pub key_hash: Option<[u8; 32]>,
    _slot: InFlightGuard,
}

/// Proof that the caller may administer the cluster.
pub struct Admin;

/// The hash a key is stored under; the key itself is never stored.
pub fn key_hash(key: &str) -> [u8; 32] {
    *blake3::hash(key.as_bytes()).as_bytes()
}

fn well_formed(key: &str, prefix: &str) -> bool {
    key.len() <= KEY_MAX_LEN
        && key.len() >= prefix.len() + KEY_MIN_SECRET_LEN
        && key.starts_with(prefix)
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Whether `key` has the shape of an agent's API key (prefix, length, alphabet).
pub fn is_well_formed_key(key: &str) -> bool {
    well_formed(key, API_KEY_PREFIX)
}

/// Whether `key` has the shape of an admin key.
pub fn is_well_formed_admin_key(key: &str) -> bool {
    well_formed(key, ADMIN_KEY_PREFIX)
}

/// A presented bearer token, by kind.
enum Bearer<'a> {
    Agent(&'a str),
    Admin(&'a str),
    Session(&'a str),
}

/// `Authorization: Bearer <key>`, checked for shape only.
fn bearer(parts: &Parts) -> Result<Bearer<'_>, ApiError> {
    let value = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or(ApiError::Unauthorized("missing Authorization: Bearer <key> header"))?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::Unauthorized("malformed Authorization header"))?;
    // The scheme is case-insensitive (RFC 9110 §11.1).
    let key = value
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, key)| key.trim())
        .ok_or(ApiError::Unauthorized("Authorization must be Bearer <key>"))?;
    if is_well_formed_key(key) {
        Ok(Bearer::Agent(key))
    } else if is_well_formed_admin_key(key) {
        Ok(Bearer::Admin(key))
    } else if crate::session_token::looks_like_token(key) {
        Ok(Bearer::Session(key))
    } else {
        Err(ApiError::Unauthorized("malformed API key"))
    }
}

fn is_admin_key(state: &AppState, key: &str) -> Result<bool, ApiError> {
    Ok(state.ledger.reader().is_admin_key_hash(&key_hash(key))?)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let (account_id, session_id, proven_by) = match bearer(parts)? {
            // The lookup is by hash, so response time says nothing about how much of a key
            // matched.
            Bearer::Agent(key) => {
                let hash = key_hash(key);
                let account_id = state
                    .ledger
                    .reader()
                    .account_for_key_hash(&hash)?
                    .ok_or(ApiError::Unauthorized("unknown API key"))?;
                (account_id, None, Some(hash))
            }
            Bearer::Admin(key) if is_admin_key(state, key)? => {
                return Err(ApiError::Forbidden(
                    "an admin key acts for no account; use an account's rs_live_ key",
                ))
            }
            Bearer::Admin(_) => return Err(ApiError::Unauthorized("unknown API key")),
            Bearer::Session(token) => {
                let (subject, sid) = session(state, token).await?;
                (subject, Some(sid), None)
            }
        };
        let slot = state
            .limits
            .per_account
            .enter(&account_id, 1)
            .ok_or(ApiError::TooManyRequests {
                what: "requests",
                scope: "account",
            })?;
        Ok(Caller {
            account_id,
            session_id,
            key_hash: proven_by,
            _slot: slot,
        })
    }
}

fn refused_session() -> ApiError {
    ApiError::Unauthorized("invalid or expired session token")
}

/// The subject and session of a session token: signed by a key the ledger holds, not expired,
/// its session open, and the API key that opened it (if one did) still valid. A key or session
/// this node has not applied yet is looked up again after a read barrier (a token used at once
/// on another node than the one that made it).
async fn session(state: &AppState, token: &str) -> Result<(String, String), ApiError> {
    let now_ms = relay_raft::wall_clock_ms();
    let mut reader = state.ledger.reader();
    let keys = reader.session_keys()?;
    let claims = match crate::session_token::verify(&keys, token, now_ms / 1000) {
        Ok(claims) => claims,
        Err("unknown key") => {
            reader = state.ledger.linearizable().await?;
            crate::session_token::verify(&reader.session_keys()?, token, now_ms / 1000)
                .map_err(|_| refused_session())?
        }
        Err(_) => return Err(refused_session()),
    };
    let mut found = reader.session(&claims.sid)?;
    if found.is_none() {
        found = state.ledger.linearizable().await?.session(&claims.sid)?;
    }
    let Some(s) = found.filter(|s| !s.revoked && s.expires_at_ms > now_ms && s.subject == claims.sub) else {
        return Err(refused_session());
    };
    // A session an API key opened ends with that key.
    if let Some(key) = s.opened_by_key.as_deref() {
        let mut hash = [0u8; 32];
        hex::decode_to_slice(key, &mut hash).map_err(|_| refused_session())?;
        if state.ledger.reader().account_for_key_hash(&hash)?.as_deref() != Some(claims.sub.as_str()) {
            return Err(refused_session());
        }
    }
    Ok((claims.sub, claims.sid))
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(secret) = parts.headers.get("x-cluster-secret") {
            if secret_matches(secret.as_bytes(), state.config.cluster_secret.as_bytes()) {
                return Ok(Admin);
            }
            tracing::warn!("cluster admin call refused: wrong cluster secret");
            return Err(ApiError::Unauthorized("wrong cluster secret"));
        }
        match bearer(parts)? {
            Bearer::Admin(key) if is_admin_key(state, key)? => Ok(Admin),
            Bearer::Admin(_) => Err(ApiError::Unauthorized("unknown admin key")),
            Bearer::Session(_) => Err(ApiError::Forbidden("a session cannot administer the cluster")),
            Bearer::Agent(key) => {
                if state.ledger.reader().account_for_key_hash(&key_hash(key))?.is_none() {
                    return Err(ApiError::Unauthorized("unknown API key"));
                }
                tracing::warn!("cluster admin call refused: an agent's API key");
                Err(ApiError::Forbidden(
                    "an agent's API key cannot administer the cluster; use the admin key or the cluster secret",
                ))
            }
        }
    }
}

/// The cluster secret itself, not an admin key: for what hands out every secret the cluster
/// holds (a backup carries the session signing keys and webhook secrets, which an admin key may
/// not use: admin keys act for no account).
pub struct ClusterSecret;

impl FromRequestParts<AppState> for ClusterSecret {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let by_secret = parts.headers.contains_key("x-cluster-secret");
        // Anyone else is at best an admin: 401 and 403 as for any admin route, then 403.
        Admin::from_request_parts(parts, state).await?;
        match by_secret {
            true => Ok(ClusterSecret),
            false => Err(ApiError::Forbidden(
                "a backup carries every secret the cluster holds: it needs the cluster secret, not an admin key",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two kinds of key never share a shape.
    #[test]
    fn key_kinds_are_distinct() {
        let agent = "rs_live_0123456789abcdef";
        let admin = "rs_admin_0123456789abcdef";
        assert!(is_well_formed_key(agent) && !is_well_formed_admin_key(agent));
        assert!(is_well_formed_admin_key(admin) && !is_well_formed_key(admin));
        assert!(!is_well_formed_key("rs_live_short"));
        assert!(!is_well_formed_admin_key("rs_admin_bad key with spaces"));
    }

    /// `Bearer`, `bearer` and `BEARER` name one scheme; other schemes and bare keys are refused.
    #[test]
    fn the_scheme_is_case_insensitive() {
        let parts = |value: &str| {
            let (parts, _) = axum::http::Request::builder()
                .header(AUTHORIZATION, value)
                .body(())
                .unwrap()
                .into_parts();
            parts
        };
        for ok in [
            "Bearer rs_live_0123456789abcdef",
            "bearer rs_live_0123456789abcdef",
            "BEARER  rs_live_0123456789abcdef",
        ] {
            assert!(matches!(bearer(&parts(ok)), Ok(Bearer::Agent(_))), "{ok}");
        }
        for bad in [
            "Basic rs_live_0123456789abcdef",
            "rs_live_0123456789abcdef",
            "Bearerrs_live_0123456789abcdef",
        ] {
            assert!(bearer(&parts(bad)).is_err(), "{bad}");
        }
    }
}
