//! Who acts on a baton: its owner (any account credential: an API key or a session), or the
//! holder of a sharing token (`Authorization: Bearer bt_…`). The token is checked before any body
//! is read; the ledger checks it again, with its scope, expiry and read cap, when it counts.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use relay_raft::baton::BatonToken;
use relay_raft::ops::Actor;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// A sharing token: `bt_` and 40 hex digits (160 random bits).
pub const TOKEN_PREFIX: &str = "bt_";
const TOKEN_HEX_LEN: usize = 40;

pub enum Who {
    Owner(Caller),
    Token { hash_hex: String, token: BatonToken },
}

impl Who {
    pub fn actor(&self) -> Actor {
        match self {
            Who::Owner(c) => Actor::Owner(c.account_id.clone()),
            Who::Token { hash_hex, .. } => Actor::Token(hash_hex.clone()),
        }
    }

    /// The scope an Idempotency-Key of this actor lives in.
    pub fn scope(&self) -> String {
        match self {
            Who::Owner(c) => c.account_id.clone(),
            Who::Token { hash_hex, .. } => format!("token:{hash_hex}"),
        }
    }

    pub fn token(&self) -> Option<&BatonToken> {
        match self {
            Who::Owner(_) => None,
            Who::Token { token, .. } => Some(token),
        }
    }
}

/// A fresh token and its hash.
pub fn new_token() -> Result<(String, String), ApiError> {
    let secret = crate::ids::secret_hex().map_err(|e| ApiError::Internal(format!("rng: {e}")))?;
    let token = format!("{TOKEN_PREFIX}{secret}");
    let hash = blake3::hash(token.as_bytes()).to_hex().to_string();
    Ok((token, hash))
}

fn well_formed(token: &str) -> bool {
    token.strip_prefix(TOKEN_PREFIX).is_some_and(|hex| {
        hex.len() == TOKEN_HEX_LEN && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

fn presented(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && token.starts_with(TOKEN_PREFIX)).then_some(token)
}

impl FromRequestParts<AppState> for Who {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Who, ApiError> {
        let Some(token) = presented(parts) else {
            return Ok(Who::Owner(Caller::from_request_parts(parts, state).await?));
        };
        let refused = ApiError::Unauthorized("invalid, revoked or expired baton token");
        if !well_formed(token) {
            return Err(refused);
        }
        let hash = *blake3::hash(token.as_bytes()).as_bytes();
        // A token issued through another node may not have been applied here yet.
        let found = match state.ledger.reader().baton_token(&hash)? {
            Some(t) => Some(t),
            None => state.ledger.linearizable().await?.baton_token(&hash)?,
        };
        let Some(found) = found else {
            return Err(refused);
        };
        if found.expires_at_ms.is_some_and(|at| state.ledger.now_ms() >= at) {
            return Err(refused);
        }
        Ok(Who::Token {
            hash_hex: hex::encode(hash),
            token: found,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fresh tokens have the documented shape and are never repeated.
    #[test]
    fn tokens_have_their_shape() {
        let (a, hash) = new_token().unwrap();
        assert!(well_formed(&a), "{a}");
        assert_eq!(hash.len(), 64);
        assert_ne!(a, new_token().unwrap().0);
        for bad in ["bt_", "bt_XYZ", "rs_live_0123456789abcdef0123", &format!("{a}0")] {
            assert!(!well_formed(bad), "{bad}");
        }
    }
}
