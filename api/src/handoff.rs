//! Handoff: `POST /api/handoff/:lease_id` issues a claim token for any lease kind (redeemed at
//! `/api/claim/:token`, see [`crate::claim`]); `GET /api/handoffs/:lease_id` lists outstanding
//! tokens and `DELETE /api/handoffs/:handoff_id` revokes one.

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::header::HeaderMap;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use relay_raft::ops::{CreateHandoff, HandoffCreated, RevokeHandoff};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::idempotency::{self, Part};
use crate::state::AppState;
use crate::{mailbox, objects, ops, render, store};

pub const TOKEN_PREFIX: &str = "hof_";
/// `hof_` + 32 bytes from the OS RNG, base64url.
const TOKEN_LEN: usize = 4 + 43;
/// Characters of the token shown in listings.
const SHOWN_PREFIX_LEN: usize = 12;
const CREATE_BODY_MAX: u64 = 16 << 10;
const CREATE_ROUTE: &str = "POST /api/handoff/{lease_id}";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    max_claims: Option<u64>,
    delete_on_claim: Option<bool>,
    ttl_seconds: Option<u64>,
    require_post: Option<bool>,
}

#[utoipa::path(
    post,
    path = "/api/handoff/{lease_id}",
    operation_id = "handoff_create",
    tag = "handoff",
    security(("api_key" = []), ("session" = [])),
    params(
        ("lease_id" = String, Path, description = "A lease id (`lse_…`)"),
        ("Idempotency-Key" = Option<String>, Header, nullable = false, description = "1–128 visible ASCII characters; a retry with the same key and the same request gets the first answer, another request with it a 422"),
    ),
    request_body(content = Object, content_type = "application/json", description = "Optional: `{max_claims, delete_on_claim, ttl_seconds, require_post}`"),
    responses(
        (status = 201, description = "`{status, handoff_id, handoff_token, claim_url, lease_id, max_claims, delete_on_claim, require_post, expires_at, lease_expires_at}`; the token is shown once", content_type = "application/json", body = crate::openapi::schemas::HandoffCreated),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E404,
        crate::openapi::E409,
        crate::openapi::E410,
        crate::openapi::E413,
        crate::openapi::E422,
    )
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let lease_id = store::lease_id_param(path)?;
    let keyed = idempotency::begin(&state, &headers, &caller.account_id, CREATE_ROUTE)?;
    let bytes = objects::read_body(body, CREATE_BODY_MAX, "body").await?;
    let idem = keyed.as_ref().map(|k| {
        k.seal(&[
            Part::Value(lease_id.as_bytes()),
            Part::Value(blake3::hash(&bytes).as_bytes()),
        ])
    });
    let params: CreateBody = if bytes.iter().all(u8::is_ascii_whitespace) {
        CreateBody::default()
    } else {
        serde_json::from_slice(&bytes).map_err(|e| {
            if e.is_data() {
                ApiError::InvalidValue {
                    field: "body",
                    reason: e.to_string(),
                }
            } else {
                ApiError::InvalidJson(e.to_string())
            }
        })?
    };
    let cfg = &state.config;
    let max_claims = params.max_claims.unwrap_or(1);
    if max_claims == 0 || max_claims > u64::from(cfg.handoff_max_claims) {
        return Err(ApiError::InvalidValue {
            field: "max_claims",
            reason: format!("must be 1 to {}", cfg.handoff_max_claims),
        });
    }
    let ttl_seconds = params.ttl_seconds.unwrap_or(3600);
    if ttl_seconds == 0 || ttl_seconds > cfg.max_duration_seconds {
        return Err(ApiError::InvalidValue {
            field: "ttl_seconds",
            reason: format!("must be 1 to {}", cfg.max_duration_seconds),
        });
    }
    let token = new_token()?;
    let create = CreateHandoff {
        owner: caller.account_id.clone(),
        lease_id,
        handoff_id: format!("hnd_{}", ulid::Ulid::new()),
        token_hash_hex: blake3::hash(token.as_bytes()).to_hex().to_string(),
        token_prefix: token[..SHOWN_PREFIX_LEN].to_string(),
        max_claims: max_claims as u32,
        delete_on_claim: params.delete_on_claim.unwrap_or(false),
        require_post: params.require_post.unwrap_or(false),
        ttl_seconds,
    };
    let HandoffCreated {
        handoff,
        lease_expires_at_ms,
    } = ops::run(&state, idem, create, "lease").await?;
    // A replayed create answers with the first handoff, whose token was shown once.
    let fresh = handoff.token_hash_hex == blake3::hash(token.as_bytes()).to_hex().as_str();
    let base = mailbox::base_url(&state, &headers);
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "status": "ok",
            "handoff_id": handoff.handoff_id,
            "handoff_token": fresh.then_some(&token),
            "claim_url": fresh.then(|| format!("{base}/api/claim/{token}")),
            "lease_id": handoff.lease_id,
            "max_claims": handoff.max_claims,
            "delete_on_claim": handoff.delete_on_claim,
            "require_post": handoff.require_post,
            "expires_at": render::timestamp(handoff.expires_at_ms),
            "lease_expires_at": render::timestamp(lease_expires_at_ms),
        })),
    )
        .into_response())
}

/// `GET /api/handoffs/:lease_id`: the lease's outstanding tokens.
#[utoipa::path(
    get,
    path = "/api/handoffs/{id}",
    operation_id = "handoff_list",
    tag = "handoff",
    security(("api_key" = []), ("session" = [])),
    params(
        ("id" = String, Path, description = "The lease id (`lse_…`) whose live handoffs to list"),
    ),
    responses(
        (status = 200, description = "`{status, lease_id, count, handoffs: [{handoff_id, token_prefix, claims_remaining, max_claims, delete_on_claim, require_post, created_at, expires_at}]}`", content_type = "application/json", body = crate::openapi::schemas::HandoffList),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E404,
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult<Response> {
    let lease_id = store::lease_id_param(path)?;
    let (reader, now_ms) = state.ledger.linearizable_now().await?;
    match reader.lease(&lease_id)? {
        Some(l) if l.owner == caller.account_id => {}
        _ => return Err(ApiError::NotFound("lease")),
    }
    let rows: Vec<Value> = reader
        .handoffs_for_lease(&lease_id)?
        .into_iter()
        .filter(|h| !h.revoked && h.claims_remaining > 0 && now_ms < h.expires_at_ms)
        .map(|h| {
            json!({
                "handoff_id": h.handoff_id,
                "token_prefix": h.token_prefix,
                "claims_remaining": h.claims_remaining,
                "max_claims": h.max_claims,
                "delete_on_claim": h.delete_on_claim,
                "require_post": h.require_post,
                "created_at": render::timestamp(h.created_at_ms),
                "expires_at": render::timestamp(h.expires_at_ms),
            })
        })
        .collect();
    Ok(Json(json!({"status": "ok", "lease_id": lease_id, "count": rows.len(), "handoffs": rows})).into_response())
}

/// `DELETE /api/handoffs/:handoff_id`: revoke; a second call is 404. Completed claims stand.
#[utoipa::path(
    delete,
    path = "/api/handoffs/{id}",
    operation_id = "handoff_revoke",
    tag = "handoff",
    security(("api_key" = []), ("session" = [])),
    params(
        ("id" = String, Path, description = "The handoff id (`hnd_…`) to revoke"),
    ),
    responses(
        (status = 200, description = "`{status, handoff_id, revoked, claims_used}`", content_type = "application/json", body = Object),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E404,
    )
)]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult<Response> {
    let handoff_id = match path {
        Ok(Path(id)) if is_handoff_id(&id) => id,
        _ => return Err(ApiError::NotFound("handoff")),
    };
    let revoke = RevokeHandoff {
        owner: caller.account_id,
        handoff_id,
    };
    let handoff = ops::run(&state, None, revoke, "handoff").await?;
    Ok(Json(json!({
        "status": "ok",
        "handoff_id": handoff.handoff_id,
        "revoked": true,
        "claims_used": handoff.max_claims - handoff.claims_remaining,
    }))
    .into_response())
}

/// `GET /api/handoffs/:id` names a lease, `DELETE` a handoff: one route, dispatched by the id.
pub fn is_handoff_id(id: &str) -> bool {
    id.strip_prefix("hnd_")
        .is_some_and(|rest| rest.len() == 26 && rest.parse::<ulid::Ulid>().is_ok())
}

fn new_token() -> ApiResult<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

pub fn is_token(t: &str) -> bool {
    t.len() == TOKEN_LEN
        && t.starts_with(TOKEN_PREFIX)
        && t[TOKEN_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tokens carry 256 random bits, have one shape, and are never repeated.
    #[test]
    fn tokens() {
        let a = new_token().unwrap();
        assert!(is_token(&a), "{a}");
        assert_ne!(a, new_token().unwrap());
        assert!(!is_token("hof_short"));
        assert!(!is_token(&a.replace("hof_", "xxx_")));
        assert!(is_handoff_id(&format!("hnd_{}", ulid::Ulid::new())));
        assert!(!is_handoff_id("hnd_nope"));
    }
}
