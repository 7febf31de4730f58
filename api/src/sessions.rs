//! Sessions: `POST /api/auth/siwe/nonce`, `POST /api/auth/siwe` (a wallet signs in with
//! Sign-In with Ethereum), `POST /api/auth/session` (an account's API key opens a dashboard
//! session) and `DELETE /api/auth/session` (the bearer ends its own session).
//!
//! A session token acts for its subject on the owner routes (download, list, hand off, delete):
//! a wallet that paid with x402 comes back for its leases without paying again.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::Json;
use relay_raft::ops::{AddSessionKey, OpenSession, RevokeSession};
use relay_raft::{IdempotencyKey, SessionKey};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::session_token::{self, Claims};
use crate::state::AppState;
use crate::{ids, ops, render, siwe};

/// How long a session lasts.
pub const SESSION_SECONDS: u64 = 3600;
/// The largest sign-in body read.
pub const BODY_MAX_BYTES: usize = 8 << 10;

/// `POST /api/auth/siwe/nonce`: a nonce for a sign-in message. Writes nothing.
#[utoipa::path(
    post,
    path = "/api/auth/siwe/nonce",
    operation_id = "sessions_nonce",
    tag = "accounts",
    responses(
        (status = 200, description = "`{status, nonce, expires_at}` for a Sign-In with Ethereum message", content_type = "application/json", body = Object),
        crate::openapi::Common,
    )
)]
pub async fn nonce(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let now_s = relay_raft::wall_clock_ms() / 1000;
    let key = siwe::nonce_key(&state.config.cluster_secret);
    let (nonce, expires) =
        siwe::mint_nonce(&key, now_s).map_err(|e| ApiError::Internal(format!("random nonce: {e}")))?;
    Ok(Json(json!({
        "status": "ok",
        "nonce": nonce,
        "expires_at": render::timestamp(expires * 1000),
    })))
}

#[derive(Deserialize)]
struct SignIn {
    message: String,
    signature: String,
}

/// `POST /api/auth/siwe` `{message, signature}`: checks the message (this node's domain, its
/// network, a nonce it made that has not signed in before, the times) and its signer, then opens
/// a session for the wallet.
#[utoipa::path(
    post,
    path = "/api/auth/siwe",
    operation_id = "sessions_sign_in",
    tag = "accounts",
    request_body(content = Object, content_type = "application/json", description = "`{message, signature}`: an EIP-4361 message and its signature"),
    responses(
        (status = 200, description = "`{status, token, token_type, subject, session_id, expires_at}`", content_type = "application/json", body = crate::openapi::schemas::Session),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E413,
    )
)]
pub async fn sign_in(State(state): State<AppState>, body: Result<Bytes, BytesRejection>) -> ApiResult<Json<Value>> {
    let body = body.map_err(|e| match e {
        BytesRejection::FailedToBufferBody(_) => ApiError::TooLarge {
            what: "sign-in body",
            limit: BODY_MAX_BYTES as u64,
        },
        other => ApiError::BadRequest(format!("reading the body: {other}")),
    })?;
    let value: Value = serde_json::from_slice(&body).map_err(|e| ApiError::InvalidJson(e.to_string()))?;
    if !value.is_object() {
        return Err(ApiError::BadRequest("the body must be a JSON object".into()));
    }
    let sign_in: SignIn =
        serde_json::from_value(value).map_err(|e| ApiError::BadRequest(format!("invalid sign-in: {e}")))?;
    let refused = |why: String| {
        tracing::debug!(reason = %why, "sign-in refused");
        ApiError::Unauthorized("sign-in refused: the message, its nonce or its signature does not hold")
    };
    let message = siwe::parse(&sign_in.message).map_err(|e| ApiError::BadRequest(format!("sign-in message: {e}")))?;
    let now_ms = relay_raft::wall_clock_ms();
    let chain_id = state.config.x402.as_ref().map(|x| x.network.chain_id);
    message.check(&origin(&state)?, chain_id, now_ms).map_err(refused)?;
    if !siwe::nonce_valid(
        &siwe::nonce_key(&state.config.cluster_secret),
        &message.nonce,
        now_ms / 1000,
    ) {
        return Err(refused("unknown or expired nonce".into()));
    }
    // Used here already: refused without a ledger write (the ledger refuses races itself).
    if state.ledger.reader().nonce_used(&message.nonce)? {
        return Err(refused("the nonce already signed in".into()));
    }
    let signer = siwe::signer(&sign_in.message, &sign_in.signature).map_err(|e| refused(e.to_string()))?;
    if signer != message.address {
        return Err(refused("signed by another key".into()));
    }
    let expires_at_ms = message
        .expiration_ms
        .unwrap_or(u64::MAX)
        .min(now_ms + SESSION_SECONDS * 1000);
    open(
        &state,
        signer.checksummed(),
        Some(message.nonce),
        None,
        now_ms,
        expires_at_ms,
    )
    .await
}

/// `POST /api/auth/session` with an account's API key: a session token for a dashboard.
#[utoipa::path(
    post,
    path = "/api/auth/session",
    operation_id = "sessions_open_for_account",
    tag = "accounts",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "A session token for the key's account: `{status, token, token_type, subject, session_id, expires_at}`", content_type = "application/json", body = crate::openapi::schemas::Session),
        crate::openapi::Common,
        crate::openapi::Authed,
    )
)]
pub async fn open_for_account(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    let Some(key_hash) = caller.key_hash else {
        return Err(ApiError::Forbidden("a session cannot open another session"));
    };
    let now_ms = relay_raft::wall_clock_ms();
    open(
        &state,
        caller.account_id.clone(),
        None,
        Some(hex::encode(key_hash)),
        now_ms,
        now_ms + SESSION_SECONDS * 1000,
    )
    .await
}

/// `DELETE /api/auth/session`: ends the bearer's own session; its token stops working on every
/// node.
#[utoipa::path(
    delete,
    path = "/api/auth/session",
    operation_id = "sessions_revoke",
    tag = "accounts",
    security(("session" = [])),
    responses(
        (status = 200, description = "`{status, session_id, revoked}`", content_type = "application/json", body = Object),
        crate::openapi::Common,
        crate::openapi::Authed,
        crate::openapi::E404,
    )
)]
pub async fn revoke(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    let Some(session_id) = caller.session_id.clone() else {
        return Err(ApiError::BadRequest("only a session token ends its session".into()));
    };
    let op = RevokeSession {
        session_id,
        subject: caller.account_id.clone(),
    };
    let session = ops::run(&state, None, op, "session").await?;
    Ok(Json(
        json!({"status": "ok", "session_id": session.session_id, "revoked": true}),
    ))
}

async fn open(
    state: &AppState,
    subject: String,
    nonce: Option<String>,
    opened_by_key: Option<String>,
    now_ms: u64,
    expires_at_ms: u64,
) -> ApiResult<Json<Value>> {
    let key = signing_key(state).await?;
    let op = OpenSession {
        session_id: ids::session_id(),
        subject,
        nonce,
        opened_by_key,
        expires_at_ms,
    };
    let session = ops::run(state, None, op, "session").await?;
    let claims = Claims::new(
        session.subject.clone(),
        session.session_id.clone(),
        now_ms / 1000,
        session.expires_at_ms.div_ceil(1000),
    );
    Ok(Json(json!({
        "status": "ok",
        "token": session_token::mint(&key, &claims),
        "token_type": "Bearer",
        "subject": session.subject,
        "session_id": session.session_id,
        "expires_at": render::timestamp(session.expires_at_ms),
    })))
}

/// The key new tokens are signed with; the first session of a cluster makes one (a retried or
/// concurrent first makes another, which is as good).
async fn signing_key(state: &AppState) -> ApiResult<SessionKey> {
    if let Some(key) = state.ledger.linearizable().await?.session_keys()?.pop() {
        return Ok(key);
    }
    rotate(state).await?;
    state
        .ledger
        .linearizable()
        .await?
        .session_keys()?
        .pop()
        .ok_or_else(|| ApiError::Internal("no session key after adding one".into()))
}

/// Adds a fresh signing key (an admin's rotation, or the cluster's first session).
pub async fn rotate(state: &AppState) -> ApiResult<String> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| ApiError::Internal(format!("random key: {e}")))?;
    let kid = format!("k{}", ulid::Ulid::new());
    let op = AddSessionKey {
        kid: kid.clone(),
        key_hex: hex::encode(key),
    };
    let idem = IdempotencyKey::internal("sessions", kid.clone());
    ops::run(state, Some(idem), op, "session key").await?;
    Ok(kid)
}

/// The origin a sign-in message must name: `--public-url`'s. Never the request's `Host`: a
/// message signed for any other site could be replayed here under its name.
fn origin(state: &AppState) -> ApiResult<String> {
    let url = state.config.public_url.as_deref().ok_or(ApiError::Forbidden(
        "Sign-In with Ethereum is off: the operator has not set --public-url",
    ))?;
    Ok(url.splitn(4, '/').take(3).collect::<Vec<_>>().join("/"))
}
